"""Where the planned runs execute: here, one after another, or as Ray tasks over a cluster.

Both executors take the planned runs and yield `(label, record)` as each run
ends; `run_suite` prints the summary line after the label.

`RayExecutor` makes each run one Ray task. Resources keep timings honest: a
CUDA run asks for one whole GPU; a CPU run asks for every CPU of a node, so
no two timed runs share cores. Ray retries a task once when its worker
process dies or its node is lost (`max_retries=1`); a second loss becomes a
`failed` record with a one-line reason. The worker returns the record (its
own hardware fingerprint, data folder and node) and the driver writes it,
so the nodes need no shared filesystem. The harness, the built-in tasks and
the package of every task to run travel with the job (`shipped_paths`), so a
plug-in task (an entry point, `--tasks-from`) reaches nodes that never
installed it. `--resume` has the local executor's key (`records.pick_finished`:
config hash and machine): the driver sends each run's finished records (any
machine) with it, and the worker, which alone knows the machine the run
lands on, returns the one made on its machine instead of running; the
driver then yields its own copy and writes nothing. Ctrl-C cancels (kills) every
unfinished task, writes an `interrupted` record for each run that had
started, and shuts down a Ray instance this process started.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from suite.measuring import fingerprint
from suite.results import records
from suite.errors import DlbenchError, MissingExtraError
from suite.running.run_record import save_record
from suite.running.runner import lost_record, run_one
from suite.taskapi.spec import to_jsonable

if TYPE_CHECKING:
    from suite.running.benchmark import PlannedRun
    from suite.running.config import SuiteOptions

Log = Callable[[str], None]
RAY_HINT = "--executor ray needs Ray: pip install 'dlbench[ray]'"
GIT_COMMIT_ENV = "DLBENCH_GIT_COMMIT"
POLL_S = 0.1
END_WAIT_S = 5.0  # the longest the driver waits for a returned run's last progress lines


def make(opts: SuiteOptions) -> LocalExecutor | RayExecutor:
    return RayExecutor(opts) if opts.executor == "ray" else LocalExecutor(opts)


class LocalExecutor:
    """One run after another in this process: the default."""

    def __init__(self, opts: SuiteOptions):
        self.opts = opts

    def run(self, runs: list[PlannedRun], log: Log) -> Iterator[tuple[str, dict[str, Any]]]:
        for i, run in enumerate(runs, 1):
            log(f"[{i}/{len(runs)}] {run.task.name} / {run.model}  seed {run.seed}  ({self.opts.profile})")
            yield "  ", run_one(run.task, run.model, run.seed, self.opts, log=log)


def import_ray():
    try:
        import ray
    except ImportError:
        raise MissingExtraError(RAY_HINT) from None
    return ray


def label(run: PlannedRun, node: str | None) -> str:
    return f"[{run.task.name}/{run.model}/{run.seed} @ {node or '?'}] "


class RayExecutor:
    """Each run one Ray task; the driver (this process) writes every record."""

    def __init__(self, opts: SuiteOptions):
        self.opts = opts
        self.ray = import_ray()

    def run(self, runs: list[PlannedRun], log: Log) -> Iterator[tuple[str, dict[str, Any]]]:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            self.connect(shipped_paths({run.task for run in runs}, log))
        try:
            yield from self._run(runs, log)
        finally:
            if started_here:
                ray.shutdown()  # a local instance stops with its processes; a cluster just loses this driver

    def connect(self, modules: list[str]) -> None:
        """Join the cluster at --ray-address, or start Ray on this machine (every GPU and CPU), with
        `modules` (folders and files) travelling with the job (`shipped_paths`), so the nodes run this
        driver's code."""
        import logging

        env = {GIT_COMMIT_ENV: fingerprint.git_commit() or ""}  # task options travel in the pickled options
        runtime_env = {"py_modules": modules, "env_vars": env}
        common = dict(runtime_env=runtime_env, log_to_driver=False, logging_level=logging.WARNING)
        address = self.opts.ray_address
        if address:
            try:
                self.ray.init(address=address, **common)
            except ConnectionError as exc:
                raise DlbenchError(f"--ray-address {address}: no Ray cluster there ({str(exc).splitlines()[0]}); "
                                   "start one with `ray start --head` or leave the flag out") from None
        else:
            import torch

            self.ray.init(num_cpus=fingerprint.cpu_cores(), num_gpus=torch.cuda.device_count(),
                          include_dashboard=False, **common)

    def _placement(self, log: Log) -> tuple[dict[str, Any], str]:
        """Ray resources of one run, and the device the worker is to use."""
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
        if gpus and (self.opts.device in ("auto", "cuda")):
            return {"num_gpus": 1, "num_cpus": 1}, "cuda"
        cpus = max((int(n["Resources"].get("CPU", 0)) for n in nodes), default=1)
        small = [n["NodeName"] for n in nodes if 0 < n["Resources"].get("CPU", 0) < cpus]
        if small:
            log(f"note: CPU runs take {cpus} CPUs (a whole node); nodes with fewer stay idle: {', '.join(small)}")
        # --device cuda on a cluster without GPUs reaches the worker as is and ends `skipped` there.
        return {"num_cpus": cpus, "num_gpus": 0}, "cpu" if self.opts.device == "auto" else self.opts.device

    def _run(self, runs: list[PlannedRun], log: Log) -> Iterator[tuple[str, dict[str, Any]]]:
        ray = self.ray
        resources, device = self._placement(log)
        worker_opts = _worker_options(self.opts, device)
        remote = ray.remote(max_retries=1, retry_exceptions=False)(run_on_worker).options(**resources)
        progress = ray.remote(num_cpus=0)(Progress).remote()
        pending: dict[Any, tuple[int, PlannedRun]] = {}
        resumable = self._resumable(runs)
        for i, run in enumerate(runs):
            pending[remote.remote(run.task, run.model, run.seed, worker_opts, i, progress, resumable.get(i))] = (i, run)
        log(f"ray: {len(pending)} runs submitted, each asking for {resources}"
            + (f"; {len(resumable)} with records that --resume matches on the machine that takes each"
               if resumable else ""))
        nodes: dict[int, list[str]] = {}  # run index -> node of each attempt
        ended: set[int] = set()  # runs whose worker's last progress line has arrived
        try:
            while pending:
                ray.wait(list(pending), num_returns=1, timeout=POLL_S)  # until a run ends, or the poll time
                items = self._drain(progress)
                done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)  # after the drain:
                finished = {pending[ref][0] for ref in done}  # a run that began after it ended is not first
                items += self._rest_of_lines({pending[ref][0] for ref in done if self._returned(ref)}, ended,
                                             items, progress)
                first = {i: k for k, (i, _, _) in reversed(list(enumerate(items)))}
                # each finished run's last lines and its summary, in the order they began; then the rest
                for ref in sorted(done, key=lambda r: first.get(pending[r][0], -1)):
                    i, run = pending.pop(ref)
                    self._show([x for x in items if x[0] == i], nodes, runs, log)
                    record = self._result(ref, run, device, nodes.get(i, []))
                    if "resumed_from" in record:  # its machine had done it: the record as it is in RESULTS
                        done = next(r for r in resumable[i] if r["run_id"] == record["resumed_from"])
                        yield label(run, (done.get("node") or {}).get("name")), done
                        continue
                    save_record(record, self.opts)  # a failed write: one line, the other runs go on
                    yield label(run, (record.get("node") or {}).get("name")), record
                self._show([x for x in items if x[0] not in finished], nodes, runs, log)
        except BaseException:  # Ctrl-C, or the caller stopped early (GeneratorExit): end what is left
            for ref in pending:
                ray.cancel(ref, force=True)
            try:  # runs whose start the driver has not shown yet
                starts = [(i, node) for i, kind, node in ray.get(progress.drain.remote(), timeout=5) if kind == "start"]
            except Exception:  # noqa: BLE001 - Ray itself may be going down: record what is known
                starts = []
            for i, node in starts:
                nodes.setdefault(i, []).append(node)
            for i, run in pending.values():
                if nodes.get(i):
                    record = lost_record(run.task, run.model, run.seed, self.opts, device, "interrupted",
                                         "interrupted by the user (Ctrl-C on the Ray driver)")
                    record["node"] = {"name": nodes[i][-1]}
                    save_record(record, self.opts)
            raise

    def _drain(self, progress) -> list[tuple[int, str, str]]:
        """Progress lines sent so far; none when the progress actor is gone (the runs go on)."""
        try:
            return self.ray.get(progress.drain.remote())
        except self.ray.exceptions.RayActorError:
            return []

    def _rest_of_lines(self, returned: set[int], ended: set[int], items: list[tuple[int, str, str]],
                       progress) -> list[tuple[int, str, str]]:
        """Progress lines drained until each run in `returned` has sent its "end" item, or END_WAIT_S.

        A worker sends its lines without waiting (waiting would lend its CPUs to another task), so they
        may reach the actor after its result reaches the driver; an actor runs one caller's calls in
        order, so a run's "end" item comes after all its lines, and its summary is shown after them."""
        ended |= {i for i, kind, _ in items if kind == "end"}
        more: list[tuple[int, str, str]] = []
        deadline = time.monotonic() + END_WAIT_S
        while returned - ended and time.monotonic() < deadline:
            time.sleep(0.01)
            drained = self._drain(progress)
            ended |= {i for i, kind, _ in drained if kind == "end"}
            more += drained
        return more

    def _returned(self, ref) -> bool:
        """Whether a finished Ray task returned (a lost worker sends no "end" item: nothing to wait for)."""
        try:
            self.ray.get(ref, timeout=0)
            return True
        except self.ray.exceptions.RayError:
            return False

    def _resumable(self, runs: list[PlannedRun]) -> dict[int, list[dict[str, Any]]]:
        """Under --resume, per run index, the finished records in RESULTS of its task, model, profile and
        seed, from any machine: its worker matches them on its own config hash and machine."""
        folder = records.runs_dir(self.opts.results)
        if not self.opts.resume or not folder.is_dir():
            return {}
        found: dict[tuple, list[dict[str, Any]]] = {}
        for record in records.read_records([folder], warn=lambda _m: None):
            if record.get("status") in records.FINISHED:
                key = (record.get("task"), record.get("model"), record.get("profile"), record.get("seed"))
                found.setdefault(key, []).append(record)
        keys = {i: (run.task.name, run.model, self.opts.profile, run.seed) for i, run in enumerate(runs)}
        return {i: found[key] for i, key in keys.items() if key in found}

    def _show(self, items: list[tuple[int, str, str]], nodes: dict[int, list[str]], runs: list[PlannedRun],
              log: Log) -> None:
        for i, kind, text in items:
            if kind == "start":
                nodes.setdefault(i, []).append(text)
                if len(nodes[i]) > 1:
                    log(f"{label(runs[i], text)}retry: the worker on {nodes[i][-2]} was lost; runs again")
                else:
                    log(f"{label(runs[i], text)}started ({self.opts.profile})")
            elif kind == "log":
                log(text)

    def _result(self, ref, run: PlannedRun, device: str, tried: list[str]) -> dict[str, Any]:
        """The worker's record, or a `failed` one when Ray lost the worker on both attempts."""
        ray = self.ray
        try:
            return ray.get(ref)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.OutOfMemoryError, ray.exceptions.ObjectLostError) as exc:
            # Ray raises only once its one retry (max_retries=1) is lost too. The nodes are those whose
            # start message arrived: a worker killed at once may take its message with it.
            where = f" (seen on {', '.join(tried)})" if tried else ""
            reason = f"worker lost, and again on its one retry{where}: {type(exc).__name__}: {_first_line(exc)}"
        except ray.exceptions.RayError as exc:
            reason = f"Ray could not run it: {type(exc).__name__}: {_first_line(exc)}"
        record = lost_record(run.task, run.model, run.seed, self.opts, device, "failed", reason)
        record["node"] = {"name": tried[-1] if tried else None}
        return record


class Progress:
    """A Ray actor holding progress lines until the driver drains them (zero CPUs)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, str]] = []

    def put(self, item: tuple[int, str, str]) -> None:
        self.items.append(item)

    def drain(self) -> list[tuple[int, str, str]]:
        items, self.items = self.items, []
        return items


def shipped_paths(task_classes: Iterable[type], log: Log) -> list[str]:
    """What Ray ships to its workers (`py_modules`): the folders of `suite` and `tasks` (the built-ins
    and their shared domain code) and of the top-level package, or the file of the single-file
    module, of each task class in `task_classes`.

    A worker unpickles a task class by importing its module by name, so a task from an installed
    plug-in or a `--tasks-from` module must travel too: nodes need not have installed it (a class
    defined in the script being run travels pickled by value). A package Ray cannot ship (a
    namespace package spread over several folders) gets one note line and must be importable on
    every node.
    """
    import suite
    import tasks

    shipped = {"suite": _location(suite), "tasks": _location(tasks)}
    for cls in sorted(task_classes, key=lambda c: c.__module__):
        top = cls.__module__.split(".")[0]
        if top in shipped or top == "__main__":  # a class defined in the script travels pickled by value
            continue
        where = _location(sys.modules[top])
        if isinstance(where, str):
            shipped[top] = where
            continue
        why = f"namespace package {top!r} spans {len(where)} folders" if where else f"{top!r} has no file"
        log(f"note: task {cls.name!r} ({cls.__module__}) is not shipped to the Ray nodes ({why}): "
            "it must be importable on every node")
    return list(shipped.values())


def _location(module: ModuleType) -> str | list[str]:
    """The one folder of a package, or the file of a single-file module, as Ray ships it; else a list:
    the folders of a namespace package that has several, empty for a module without a file."""
    folders = getattr(module, "__path__", None)
    if folders is None:
        return module.__file__ or []
    unique = sorted({os.path.realpath(f) for f in folders})  # a folder twice on sys.path is listed twice
    return unique[0] if len(unique) == 1 else unique


def run_on_worker(task_cls, model: str, seed: int, opts, index: int, progress,
                  finished: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Ray task: run one planned run on this node and return its record (not written here); or,
    when one of `finished` is this run made on this machine (`run_one`'s --resume), {"resumed_from": its
    run_id}."""
    import ray

    node = node_info(ray)
    # Sent without waiting: a task blocked in ray.get lends its CPUs to another task meanwhile,
    # and a timed run must never share its cores.
    progress.put.remote((index, "start", node["name"]))
    prefix = f"[{task_cls.name}/{model}/{seed} @ {node['name']}]"

    def log(line: str) -> None:
        progress.put.remote((index, "log", f"{prefix} {line}"))

    try:
        record = run_one(task_cls, model, seed, opts, log=log, write=False, finished=finished)
    finally:
        progress.put.remote((index, "end", ""))  # after every line of this run: see `_rest_of_lines`
    if finished and record.get("run_id") in {done.get("run_id") for done in finished}:
        return {"resumed_from": record["run_id"]}
    record["node"] = node
    return to_jsonable(record)


def node_info(ray) -> dict[str, str]:
    """This worker's node: its Ray name (`ray start --node-name`; else the host name), id and address."""
    node_id = ray.get_runtime_context().get_node_id()
    for node in ray.nodes():
        if node["NodeID"] == node_id:
            named = node["NodeName"] != node["NodeManagerAddress"]
            return {"name": node["NodeName"] if named else platform.node(), "id": node_id,
                    "address": node["NodeManagerAddress"], "hostname": platform.node()}
    return {"name": platform.node(), "id": node_id, "address": None, "hostname": platform.node()}


def _worker_options(opts: SuiteOptions, device: str) -> SuiteOptions:
    """The options a worker runs with: the placed device; --resume by the records the driver sends, not
    by a results folder the worker does not have."""
    import dataclasses

    return dataclasses.replace(opts, device=device, resume=False, executor="local", ray_address=None)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:200] if lines else ""

