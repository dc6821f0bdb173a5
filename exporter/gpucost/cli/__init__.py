"""gpucost.cli."""
