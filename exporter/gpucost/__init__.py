"""gpucost: GPU cost attribution and budgets for Kubernetes AI platforms."""

__all__ = ["__version__"]

__version__ = "0.1.0"
