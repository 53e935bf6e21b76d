"""dlbench's shared harness, grouped by what each part does:

- `suite.taskapi`: what a task declares and provides (the public task API, re-exported here);
- `suite.running`: planning and running runs, start to record;
- `suite.training`: the supervised loop, the estimator path and the RL algorithms;
- `suite.measuring`: the clock, FLOPs, peak, memory, contention, fingerprint, the speed profile;
- `suite.results`: records, checks, cells, statistics, comparisons, scores (no torch);
- `suite.reporting`: the report, plots, terminal tables, generated pages, MLPerf logs, TensorBoard.

A task module needs only `from suite import ...`. The names below load on first use, so that reading
results (`suite.results`) never imports torch through this package.
"""
from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "suite.taskapi.spec": ["Budget", "ProfileSpec", "Recipe", "Target", "TaskOption"],
    "suite.taskapi.task": ["BatchSource", "RLTask", "Task"],
    "suite.taskapi.registry": ["register_task"],
    "suite.taskapi.models": ["Model"],
    "suite.taskapi.data": ["PaddedSource", "RaggedSource", "TensorSource", "length_batches", "pack", "sha256_of"],
    "suite.taskapi.convergence": ["load_references"],
    "suite.training.estimator": ["Fitted", "FittedClassifier"],
    "suite.training.rl": ["DQNConfig", "PPOConfig"],
    "suite.measuring.speed": ["full_dataset", "speed_profile"],
    "suite.running.progress": ["progress"],
    "suite.results.safe_io": ["atomic_write_text"],
    "suite.errors": ["ConfigError", "DataError", "DlbenchError", "MissingExtraError", "SkipRun", "SplitUnavailable"],
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'suite' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
