"""The task API: what a task declares (profiles, targets, budgets, recipes, options, models), the registry,
the data contract (batch sources), `--set` variants and the reference convergence that sets targets."""
