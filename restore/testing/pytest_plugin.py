"""pytest plugin of restore.testing: fixtures for plugin authors."""
