"""Benchmarks: quality, speed and engine overhead (``python -m bench.run --suite quick``)."""
