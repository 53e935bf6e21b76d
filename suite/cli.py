"""Command line: `python run_all.py` and `dlbench list | run | compare`.

Exit status: 0 when every run ended (target reached or not, or skipped with
a reason); 1 when a run crashed; 2 on bad input (one line on stderr).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from suite import benchmark, compare, records, registry
from suite.config import RunOptions, SuiteOptions, add_arguments, from_namespace
from suite.errors import DlbenchError


def run_all_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_all.py", description="Run the whole dlbench benchmark.")
    add_arguments(parser, SuiteOptions)
    return parser


def main_run_all(argv: list[str] | None = None) -> int:
    args = run_all_parser().parse_args(argv)
    return _guarded(lambda: _run_all(args))


def _run_all(args: argparse.Namespace) -> int:
    opts = from_namespace(SuiteOptions, args)
    records_, status = benchmark.run_suite(opts)
    if _is_main_process():
        benchmark.print_summary(records_, opts)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlbench", description="Deep-learning application benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="tasks, models and targets per profile")
    p_list.add_argument("--profile", choices=("smoke", "quick", "full"), default=None)
    p_list.add_argument("--tasks-from", default="", help="also import these task modules (comma-separated)")

    p_run = sub.add_parser("run", help="run one task (default model unless --model)")
    p_run.add_argument("task")
    p_run.add_argument("--model", default="default", help="model name, 'all', or comma-separated names")
    add_arguments(p_run, SuiteOptions, skip=("tasks", "models"))

    p_cmp = sub.add_parser("compare", help="comparison tables from result folders")
    p_cmp.add_argument("dirs", nargs="*", default=["results"], type=Path)
    p_cmp.add_argument("--by", choices=tuple(compare.GROUPINGS), default="model")
    p_cmp.add_argument("--format", choices=("md", "csv"), default="md")
    p_cmp.add_argument("--out", type=Path, default=None, help="also write the table(s) into this folder")

    args = parser.parse_args(argv)
    handlers = {"list": _list, "run": _run, "compare": _compare}
    return _guarded(lambda: handlers[args.command](args))


def _list(args: argparse.Namespace) -> int:
    tasks = registry.load_tasks([m for m in args.tasks_from.split(",") if m])
    profiles = [args.profile] if args.profile else ["smoke", "quick", "full"]
    for name in sorted(tasks):
        task = tasks[name]
        print(f"{name} (v{task.version}, {task.kind})")
        for model in task.models:
            print(f"  model {model}{'  [default]' if model == task.default_model else ''}")
        for profile in profiles:
            if profile in task.profiles:
                prof = task.profiles[profile]
                t = prof.target
                sign = ">=" if t.higher_is_better else "<="
                print(f"  {profile:<5}  {prof.dataset:<16} target {t.metric} {sign} {t.value}  ({t.source})")
    for module, why in registry.UNAVAILABLE.items():
        print(f"{module}: unavailable ({why})")
    return 0


def _run(args: argparse.Namespace) -> int:
    opts = from_namespace(SuiteOptions, args, tasks=[args.task], models=args.model)
    records_, status = benchmark.run_suite(opts)
    if _is_main_process():
        benchmark.print_summary(records_, opts)
    return status


def _compare(args: argparse.Namespace) -> int:
    for folder in args.dirs:
        if folder.exists() and not folder.is_dir() and folder.suffix != ".json":
            raise DlbenchError(f"compare: {folder} is not a results folder or record file")
    frame = compare.to_frame(records.read_records(args.dirs))
    table = compare.to_table(frame, by=args.by)
    if table.empty:
        print(f"compare: no comparable runs in {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 1
    print(table.to_csv(index=False) if args.format == "csv" else compare.to_markdown(table))
    if args.out:
        for path in compare.write_tables(table, args.out, f"by_{args.by}"):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _guarded(action) -> int:
    try:
        return action()
    except DlbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the records written so far are kept", file=sys.stderr)
        return 130


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


if __name__ == "__main__":
    sys.exit(main())
