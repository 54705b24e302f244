"""Edge node for co-owned apartment buildings."""

__version__ = "0.1.0"
