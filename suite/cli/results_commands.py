"""The commands that read results: compare, score, report, check and export. None imports torch."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from suite.errors import DlbenchError
from suite.reporting import terminal
from suite.results import check
from suite.results.safe_io import plain
from suite.results.safetext import clean

# The table modules (compare, speedup, markdown) import pandas: loaded by the commands that draw tables,
# so `check`, which draws none, starts without it.

def export_command(args: argparse.Namespace) -> int:
    _check_inputs(args.dirs, "export")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise DlbenchError(f"export: --out {args.out} is a file; give a folder")
    if args.kind == "mllog":
        from suite.reporting import mllog

        written = mllog.export(args.dirs, args.out)
    else:
        from suite.reporting import tboard

        written = tboard.export(args.dirs, args.out or args.dirs[0] / "tensorboard")
    folders = sorted({str(path.parent) for path in written})
    print(f"export {args.kind}: {len(written)} run(s) written" + (f" into {', '.join(folders)}" if folders else ""))
    return 0 if written else 1


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

    from suite.results.safe_io import atomic_write_bytes, atomic_write_csv

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


def compare_command(args: argparse.Namespace) -> int:
    from suite.reporting import markdown
    from suite.results import compare, speedup

    _check_inputs(args.dirs, "compare")
    if not any(folder.exists() for folder in args.dirs):
        raise DlbenchError(f"compare: no such folder {', '.join(map(str, args.dirs))}: give the results folder(s)")
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
        from suite.results import families

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
    measures = compare.MEASURES if args.by != "model" else ["time_to_target_s"]
    tables = {f"by_{args.by}" + (f"_{m}" if args.by != "model" else ""): table
              for m, table in compare.to_tables(frame, args.by, measures).items()}
    fmt = args.format or ("text" if sys.stdout.isatty() else "md")
    numeric = {"by_" + args.by: compare.summarize(frame, _numeric_keys(args.by))} if fmt == "csv" else {}
    notes: list[str] = [f"time-to-target: {compare.TIME_RULES[args.time][1]}"]
    if baseline:
        result = speedup.speedups(frame, baseline, dimension, normalise=args.time == "train")
        tables["speedup_per_task"], tables["speedup_suite"] = speedup.speedup_tables(result)
        numeric["speedup_per_task"] = result.per_task.drop(columns=["_pair", "interval", "throughput_interval"],
                                                            errors="ignore")
        numeric["speedup_suite"] = result.suite
        notes += result.caveats
    print(_render(tables if fmt != "csv" else numeric, notes, fmt))
    if args.out:
        for name, table in tables.items():
            for path in markdown.write_tables(table, args.out, name):
                print(f"wrote {path}", file=sys.stderr)
    if args.fail_below is not None:
        return _gate_status(speedup.gate(result, args.fail_below), args.fail_below)
    return 0


def score_command(args: argparse.Namespace) -> int:
    from suite.results import score

    _check_inputs(args.dirs, "score")
    if not any(folder.exists() for folder in args.dirs):
        raise DlbenchError(f"score: no such folder {', '.join(map(str, args.dirs))}: give the results folder(s)")
    references = [score.resolve_reference(args.reference)] if args.reference is not None \
        else score.shipped_references()
    if args.fail_below is not None and len(references) > 1:
        raise DlbenchError(f"score: --fail-below needs one reference machine; give --reference LABEL (one of "
                           f"{'; '.join(label for _, label, _ in references)})")
    fmt = args.format or ("text" if sys.stdout.isatty() else "md")
    scored, why_not = [], []
    for reference, label, ref_warnings in references:
        for line in ref_warnings:
            print(plain(f"warning: reference: {line}"), file=sys.stderr)
        try:
            result = score.score(args.dirs, reference, label, args.time)
        except DlbenchError as exc:
            if len(references) == 1:
                raise
            why_not.append(f"score against {label}: none ({str(exc).removeprefix('score: ')})")
            continue
        scored.append(result)
        for line in result.warnings:
            print(plain(f"warning: {line}"), file=sys.stderr)
        notes = [] if fmt == "csv" else [f"left out: {line}" for line in result.left_out]
        print(_render(score.tables(result), notes, fmt))
        print("\n".join(score.suite_lines(result)))
    for line in why_not:
        print(plain(line), file=sys.stderr)
    if not scored:
        raise DlbenchError("score: no run has a comparable run on any reference machine under "
                           f"{score.DEFAULT_REFERENCE}: run the quick or speed profile, or give --reference")
    if args.fail_below is not None:
        return _gate_status(score.gate(scored[0], args.fail_below), args.fail_below)
    return 0


def ratio(text: str) -> float:
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
    from suite.results import compare

    layout = compare.GROUPINGS[by]
    return compare.COMPARABLE + layout["rows"] + ([layout["columns"]] if layout["columns"] else [])


def _render(tables: dict, notes: list[str], fmt: str) -> str:
    """Tables (and the speedup caveats under them) as Markdown, CSV blocks or one HTML page."""
    if fmt == "csv":  # bidi controls and lone surrogates from records shown as U+FFFD (suite.results.safetext)
        if len(tables) == 1:  # one table: plain CSV that any tool reads as is
            return clean(next(iter(tables.values())).to_csv(index=False))
        return clean("\n".join(f"# {name}\n{table.to_csv(index=False)}" for name, table in tables.items()))
    if fmt == "text":
        blocks = [terminal.render(table, f"## {name}") for name, table in tables.items()]
        return "\n\n".join(blocks + [terminal.legend(), terminal.notes(notes)])
    if fmt == "html":
        from suite.reporting import report

        section = report.Section("Comparison", tables=tables, after=notes)
        return report.to_html([], [section])
    from suite.reporting import markdown

    blocks = [f"## {name}\n\n{markdown.to_markdown(table)}" for name, table in tables.items()]
    return "\n\n".join(blocks + ["\n".join(f"- {n}" for n in notes)] if notes else blocks)


def report_command(args: argparse.Namespace) -> int:
    from suite.reporting import report

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


def check_command(args: argparse.Namespace) -> int:
    _check_inputs(args.dirs, "check")
    return check.check_paths(args.dirs, as_json=args.json)


def _check_inputs(dirs: list[Path], command: str) -> None:
    for folder in dirs:
        if folder.exists() and not folder.is_dir() and folder.suffix != ".json":
            raise DlbenchError(f"{command}: {folder} is not a results folder or record file")
