"""purchase-patterns: end-to-end customer purchase analytics."""

__version__ = "0.1.0"
