"""The package's version, kept apart so that any module can read it without importing the package root."""

__version__ = "0.3.0"
