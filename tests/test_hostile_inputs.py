"""Hostile inputs and faults (issue 13): each ends in a one-line error or warning, never a traceback, a hang
or a lost record. Records are hand-made (`make_record`) or come from the toy tasks on the smoke profile.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import make_record, write_all

from suite import cli
from suite.results import check, compare, records, safe_io
from suite.taskapi import registry
from suite.running.config import SuiteOptions
from suite.running.runner import run_one
from tests.toy_tasks import ToyLinear

ROOT = Path(__file__).resolve().parent.parent
TOYS = ["--tasks-from", "tests.toy_tasks", "--device", "cpu", "--profile", "smoke"]


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_one_line_error(err: str, *words: str) -> None:
    got = lines_of(err)
    assert len(got) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in got[0], got[0]


def good_folder(tmp_path: Path) -> Path:
    return write_all(tmp_path / "results", [make_record(seed=0), make_record(seed=1, ttt=12.0)])


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


# -- 2. one hostile file never takes the readers down ------------------------------------------------------
def _record_with(**fields) -> str:
    return json.dumps({**make_record(seed=7), **fields})


HOSTILE_FILES = {
    "nested_100000_deep": "[" * 100_000 + "]" * 100_000,
    "int_5000_digits": '{"schema": 1, "seed": ' + "9" * 5000 + "}",
    "label_is_a_number": _record_with(hardware={"label": 42, "device": "cpu"}),
    "label_is_a_list": _record_with(hardware={"label": ["a", "b"], "device": "cpu"}),
    "budget_is_a_list": _record_with(config={"budget": [1, 2]}),
    "throughput_is_a_string": _record_with(throughput="fast"),
    "final_metric_is_a_string": _record_with(final_metrics={"test/accuracy": "high"}),
    "target_is_a_list": _record_with(target=["test/accuracy", 0.8]),
    "unknown_status": _record_with(status="great"),
    "newer_schema": _record_with(schema=2),
    "not_an_object": "[1, 2, 3]",
    "empty_file": "",
    "truncated_json": _record_with()[:200],
    "empty_run_id": _record_with(run_id=""),
    "seed_is_a_string": _record_with(seed="0"),
    "time_is_1e400": _record_with()[:-1] + ', "train_time_s": 1e400}',
    "huge_int_param": _record_with(params=10 ** 30),
    "curve_of_strings": _record_with(curve=["a", "b"]),
    "label_of_10k_chars": _record_with(hardware={"label": "x" * 10_000, "device": "cpu"}),
    "missing_fields": '{"schema": 1, "run_id": "x"}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_file_is_skipped_with_one_line_everywhere(tmp_path, capsys, name):
    folder = good_folder(tmp_path)
    (folder / "runs" / f"{name}.json").write_text(HOSTILE_FILES[name])
    assert cli.main(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    invalid = [line for line in out.splitlines() if line.startswith("invalid")]
    assert len(invalid) == 1 and f"{name}.json" in invalid[0] and "Traceback" not in out
    assert cli.main(["compare", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "n=2" in captured.out
    assert len([line for line in lines_of(captured.err) if f"{name}.json" in line]) == 1
    assert records.find_finished(folder, "no-such-hash", {}) is None  # --resume reads the folder too


def test_non_utf8_file_is_skipped(tmp_path, capsys):
    folder = good_folder(tmp_path)
    (folder / "runs" / "latin1.json").write_bytes(b'{"label": "caf\xe9"}')
    assert cli.main(["check", str(folder)]) == 1
    assert "not UTF-8" in capsys.readouterr().out


def test_oversized_file_is_skipped_without_reading_it(tmp_path, monkeypatch):
    folder = good_folder(tmp_path)
    (folder / "runs" / "big.json").write_text(json.dumps({"pad": "x" * 5000}))
    monkeypatch.setattr(safe_io, "MAX_RECORD_BYTES", 3000)
    warnings: list[str] = []
    assert len(records.read_records([folder], warn=warnings.append)) == 2
    assert len(warnings) == 1 and "limit" in warnings[0]


def _check_in_thread(folder: Path) -> dict:
    box: dict = {}

    def target():
        box["warnings"] = []
        box["records"] = records.read_records([folder], warn=box["warnings"].append)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the reader hangs"
    return box


def test_fifo_named_like_a_record_does_not_hang(tmp_path):
    folder = good_folder(tmp_path)
    os.mkfifo(folder / "runs" / "x.json")
    box = _check_in_thread(folder)
    assert len(box["records"]) == 2 and len(box["warnings"]) == 1 and "regular" in box["warnings"][0]


def test_symlink_to_dev_zero_is_not_read(tmp_path):
    folder = good_folder(tmp_path)
    (folder / "runs" / "x.json").symlink_to("/dev/zero")
    box = _check_in_thread(folder)
    assert len(box["records"]) == 2 and len(box["warnings"]) == 1 and "regular" in box["warnings"][0]


def test_fifo_given_as_the_argument_does_not_hang(tmp_path):
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("status", check.check_paths([fifo], out=open(
        os.devnull, "w"))), daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive() and box["status"] == 2


def test_dangling_symlink_and_folder_named_json(tmp_path):
    folder = good_folder(tmp_path)
    (folder / "runs" / "gone.json").symlink_to(tmp_path / "nowhere.json")
    (folder / "runs" / "dir.json").mkdir()
    warnings: list[str] = []
    assert len(records.read_records([folder], warn=warnings.append)) == 2
    assert len(warnings) == 2


# -- 1. no folder argument -------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, status", [("compare", 0), ("report", 0), ("check", 0)])
def test_commands_without_a_folder_read_results(tmp_path, monkeypatch, capsys, command, status):
    good_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli.main([command]) == status
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command, status", [("compare", 2), ("report", 2), ("check", 2)])
def test_commands_without_a_folder_and_no_results(tmp_path, monkeypatch, capsys, command, status):
    monkeypatch.chdir(tmp_path)
    assert cli.main([command]) == status
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out


# -- 3 and smaller: bad input is exit 2, one line, before any run ---------------------------------------------
@pytest.mark.parametrize("flags", [["--max-time-s", "inf"], ["--max-time-s", "1e400"], ["--max-time-s", "nan"],
                                   ["--max-time-s", "-1"], ["--max-steps", "0"], ["--tasks", ","],
                                   ["--tasks", " , "], ["--seeds", "0"], ["--device", "tpu"]])
def test_bad_flags_exit_2_with_one_line_before_any_run(tmp_path, capsys, flags):
    results = tmp_path / "results"
    assert cli.main_run_all([*TOYS, "--tasks", "toy_linear", "--results", str(results), *flags]) == 2
    assert_one_line_error(capsys.readouterr().err, "error:")
    assert not (results / "runs").exists() or not list((results / "runs").glob("*.json"))


def test_data_dir_that_is_a_file_is_bad_input(tmp_path, capsys):
    file = tmp_path / "data.txt"
    file.write_text("x")
    assert cli.main_run_all([*TOYS, "--tasks", "toy_linear", "--results", str(tmp_path / "r"),
                             "--data-dir", str(file)]) == 2
    assert_one_line_error(capsys.readouterr().err, "data_dir")


def test_read_only_results_folder_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    def refuse(*_a, **_k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(safe_io.tempfile, "mkstemp", refuse)  # as root, chmod would not stop the write
    assert cli.main_run_all([*TOYS, "--tasks", "toy_linear", "--results", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, "Permission denied")  # the data folder is checked first, then results
    assert "[1/1]" not in captured.out


def test_compare_out_that_is_a_file(tmp_path, capsys):
    folder = good_folder(tmp_path)
    out = tmp_path / "tables.txt"
    out.write_text("keep me")
    assert cli.main(["compare", str(folder), "--out", str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out")
    assert out.read_text() == "keep me"


def test_report_out_that_is_a_folder(tmp_path, capsys):
    folder = good_folder(tmp_path)
    (tmp_path / "x.html").mkdir()
    assert cli.main(["report", str(folder), "--out", str(tmp_path / "x.html")]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out")


def test_tasks_from_a_module_that_raises(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('plug-in bug\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main_run_all(["--tasks-from", "broken_plugin", "--results", str(tmp_path / "r")]) == 2
    assert_one_line_error(capsys.readouterr().err, "RuntimeError", "plug-in bug")


def test_entry_point_plugin_that_raises_is_an_unavailable_task(monkeypatch):
    class BrokenEntryPoint:
        value = "broken_plugin_ep:tasks"

        def load(self):
            raise ValueError("bad plug-in")

    monkeypatch.setattr(registry, "UNAVAILABLE", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: [BrokenEntryPoint()])
    registry.load_tasks()
    assert registry.UNAVAILABLE == {"broken_plugin_ep": "ValueError on import: bad plug-in"}


def test_device_cuda_without_cuda_is_a_visible_skip(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    status = cli.main_run_all(["--tasks-from", "tests.toy_tasks", "--tasks", "toy_linear", "--profile", "smoke",
                               "--device", "cuda", "--results", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert status == 0
    assert "skipped: toy_linear / linear seed 0:" in out


# -- 4. full disk and failed writes ----------------------------------------------------------------------------
def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failed_record_write_is_one_line_and_the_other_runs_go_on(tmp_path, capsys, monkeypatch):
    results = tmp_path / "r"
    real_replace, calls = os.replace, []

    def first_replace_fails(src, dst):
        calls.append(dst)
        if len([c for c in calls if Path(c).parent.name == "runs"]) == 1 and Path(dst).parent.name == "runs":
            _enospc()  # the first record (not the peak FLOP/s cache a first run in this process writes before it)
        return real_replace(src, dst)

    monkeypatch.setattr(safe_io.os, "replace", first_replace_fails)
    status = cli.main_run_all([*TOYS, "--tasks", "toy_linear", "--seeds", "2", "--results", str(results)])
    captured = capsys.readouterr()
    assert status == 1 and "Traceback" not in captured.err
    errors = [line for line in lines_of(captured.err) if line.startswith("error:")]
    assert len(errors) == 1 and "not written" in errors[0] and "No space left" in errors[0]
    assert len(list((results / "runs").glob("*.json"))) == 1  # the second seed's record is there
    assert not list((results / "runs").glob(".*.tmp"))


def test_full_disk_keeps_the_previous_report_whole(tmp_path, capsys, monkeypatch):
    folder = good_folder(tmp_path)
    assert cli.main(["report", str(folder)]) == 0
    before = (folder / "report.html").read_text()
    monkeypatch.setattr(safe_io.os, "replace", _enospc)
    assert cli.main(["report", str(folder)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "No space left" in captured.err
    assert (folder / "report.html").read_text() == before
    assert not list(folder.glob(".*.tmp"))


def test_non_finite_figure_does_not_lose_the_record(tmp_path):
    record = make_record(seed=3)
    record["final_metrics"] = {"test/accuracy": 0.9, "test/loss": float("inf")}
    path = records.write_record(record, tmp_path)
    assert json.loads(path.read_text())["final_metrics"]["test/loss"] is None


def test_records_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = records.write_record(make_record(), tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_orphan_temp_files_are_reported_by_check(tmp_path, capsys):
    folder = good_folder(tmp_path)
    (folder / "runs" / ".toy.mlp.s9.abc123.tmp").write_text('{"half": ')
    assert cli.main(["check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("orphan")]) == 1
    assert "1 orphan temp files" in out


# -- 6. labels and names are plain text -------------------------------------------------------------------------
def test_math_string_label_does_not_crash_the_report(tmp_path, capsys):
    folder = write_all(tmp_path / "r", [make_record(hardware="box$\\bad{$", seed=s) for s in (0, 1)]
                       + [make_record(hardware="other", seed=s, ttt=20.0) for s in (0, 1)])
    assert cli.main(["report", str(folder)]) == 0
    md = (folder / "report.md").read_text()
    assert "box$" in md and "bad{$" in md  # shown (Markdown-escaped), never interpreted


def test_control_characters_and_pipes_in_labels(tmp_path, capsys):
    label = "evil|box\nnext line\x1b[31mred\x07"
    folder = write_all(tmp_path / "r", [make_record(hardware=label, model="m|x\ny", seed=s) for s in (0, 1)])
    assert cli.main(["compare", str(folder)]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("|")]
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in table]
    assert len(table) == 3 and len(set(cells)) == 1, table
    assert "\x1b" not in out and "\x07" not in out and "evil\\|box" in out
    assert cli.main(["report", str(folder)]) == 0
    assert "\x1b" not in (folder / "report.md").read_text()


def test_terminal_escapes_in_errors_are_not_printed_by_check(tmp_path, capsys):
    folder = write_all(tmp_path / "r", [make_record(status="failed", ttt=None, error="boom\x1b]0;pwned\x07\nmore")])
    assert cli.main(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert len([line for line in out.splitlines() if line.startswith("unfit")]) == 1


# -- 8, 9, 10: duplicates, one 'reached' rule, sane measures ------------------------------------------------------
def test_duplicate_run_id_with_different_contents_is_flagged_and_left_out(tmp_path, capsys):
    folder = write_all(tmp_path / "a", [make_record(seed=0, run_id="same"), make_record(seed=1)])
    write_all(tmp_path / "b", [make_record(seed=0, run_id="same", ttt=1.0)])
    assert cli.main(["check", str(folder), str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "different contents" in out and "1 run_ids with conflicting records" in out
    data = compare.pool([folder, tmp_path / "b"])
    assert list(data.frame["run_id"]) == ["toy.mlp.A.v1.s1.2.11.0"]


def test_identical_duplicate_counts_once(tmp_path, capsys):
    write_all(tmp_path / "a", [make_record(seed=0)])
    write_all(tmp_path / "b", [make_record(seed=0)])
    assert cli.main(["check", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert len(compare.pool([tmp_path / "a", tmp_path / "b"]).frame) == 1


def test_diverged_but_reached_is_not_reached_in_check_and_compare(tmp_path):
    record = make_record(status="diverged", ttt=None)
    record.update(reached_target=True, time_to_target_s=0.5)
    unfit, notes = check.assess(record)
    assert not unfit and any("counted as not reached" in n for n in notes)
    frame = compare.to_frame([{**record, "_path": "x"}])
    assert not frame["reached"].iloc[0] and frame["time_to_target_s"].iloc[0] == float("inf")
    assert records.reached(record) is False and records.reached(make_record()) is True


@pytest.mark.parametrize("fields, reason", [
    ({"throughput": {"value": -1, "unit": "samples/s"}}, "throughput.value"),
    ({"throughput": {"value": float("nan"), "unit": "samples/s"}}, "throughput.value"),
    ({"throughput": {"value": 100.0, "unit": ""}}, "no unit"),
    ({"throughput": {"value": 100.0}}, "no unit"),
    ({"final_metrics": {"test/accuracy": float("nan")}}, "not finite"),
    ({"train_time_s": -3.0}, "train_time_s"),
    ({"peak_mem_mb": -1.0}, "peak_mem_mb"),
    ({"time_to_target_s": -1.0}, "time_to_target_s"),
])
def test_insane_measures_make_a_record_unfit(tmp_path, capsys, fields, reason):
    bad = {**make_record(seed=9), **fields}
    folder = write_all(tmp_path / "r", [make_record(seed=0), make_record(seed=1)])
    (folder / "runs" / "bad.json").write_text(json.dumps(bad))  # json writes NaN as the reader would see it
    assert cli.main(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("unfit") and reason in line for line in out.splitlines()), out
    assert len(compare.pool([folder]).frame) == 2


def test_infinite_final_metric_never_counts(tmp_path):
    folder = write_all(tmp_path / "r", [make_record(seed=0)])
    (folder / "runs" / "inf.json").write_text(json.dumps({**make_record(seed=5),
                                                          "final_metrics": {"test/accuracy": float("inf")}}))
    warnings: list[str] = []
    assert len(records.read_records([folder], warn=warnings.append)) == 1
    assert len(warnings) == 1 and "inf.json" in warnings[0] and "final_metrics" in warnings[0]
    assert len(compare.pool([folder]).frame) == 1


# -- 11 and 8: --resume matches the machine; concurrent --resume runs each run once ---------------------------------
def _resume(results: Path, label: str | None) -> dict:
    opts = SuiteOptions(profile="smoke", device="cpu", results=results, resume=True, hardware_label=label,
                        max_steps=5)
    return run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)


def test_resume_matches_the_hardware_label(tmp_path):
    first = _resume(tmp_path, "boxA")
    assert _resume(tmp_path, "boxA")["run_id"] == first["run_id"]
    other = _resume(tmp_path, "boxB")
    assert other["run_id"] != first["run_id"] and other["hardware"]["label"] == "boxB"


def test_resume_ignores_a_record_from_another_host(tmp_path):
    first = _resume(tmp_path, "box")
    path = Path(first["_path"])
    moved = json.loads(path.read_text())
    moved["hardware"]["hostname"] = "elsewhere"
    path.write_text(json.dumps(moved))
    assert _resume(tmp_path, "box")["run_id"] != first["run_id"]


def test_a_run_claimed_by_another_process_is_not_run_twice(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "claim_run", lambda *_a, **_k: None)  # another process holds the claim
    record = _resume(tmp_path, "box")
    assert record.get("claimed_elsewhere")
    assert not list((tmp_path / "runs").glob("*.json"))


def test_claims_exclude_each_other_and_go_with_their_holder(tmp_path):
    hardware = {"label": "box", "hostname": "h"}
    held = records.claim_run(tmp_path, "abc", hardware)
    assert held is not None and records.claim_run(tmp_path, "abc", hardware) is None
    assert records.claim_run(tmp_path, "abc", {**hardware, "label": "other"}) is not None
    held.release()
    again = records.claim_run(tmp_path, "abc", hardware)
    assert again is not None
    again.release()


@pytest.mark.slow
def test_two_concurrent_resume_processes_do_each_run_once(tmp_path):
    results = tmp_path / "r"
    command = [sys.executable, "run_all.py", *TOYS, "--tasks", "toy_linear", "--seeds", "3", "--resume",
               "--max-steps", "20", "--results", str(results)]
    procs = [subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    seeds = sorted(json.loads(p.read_text())["seed"] for p in (results / "runs").glob("*.json"))
    assert seeds == [0, 1, 2], outs


# -- 5. SIGTERM ends like Ctrl-C -------------------------------------------------------------------------------------
def test_sigterm_leaves_an_interrupted_record_and_stops_the_suite(tmp_path):
    results = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "run_all.py", *TOYS, "--tasks", "toy_slow", "--seeds", "2",
                             "--results", str(results)], cwd=ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    for line in proc.stdout:  # the first evaluation line: training is under way
        if "step" in line and "[1/2]" not in line or time.time() > deadline:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, out + err
    assert "Traceback" not in err and "terminated (SIGTERM)" in err
    written = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    assert len(written) == 1, out + err  # the second seed never started
    record = written[0]
    assert record["status"] == "interrupted" and record["error"] == "terminated by SIGTERM"
    assert record["steps"] and record["steps"] > 0 and record["train_time_s"] > 0


# -- 7. datasets: checksums, rebuilds, manifests -------------------------------------------------------------------------
def test_speech_manifest_with_an_empty_file_list_is_not_valid(tmp_path, monkeypatch):
    from tasks.speech import corpus

    folder = tmp_path / "corpus"
    folder.mkdir()
    class Config:  # the config matches
        def as_dict(self):
            return {"kind": "kws"}

    (folder / corpus.MANIFEST).write_text(json.dumps({"config": {"kind": "kws"}, "files": {}}))
    assert corpus._valid(folder, Config()) is False


@pytest.fixture
def fashion(tmp_path):
    from tasks import image_classification as ic

    if not all((ic.DEBIAN_FASHION_MNIST / f"{n}.gz").is_file() for n in ic.FASHION_FILES):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    data = tmp_path / "data"
    ic.fashion_mnist_root(data, download=False)
    return ic, data, data / "FashionMNIST" / "raw"


def test_fashion_mnist_garbage_of_the_same_size_is_rebuilt(fashion):
    ic, data, raw = fashion
    labels = raw / "t10k-labels-idx1-ubyte"
    good = labels.read_bytes()
    labels.write_bytes(good[:8] + bytes(len(good) - 8))  # right size and header, every label 0
    _, y = ic.load_fashion_mnist(data, "test")
    assert labels.read_bytes() == good and len(set(y.tolist())) == 10


def test_fashion_mnist_truncated_file_is_rebuilt(fashion):
    ic, data, raw = fashion
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    x, _ = ic.load_fashion_mnist(data, "test")
    assert x.shape == (10000, 1, 28, 28)


def test_fashion_mnist_manifest_with_an_empty_file_list_is_rebuilt(fashion):
    ic, data, raw = fashion
    (raw / ic.FASHION_MANIFEST).write_text(json.dumps({"files": {}}))
    assert not ic.fashion_mnist_valid(raw)
    ic.fashion_mnist_root(data, download=False)
    assert set(json.loads((raw / ic.FASHION_MANIFEST).read_text())["files"]) == set(ic.FASHION_FILES)


def test_fashion_mnist_folder_without_a_manifest_is_adopted_only_with_the_known_checksums(fashion):
    ic, data, raw = fashion
    (raw / ic.FASHION_MANIFEST).unlink()
    ic._FASHION_CHECKED.clear()
    assert ic.fashion_mnist_valid(raw) and (raw / ic.FASHION_MANIFEST).is_file()


# -- the speech synthesis worker dies with its parent ------------------------------------------------------------------
def test_synthesis_worker_exits_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    parent_code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import os, sys, time; from tasks.speech.corpus import die_with_parent; "
        "die_with_parent(int(sys.argv[1])); open(sys.argv[2], \"w\").write(str(os.getpid())); time.sleep(120)', "
        f"str(os.getpid()), {str(pid_file)!r}])\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=ROOT, env=subprocess_env())
    deadline = time.time() + 60
    while not (pid_file.is_file() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            break
        if state == "Z":  # dead, waiting for whoever adopted it to reap it
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the worker outlived its parent")
