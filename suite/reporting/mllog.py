"""MLPerf-style logs (`:::MLLOG` lines) generated from run records.

`to_lines(record)` is a pure function of the record, so any record, old or
new, converts: the lines go through `mlperf_logging.mllog.MLLogger` (the
MLCommons package, extra `all`), which is what MLPerf's parser and
compliance tools read. Times come from the record: `started_at` plus each
evaluation's `time_s`; `run_stop` at `finished_at`.

What a log holds: the submission fields (benchmark = task, platform = the
machine's label, org, division, status), `seed`, `run_start`, per evaluation
one `eval_accuracy` event for the target metric (or the first metric when the
run has no target) and one event per other metric, each with its `step_num`
(and `epoch_num` where the curve has one), and `run_stop` with
`status` success (target reached) or aborted (anything else).

`write_beside(record, results)` writes RESULTS/mllog/<run_id>.log atomically
once the record is saved; `export(dirs, out)` converts every record found.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from suite.results import safe_io
from suite.results.numbers import number

FOLDER = "mllog"  # beside runs/ in a results folder
ORG = "dlbench"
DIVISION = "open"  # dlbench's tasks are not MLPerf's closed benchmarks
STATUS = "research"


class _Collect(logging.Handler):
    """Keeps each `:::MLLOG` line in a list instead of printing it (the logger's own warnings are dropped)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, entry: logging.LogRecord) -> None:
        self.lines.extend(line for line in entry.getMessage().splitlines() if line.startswith(":::MLLOG "))


def _ms(stamp: str | None) -> int:
    if not stamp:
        return 0
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except ValueError:
        return 0


def target_metric(record: dict[str, Any]) -> str | None:
    """The metric `eval_accuracy` carries: the target's, else the first metric of the curve."""
    target = record.get("target") or {}
    if target.get("metric"):
        return target["metric"]
    for point in record.get("curve") or []:
        for key in point:
            if key not in ("step", "time_s", "epoch"):
                return key
    return None


def to_lines(record: dict[str, Any]) -> list[str]:
    """The record as `:::MLLOG` lines (a pure function: the same record gives the same lines).

    >>> lines = to_lines(record)
    >>> lines[0].startswith(":::MLLOG ")
    True
    """
    from mlperf_logging.mllog import constants as c
    from mlperf_logging.mllog.mllog import MLLogger

    collect = _Collect()
    logger = logging.Logger(f"dlbench.mllog.{record.get('run_id')}")  # not registered: nothing leaks globally
    logger.addHandler(collect)
    log = MLLogger(logger=logger, default_namespace="")
    start = _ms(record.get("started_at"))
    stop = _ms(record.get("finished_at")) or start
    hardware = record.get("hardware") or {}
    where = {"run_id": record.get("run_id")}

    def event(key: str, value: Any = None, time_ms: int = start, **meta: Any) -> None:
        log.event(key=key, value=value, time_ms=time_ms, metadata={**where, **meta})

    event(c.SUBMISSION_BENCHMARK, record.get("task"))
    event(c.SUBMISSION_ORG, ORG)
    event(c.SUBMISSION_DIVISION, DIVISION)
    event(c.SUBMISSION_STATUS, STATUS)
    event(c.SUBMISSION_PLATFORM, hardware.get("label"))
    event("dlbench_model", record.get("model"))
    event("dlbench_profile", record.get("profile"))
    event(c.SEED, record.get("seed"))
    log.start(key=c.RUN_START, time_ms=start, metadata=dict(where))
    main = target_metric(record)
    for point in record.get("curve") or []:
        at = start + int(1000 * (number(point.get("time_s"), None) or 0.0))
        place = {c.STEP_NUM: point.get("step")}
        if point.get("epoch") is not None:
            place[c.EPOCH_NUM] = point["epoch"]
        for key, value in point.items():
            if key in ("step", "time_s", "epoch") or number(value, None) is None:
                continue
            event(c.EVAL_ACCURACY if key == main else key, float(value), at, metric=key, **place)
    status = c.SUCCESS if record.get("reached_target") else c.ABORTED
    log.end(key=c.RUN_STOP, time_ms=stop,
            metadata={**where, c.STATUS: status, "dlbench_status": record.get("status"),
                      "stop_reason": record.get("stop_reason")})
    return collect.lines


def log_path(results: Path, run_id: str) -> Path:
    return Path(results) / FOLDER / f"{run_id}.log"


def write_log(record: dict[str, Any], path: Path) -> Path:
    """Write the record's log to `path` atomically (the folder is made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return safe_io.atomic_write_text(path, "\n".join(to_lines(record)) + "\n")


def write_beside(record: dict[str, Any], results: Path) -> Path | None:
    """RESULTS/mllog/<run_id>.log for a saved record; None (and no file) without the `mlperf-logging` package,
    which belongs to the `all` extra: a run never fails for its log."""
    try:
        import mlperf_logging.mllog  # noqa: F401
    except ImportError:
        return None
    return write_log(record, log_path(results, record["run_id"]))


def export(dirs: list[Path], out: Path | None = None) -> list[Path]:
    """A log for every record under `dirs`, into OUT (default: each record's own results folder's mllog/)."""
    from suite.results import records

    try:
        import mlperf_logging.mllog  # noqa: F401
    except ImportError:
        from suite.errors import DlbenchError

        raise DlbenchError("export mllog needs the mlperf-logging package: pip install -e '.[all]'") from None
    written = []
    for file in records.record_files(dirs):
        for record in records.read_records([file]):  # an unreadable file: one warning, skipped
            # RESULTS/runs/<id>.json -> RESULTS/mllog/<id>.log
            results = file.parent.parent if file.parent.name == "runs" else file.parent
            folder = Path(out) if out is not None else results / FOLDER
            written.append(write_log(record, folder / f"{record['run_id']}.log"))
    return written
