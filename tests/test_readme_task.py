"""The README's "Add a task" example, exactly as written, is a task the contract test passes.

The example is cut out of README.md into a module that a throw-away distribution declares as a
`dlbench.tasks` entry point, as a plug-in package would; tests/test_contract.py then runs on it
in a process of its own, unchanged.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from suite.taskapi import registry
from suite.running.config import SuiteOptions
from suite.running.runner import run_one

ROOT = Path(__file__).resolve().parent.parent
MODULE = "readme_my_task"


def readme_example() -> str:
    """The one Python block of the README's "Add a task" section."""
    section = (ROOT / "README.md").read_text().split("\n## Add a task\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"the Add a task section has {len(blocks)} python blocks, expected one"
    return blocks[0]


def install_as_plugin(site: Path) -> None:
    """The example as `readme_my_task.py`, declared by an entry point of a distribution in `site`."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{MODULE}.py").write_text(readme_example())
    dist = site / "readme_my_task-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: readme-my-task\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(f"[dlbench.tasks]\nmy_task = {MODULE}:MyTask\n")


def test_the_readme_example_passes_the_contract_test(tmp_path):
    site = tmp_path / "site"
    install_as_plugin(site)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_contract.py",
                           "-k", "my_task"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # the declaration check, then one training step and one smoke run for each of its two models
    assert re.match(r"5 passed\b", summary), summary


def test_the_readme_example_runs_its_speed_profile(tmp_path, monkeypatch):
    install_as_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    task = registry.load_tasks([MODULE])["my_task"]
    opts = SuiteOptions(profile="speed", device="cpu", results=tmp_path / "results", max_steps=2)
    record = run_one(task, "small", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["dataset"] == "synthetic:moons_100k" and record["throughput"]["value"] > 0
