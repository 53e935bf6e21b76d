"""Energy from the machine's counters (suite.measuring.energy): a simulated powercap tree and a fake NVML."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from suite.measuring import energy, fingerprint
from suite.results import consistency, records
from suite.running.config import SuiteOptions
from suite.running.context import EvalPoints, TrainResult
from suite.running.runner import run_one
from suite.taskapi.spec import Target
from suite.measuring.timing import SegmentClock
from tests.toy_tasks import ToyLinear


def write_zone(root: Path, zone: str, name: str, uj: int, max_uj: int | None = 2**32) -> Path:
    folder = root / zone
    folder.mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    (folder / "energy_uj").write_text(f"{uj}\n")
    if max_uj is not None:
        (folder / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return folder / "energy_uj"


def powercap(tmp_path: Path) -> dict[str, Path]:
    """Two packages, a core sub-zone (part of package 0) and psys (the whole platform): only packages count."""
    root = tmp_path / "powercap"
    return {"root": root,
            "p0": write_zone(root, "intel-rapl:0", "package-0", 1_000_000, max_uj=10_000_000),
            "p1": write_zone(root, "intel-rapl:1", "package-1", 0),
            "core": write_zone(root, "intel-rapl:0:0", "core", 0),
            "psys": write_zone(root, "intel-rapl:2", "psys", 0)}


def test_rapl_packages_are_summed_per_segment_and_a_wrapped_counter_is_undone(tmp_path):
    tree = powercap(tmp_path)
    meter = energy.EnergyMeter(torch.device("cpu"), powercap=tree["root"])
    assert sorted(c.name for c in meter.counters) == ["rapl:package-0", "rapl:package-1"]
    meter.switch("train")
    tree["p0"].write_text("3000000\n")  # +2 J
    tree["p1"].write_text("500000\n")  # +0.5 J
    tree["core"].write_text("9000000\n")  # a part of package 0: not counted again
    meter.switch("eval")
    tree["p0"].write_text("1000000\n")  # wrapped at 10 J: +8 J
    meter.switch(None)
    tree["p1"].write_text("1500000\n")  # +1 J outside any segment: in the total only
    meter.switch(None)
    summary = meter.summary()
    assert summary["segments_j"] == {"train": 2.5, "eval": 8.0}
    assert summary["total_j"] == 11.5
    assert summary["counters_j"] == {"rapl:package-0": 10.0, "rapl:package-1": 1.5}
    assert summary["source"] == "rapl:package-0 + rapl:package-1" and summary["note"] is None


def test_missing_or_unreadable_counters_give_null_with_the_reason(tmp_path):
    summary = energy.EnergyMeter(torch.device("cpu"), powercap=tmp_path / "absent").summary()
    assert summary["total_j"] is None and summary["segments_j"] is None
    assert "does not exist" in summary["note"]
    root = tmp_path / "powercap"
    (root / "intel-rapl:0").mkdir(parents=True)
    (root / "intel-rapl:0" / "energy_uj").mkdir()  # not a readable file
    summary = energy.EnergyMeter(torch.device("cpu"), powercap=root).summary()
    assert summary["total_j"] is None and "energy_uj unreadable" in summary["note"]


def test_root_only_counters_say_so(tmp_path, monkeypatch):
    tree = powercap(tmp_path)
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    summary = energy.EnergyMeter(torch.device("cpu"), powercap=tree["root"]).summary()
    assert summary["total_j"] is None and "readable by root only" in summary["note"]


def test_a_counter_that_stops_answering_is_dropped_and_never_fails_the_run(tmp_path):
    tree = powercap(tmp_path)
    meter = energy.EnergyMeter(torch.device("cpu"), powercap=tree["root"])
    meter.switch("train")
    tree["p1"].unlink()
    tree["p0"].write_text("2000000\n")
    meter.switch(None)
    summary = meter.summary()
    assert summary["source"] == "rapl:package-0" and summary["segments_j"] == {"train": 1.0}
    assert "rapl:package-1 stopped answering" in summary["note"]


def fake_nvml(monkeypatch, millijoules: list[int], supported: bool = True) -> types.ModuleType:
    """A `pynvml` whose energy counter returns the values of `millijoules` in turn."""
    module = types.ModuleType("pynvml")
    readings = iter(millijoules)

    class NVMLError(Exception):
        pass

    def total_energy(handle):
        if not supported:
            raise NVMLError("Not Supported")
        return next(readings)

    module.nvmlInit = lambda: None
    module.nvmlDeviceGetHandleByUUID = lambda uuid: (_ for _ in ()).throw(NVMLError("Not Found"))
    module.nvmlDeviceGetHandleByIndex = lambda index: f"gpu{index}"
    module.nvmlDeviceGetName = lambda handle: b"NVIDIA H100 80GB HBM3"
    module.nvmlDeviceGetTotalEnergyConsumption = total_energy
    module.nvmlSystemGetDriverVersion = lambda: "580.82.07"
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return module


def test_nvml_counts_the_gpu_in_millijoules_beside_the_cpu_packages(tmp_path, monkeypatch):
    fake_nvml(monkeypatch, [5_000_000, 5_000_000, 5_150_000, 5_200_000])
    tree = powercap(tmp_path)
    meter = energy.EnergyMeter(torch.device("cuda", 0), powercap=tree["root"])
    meter.switch("train")
    meter.switch("eval")
    meter.switch(None)
    summary = meter.summary()
    assert summary["segments_j"] == {"train": 150.0, "eval": 50.0}
    assert summary["counters_j"]["nvml:NVIDIA H100 80GB HBM3"] == 200.0
    assert summary["source"].startswith("nvml:NVIDIA H100 80GB HBM3 + rapl:")


def test_a_gpu_without_the_counter_or_without_nvidia_ml_py_is_a_note(tmp_path, monkeypatch):
    fake_nvml(monkeypatch, [], supported=False)
    summary = energy.EnergyMeter(torch.device("cuda", 0), powercap=tmp_path / "absent").summary()
    assert summary["total_j"] is None and "not readable through NVML" in summary["note"]
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    summary = energy.EnergyMeter(torch.device("cuda", 0), powercap=tmp_path / "absent").summary()
    assert "pip install nvidia-ml-py" in summary["note"]


def test_the_fingerprint_reads_the_driver_through_nvml(monkeypatch):
    fake_nvml(monkeypatch, [])
    fingerprint._nvidia_driver.cache_clear()
    try:
        assert fingerprint._nvidia_driver() == "580.82.07"
    finally:
        fingerprint._nvidia_driver.cache_clear()


def test_the_clock_charges_segments_and_the_target_gets_its_train_energy(tmp_path):
    tree = powercap(tmp_path)
    with energy.EnergyMeter(torch.device("cpu"), powercap=tree["root"]) as meter:
        clock = SegmentClock(torch.device("cpu"))
        assert clock.energy is meter
        clock.start("train")
        tree["p0"].write_text("4000000\n")  # +3 J
        clock.start("eval")
        tree["p0"].write_text("5000000\n")  # +1 J
        clock.stop()
        result = TrainResult()
        points = EvalPoints(Target("val/accuracy", 0.5, True, "test"), result, torch.device("cpu"))
        assert points.record(10, clock, {"val/accuracy": 0.9})
    assert energy.active() is None
    assert result.energy_to_target_j == 3.0
    assert meter.summary()["segments_j"] == {"train": 3.0, "eval": 1.0}


def test_a_run_records_energy_and_energy_to_target(tmp_path, monkeypatch):
    tree = powercap(tmp_path)
    ticks = {"uj": 1_000_000}
    real = Path.read_text

    def read_text(self, *args, **kwargs):  # package 0 gains 0.01 J at every reading: a busy CPU
        if self == tree["p0"]:
            ticks["uj"] += 10_000
            return f"{ticks['uj']}\n"
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    monkeypatch.setattr(energy, "POWERCAP", tree["root"])
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path / "results")
    record = run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok" and record["reached_target"]
    figures = record["energy"]
    assert figures["total_j"] > 0 and figures["segments_j"]["train"] > 0 and figures["segments_j"]["eval"] > 0
    assert 0 < record["energy_to_target_j"] <= figures["segments_j"]["train"]
    assert records.validate(record) == [] and consistency.energy(record) == []


def test_a_run_on_a_machine_without_counters_has_null_energy_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "absent")
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path / "results")
    record = run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok"
    assert record["energy"]["total_j"] is None and "does not exist" in record["energy"]["note"]
    assert record["energy_to_target_j"] is None
    assert records.validate(record) == [] and consistency.problems(record) == []


def test_the_consistency_check_flags_impossible_energy():
    base = {"energy": {"total_j": 10.0, "segments_j": {"train": 8.0, "eval": 4.0}}, "energy_to_target_j": 12.0}
    found = consistency.energy(base)
    assert any("segments_j add up to 12" in line for line in found)
    assert any("energy_to_target_j 12 is more than" in line for line in found)
    assert consistency.energy({"energy": {"total_j": None, "note": None}}) == \
        ["energy.total_j is null without a note saying why"]
    assert consistency.energy({"energy_to_target_j": -1.0})[0].startswith("energy_to_target_j is -1.0")


def energy_record(hardware: str, seed: int, joules: float | None, train_j: float = 100.0, **fields) -> dict:
    from tests.helpers import make_record

    figures = {"total_j": train_j + 5, "segments_j": {"train": train_j, "eval": 5.0}, "source": "rapl:package-0",
               "counters_j": {"rapl:package-0": train_j + 5}, "note": None}
    return make_record(hardware=hardware, seed=seed, energy=figures, energy_to_target_j=joules, **fields)


def test_compare_and_score_use_energy_to_target_with_time_energy(tmp_path):
    from suite.results import compare, score
    from tests.helpers import write_all

    write_all(tmp_path / "ref", [energy_record("REF", s, 40.0 + s) for s in range(2)])
    write_all(tmp_path / "here", [energy_record("B", 0, 20.0), energy_record("B", 1, None, ttt=None, train_j=30.0)])
    frame, notes = compare.with_time_rule(compare.pool([tmp_path / "here"]).frame, "energy")
    assert sorted(frame["time_to_target_s"]) == [20.0, float("inf")] and notes == []
    reference, label, _ = score.resolve_reference(tmp_path / "ref")
    result = score.score([tmp_path / "here"], reference, label, "energy")
    [profile] = result.profiles
    # the miss counts at its train segment's 30 J (AlgoPerf's budget rule): median(40, 41) / median(20, 30)
    assert profile.geomean == pytest.approx(40.5 / 25.0)
    timed = score.score([tmp_path / "here"], reference, label)
    assert timed.profiles[0].geomean != profile.geomean
