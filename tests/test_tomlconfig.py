"""`run_all.py --config FILE.toml` (suite.running.tomlconfig) and the score line `run_all.py` ends with."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from suite import cli
from suite.results import score
from suite.running import tomlconfig
from suite.running.config import SuiteOptions
from suite.errors import DlbenchError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_every_kind_of_flag_reads_from_the_file(tmp_path):
    path = write(tmp_path, '''
profile = "smoke"
tasks = "a, b"
models = "all"
seeds = 3
max-time-s = 2
compile = true
results = "out"
hardware_label = "lab box"
[set]
recipe.lr = 0.01
task.pretrained = "none"
''')
    values = tomlconfig.load(path, SuiteOptions)
    assert values == {"profile": "smoke", "tasks": ["a", "b"], "models": "all", "seeds": 3, "max_time_s": 2.0,
                      "compile": True, "results": Path("out"), "hardware_label": "lab box",
                      "set": ["recipe.lr=0.01", "task.pretrained=none"]}


@pytest.mark.parametrize("text, expected", [
    ('seed = 2\n', "unknown key 'seed' (did you mean 'seeds'?)"),
    ('seeds = "2"\n', "seeds = '2': must be an integer"),
    ('compile = "yes"\n', "compile = 'yes': must be true or false"),
    ('profile = "smoky"\n', "profile = 'smoky': must be one of smoke, quick"),
    ('seeds = 0\n', "seeds=0: must be >= 1"),
    ('set = [1]\n', "set = [1]: must be a list of"),
    ('device = "tpu"\n', "device='tpu': use auto, cpu"),
    ('profile = "smoke"\nseeds = 3 3\n', "not valid TOML: Expected newline or end of document after a statement "
                                           "(at line 2, column 11)"),
])
def test_a_bad_file_is_one_line_naming_the_key_or_the_line(tmp_path, text, expected):
    with pytest.raises(DlbenchError) as caught:
        tomlconfig.load(write(tmp_path, text), SuiteOptions)
    message = str(caught.value)
    assert expected in message and "\n" not in message and str(tmp_path / "run.toml") in message


def test_run_all_exits_2_with_one_line_for_a_bad_file(tmp_path, capsys):
    assert cli.main_run_all(["--config", str(write(tmp_path, "seed = 2\n"))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --config") and "unknown key 'seed'" in err and len(err.splitlines()) == 1
    assert cli.main_run_all(["--config", str(tmp_path / "absent.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def run_all(argv: list[str], capsys) -> tuple[int, str]:
    status = cli.main_run_all(argv)
    return status, capsys.readouterr().out


def records_in(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json"))]


def test_flags_override_the_file_and_the_run_ends_with_the_score_line(tmp_path, capsys, monkeypatch):
    reference = tmp_path / "reference"
    monkeypatch.setattr(score, "DEFAULT_REFERENCE", reference)
    path = write(tmp_path, f'''
profile = "smoke"
device = "cpu"
tasks-from = ["tests.toy_tasks"]
tasks = ["toy_linear"]
seeds = 2
results = "{tmp_path / 'ref_results'}"
hardware_label = "from the file"
set = ["recipe.lr=0.5"]
''')
    status, out = run_all(["--config", str(path)], capsys)
    assert status == 0
    assert "score: no reference records of the smoke profile ship in" in out.splitlines()[-1]
    made = records_in(tmp_path / "ref_results")
    assert len(made) == 2 and {r["hardware"]["label"] for r in made} == {"from the file"}
    shutil.copytree(tmp_path / "ref_results" / "runs", reference / "box" / "runs")

    here = tmp_path / "here"
    status, out = run_all(["--config", str(path), "--results", str(here), "--hardware-label", "this box",
                           "--seeds", "1"], capsys)
    assert status == 0
    [record] = records_in(here)
    assert record["hardware"]["label"] == "this box" and record["config"]["seed"] == 0
    assert record["variant"] == "recipe.lr=0.5"  # the file's --set still applies
    last = out.strip().splitlines()[-1]
    assert last.startswith("score against from the file: this box ") and "over 1 of 1 tasks on smoke" in last


def test_the_closing_line_says_why_when_no_run_is_comparable(tmp_path):
    from tests.helpers import make_record, write_all

    reference, here = tmp_path / "reference", tmp_path / "here"
    write_all(reference, [make_record(hardware="REF", seed=s) for s in range(2)])
    write_all(here, [make_record(task="other", hardware="B")])
    profile = make_record()["profile"]
    [line] = score.closing_lines(here, profile, reference)
    assert line.startswith("score against REF: none (") and "no run on the reference machine" in line
    [line] = score.closing_lines(here, "speed" if profile != "speed" else "quick", reference)
    assert line.startswith("score: no reference records of the")
