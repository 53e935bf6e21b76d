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
Ctrl-C or SIGTERM ends a command once (`suite.interrupts`): a second one
while the first's record is written, or while the program exits, is held.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from suite import check, compare, interrupts, terminal
from suite.errors import DlbenchError, Terminated
from suite.safe_io import plain
from suite.safetext import clean

RUN_COMMANDS = ("list", "run", "sweep")  # the commands that need the training side (torch)


def run_all_parser() -> argparse.ArgumentParser:
    from suite import tomlconfig
    from suite.config import SuiteOptions, add_arguments

    parser = argparse.ArgumentParser(prog="run_all.py", description="Run the whole dlbench benchmark.")
    _add_version(parser, "run_all.py")
    tomlconfig.add_argument(parser)
    add_arguments(parser, SuiteOptions)
    return parser


def main_run_all(argv: list[str] | None = None) -> int:
    from suite import tomlconfig
    from suite.config import SuiteOptions

    terminal.safe_streams()
    return _guarded(lambda: _run_all(tomlconfig.parse_args(run_all_parser(), argv, SuiteOptions)))


def _run_all(args: argparse.Namespace) -> int:
    from suite.config import SuiteOptions, from_namespace

    opts = from_namespace(SuiteOptions, args)
    status = _run_and_summarize(opts, write_report=True)
    if _is_main_process():  # the machine against the shipped reference of this profile, when one ships
        from suite import score

        print("\n" + "\n".join(plain(line) for line in score.closing_lines(opts.results, opts.profile)))
    return status


def _run_and_summarize(opts, write_report: bool) -> int:
    """Run the planned runs; rank 0 prints the table (and writes the report)."""
    from suite import benchmark

    records_, status = benchmark.run_suite(opts)
    if _is_main_process():
        try:
            benchmark.print_summary(records_, opts)
            if write_report:
                _report_into(opts.results)
        except OSError as exc:  # a full disk: the records are kept, the tables or report are not (re)written
            print(plain(f"error: tables or report not written ({exc}): run `dlbench report {opts.results}` "
                        "once there is room"), file=sys.stderr)
            status = max(status, 1)
    return status


def _report_into(results: Path) -> None:
    """Write RESULTS/report.html (+ .md, tables) from every record in RESULTS and say where it is."""
    from suite import report

    files, _ = report.write_report([results], results / "report.html")
    print(f"report: {files[0]}  (also {files[1].name} and {files[0].stem}_tables/)")


def _command(argv: list[str] | None) -> str | None:
    """The subcommand `argv` names (its first word that is not an option), or None."""
    words = [w for w in (sys.argv[1:] if argv is None else argv) if not w.startswith("-")]
    return words[0] if words else None


def main(argv: list[str] | None = None) -> int:
    terminal.safe_streams()  # record text under any locale: escaped where the terminal cannot show it
    parser = argparse.ArgumentParser(prog="dlbench", description="Deep-learning application benchmark.")
    _add_version(parser, "dlbench")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="tasks, models, options, and per profile: dataset, target, "
                            "expected run time, download size")
    p_run = sub.add_parser("run", help="run one task (default model unless --model) and write the report")
    p_swp = sub.add_parser("sweep", help="a grid of variants of one model (--vary KEY=v1,v2 ...), N seeds each; "
                           "study table and plots into RESULTS/studies/ and the report")
    if _command(argv) in RUN_COMMANDS + (None,):  # the results commands leave torch unimported
        _add_run_arguments(p_list, p_run, p_swp)

    p_cmp = sub.add_parser("compare", help="comparison tables from result folders")
    p_cmp.add_argument("dirs", nargs="*", default=[Path("results")], type=Path)
    p_cmp.add_argument("--by", choices=tuple(compare.GROUPINGS) + ("family",), default="model",
                       help="model: machines as rows; hardware / software: machine labels / torch versions as columns; "
                            "family: per task, the best deep model beside the best hand-crafted one")
    p_cmp.add_argument("--format", choices=("text", "md", "csv", "html", "parquet"), default=None,
                       help="text (default on a terminal): 100 columns and a legend; md (default otherwise) and "
                            "html: the wide table, cells 'median [95%% interval] n'; csv: the numeric cells, or "
                            "with --out FILE.csv one tidy row per run; parquet: one tidy row per run into "
                            "--out FILE.parquet (pandas + pyarrow)")
    p_cmp.add_argument("--time", choices=tuple(compare.TIME_RULES), default="train",
                       help="time-to-target rule: train (train segments only), train+eval, submission (AlgoPerf: "
                            "with warm-up/compilation), wall (MLPerf: never paused from the first touch of the data) "
                            "or normalised (reference median steps x seconds per step); docs/methodology.md")
    p_cmp.add_argument("--baseline", default=None,
                       help="hardware label, model name (or with --by software a torch version; default the oldest)"
                            " to compute speedups against")
    p_cmp.add_argument("--out", type=Path, default=None,
                       help="also write the table(s) into this folder; with --format csv|parquet and a FILE.csv|"
                            ".parquet name: write one tidy row per run there instead")
    p_cmp.add_argument("--fail-below", type=_ratio, default=None, metavar="R",
                       help="with --baseline: exit 1 when a task's speed-up (or the suite's) is below R with its "
                            "interval entirely below R, printing those rows (a regression gate)")

    p_score = sub.add_parser("score", help="one figure per machine and profile: these results against a "
                             "reference machine (geometric mean of per-task speed-ups)")
    p_score.add_argument("dirs", nargs="*", default=[Path("results")], type=Path)
    p_score.add_argument("--reference", default=None, metavar="DIR|LABEL",
                         help="a results folder of one machine, or a machine label under results/reference/ "
                              "(case-insensitive prefix: 'nvidia h100'); default: results/reference/")
    p_score.add_argument("--time", choices=tuple(compare.TIME_RULES), default="train",
                         help="time-to-target rule as in compare (energy: joules to the target, where both "
                              "machines report energy)")
    p_score.add_argument("--format", choices=("text", "md", "csv"), default=None,
                         help="text (default on a terminal), md (default otherwise) or csv (per-task tables)")
    p_score.add_argument("--fail-below", type=_ratio, default=None, metavar="R",
                         help="exit 1 when a task's speed-up or a profile's score is below R with its interval "
                              "entirely below R, printing those rows (a regression gate)")

    p_rep = sub.add_parser("report", help="self-contained HTML report (+ Markdown, CSV) from result folders")
    p_rep.add_argument("dirs", nargs="*", default=[Path("results")], type=Path)
    p_rep.add_argument("--out", type=Path, default=None, help="HTML file to write (default: FIRST_DIR/report.html)")
    p_rep.add_argument("--baseline", default=None,
                       help="hardware label or model name for speedups (default: the machine with most runs)")
    p_rep.add_argument("--time", choices=tuple(compare.TIME_RULES), default="train",
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
    p_pages.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    p_pages.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale page")

    handlers = {"list": _list, "run": _run, "sweep": _sweep, "compare": _compare, "report": _report, "check": _check,
                "pages": _pages, "score": _score, "export": _export}

    def command() -> int:  # parsed inside the guard: a flag's bad value is one line and exit 2
        args = parser.parse_args(argv)
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


def _export(args: argparse.Namespace) -> int:
    _check_inputs(args.dirs, "export")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise DlbenchError(f"export: --out {args.out} is a file; give a folder")
    if args.kind == "mllog":
        from suite import mllog

        written = mllog.export(args.dirs, args.out)
    else:
        from suite import tboard

        written = tboard.export(args.dirs, args.out or args.dirs[0] / "tensorboard")
    folders = sorted({str(path.parent) for path in written})
    print(f"export {args.kind}: {len(written)} run(s) written" + (f" into {', '.join(folders)}" if folders else ""))
    return 0 if written else 1


def _add_run_arguments(p_list: argparse.ArgumentParser, p_run: argparse.ArgumentParser,
                       p_swp: argparse.ArgumentParser) -> None:
    from suite.config import SuiteOptions, add_arguments
    from suite.task import PROFILES

    p_list.add_argument("--profile", choices=PROFILES, default=None, help="show only this profile")
    p_list.add_argument("--json", action="store_true", help="print the same as one JSON document")
    p_list.add_argument("--tasks-from", default="", help="also import these task modules (comma-separated)")

    p_run.add_argument("task", help="the task to run (`dlbench list` names them)")
    p_run.add_argument("--model", default="default",
                       help="model name, 'all', or comma-separated names (default: the task's default model)")
    add_arguments(p_run, SuiteOptions, skip=("tasks", "models"))

    p_swp.add_argument("task", help="the task to run (`dlbench list` names them)")
    p_swp.add_argument("--model", default="default", help="the model to vary (default: the task's default model)")
    p_swp.add_argument("--vary", action="append", default=None, metavar="KEY=V1,V2,...",
                       help="repeatable; a --set key (recipe.lr|batch_size|optimizer|weight_decay, model.KWARG, "
                            "data.fraction, task.KEY) and its values; the grid is the product of all --vary lists")
    add_arguments(p_swp, SuiteOptions, skip=("tasks", "models"))


def _list(args: argparse.Namespace) -> int:
    from suite import registry
    from suite.task import PROFILES

    tasks = registry.load_tasks([m for m in args.tasks_from.split(",") if m])
    profiles = [args.profile] if args.profile else list(PROFILES)
    listing = [_describe(tasks[name], profiles) for name in sorted(tasks)]
    unavailable = [{"module": module, "reason": why} for module, why in registry.UNAVAILABLE.items()]
    if args.json:
        print(json.dumps({"tasks": listing, "unavailable": unavailable}, indent=2))
        return 0
    header = ("profile", "dataset", "target", "expected", "download", "source of the target")
    rows = {task["name"]: [_profile_row(profile, prof) for profile, prof in task["profiles"].items()]
            for task in listing}
    every = [header] + [row for task_rows in rows.values() for row in task_rows]
    widths = [max(len(row[i]) for row in every) for i in range(len(header) - 1)]  # one alignment for all tasks

    def line(row: tuple[str, ...]) -> str:
        return "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]

    for task in listing:
        print(f"{task['name']}  (v{task['version']}, {task['kind']})")
        models = [f"{m} ({task['families'][m]})" + (" [default]" if m == task["default_model"] else "")
                  for m in task["models"]]
        print(plain("  models: " + ", ".join(models)))
        for opt in task["options"]:
            print(plain(f"  option task.{opt['name']} ({opt['type']}, default {opt['default']}): {opt['help']}"))
        for row in [header] + rows[task["name"]]:
            print(plain(line(row)))
        for profile, prof in task["profiles"].items():
            if prof["target"] is not None:
                print(plain(f"  {profile}: {_reference_line(prof)}"))
    for item in unavailable:
        print(plain(f"{item['module']}: unavailable ({item['reason']})"))
    return 0


def _pages(args: argparse.Namespace) -> int:
    from suite.pages import write_pages

    stale = write_pages(args.out, check=args.check)
    if args.check and stale:
        print(f"stale generated pages in {args.out}: {', '.join(stale)}: run `dlbench pages`", file=sys.stderr)
        return 1
    print(("up to date: " if not stale else "wrote: ") + ", ".join(stale or ["every page"]))
    return 0


def _describe(task, profiles: list[str]) -> dict:
    """One task as plain data: what `dlbench list` prints (and `--json` dumps)."""
    from suite.models import family_of
    from suite.task import to_jsonable

    return {
        "name": task.name, "version": task.version, "kind": task.kind,
        "models": list(task.models), "default_model": task.default_model,
        "families": {m: family_of(task, m) for m in task.models},
        "options": [{"name": o.name, "type": o.type.__name__, "default": o.default, "help": o.help}
                    for o in task.options],
        "profiles": {p: {"dataset": spec.dataset, "target": to_jsonable(spec.target),
                         "budget": to_jsonable(spec.budget), "expected_s": _expected_s(spec, task.default_model),
                         "download_mb": spec.download_mb,
                         "references": {m: ref.summary() for m, ref in spec.references.items()}}
                     for p in profiles if (spec := task.profiles.get(p)) is not None},
    }


def _expected_s(spec, model: str) -> float | None:
    """The default model's train time to target from its reference (median steps x seconds per step on the
    reference machine), else the profile's declared estimate."""
    ref = spec.references.get(model)
    if ref is not None and ref.median is not None and ref.seconds_per_step:
        return ref.median * ref.seconds_per_step
    return spec.expected_s


def _reference_line(prof: dict) -> str:
    refs = prof.get("references") or {}
    if not refs:
        return "no reference convergence"
    out = []
    for ref in refs.values():
        band = ref["band_p5_p95"] or ["-", "-"]
        out.append(f"reference convergence of {ref['model']}: {ref['reached']}/{ref['n']} seeds reached, median "
                   f"{ref['median_steps']:g} {ref['step_unit']}, CV {ref['cv']}, p5-p95 {band[0]}-{band[1]}, "
                   f"{ref['seconds_per_step']:.4g} s/step on {ref['machine']} ({ref['date']}, {ref['commit']})"
                   if ref["median_steps"] is not None else
                   f"reference convergence of {ref['model']}: {ref['reached']}/{ref['n']} seeds reached")
    return "; ".join(out)


def _profile_row(profile: str, prof: dict) -> tuple[str, ...]:
    t = prof["target"]
    if t is None:  # speed: synthetic data, no target
        return (profile, prof["dataset"], "no target", _duration(prof["expected_s"]), _size(prof["download_mb"]),
                "throughput, utilisation and memory only")
    target = f"{t['metric']} {'>=' if t['higher_is_better'] else '<='} {t['value']}"
    return profile, prof["dataset"], target, _duration(prof["expected_s"]), _size(prof["download_mb"]), t["source"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unmeasured"
    return f"~{seconds:.0f} s" if seconds < 90 else f"~{seconds / 60:.0f} min"


def _size(mb: float) -> str:
    if not mb:
        return "none"
    return f"{mb:g} MB" if mb < 1000 else f"{mb / 1000:.1f} GB"


def _run(args: argparse.Namespace) -> int:
    from suite.config import SuiteOptions, from_namespace

    opts = from_namespace(SuiteOptions, args, tasks=[args.task], models=args.model)
    return _run_and_summarize(opts, write_report=True)


def _sweep(args: argparse.Namespace) -> int:
    from suite import registry, sweep
    from suite.config import SuiteOptions, from_namespace

    axes = sweep.parse_axes(args.vary)
    opts = from_namespace(SuiteOptions, args, tasks=[args.task], models=args.model)
    registry.load_tasks(opts.tasks_from)
    if opts.models == "default":
        opts = dataclasses.replace(opts, models=registry.get_task(args.task).default_model)
    records_, status = sweep.run_sweep(opts, axes)
    if not _is_main_process():
        return status
    try:
        paths = sweep.write_study(records_, axes, opts.results / "studies")
        for path in paths:
            if path.suffix == ".md":
                print("\n" + path.read_text())
        for path in paths:
            print(f"study: {path}")
        _report_into(opts.results)
    except OSError as exc:
        print(plain(f"error: study or report not written ({exc}): run `dlbench report {opts.results}` "
                    "once there is room"), file=sys.stderr)
        status = max(status, 1)
    return status


def _tidy_file(args: argparse.Namespace) -> Path | None:
    """The FILE of `--format csv|parquet --out FILE.csv|.parquet` (one row per run), else None."""
    if args.format == "parquet" and (args.out is None or args.out.suffix.lower() != ".parquet"):
        raise DlbenchError("compare --format parquet writes a file: give --out FILE.parquet")
    if args.format in ("csv", "parquet") and args.out is not None and args.out.suffix.lower() == f".{args.format}":
        if args.out.is_dir():
            raise DlbenchError(f"compare: --out {args.out} is a folder; give a .{args.format} file name")
        return args.out
    return None


def _write_tidy(frame, out: Path, fmt: str) -> None:
    """One row per run (the columns `suite.api.load_records` returns), written atomically."""
    import io

    from suite.safe_io import atomic_write_bytes, atomic_write_csv

    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        atomic_write_csv(frame, out)
    else:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise DlbenchError("compare --format parquet needs pyarrow: pip install -e '.[all]'") from None
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(out, buffer.getvalue())
    print(f"wrote {out} ({len(frame)} runs)", file=sys.stderr)


def _compare(args: argparse.Namespace) -> int:
    _check_inputs(args.dirs, "compare")
    if args.fail_below is not None and (args.baseline is None or args.by == "family"):
        raise DlbenchError("compare: --fail-below needs --baseline OLD (the machine or model the gate compares "
                           "against) and --by model, hardware or software")
    tidy = _tidy_file(args)
    if tidy is None and args.out is not None and args.out.exists() and not args.out.is_dir():
        raise DlbenchError(f"compare: --out {args.out} is a file; give a folder for the tables")
    data = compare.pool(args.dirs)
    frame, time_notes = compare.with_time_rule(data.frame, args.time)
    for line in data.warnings + time_notes:
        print(plain(f"warning: {line}"), file=sys.stderr)
    if frame.empty:
        print(f"compare: no comparable runs in {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 1
    if tidy is not None:
        _write_tidy(frame, tidy, args.format)
        return 0
    if args.by == "family":
        from suite import families

        table, summary, notes = families.tables(data.records)
        sets, sets_summary, set_notes = families.held_out_tables(data.records)
        shown = {"deep_vs_hand_crafted": summary, "in_domain_and_held_out": sets_summary} if args.format == "csv" \
            else {"deep_vs_hand_crafted": table, "in_domain_and_held_out": sets}
        print(_render(shown, notes + set_notes, args.format))
        return 0
    baseline, dimension = args.baseline, None
    if args.by == "software":
        versions = compare.torch_versions(frame)
        if len(versions) < 2:
            print(f"compare --by software: one torch version ({', '.join(versions) or 'none'}) in these records,"
                  " nothing to compare", file=sys.stderr)
            return 1
        if baseline is None or baseline in versions:
            baseline, dimension = baseline or versions[0], "torch"
    measures = compare.MEASURES if args.by != "model" else [None]
    tables = {f"by_{args.by}" + (f"_{m}" if m else ""): compare.to_table(frame, args.by, m or "time_to_target_s")
              for m in measures}
    fmt = args.format or ("text" if sys.stdout.isatty() else "md")
    numeric = {"by_" + args.by: compare.summarize(frame, _numeric_keys(args.by))} if fmt == "csv" else {}
    notes: list[str] = [f"time-to-target: {compare.TIME_RULES[args.time][1]}"]
    if baseline:
        result = compare.speedups(frame, baseline, dimension)
        tables["speedup_per_task"], tables["speedup_suite"] = compare.speedup_tables(result)
        numeric["speedup_per_task"] = result.per_task.drop(columns=["_pair", "interval", "throughput_interval"],
                                                            errors="ignore")
        numeric["speedup_suite"] = result.suite
        notes += result.caveats
    print(_render(tables if fmt != "csv" else numeric, notes, fmt))
    if args.out:
        for name, table in tables.items():
            for path in compare.write_tables(table, args.out, name):
                print(f"wrote {path}", file=sys.stderr)
    if args.fail_below is not None:
        return _gate_status(compare.gate(result, args.fail_below), args.fail_below)
    return 0


def _score(args: argparse.Namespace) -> int:
    from suite import score

    _check_inputs(args.dirs, "score")
    if not any(folder.exists() for folder in args.dirs):
        raise DlbenchError(f"score: no such folder {', '.join(map(str, args.dirs))}: give the results folder(s)")
    reference, label, ref_warnings = score.resolve_reference(args.reference)
    result = score.score(args.dirs, reference, label, args.time)
    for line in result.warnings:
        print(plain(f"warning: {line}"), file=sys.stderr)
    fmt = args.format or ("text" if sys.stdout.isatty() else "md")
    notes = [f"left out: {line}" for line in result.left_out]
    if fmt == "csv":
        print(_render(score.tables(result), [], fmt))
    else:
        print(_render(score.tables(result), notes, fmt))
    print("\n".join(score.suite_lines(result)))
    if args.fail_below is not None:
        return _gate_status(score.gate(result, args.fail_below), args.fail_below)
    return 0


def _ratio(text: str) -> float:
    """A --fail-below value: a positive number (0.9: fail when 10% slower beyond doubt)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive ratio: give e.g. 0.9 (fail when slower "
                                         "than 0.9x beyond the interval)")
    return value


def _gate_status(offending: list[str], threshold: float) -> int:
    """Print the rows that fail the gate; 1 when any does, else 0."""
    for line in offending:
        print(plain(f"below {threshold:g}: {line}"), file=sys.stderr)
    verdict = f"gate: {len(offending)} figure(s) below {threshold:g}" if offending else f"gate: passed ({threshold:g})"
    print(verdict, file=sys.stderr)
    return 1 if offending else 0


def _numeric_keys(by: str) -> list[str]:
    layout = compare.GROUPINGS[by]
    return compare.COMPARABLE + layout["rows"] + ([layout["columns"]] if layout["columns"] else [])


def _render(tables: dict, notes: list[str], fmt: str) -> str:
    """Tables (and the speedup caveats under them) as Markdown, CSV blocks or one HTML page."""
    if fmt == "csv":  # bidi controls and lone surrogates from records shown as U+FFFD (suite.safetext)
        if len(tables) == 1:  # one table: plain CSV that any tool reads as is
            return clean(next(iter(tables.values())).to_csv(index=False))
        return clean("\n".join(f"# {name}\n{table.to_csv(index=False)}" for name, table in tables.items()))
    if fmt == "text":
        blocks = [terminal.render(table, f"## {name}") for name, table in tables.items()]
        return "\n\n".join(blocks + [terminal.legend(), terminal.notes(notes)])
    if fmt == "html":
        from suite import report

        section = report.Section("Comparison", tables=tables, after=notes)
        return report.to_html([], [section])
    blocks = [f"## {name}\n\n{compare.to_markdown(table)}" for name, table in tables.items()]
    return "\n\n".join(blocks + ["\n".join(f"- {n}" for n in notes)] if notes else blocks)


def _report(args: argparse.Namespace) -> int:
    from suite import report

    _check_inputs(args.dirs, "report")
    if not any(folder.exists() for folder in args.dirs):
        raise DlbenchError(f"report: no such folder {', '.join(map(str, args.dirs))}: give the results folder(s)")
    out = args.out or args.dirs[0] / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise DlbenchError(f"report: --out {out} should end in .html (the Markdown and CSV go next to it)")
    if out.is_dir():
        raise DlbenchError(f"report: --out {out} is a folder; give an .html file name")
    files, data = report.write_report(args.dirs, out, args.baseline, args.time)
    for line in data.warnings:
        print(plain(f"warning: {line}"), file=sys.stderr)
    print(f"report: {files[0]}")
    print(f"also: {', '.join(str(f) for f in files[1:])}")
    return 0 if not data.frame.empty else 1


def _check(args: argparse.Namespace) -> int:
    _check_inputs(args.dirs, "check")
    return check.check_paths(args.dirs, as_json=args.json)


def _check_inputs(dirs: list[Path], command: str) -> None:
    for folder in dirs:
        if folder.exists() and not folder.is_dir() and folder.suffix != ".json":
            raise DlbenchError(f"{command}: {folder} is not a results folder or record file")


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
        except OSError as exc:  # a folder that vanished or filled up while reading / writing tables
            where = f" ({exc.filename})" if exc.filename else ""
            print(plain(f"error: {exc.strerror or exc}{where}: files already there are left as they were "
                        "(writes are atomic)"), file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            print(f"{how}: the records written so far are kept", file=sys.stderr)
            return 143 if isinstance(exc, Terminated) else 130


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


if __name__ == "__main__":
    sys.exit(main())
