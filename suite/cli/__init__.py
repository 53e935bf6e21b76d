"""Command line: `python run_all.py` and `dlbench list | run | sweep | compare | score | report | check | export`.

Exit status: 0 when every run ended (target reached or not, or skipped with
a reason); 1 when a run crashed; 2 on bad input (one line on stderr).
`compare` and `report` exit 1 only when no run is comparable; `check`
exits 1 when a record is unreadable or unfit for comparison. `compare
--fail-below R` and `score --fail-below R` exit 1 when a figure is slower
than R beyond its interval (a regression gate); `score` exits 2 when the
reference is unknown or has no comparable runs.

The results commands (compare, score, report, check) never import torch: the
modules that run training are imported only by the commands that run
(list, run, sweep), which saves seconds on every look at a results folder.
Ctrl-C or SIGTERM ends a command once (`suite.running.interrupts`): a second one
while the first's record is written, or while the program exits, is held.
"""
from suite.cli.commands import main, main_run_all, run_all_parser
from suite.cli.run_commands import report_into

__all__ = ["main", "main_run_all", "report_into", "run_all_parser"]
