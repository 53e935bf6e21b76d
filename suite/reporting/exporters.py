"""What a saved record is also written as: its MLPerf-style log, and TensorBoard events with --tensorboard.

Both are generated from the record once it is on disk, so no training step
pays for them; a failed export is one warning line and never fails the run
(the record is the result, the exports can be redone with `dlbench export`).
"""
from __future__ import annotations

import sys
from typing import Any

from suite.results.safe_io import plain


def after_record(record: dict[str, Any], opts: Any) -> None:
    """RESULTS/mllog/<run_id>.log, and with `opts.tensorboard` DIR/<run_id>/ event files."""
    from suite.reporting import mllog

    try:
        mllog.write_beside(record, opts.results)
        if getattr(opts, "tensorboard", None):
            from suite.reporting import tboard

            tboard.write_events(record, opts.tensorboard)
    except Exception as exc:  # noqa: BLE001 - an export must never cost the run its record
        print(plain(f"warning: exports of {record.get('run_id')} not written ({type(exc).__name__}: {exc}): "
                    f"`dlbench export mllog|tensorboard {opts.results}` writes them from the records"),
              file=sys.stderr)
