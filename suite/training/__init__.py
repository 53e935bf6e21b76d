"""Training: the supervised loop, the estimator path, and the RL algorithms (suite.training.rl): each
trainer with its own step, timed by the harness's clock."""
