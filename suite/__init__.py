"""dlbench's shared harness: registry, training loop, measurement, records, tables."""

__version__ = "0.1.0"
