"""gpucost.sources."""
