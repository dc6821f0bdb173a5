"""gpucost.engine."""
