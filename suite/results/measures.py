"""What tables measure, how they are laid out, and the time-to-target rules (`--time`).

Plain data without pandas, so the command line builds its parser (the choices of `--by` and
`--time`) without importing what only the tables need. `suite.results.compare` describes each rule.
"""
from __future__ import annotations

TIME_RULES = {
    "train": ("time_to_target_s", "train time only (evaluation, warm-up and data work excluded)"),
    "train+eval": ("time_to_target_with_eval_s", "train + evaluation time (warm-up and data work excluded)"),
    "submission": ("submission_time_to_target_s",
                   "AlgoPerf submission time: train + warm-up/compilation, evaluations untimed"),
    "wall": ("wall_to_target_s", "MLPerf time-to-train: wall clock from the first touch of the data, never paused"),
    "normalised": ("normalised_time_to_target_s",
                   "convergence-normalised: the reference median steps x this run's seconds per step"),
    # Not a time: the cells read joules where they say seconds; runs whose machine reports no energy have none
    "energy": ("energy_to_target_j", "energy to the target in joules (train segments, where the machine reports "
               "energy: suite/measuring/energy.py); cells read J, not s"),
}
MEASURES = ["time_to_target_s", "final_quality", "throughput", "peak_mem_mb", "utilisation"]
GROUPINGS = {
    "model": {"rows": ["hardware", "model"], "columns": None},
    "hardware": {"rows": ["model"], "columns": "hardware"},
    "software": {"rows": ["hardware", "model"], "columns": "torch"},
}
