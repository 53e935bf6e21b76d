"""Generated documentation pages: committed pages match what the stored data gives; `dlbench list` shows
each profile's reference convergence or says it has none."""
from __future__ import annotations

import json
from pathlib import Path

from suite import cli
from suite.reporting.pages import PAGES, write_pages

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_committed_generated_pages_are_up_to_date():
    assert write_pages(DOCS, check=True) == [], "run `dlbench pages` and commit docs/"


def test_check_names_a_stale_page_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "references.md").write_text("typed by hand\n")
    assert cli.main(["pages", "--out", str(tmp_path), "--check"]) == 1
    assert "references.md" in capsys.readouterr().err
    assert (tmp_path / "references.md").read_text() == "typed by hand\n"
    assert cli.main(["pages", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "references.md").read_text() == PAGES["references.md"]()


def test_list_shows_reference_convergence_or_its_absence(capsys):
    assert cli.main(["list", "--profile", "quick", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    for task in listing["tasks"]:
        quick = task["profiles"]["quick"]
        for model, ref in quick["references"].items():
            assert ref["n"] == len(ref["per_seed_steps"]) and ref["model"] == model
            assert {"median_steps", "cv", "band_p5_p95", "machine", "date", "commit", "command"} <= set(ref)
    assert cli.main(["list", "--profile", "quick"]) == 0
    text = capsys.readouterr().out
    for task in listing["tasks"]:
        expected = "reference convergence of" if task["profiles"]["quick"]["references"] else "no reference convergence"
        assert expected in text.split(task["name"] + "  (v", 1)[1].split("\n\n", 1)[0]


def test_pages_default_to_the_repositorys_docs_folder(capsys):
    from suite import cli

    assert cli.main(["pages", "--check"]) in (0, 1)  # 1: a stale page, named; never a missing folder
    out = capsys.readouterr()
    assert "No such file" not in out.err and ("up to date" in out.out or "stale generated pages" in out.err)


def test_each_task_page_names_the_tasks_current_version():
    """docs/tasks/NAME.md says which task version its data and figures describe: the one the code runs."""
    import re

    from suite.taskapi import registry

    shipped = {name: task for name, task in registry.load_tasks().items() if task.__module__.startswith("tasks.")}
    assert len(shipped) >= 5
    for name, task in shipped.items():
        page = (DOCS / "tasks" / f"{name}.md").read_text()
        said = re.search(r"task version (\d+)", page)
        assert said and int(said.group(1)) == task.version, \
            f"docs/tasks/{name}.md names task version {said and said.group(1)}; the code runs {task.version}"
