"""gpucost.metrics."""
