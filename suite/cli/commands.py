"""The parsers of `dlbench` and `run_all.py`, and the guard every command runs inside (bad input: one line,
exit 2; Ctrl-C and SIGTERM: an `interrupted` record, exit 130/143)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from suite.cli.results_commands import (check_command, compare_command, export_command, ratio, report_command,
                                        score_command)
from suite.cli.run_commands import (RUN_COMMANDS, add_run_arguments, is_main_process, list_command,
                                    pages_command, run_and_summarize, run_command, sweep_command)
from suite.errors import DlbenchError, Terminated, closed_pipe_exit_code
from suite.reporting import terminal
from suite.results.measures import GROUPINGS, TIME_RULES
from suite.results.safe_io import plain
from suite.running import interrupts


class Parser(argparse.ArgumentParser):
    """argparse without abbreviated flags, for the parser and its subcommands (argparse makes those of its
    own class): it would read `--seed 3` as `--seeds 3` (three seeds, not seed 3) and `list --tasks x` as
    `--tasks-from x`. A flag not spelt out is an error that names it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)


def run_all_parser() -> argparse.ArgumentParser:
    from suite.running import tomlconfig
    from suite.running.config import SuiteOptions, add_arguments

    parser = Parser(prog="run_all.py", description="Run the whole dlbench benchmark.")
    _add_version(parser, "run_all.py")
    tomlconfig.add_argument(parser)
    add_arguments(parser, SuiteOptions)
    return parser


def main_run_all(argv: list[str] | None = None) -> int:
    from suite.running import tomlconfig
    from suite.running.config import SuiteOptions

    terminal.safe_streams()
    return _guarded(lambda: _run_all(tomlconfig.parse_args(run_all_parser(), argv, SuiteOptions)))


def _run_all(args: argparse.Namespace) -> int:
    from suite.running.config import SuiteOptions, from_namespace

    opts = from_namespace(SuiteOptions, args)
    status = run_and_summarize(opts, write_report=True)
    if is_main_process():  # the machine against the shipped reference of this profile, when one ships
        from suite.results import score

        print("\n" + "\n".join(plain(line) for line in score.closing_lines(opts.results, opts.profile)))
    return status


def _command(argv: list[str] | None) -> str | None:
    """The subcommand `argv` names (its first word that is not an option), or None."""
    words = [w for w in (sys.argv[1:] if argv is None else argv) if not w.startswith("-")]
    return words[0] if words else None


def main(argv: list[str] | None = None) -> int:
    terminal.safe_streams()  # record text under any locale: escaped where the terminal cannot show it
    parser = Parser(prog="dlbench", description="Deep-learning application benchmark.")
    _add_version(parser, "dlbench")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="tasks, models, options, and per profile: dataset, target, "
                            "expected run time, download size")
    p_run = sub.add_parser("run", help="run one task (default model unless --model) and write the report")
    p_swp = sub.add_parser("sweep", help="a grid of variants of one model (--vary KEY=v1,v2 ...), N seeds each; "
                           "study table and plots into RESULTS/studies/ and the report")
    if _command(argv) in RUN_COMMANDS + (None,):  # the results commands leave torch unimported
        add_run_arguments(p_list, p_run, p_swp)

    p_cmp = sub.add_parser("compare", help="comparison tables from result folders")
    p_cmp.add_argument("dirs", nargs="*", default=[Path("results")], type=Path)
    p_cmp.add_argument("--by", choices=tuple(GROUPINGS) + ("family",), default="model",
                       help="model: machines as rows; hardware / software: machine labels / torch versions as columns; "
                            "family: per task, the best deep model beside the best hand-crafted one")
    p_cmp.add_argument("--format", choices=("text", "md", "csv", "html", "parquet"), default=None,
                       help="text (default on a terminal): 100 columns and a legend; md (default otherwise) and "
                            "html: the wide table, cells 'median [95%% interval] n'; csv: the numeric cells, or "
                            "with --out FILE.csv one tidy row per run; parquet: one tidy row per run into "
                            "--out FILE.parquet (pandas + pyarrow)")
    p_cmp.add_argument("--time", choices=tuple(TIME_RULES), default="train",
                       help="time-to-target rule: train (train segments only), train+eval, submission (AlgoPerf: "
                            "with warm-up/compilation), wall (MLPerf: never paused from the first touch of the data) "
                            "or normalised (reference median steps x seconds per step); docs/methodology.md")
    p_cmp.add_argument("--baseline", default=None,
                       help="hardware label, model name (or with --by software a torch version; default the oldest)"
                            " to compute speedups against")
    p_cmp.add_argument("--out", type=Path, default=None,
                       help="also write the table(s) into this folder; with --format csv|parquet and a FILE.csv|"
                            ".parquet name: write one tidy row per run there instead")
    p_cmp.add_argument("--fail-below", type=ratio, default=None, metavar="R",
                       help="with --baseline: exit 1 when a task's speed-up (or the suite's) is below R with its "
                            "interval entirely below R, printing those rows (a regression gate)")

    p_score = sub.add_parser("score", help="one figure per machine and profile: these results against a "
                             "reference machine (geometric mean of per-task speed-ups)")
    p_score.add_argument("dirs", nargs="*", default=[Path("results")], type=Path)
    p_score.add_argument("--reference", default=None, metavar="DIR|LABEL",
                         help="a results folder of one machine, or a machine label under results/reference/ "
                              "(case-insensitive prefix: 'nvidia h200'); default: results/reference/")
    p_score.add_argument("--time", choices=tuple(TIME_RULES), default="train",
                         help="time-to-target rule as in compare (energy: joules to the target, where both "
                              "machines report energy)")
    p_score.add_argument("--format", choices=("text", "md", "csv"), default=None,
                         help="text (default on a terminal), md (default otherwise) or csv (per-task tables)")
    p_score.add_argument("--fail-below", type=ratio, default=None, metavar="R",
                         help="exit 1 when a task's speed-up or a profile's score is below R with its interval "
                              "entirely below R, printing those rows (a regression gate)")

    p_rep = sub.add_parser("report", help="self-contained HTML report (+ Markdown, CSV) from result folders")
    p_rep.add_argument("dirs", nargs="*", default=[Path("results")], type=Path)
    p_rep.add_argument("--out", type=Path, default=None, help="HTML file to write (default: FIRST_DIR/report.html)")
    p_rep.add_argument("--baseline", default=None,
                       help="hardware label or model name for speedups (default: the machine with most runs)")
    p_rep.add_argument("--time", choices=tuple(TIME_RULES), default="train",
                       help="time-to-target rule: train (train segments only), train+eval, submission (AlgoPerf: "
                            "with warm-up/compilation), wall (MLPerf: never paused from the first touch of the data) "
                            "or normalised (reference median steps x seconds per step); docs/methodology.md")

    p_chk = sub.add_parser("check", help="validate records and flag runs unfit for comparison")
    p_chk.add_argument("dirs", nargs="*", default=[Path("results")], type=Path)
    p_chk.add_argument("--json", action="store_true",
                       help="print the findings and counts as one JSON document (same exit status)")

    p_exp = sub.add_parser("export", help="write the records as MLPerf-style logs or TensorBoard event files")
    p_exp.add_argument("kind", choices=("mllog", "tensorboard"),
                       help="mllog: RESULTS/mllog/<run_id>.log beside each record (or into --out); "
                            "tensorboard: OUT/<run_id>/ event files")
    p_exp.add_argument("dirs", nargs="*", default=[Path("results")], type=Path)
    p_exp.add_argument("--out", type=Path, default=None,
                       help="folder to write into (mllog default: each results folder's mllog/; "
                            "tensorboard default: FIRST_DIR/tensorboard)")

    p_pages = sub.add_parser("pages", help="write the documentation pages generated from stored data into docs/")
    p_pages.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "docs")
    p_pages.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale page")

    handlers = {"list": list_command, "run": run_command, "sweep": sweep_command, "compare": compare_command, "report": report_command, "check": check_command,
                "pages": pages_command, "score": score_command, "export": export_command}

    def command() -> int:  # parsed inside the guard: a flag's bad value is one line and exit 2
        args = parser.parse_args(argv)
        if args.command in ("compare", "report", "check", "score", "export", "pages"):
            from suite.results import records

            records.LONG_LIVED_READS = True  # this process ends with the command: what it reads lives as long
        return handlers[args.command](args)

    return _guarded(command)


def _add_version(parser: argparse.ArgumentParser, prog: str) -> None:
    """`--version`: computed only when asked (it may run git)."""

    class Version(argparse.Action):
        def __init__(self, option_strings, dest, **kwargs):
            super().__init__(option_strings, dest, nargs=0, help="print the dlbench version (and git commit) and exit")

        def __call__(self, parser, namespace, values, option_string=None):
            from suite.version import version_line

            print(version_line(prog))
            parser.exit()

    parser.add_argument("--version", action=Version)


def _guarded(action) -> int:
    """Run a command: bad input is one line and exit 2; Ctrl-C and SIGTERM (timeouts, batch schedulers,
    container runtimes) end it like each other, with an `interrupted` record for the run under way, and
    a second signal is held while that record is written and while the program exits."""
    with interrupts.first_signal_ends(hold_after=True):
        try:
            return action()
        except DlbenchError as exc:
            print(plain(f"error: {exc}"), file=sys.stderr)
            return 2
        except BrokenPipeError:  # `dlbench list | head`
            return closed_pipe_exit_code()
        except OSError as exc:  # a folder that vanished or filled up while reading / writing tables
            where = f" ({exc.filename})" if exc.filename else ""
            print(plain(f"error: {exc.strerror or exc}{where}: files already there are left as they were "
                        "(writes are atomic)"), file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            print(f"{how}: the records written so far are kept", file=sys.stderr)
            return 143 if isinstance(exc, Terminated) else 130
