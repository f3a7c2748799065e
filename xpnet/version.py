"""xpnet's version: one place, read by the package, the build (pyproject.toml) and `xpnet --version`."""

__version__ = "0.1.0"
