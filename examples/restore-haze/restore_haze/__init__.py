"""Example third-party plugin for restore: vignetting and haze operators and a ``dehaze`` task."""
