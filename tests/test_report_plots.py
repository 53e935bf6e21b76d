"""The report's plots: the speed profile's throughput and utilisation, and no interval for one value."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from matplotlib.axes import Axes

from suite.reporting import plots, report
from suite.results import compare, records
from tests.helpers import make_record, write_all


def speed_record(model: str, hardware: str, throughput: float, seed: int = 0, utilisation: float = 0.25) -> dict:
    record = make_record(model=model, hardware=hardware, seed=seed, throughput=throughput, profile="speed",
                         dataset="synthetic:digits", reached_target=None, time_to_target_s=None,
                         stop_reason="steps", curve=[], final_metrics={"train/loss": 1.0}, utilisation=utilisation,
                         run_id=f"speed.{model}.{hardware}.s{seed}")
    record["target"] = None
    assert records.validate(record) == []
    return record


@pytest.fixture
def errorbars(monkeypatch) -> list[int]:
    """The number of points of each errorbar drawn."""
    drawn: list[int] = []
    real = Axes.errorbar

    def counting(self, x, y, *args, **kwargs):
        drawn.append(len(x) if hasattr(x, "__len__") else 1)
        return real(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", counting)
    return drawn


def test_the_report_draws_throughput_and_utilisation_for_the_speed_profile(tmp_path, errorbars):
    recs = [speed_record("cnn", "A", 100.0 + s, seed=s) for s in range(3)] + \
           [speed_record("mlp", "A", 400.0), speed_record("cnn", "B", 50.0, utilisation=0.5)]
    write_all(tmp_path / "runs", recs)
    sections, _ = report.build_sections(compare.pool([tmp_path / "runs"]), baseline=None)
    [section] = [s for s in sections if s.title == "Plots"]
    [caption] = [c for c in section.images if c.endswith("throughput and utilisation")]
    assert caption.startswith("toy v1 (speed, synthetic:digits)")
    assert section.images[caption].startswith(b"\x89PNG")
    assert errorbars == [1, 1], "one bar per panel for cnn @ A (three seeds); none for the single runs"


def test_time_to_target_draws_no_interval_for_one_seed(errorbars):
    one = compare.to_frame([make_record(model="mlp", ttt=10.0)])
    plots.time_to_target(one, lambda row: row.model, "toy")
    assert errorbars == []
    two = compare.to_frame([make_record(model="mlp", ttt=10.0), make_record(model="mlp", seed=1, ttt=12.0)])
    plots.time_to_target(two, lambda row: row.model, "toy")
    assert errorbars == [1]


def test_a_study_point_of_one_seed_gets_no_bar(errorbars):
    part = pd.DataFrame({"act": ["relu", "gelu"], "quality": [0.9, 0.8], "quality_lo": [math.nan, 0.7],
                         "quality_hi": [math.nan, 0.85], "time_to_target_s": [5.0, 6.0],
                         "time_to_target_s_lo": [math.nan, math.nan], "time_to_target_s_hi": [math.nan, math.nan]})
    plots.study([("mlp", part)], "act", "test/accuracy", 0.8, "toy")
    assert errorbars == [1], "the quality bar of gelu only"


def test_learning_curves_of_many_series_draw_fewer_seeds_of_each_and_say_so(tmp_path, monkeypatch):
    lines: list[int] = []
    real = plots.learning_curves

    def counting(runs, title):
        lines.append(len(runs))
        return real(runs, title)

    monkeypatch.setattr(plots, "learning_curves", counting)
    many = [make_record(model=f"m{m}", seed=s, run_id=f"many.m{m}.s{s}") for m in range(11) for s in range(6)]
    sections, _ = report.build_sections(compare.pool([write_all(tmp_path / "many", many)]), baseline=None)
    [section] = [s for s in sections if s.title == "Plots"]
    per_series = report.CURVES_PER_FIGURE // 11
    assert lines == [11 * per_series] and per_series < 6
    assert any(f"at most {report.CURVES_PER_FIGURE} lines" in n and f"toy v1 (smoke, digits) ({per_series})" in n
               for n in section.notes), section.notes

    lines.clear()  # few series: every seed up to CURVES_PER_SERIES, and no such note
    few = [make_record(model=f"m{m}", seed=s, run_id=f"few.m{m}.s{s}") for m in range(3) for s in range(6)]
    sections, _ = report.build_sections(compare.pool([write_all(tmp_path / "few", few)]), baseline=None)
    [section] = [s for s in sections if s.title == "Plots"]
    assert lines == [18]
    assert not any("lines per plot" in n for n in section.notes)


def _plots_section(sections) -> report.Section:
    [section] = [s for s in sections if s.title == "Plots"]
    return section


def test_a_large_report_draws_its_figures_in_worker_processes_and_they_match_the_ones_drawn_here(tmp_path,
                                                                                                 monkeypatch):
    # Three tasks (nine figures) with two models and two machines; the worker threshold lowered so a
    # small folder takes the pool path, with processes started by spawn: every job must pickle.
    recs = [make_record(task=f"task{t}", model=m, hardware=h, seed=s, ttt=10.0 + t + s,
                        run_id=f"task{t}.{m}.{h}.s{s}")
            for t in range(3) for m in ("mlp", "cnn") for h in ("A", "B") for s in range(3)]
    data = compare.pool([write_all(tmp_path / "runs", recs)])
    here = _plots_section(report.build_sections(data, baseline=None)[0])
    assert plots.Drawing(len(here.images)).workers == 0  # nine figures: drawn in this process

    started: list[int] = []

    class Spawned(plots.Drawing):
        def __init__(self, figures):
            super().__init__(figures, start_method="spawn")
            started.append(self.workers)

    monkeypatch.setattr(plots, "FIGURES_PER_WORKER", 1)
    monkeypatch.setattr(plots, "cpu_cores", lambda: 2)
    monkeypatch.setattr(plots, "Drawing", Spawned)
    pooled = _plots_section(report.build_sections(data, baseline=None)[0])
    assert started == [2]
    assert list(pooled.images) == list(here.images) and len(here.images) == 9
    assert all(png.startswith(b"\x89PNG") for png in pooled.images.values())
    assert pooled.images == here.images  # the same pixels, whichever process drew them


def test_drawing_workers_leave_ctrl_c_to_the_report_process(monkeypatch):
    import signal

    monkeypatch.setattr(plots, "FIGURES_PER_WORKER", 1)
    monkeypatch.setattr(plots, "cpu_cores", lambda: 2)
    with plots.Drawing(2, start_method="spawn") as drawing:
        assert drawing.workers == 2
        handler = drawing.submit(signal.getsignal, signal.SIGINT).result(timeout=120)
    assert handler == signal.SIG_IGN
    with plots.Drawing(2) as here:  # one CPU's worth: no pool, drawn at submit
        monkeypatch.setattr(plots, "cpu_cores", lambda: 1)
        assert plots.Drawing(50).workers == 0
        assert here.submit(len, b"abc").result() == 3
