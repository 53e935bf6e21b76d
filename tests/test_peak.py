"""The peak microbenchmark's cache and the utilisation figure (suite.measuring.peak, suite.running.run_record.add_utilisation)."""
from __future__ import annotations

import json

import pytest
import torch

from suite.measuring import fingerprint, peak
from suite.running.run_record import add_utilisation

CPU = torch.device("cpu")


class FakeLoad:
    """Stands in for `HostLoad` so a test's cache behaviour does not depend on what else the host runs."""

    def __init__(self, share):
        self.share = share

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def summary(self):
        return {"other_cpu_share": self.share}


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty data folder and an empty in-process cache; matmuls counted."""
    peak._cached.cache_clear()
    calls = []
    real = peak.matmul_flops

    def counting(device, dtype, n):
        calls.append((str(dtype), n))
        return real(device, dtype, n)

    monkeypatch.setattr(peak, "matmul_flops", counting)
    monkeypatch.setattr(peak, "HostLoad", lambda *a, **k: FakeLoad(0.0))  # an idle host, whatever runs beside
    yield tmp_path, calls
    peak._cached.cache_clear()


def test_measured_once_then_read_from_the_cache(fresh):
    folder, calls = fresh
    first = peak.machine_peak(CPU, folder, sizes=(256,))
    assert first["fp32"] > 0 and first["bf16"] > 0 and first["error"] is None
    assert "best of 3 at n=256" in first["method"]
    measured = len(calls)
    peak._cached.cache_clear()  # a new process: reads the file
    again = peak.machine_peak(CPU, folder, sizes=(256,))
    assert len(calls) == measured and again["fp32"] == first["fp32"]


def test_a_cache_from_another_machine_is_never_used(fresh, monkeypatch):
    folder, calls = fresh
    peak.machine_peak(CPU, folder, sizes=(256,))
    path = next((folder / "peak").glob("*.json"))
    stored = json.loads(path.read_text())
    real_hardware = fingerprint.hardware
    monkeypatch.setattr(fingerprint, "hardware",
                        lambda device, label=None: {**real_hardware(device, label), "hostname": "another-box"})
    peak._cached.cache_clear()
    measured = len(calls)
    other = peak.machine_peak(CPU, folder, sizes=(256,))
    assert len(calls) > measured, "another machine's fingerprint must re-measure"
    assert other["key"] != stored["key"]
    # a file copied under this machine's name but written elsewhere (its key inside differs) is not read either
    path_here = peak.cache_path(folder, CPU, (256,))
    path_here.write_text(json.dumps({**stored, "key": "0123456789abcdef", "fp32": 1e30}))
    peak._cached.cache_clear()
    assert peak.machine_peak(CPU, folder, sizes=(256,))["fp32"] < 1e30


def test_a_failing_measurement_leaves_utilisation_null_with_the_reason(fresh, monkeypatch):
    folder, _ = fresh

    def broken(device, dtype, n):
        raise RuntimeError("no kernel for this precision")

    monkeypatch.setattr(peak, "matmul_flops", broken)
    figures = peak.machine_peak(CPU, folder, sizes=(256,))
    assert figures["fp32"] is None and "no kernel" in figures["error"]
    assert not (folder / "peak").exists() or not list((folder / "peak").glob("*.json")), "a failure is not cached"
    value, note = peak.utilisation(1e9, 100.0, figures, "fp32")
    assert value is None and "no kernel" in note


def test_utilisation_is_model_flops_over_peak():
    assert peak.utilisation(2e9, 50.0, {"fp32": 1e12, "bf16": 4e12}, "bf16") == (0.025, None)
    assert peak.utilisation(None, 50.0, {"fp32": 1e12}, "fp32")[0] is None


def test_above_one_re_measures_then_gives_no_number(fresh, monkeypatch):
    folder, _ = fresh
    monkeypatch.setenv(peak.SIZES_ENV, "256")
    record = {"throughput": {"value": 1e6, "unit": "samples/s"}, "flops_per_sample": 1e12,
              "hardware": fingerprint.hardware(CPU)}
    add_utilisation(record, CPU, "fp32", folder, 1)
    assert record["utilisation"] is None and "the measured fp32 peak" in record["utilisation_note"]
    assert record["hardware"]["peak_flops"]["fp32"] > 0


def test_a_cached_peak_measured_busy_is_measured_again_keeping_the_better_figure(fresh, monkeypatch):
    folder, calls = fresh
    first = peak.machine_peak(CPU, folder, sizes=(256,))
    path = peak.cache_path(folder, CPU, (256,))
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "bf16": 1e30, "other_cpu_share": 0.9}))  # a busy cache
    peak._cached.cache_clear()
    measured = len(calls)
    monkeypatch.setattr(peak, "HostLoad", lambda *a, **k: FakeLoad(0.9))  # busy again
    again = peak.machine_peak(CPU, folder, sizes=(256,))
    assert len(calls) > measured, "a busy cache must be measured again"
    assert again["bf16"] == 1e30 and again["fp32"] > 0  # busy twice: the better figure per precision stands
    monkeypatch.setattr(peak, "HostLoad", lambda *a, **k: FakeLoad(0.0))  # now idle: the idle figure replaces it
    peak._cached.cache_clear()
    idle = peak.machine_peak(CPU, folder, sizes=(256,))
    assert idle["bf16"] < 1e30 and idle["other_cpu_share"] == 0.0
    peak._cached.cache_clear()
    measured = len(calls)
    assert peak.machine_peak(CPU, folder, sizes=(256,))["bf16"] == idle["bf16"] and len(calls) == measured
    assert first["fp32"] > 0
