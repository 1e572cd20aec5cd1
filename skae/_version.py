"""The version of skae."""

__version__ = "0.1.0"
