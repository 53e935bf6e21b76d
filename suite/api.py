"""dlbench from Python (a notebook, a script): records as a pandas DataFrame, and runs without the command line.

Load every record under some results folders, one tidy row per run::

    >>> from suite import api
    >>> runs = api.load_records("results", "results/reference/NVIDIA-H200")
    >>> runs.groupby(["task", "model", "hardware"])["time_to_target_s"].median()

Run a suite and get its records (the same flags as `run_all.py`, as keywords)::

    >>> records = api.run(profile="smoke", tasks=["image_classification"], device="cpu")
    >>> records[0]["time_to_target_s"]

The frame's columns are those `dlbench compare` groups and measures by
(task, task_version, profile, dataset, model, seed, hardware, torch, target,
time_to_target_s, final_quality, throughput, peak_mem_mb, utilisation,
precision_used, ...); a run that missed its target has time_to_target_s = inf.
Only runs fit for comparison are kept (`dlbench check` says why others are not).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def load_records(*dirs: str | Path, time_rule: str = "train") -> pd.DataFrame:
    """One row per run fit for comparison under `dirs` (default: ./results), the compare columns.

    `time_rule` picks what time_to_target_s means: train, train+eval, submission, wall, normalised or energy (joules)
    (docs/methodology.md). Unreadable files and unfit runs are left out with one warning each (stderr).

    >>> frame = load_records("results")
    >>> frame[["task", "model", "time_to_target_s"]].head()
    """
    import sys

    from suite.results import compare
    from suite.results.safe_io import plain

    data = compare.pool([Path(d) for d in dirs] or [Path("results")])
    frame, notes = compare.with_time_rule(data.frame, time_rule)
    for line in data.warnings + notes:
        print(plain(f"warning: {line}"), file=sys.stderr)
    return frame.reset_index(drop=True)


def run(**flags: Any) -> list[dict[str, Any]]:
    """Run the planned runs of `run_all.py` with these flags (field names of `suite.running.config.SuiteOptions`:
    profile, tasks, models, seeds, device, precision, results, ...) and return their records.

    A bad flag raises ConfigError naming it before any run; records are also written to RESULTS/runs/.

    >>> records = run(profile="smoke", tasks=["image_classification"], models="default", device="cpu")
    >>> [r["status"] for r in records]
    ['ok']
    """
    import dataclasses

    from suite.running import benchmark
    from suite.running.config import SuiteOptions
    from suite.errors import ConfigError

    known = {f.name for f in dataclasses.fields(SuiteOptions)}
    unknown = sorted(set(flags) - known)
    if unknown:
        raise ConfigError(unknown[0], flags[unknown[0]], f"not a run flag; use one of {', '.join(sorted(known))}")
    if isinstance(flags.get("tasks"), str):
        flags["tasks"] = [t for t in flags["tasks"].split(",") if t]
    records, _status = benchmark.run_suite(SuiteOptions(**flags))
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]
