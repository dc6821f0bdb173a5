"""gpucost.budgets."""
