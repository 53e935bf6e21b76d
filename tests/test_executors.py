"""`--executor ray`: the same records as the local executor, a real two-node cluster on
loopback, and a worker killed mid-run. Every Ray process a test starts is stopped by
the test (a local instance by `ray.shutdown`, `ray start --block` by its process group).
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import psutil
import pytest

from suite.cli import main_run_all

ROOT = Path(__file__).resolve().parent.parent
TOYS = ["--tasks-from", "tests.toy_tasks,tests.toy_ray_tasks"]


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


def _keys(records: list[dict]) -> list[tuple]:
    return sorted((r["task"], r["model"], r["seed"], r["status"], r["profile"]) for r in records)


def test_missing_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main_run_all(["--profile", "smoke", *TOYS, "--tasks", "toy_linear", "--device", "cpu",
                         "--results", str(tmp_path), "--executor", "ray"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "pip install 'dlbench[ray]'" in err
    assert not (tmp_path / "runs").exists()


def test_unknown_executor_is_refused_by_its_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main_run_all(["--profile", "smoke", "--results", str(tmp_path), "--executor", "fleet"])
    assert stop.value.code == 2
    assert "argument --executor: invalid choice: 'fleet'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv, field", [
    (["--ray-address", "auto"], "ray_address"),
    (["--executor", "ray", "--device", "cuda:1"], "device"),
])
def test_bad_executor_flags_are_one_line(argv, field, tmp_path, capsys):
    assert main_run_all(["--profile", "smoke", "--results", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {field}=") and "\n" not in err


# -- --resume: one key (config hash and machine) for both executors -----------------------------------------------
def test_resume_takes_a_record_for_done_only_on_the_machine_that_made_it(tmp_path):
    from suite.results import records
    from tests.helpers import make_record, write_all

    digest = records.config_hash(make_record()["config"])
    here = make_record(hardware="A", config_hash=digest, run_id="here")
    there = make_record(hardware="B", config_hash=digest, run_id="there")  # same config, another machine
    folder = write_all(tmp_path, [there])
    assert records.pick_finished([there, here], digest, here["hardware"])["run_id"] == "here"
    assert records.pick_finished([there], digest, here["hardware"]) is None
    assert records.pick_finished([here], "another-config", here["hardware"]) is None
    assert records.find_finished(folder, digest, here["hardware"]) is None  # the local executor's lookup
    assert records.find_finished(folder, digest, there["hardware"])["run_id"] == "there"


class _Ref:
    def __init__(self, value):
        self.value = value


class _Remote:
    """A Ray remote function (its call runs at once, here) or actor class (an instance whose methods answer
    `.remote(...)` with a ref)."""

    def __init__(self, target):
        self.target = target

    def options(self, **_resources):
        return self

    def remote(self, *args):
        if isinstance(self.target, type):
            return _Remote(self.target(*args))
        return _Ref(self.target(*args))

    def __getattr__(self, name):
        return _Remote(getattr(self.target, name))


class FakeRay(types.ModuleType):
    """Just enough of Ray for `RayExecutor` to run its tasks inline, in this process, on one CPU node named
    'node-1' (this machine): the driver's and the worker's code paths, without a cluster."""

    class exceptions:
        class RayError(Exception):
            pass

        WorkerCrashedError = NodeDiedError = OutOfMemoryError = ObjectLostError = RayActorError = RayError

    def __init__(self):
        super().__init__("ray")

    def is_initialized(self):
        return True  # as if joined already: nothing to start or shut down

    def nodes(self):
        return [{"Alive": True, "NodeID": "n1", "NodeName": "node-1", "NodeManagerAddress": "127.0.0.1",
                 "Resources": {"CPU": 2.0}}]

    def get_runtime_context(self):
        return types.SimpleNamespace(get_node_id=lambda: "n1")

    def remote(self, **_options):
        return _Remote

    def wait(self, refs, num_returns=1, timeout=None):
        return list(refs)[:num_returns], list(refs)[num_returns:]

    def get(self, ref, timeout=None):
        return ref.value

    def cancel(self, ref, force=False):
        pass


def test_ray_resume_runs_again_a_record_of_another_machine_and_keeps_one_of_this_machine(tmp_path, monkeypatch):
    import dataclasses

    from suite.running.benchmark import run_suite
    from suite.running.config import SuiteOptions
    from suite.running.runner import run_one
    from tests.toy_tasks import ToyLinear

    monkeypatch.setitem(sys.modules, "ray", FakeRay())
    results = tmp_path / "results"
    opts = SuiteOptions(profile="smoke", device="cpu", results=results, max_steps=5, tasks_from=["tests.toy_tasks"],
                        tasks=["toy_linear"], executor="ray", resume=True)
    # A record of this very run (same config hash) made on another machine, in the results folder.
    elsewhere = run_one(ToyLinear, "linear", 0, dataclasses.replace(opts, executor="local"), log=lambda _m: None)
    path = Path(elsewhere["_path"])
    record = json.loads(path.read_text())
    record["hardware"].update(label="Other CPU x64", cpu="Other CPU", cores=64, hostname="other-host")
    path.write_text(json.dumps(record))

    lines: list[str] = []
    (first,), code = run_suite(opts, log=lines.append)
    assert code == 0 and "resume: " not in "\n".join(lines)
    assert first["run_id"] != record["run_id"] and first["hardware"]["hostname"] == platform.node()
    assert first["config_hash"] == record["config_hash"] and first["node"]["name"] == "node-1"
    assert len(_records(results)) == 2  # the other machine's and this machine's

    lines.clear()
    (again,), code = run_suite(opts, log=lines.append)  # now this machine has done it: nothing runs
    assert code == 0 and again["run_id"] == first["run_id"] and again["_path"] == first["_path"]
    assert "; 1 with records that --resume matches" in "\n".join(lines)
    assert sum("resume: " in line and "already has this run (ok), skipped" in line for line in lines) == 1, lines
    assert len(_records(results)) == 2


class _LateProgress:
    """The progress actor as Ray may deliver to it: each worker's `put` lands one `drain` late, after the
    run's result has reached the driver."""

    def __init__(self, actor):
        self.actor, self.late = actor, []
        self.put = types.SimpleNamespace(remote=lambda item: _Ref(self.late.append(item)))
        self.drain = types.SimpleNamespace(remote=lambda: _Ref(self._drain()))

    def _drain(self):
        items = self.actor.drain()
        for item in self.late:
            self.actor.put(item)
        self.late = []
        return items


class _LateRemote(_Remote):
    def remote(self, *args):
        return _LateProgress(self.target(*args)) if isinstance(self.target, type) else super().remote(*args)


def test_ray_shows_each_runs_lines_before_its_summary_when_they_arrive_after_its_result(tmp_path, monkeypatch):
    from suite.running.benchmark import run_suite
    from suite.running.config import SuiteOptions

    ray = FakeRay()
    ray.remote = lambda **_options: _LateRemote
    monkeypatch.setitem(sys.modules, "ray", ray)
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_steps=10, seeds=2,
                        tasks_from=["tests.toy_tasks"], tasks=["toy_linear"], executor="ray")
    lines: list[str] = []
    records, code = run_suite(opts, log=lines.append)
    assert code == 0 and len(records) == 2
    for seed in (0, 1):
        mine = [k for k, line in enumerate(lines) if line.startswith(f"[toy_linear/linear/{seed} @ node-1]")]
        summary = [k for k in mine if "] -> " in lines[k]]
        assert len(summary) == 1 and summary[0] == mine[-1], lines  # the summary comes after all its lines
        assert "started (smoke)" in lines[mine[0]], lines
    assert _most_at_once("\n".join(lines)) == {"node-1": 1}, lines


# -- with Ray -----------------------------------------------------------------

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="the ray extra is not installed: pip install 'dlbench[ray]'")


@pytest.fixture
def worker_path(monkeypatch):
    """Ray workers started from here import `tests.*` (the toy tasks) from the checkout."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.slow
@needs_ray
def test_local_ray_gives_the_local_executors_records(tmp_path, worker_path):
    from suite.running.benchmark import run_suite
    from suite.running.config import SuiteOptions

    def suite(results, **kw):
        lines = []
        opts = SuiteOptions(profile="smoke", tasks_from=["tests.toy_tasks"], device="cpu", seeds=2, results=results,
                            tasks=["image_classification", "toy_linear", "toy_crash"], **kw)
        records, code = run_suite(opts, log=lines.append)
        return records, code, "\n".join(lines)

    local, remote = tmp_path / "local", tmp_path / "ray"
    assert suite(local)[1] == 1  # toy_crash fails in both
    records, code, out = suite(remote, executor="ray")
    assert code == 1 and len(records) == 6
    assert _keys(_records(local)) == _keys(_records(remote)) == _keys(records)
    for record in _records(remote):
        assert record["node"]["name"] and record["hardware"]["hostname"] and record["data_dir"]
        assert record["software"]["git_commit"] == _records(local)[0]["software"]["git_commit"]
    assert "[toy_linear/linear/1 @ " in out and "[image_classification/cnn/0 @ " in out
    assert _most_at_once(out) == {records[0]["node"]["name"]: 1}, out  # a CPU run takes the whole node
    assert not sys.modules["ray"].is_initialized()


def _most_at_once(out: str) -> dict[str, int]:
    """Per node, the most runs in progress at once, from the driver's progress lines."""
    running: dict[str, set[str]] = {}
    most: dict[str, int] = {}
    for line in out.splitlines():
        match = re.match(r"^\[(\S+) @ (\S+)\] (started|retry|-> )", line)
        if not match:
            continue
        run, node, what = match.groups()
        for other in running.values():
            other.discard(run)
        if what != "-> ":
            running.setdefault(node, set()).add(run)
            most[node] = max(most.get(node, 0), len(running[node]))
    return most


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_start(*args: str, env: dict) -> subprocess.Popen:
    """`ray start --block` in its own process group: SIGTERM to the group stops all it started."""
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-gpus", "0", "--disable-usage-stats", "--dashboard-agent-listen-port", str(_free_port()), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _leftovers(marker: str, wait_s: float = 15) -> list[str]:
    """Processes whose command line names `marker`, once those already dying are gone."""
    deadline = time.monotonic() + wait_s
    while (found := _processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def _processes(marker: str) -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if any(marker in part for part in (p.info["cmdline"] or [])):
            found.append(f"{p.info['pid']} {' '.join(p.info['cmdline'])[:120]}")
    return found


@pytest.fixture(scope="module")
def two_nodes():
    """A real two-node Ray cluster on loopback: head and second node, one CPU each."""
    temp = tempfile.mkdtemp(prefix="r18-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    # Loopback only, so no token: with token authentication (Ray's default) a second
    # node and the driver must be handed the head's token, as Ray's docs describe.
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0"}
    procs = [_ray_start("--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1", "--node-name", "node-a",
                        "--temp-dir", temp, "--include-dashboard", "false", env=env)]
    try:
        address = f"127.0.0.1:{port}"
        _wait_nodes(address, 1, procs, env)
        # Its own loopback address: two raylets on one address confuse which one a driver attaches to.
        procs.append(_ray_start("--address", address, "--node-ip-address", "127.0.0.2", "--num-cpus", "1",
                                "--node-name", "node-b", env=env))
        _wait_nodes(address, 2, procs, env)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE")
        else:
            os.environ["RAY_AUTH_MODE"] = saved
        assert not _leftovers(temp), "Ray processes left behind"
        shutil.rmtree(temp, ignore_errors=True)  # Ray's session logs and sockets: nothing a later run reads


def _wait_nodes(address: str, count: int, procs: list[subprocess.Popen], env: dict, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("ray start exited early")
        try:
            done = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address={address!r}, "
                                   "logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))"],
                                  capture_output=True, text=True, timeout=60, env={**os.environ, **env})
            if done.returncode == 0 and int(done.stdout.split()[-1]) >= count:
                return
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            pass
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {count} nodes in {timeout_s:.0f}s")


def _run_all(*argv: str) -> tuple[int, str]:
    """run_all.py in a process of its own, as a user runs it: one Ray driver per process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "run_all.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    print(done.stdout, done.stderr[-3000:])
    return done.returncode, done.stdout


@pytest.mark.slow
@needs_ray
def test_two_node_cluster_runs_on_both_nodes(two_nodes, tmp_path):
    results = tmp_path / "results"
    code, out = _run_all("--profile", "smoke", *TOYS, "--tasks", "toy_ray_slow", "--seeds", "4", "--device", "cpu",
                         "--results", str(results), "--executor", "ray", "--ray-address", two_nodes)
    assert code == 0, out
    records = _records(results)
    assert sorted(r["seed"] for r in records) == [0, 1, 2, 3]
    assert {r["status"] for r in records} == {"ok"}, out
    assert {r["node"]["name"] for r in records} == {"node-a", "node-b"}, out
    assert "'num_cpus': 1" in out  # a CPU run asks for one node's CPUs
    assert _most_at_once(out) == {"node-a": 1, "node-b": 1}, out

    # --resume is decided on the worker, which knows its machine: both nodes are this machine, so the four
    # finished runs are taken for done wherever they land, and only the fifth trains
    code, out = _run_all("--profile", "smoke", *TOYS, "--tasks", "toy_ray_slow", "--seeds", "5", "--device", "cpu",
                         "--results", str(results), "--executor", "ray", "--ray-address", two_nodes, "--resume")
    assert code == 0, out
    assert out.count("resume: ") == 4 and "ray: 5 runs submitted" in out and "; 4 with records" in out, out
    assert len(_records(results)) == 5


@pytest.mark.slow
@needs_ray
def test_killed_worker_is_retried_once_then_failed(two_nodes, tmp_path):
    results = tmp_path / "results"
    code, out = _run_all("--profile", "smoke", *TOYS, "--tasks", "toy_killed,toy_killed_once,toy_linear",
                         "--device", "cpu", "--results", str(results), "--data-dir", str(tmp_path / "data"),
                         "--executor", "ray", "--ray-address", two_nodes)
    assert code == 1, out
    by_task = {r["task"]: r for r in _records(results)}
    assert sorted(by_task) == ["toy_killed", "toy_killed_once", "toy_linear"]
    killed = by_task["toy_killed"]
    assert killed["status"] == "failed" and "\n" not in killed["error"]
    assert killed["error"].startswith("worker lost, and again on its one retry")
    assert len((tmp_path / "data" / "toy_killed.attempts").read_text().split()) == 2  # one retry, no more
    assert by_task["toy_killed_once"]["status"] == "ok"  # the retry finished it
    assert by_task["toy_linear"]["status"] == "ok"


PLUGIN = '''"""A plug-in task outside the repository: a line separating two classes of points."""
import torch
import torch.nn.functional as F
from torch import nn

from suite.taskapi.data import TensorSource
from suite.taskapi.registry import register_task
from suite.taskapi.spec import Budget, ProfileSpec, Recipe, Target
from suite.taskapi.task import Task

SPEC = ProfileSpec("plugin_points", Target("test/accuracy", 0.9, True, "a test plug-in"),
                   Budget(max_steps=20, max_time_s=30, eval_every=10), {"linear": Recipe(batch_size=32, lr=0.1)})


@register_task
class PluginLine(Task):
    name = "plugin_line"
    models = {"linear": lambda: nn.Linear(2, 2)}
    default_model = "linear"
    metrics = {"accuracy": True}
    profiles = {"smoke": SPEC, "quick": SPEC, "full": SPEC}

    def load(self, split):
        x = torch.randn(128, 2, generator=torch.Generator().manual_seed(0 if split == "train" else 1))
        return TensorSource(x=x, y=(x[:, 0] > x[:, 1]).long())

    def loss(self, model, batch):
        return F.cross_entropy(model(batch["x"]), batch["y"])

    def evaluate(self, model, source):
        batch = next(source.batches(len(source)))
        return {"accuracy": (model(batch["x"]).argmax(1) == batch["y"]).float().mean().item()}
'''


def write_plugin(folder: Path, single_file: bool = False) -> str:
    """The plug-in as a package (or one module) in `folder`, which only this process has on its path."""
    if single_file:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dlbench_plugin_file.py").write_text(PLUGIN)
        return "dlbench_plugin_file"
    (folder / "dlbench_plugin_line").mkdir(parents=True)
    (folder / "dlbench_plugin_line" / "__init__.py").write_text(PLUGIN)
    return "dlbench_plugin_line"


@pytest.mark.parametrize("single_file", [False, True])
def test_ray_ships_the_harness_the_builtins_and_each_plugins_top_level_module(tmp_path, monkeypatch, single_file):
    from suite.running import executors
    from suite.taskapi import registry

    monkeypatch.syspath_prepend(str(tmp_path))
    name = write_plugin(tmp_path, single_file)
    known = registry.load_tasks([name, "tests.toy_tasks"])
    notes = []
    shipped = executors.shipped_paths([known["plugin_line"], known["image_classification"], known["toy_linear"],
                                       known["toy_crash"]], notes.append)
    plugin = tmp_path / (f"{name}.py" if single_file else name)
    assert shipped == [str(ROOT / "suite"), str(ROOT / "tasks"), str(plugin), str(ROOT / "tests")] and not notes
    assert executors.shipped_paths([known["image_classification"]], notes.append) == \
        [str(ROOT / "suite"), str(ROOT / "tasks")]


def test_a_namespace_package_ray_cannot_ship_is_a_one_line_note(tmp_path, monkeypatch):
    from suite.running import executors
    from suite.taskapi import registry

    for portion in ("a", "b"):  # one namespace package over two folders
        (tmp_path / portion / "dlbench_ns_plugin").mkdir(parents=True)
        monkeypatch.syspath_prepend(str(tmp_path / portion))
    (tmp_path / "a" / "dlbench_ns_plugin" / "line.py").write_text(PLUGIN)
    known = registry.load_tasks(["dlbench_ns_plugin.line"])
    notes = []
    assert executors.shipped_paths([known["plugin_line"]], notes.append) == [str(ROOT / "suite"), str(ROOT / "tasks")]
    assert len(notes) == 1 and "'plugin_line' (dlbench_ns_plugin.line) is not shipped" in notes[0]
    assert "spans 2 folders" in notes[0] and "\n" not in notes[0]


@pytest.mark.slow
@needs_ray
def test_a_plugin_task_runs_on_ray_workers_that_never_installed_it(tmp_path, monkeypatch):
    """The plug-in's folder is on this driver's path only: the workers (a local Ray instance started
    by the executor) import it from what Ray ships."""
    from suite.running.benchmark import run_suite
    from suite.running.config import SuiteOptions

    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    module = write_plugin(tmp_path / "plugins")
    lines = []
    opts = SuiteOptions(profile="smoke", tasks_from=[module], tasks=["plugin_line"], device="cpu", seeds=2,
                        results=tmp_path / "results", executor="ray")
    records, code = run_suite(opts, log=lines.append)
    assert code == 0, "\n".join(lines)
    assert sorted((r["task"], r["seed"], r["status"]) for r in _records(tmp_path / "results")) == \
        [("plugin_line", 0, "ok"), ("plugin_line", 1, "ok")]
    assert all(r["node"]["name"] for r in records)
    assert not sys.modules["ray"].is_initialized()


def test_options_survive_a_copy_and_still_refuse_an_empty_selection():
    """The Ray executor copies the options (`dataclasses.replace`): "every task" must survive the copy,
    while `--tasks ","` (an empty list) stays bad input."""
    import dataclasses

    from suite.running.config import SuiteOptions
    from suite.errors import ConfigError

    opts = SuiteOptions(profile="smoke")
    assert dataclasses.replace(opts, resume=False).tasks is None
    with pytest.raises(ConfigError, match="selects no task"):
        SuiteOptions(profile="smoke", tasks=[])
