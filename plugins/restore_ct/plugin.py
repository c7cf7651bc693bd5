"""Hook implementations."""
from restore.hookspecs import hookimpl  # noqa: F401
