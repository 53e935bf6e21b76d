"""Reference convergence: how many steps the default model needs to reach its target, over many seeds.

A target is only worth its spread. Like MLPerf's reference convergence
points, each task profile with a target carries a reference measured by
`bench/convergence.py`: N seeds of one model and recipe, each seed's steps
to target (optimizer steps; env steps for RL), how many reached it, the
median, the coefficient of variation (CV) and a 5th-95th percentile band.
The procedure that sets targets (docs/methodology.md) asks for N >= 10, at
least 9 of 10 seeds reaching the target within the budget, and a CV of at
most 0.15.

With a reference, a run's time-to-target can be normalised for convergence
luck: `normalised_time_to_target_s` = the reference median steps x this
run's train seconds per step. It measures the machine (seconds per step)
against a fixed amount of work, so two machines compare with few seeds.

Pure Python: the results side reads references without torch.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

# The procedure's thresholds (docs/methodology.md).
MIN_SEEDS = 10
MIN_REACHED_SHARE = 0.9
MAX_CV = 0.15


@dataclass(frozen=True)
class Reference:
    """One task profile's reference convergence for one model and recipe."""

    task: str
    task_version: int
    profile: str
    model: str
    target: dict[str, Any]  # {"metric", "value", "higher_is_better"}
    step_unit: str  # "steps" (optimizer steps) or "env_steps"
    seeds: list[int]
    steps_to_target: list[int | None]  # per seed, None: not reached within the budget
    budget_steps: int | None  # the budget in the same unit, where known
    recipe_hash: str  # suite.results.records.config_hash of the recipe (a run of another recipe is not normalised)
    precision: str
    seconds_per_step: float | None  # median over seeds, on `machine`
    eval_cadence: dict[str, Any] | None
    machine: str
    date: str
    commit: str | None
    command: str
    other_cpu_share: float | None = None  # how busy the machine was (median over seeds)
    final_quality: dict[str, Any] = field(default_factory=dict)  # e.g. test metric at the stopping evaluations

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def reached(self) -> int:
        return sum(s is not None for s in self.steps_to_target)

    @property
    def reached_steps(self) -> list[int]:
        return sorted(s for s in self.steps_to_target if s is not None)

    @property
    def median(self) -> float | None:
        steps = self.reached_steps
        return float(statistics.median(steps)) if steps else None

    @property
    def cv(self) -> float | None:
        """Sample standard deviation / mean of the reached seeds' steps (None below two)."""
        return coefficient_of_variation(self.reached_steps)

    @property
    def band(self) -> tuple[float, float] | None:
        """The 5th and 95th percentiles of the reached seeds' steps (linear interpolation)."""
        steps = self.reached_steps
        if not steps:
            return None
        return percentile(steps, 5), percentile(steps, 95)

    def meets_procedure(self) -> tuple[bool, str]:
        """(True, "") when the reference satisfies the written procedure, else (False, why)."""
        problems = []
        if self.n < MIN_SEEDS:
            problems.append(f"{self.n} seeds < {MIN_SEEDS}")
        if self.reached < math.ceil(MIN_REACHED_SHARE * self.n):
            problems.append(f"{self.reached}/{self.n} reached < {MIN_REACHED_SHARE:.0%}")
        if self.cv is None or self.cv > MAX_CV:
            problems.append(f"CV {self.cv if self.cv is None else round(self.cv, 3)} > {MAX_CV}")
        return (not problems, "; ".join(problems))

    def summary(self) -> dict[str, Any]:
        """What `dlbench list --json` and the methodology page show."""
        ok, why = self.meets_procedure()
        band = self.band
        return {"model": self.model, "n": self.n, "reached": self.reached, "median_steps": self.median,
                "cv": None if self.cv is None else round(self.cv, 4), "step_unit": self.step_unit,
                "band_p5_p95": None if band is None else [round(band[0], 1), round(band[1], 1)],
                "per_seed_steps": self.steps_to_target, "seconds_per_step": self.seconds_per_step,
                "meets_procedure": ok, "why_not": why or None, "precision": self.precision,
                "machine": self.machine, "date": self.date, "commit": self.commit, "command": self.command,
                "other_cpu_share": self.other_cpu_share, "final_quality": self.final_quality}

    def line(self) -> str:
        """One line for `dlbench list`."""
        if self.median is None:
            return f"reference: {self.model}, {self.reached}/{self.n} seeds reached"
        band = self.band
        return (f"reference: {self.model}, {self.reached}/{self.n} seeds reached, median {self.median:g} "
                f"{self.step_unit} (CV {self.cv or 0:.2f}, p5-p95 {band[0]:.0f}-{band[1]:.0f}), "
                f"{self.machine}, {self.date}")


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of already sorted values, by linear interpolation (numpy's default)."""
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def steps_to_reach(curve: Sequence[dict[str, Any]], metric: str, value: float, higher_is_better: bool) -> int | None:
    """The step of the first curve point whose `metric` meets `value` (None: never)."""
    for point in curve:
        got = point.get(metric)
        if isinstance(got, (int, float)) and got == got and (got >= value if higher_is_better else got <= value):
            return int(point["step"])
    return None


def reference_path(folder: Path, task: str, profile: str, model: str) -> Path:
    return Path(folder) / f"{task}.{profile}.{model}.json"


def load_references(folder: Path, task: str, profile: str) -> dict[str, Reference]:
    """The references stored in `folder` for one task profile, by model (an unreadable file is skipped)."""
    found: dict[str, Reference] = {}
    for path in sorted(Path(folder).glob(f"{task}.{profile}.*.json")):
        try:
            ref = Reference(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        found[ref.model] = ref
    return found


def to_json(ref: Reference) -> str:
    return json.dumps(asdict(ref), indent=1) + "\n"


def normalised(record: dict[str, Any], ref: Reference | None) -> dict[str, Any]:
    """The record's convergence-normalised figures against `ref`:

    normalised_time_to_target_s  reference median steps x this run's train seconds per step
    convergence                  {reference median, band, n, inside (steps_to_target within the band; None
                                 when the run did not reach), or `why` there is no figure}
    """
    none = {"normalised_time_to_target_s": None}
    if ref is None:
        return {**none, "convergence": {"why": "no reference convergence for this task profile and model"}}
    if ref.median is None:
        return {**none, "convergence": {"why": "the reference has no seed that reached the target"}}
    target = record.get("target") or {}
    if target.get("value") != ref.target.get("value") or target.get("metric") != ref.target.get("metric"):
        return {**none, "convergence": {"why": "the reference was measured for another target"}}
    if record.get("task_version") != ref.task_version:
        return {**none, "convergence": {"why": f"the reference is of task version {ref.task_version}"}}
    recipe_hash = record.get("_recipe_hash")
    if recipe_hash is not None and recipe_hash != ref.recipe_hash:
        return {**none, "convergence": {"why": "the run's recipe differs from the reference's"}}
    per_step = record.get("seconds_per_step")
    band = ref.band
    steps = record.get("steps_to_target")
    info = {"reference_median_steps": ref.median, "band_p5_p95": [round(band[0], 1), round(band[1], 1)],
            "reference_n": ref.n, "reference_cv": None if ref.cv is None else round(ref.cv, 4),
            "inside": None if steps is None else bool(band[0] <= steps <= band[1])}
    # A run that missed the target has no normalised time: it never converged, so it must not borrow the
    # reference's steps (tables count it as not reached, `score` at its budget).
    value = None if not per_step or steps is None else round(ref.median * per_step, 4)
    return {"normalised_time_to_target_s": value, "convergence": info}


# Recipe fields added after references were stored: left out of the hash while off, so the stored
# references' recipe hashes keep matching the recipes they were measured with.
LATER_RECIPE_FLAGS = ("cuda_tf32", "ema_decay")


def recipe_hash(recipe: Any) -> str:
    """The hash a reference stores of its recipe (suite.results.records.config_hash of its fields)."""
    from suite.results.records import config_hash
    from suite.taskapi.spec import to_jsonable

    fields = to_jsonable(recipe)
    for flag in LATER_RECIPE_FLAGS:
        if not fields.get(flag):
            fields.pop(flag, None)
    return config_hash(fields)
