"""`dlbench sweep`: the grid, bad input, the study table on hand-written records, plots, report, end to end."""
from __future__ import annotations

import json
import math

import pytest

from suite.reporting import report
from suite.results import records, study
from suite.running import sweep
from suite.running.config import SuiteOptions
from suite.errors import ConfigError, DlbenchError
from tests.helpers import make_record, write_all
from tests.test_cli import records_in, run


def opts(tmp_path, *sets: str, model: str = "mlp", **kw) -> SuiteOptions:
    return SuiteOptions(profile="smoke", device="cpu", tasks=["image_classification"], models=model,
                        results=tmp_path / "r", set=list(sets), **kw)


def test_the_grid_is_the_cartesian_product_first_axis_slowest():
    axes = sweep.parse_axes(["model.depth=1,2", "model.activation=relu, tanh ,sigmoid"])
    assert axes == [sweep.Axis("model.depth", ("1", "2")), sweep.Axis("model.activation", ("relu", "tanh", "sigmoid"))]
    points = sweep.grid(axes)
    assert len(points) == 6 and points[0] == {"model.depth": "1", "model.activation": "relu"}
    assert points[3] == {"model.depth": "2", "model.activation": "relu"}
    assert sweep.point_options(opts(__import__("pathlib").Path("/tmp"), "recipe.lr=0.1"), points[5]).set == \
        ["recipe.lr=0.1", "model.depth=2", "model.activation=sigmoid"]


@pytest.mark.parametrize("vary, expected", [
    (["model.depth"], "use KEY=v1,v2,..."),
    (["model.depth="], "gives no value"),
    (["model.depth=1,,1"], "repeats a value"),
    (["model.depth=1", "model.depth=2"], "is given twice"),
    (["nosuch.depth=1,2"], "unknown namespace 'nosuch'"),
    ([], "give at least one"),
])
def test_malformed_vary_is_one_line_naming_the_fix(vary, expected):
    with pytest.raises(ConfigError) as err:
        sweep.parse_axes(vary)
    assert expected in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("vary, sets, expected", [
    ("model.depht=1,2", (), "valid: recipe.lr, recipe.batch_size, recipe.optimizer, recipe.weight_decay, recipe.ema_decay, model.depth"),
    ("model.depth=1,two", (), "model.depth='two': wants an int (default 2)"),
    ("recipe.optimizer=adamw,adam", (), "use 'adamw' or 'sgd'"),
    ("data.fraction=0.5,2", (), "wants a fraction of the training split"),
    ("task.nosuch=1,2", (), "no selected task has this option"),
    ("model.depth=1,2", ("model.depth=3",), "is also given with --set: keep one"),
])
def test_unknown_keys_and_bad_values_stop_the_sweep_before_any_run(tmp_path, vary, sets, expected):
    with pytest.raises(ConfigError) as err:
        sweep.check(opts(tmp_path, *sets), sweep.parse_axes([vary]))
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()


def sweep_record(depth, seed, quality, ttt, hardware="A", **kw):
    return make_record(task="image_classification", model="mlp", seed=seed, quality=quality, ttt=ttt,
                       hardware=hardware, run_id=f"mlp.d{depth}.s{seed}.{hardware}", variant=f"model.depth={depth}",
                       throughput=100.0 * (seed + 1) / depth, params=1000 * depth, flops_per_sample=2000 * depth,
                       config={"overrides": {"model.depth": depth}, "seed": seed}, **kw)


RECORDS = [
    sweep_record(1, 0, 0.80, 10.0), sweep_record(1, 1, 0.84, 20.0), sweep_record(1, 2, 0.79, None),
    sweep_record(4, 0, 0.90, 5.0, host={"other_cpu_share": 0.3}), sweep_record(4, 1, 0.91, 7.0),
    sweep_record(4, 2, 0.99, 1.0, status="failed"),  # unfit: left out
    make_record(task="image_classification", model="mlp", seed=0, quality=0.95, run_id="mlp.default"),  # no variant
    sweep_record(2, 0, 0.5, None, hardware="B"),  # another machine: a study of its own with one value
]


def test_study_table_median_interval_reached_and_costs_per_variant():
    (found,) = study.studies(RECORDS)  # machine B's runs vary nothing; the default run is no variant
    assert found.varied == ["model.depth"] and found.key["hardware"] == "A"
    summary = study.summarize(found)
    assert list(summary["model.depth"]) == ["1", "4"]
    one, four = summary.iloc[0], summary.iloc[1]
    assert (one["runs"], one["reached"], one["quality"], one["time_to_target_s"]) == (3, 2, 0.80, 20.0)
    assert (one["quality_lo"], one["quality_hi"], one["quality_spread"]) == (0.79, 0.84, "range")  # 3 seeds
    assert one["time_to_target_s_hi"] == math.inf  # the missed seed can be drawn twice
    assert (four["runs"], four["reached"], four["quality"], four["time_to_target_s"]) == (2, 2, 0.905, 6.0)
    assert (four["params"], four["flops_per_sample"], four["throughput"]) == (4000, 8000, 37.5)  # (25 + 50) / 2
    assert one["throughput"] == 200.0
    table = study.to_table(summary, found)
    assert list(table.columns) == ["model.depth", "quality", "time to target s", "reached", "params", "FLOPs/sample",
                                   "throughput samples/s", "others' CPU (max)"]
    assert table.iloc[0]["others' CPU (max)"] == "-"  # hand-written records say nothing about the host
    assert table.iloc[1]["others' CPU (max)"] == "30%"
    assert table.iloc[1]["reached"] == "2/2" and table.iloc[1]["time to target s"].startswith("6 range [5, 7]")
    assert table.iloc[0]["quality"] == "0.8 range [0.79, 0.84]"


def test_a_median_that_missed_the_target_reads_not_reached_and_text_values_keep_their_order():
    recs = [sweep_record(1, s, 0.7 if s else 0.85, None if s else 3.0) for s in range(3)]
    for r, act in zip(recs, ("tanh", "relu", "sigmoid")):
        r["config"]["overrides"] = {"model.activation": act}
    recs += [dict(sweep_record(1, 5, 0.8, 2.0), run_id="x", config={"overrides": {"model.activation": "tanh"}})]
    (found,) = study.studies(recs)
    summary = study.summarize(found)
    assert list(summary["model.activation"]) == ["relu", "sigmoid", "tanh"]
    table = study.to_table(summary, found)
    assert list(table["time to target s"]) == ["not reached", "not reached", "2.5 range [2, 3]"]


def test_a_folder_of_speed_records_alone_gets_its_report_and_no_study(tmp_path):
    """`run_all.py --profile speed` once crashed writing its report: no run has a target, so no study."""
    speed = [make_record(task="image_classification", model=m, profile="speed", run_id=f"image_classification.{m}.speed")
             for m in ("cnn", "mlp")]
    for record in speed:
        record["target"], record["reached_target"], record["time_to_target_s"] = None, None, None
    assert study.studies(speed) == [] and study.runs_frame(speed).empty
    folder = write_all(tmp_path / "speed", speed)
    report.write_report([folder], tmp_path / "report.html")
    assert "image_classification" in (tmp_path / "report.html").read_text()


def test_write_study_draws_one_plot_per_key_and_the_report_has_a_studies_section(tmp_path):
    axes = sweep.parse_axes(["model.depth=1,4"])
    written = sweep.write_study([r for r in RECORDS if r["hardware"]["label"] == "A"], axes, tmp_path / "studies")
    names = sorted(p.name for p in written)
    assert names == ["image_classification.mlp.model.depth.csv", "image_classification.mlp.model.depth.md",
                     "image_classification.mlp.model.depth.png"]
    both = sweep.write_study(RECORDS, axes, tmp_path / "both")  # two machines: one study each, names apart
    assert sorted(p.name for p in both if p.suffix == ".png") == ["image_classification.mlp.A.model.depth.png",
                                                                  "image_classification.mlp.B.model.depth.png"]
    png = (tmp_path / "studies" / names[2]).read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "| 4 | 0.905 range [0.9, 0.91] |" in (tmp_path / "studies" / names[1]).read_text()
    folder = write_all(tmp_path / "r", RECORDS)
    files, _ = report.write_report([folder], folder / "report.html")
    page = files[0].read_text()
    assert '<h2 id="s' in page and ">Studies</h2>" in page and "study 1: image_classification / mlp" in page
    assert page.count("<img") >= 4  # the study plot besides the three per-group plots
    assert (folder / "report_tables" / "study_1.csv").is_file()
    plain = write_all(tmp_path / "p", [r for r in RECORDS if not r.get("variant")])
    files, _ = report.write_report([plain], plain / "report.html")
    assert ">Studies</h2>" not in files[0].read_text()  # no variants, no section


def test_a_failing_variant_keeps_the_others_and_records_carry_their_variant(tmp_path):
    # An activation name the factory rejects passes the up-front check (it is a str) and fails at build time.
    recs, status = sweep.run_sweep(opts(tmp_path), sweep.parse_axes(["model.activation=swish,tanh"]),
                                   log=lambda _m: None)
    assert status == 1 and [r["status"] for r in recs] == ["failed", "ok"]
    assert "use one of relu, tanh, sigmoid, gelu" in recs[0]["error"]
    assert [r["variant"] for r in recs] == ["model.activation=swish", "model.activation=tanh"]
    assert len(records_in(tmp_path / "r")) == 2


def test_a_tiny_sweep_runs_end_to_end_through_the_cli(tmp_path):
    results = tmp_path / "res"
    done = run("-m", "suite.cli", "sweep", "image_classification", "--model", "mlp", "--vary", "model.depth=1,2",
               "--vary", "model.activation=relu,gelu", "--seeds", "1", "--profile", "smoke", "--device", "cpu",
               "--results", str(results))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "sweep: 4 variants x 1 seeds = 4 runs" in done.stdout
    written = records_in(results)
    assert sorted(r["variant"] for r in written) == [
        "model.activation=gelu,model.depth=1", "model.activation=gelu,model.depth=2",
        "model.activation=relu,model.depth=1", "model.activation=relu,model.depth=2"]
    assert all(r["status"] == "ok" and records.validate(r) == [] for r in written)
    name = "image_classification.mlp.model.depth+model.activation"
    csv = (results / "studies" / f"{name}.csv").read_text().splitlines()
    assert csv[0].startswith("model.activation,model.depth,quality") and len(csv) == 5
    assert (results / "studies" / "image_classification.mlp.model.depth.png").is_file()
    assert (results / "studies" / "image_classification.mlp.model.activation.png").is_file()
    assert ">Studies</h2>" in (results / "report.html").read_text()
    bad = run("-m", "suite.cli", "sweep", "image_classification", "--model", "mlp", "--vary", "model.depth",
              "--profile", "smoke", "--results", str(results))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "KEY=v1,v2" in bad.stderr
    assert json.loads(json.dumps(len(records_in(results)))) == 4  # nothing ran


def test_a_sweep_keeps_the_order_its_values_were_given_in():
    recs = [sweep_record(1, 0, 0.8 + i / 100, 3.0) | {"run_id": act, "config": {"overrides": {"model.activation": act}}}
            for i, act in enumerate(("relu", "tanh", "sigmoid"))]
    (found,) = study.studies(recs, ["model.activation"], {"model.activation": ["relu", "tanh", "sigmoid"]})
    assert list(study.summarize(found)["model.activation"]) == ["relu", "tanh", "sigmoid"]
    (found,) = study.studies(recs)
    assert list(study.summarize(found)["model.activation"]) == ["relu", "sigmoid", "tanh"]


def test_a_sweep_varies_one_named_model(tmp_path):
    for models, expected in (("all", "name one model of the task (a sweep varies one model); models of "
                                     "image_classification: mlp, cnn"),
                             ("mlp,cnn", "name one model of the task"), ("mpl", "did you mean mlp?")):
        with pytest.raises(DlbenchError) as err:
            sweep.check(opts(tmp_path, model=models), sweep.parse_axes(["model.depth=1,2"]))
        assert expected in str(err.value) and "\n" not in str(err.value)
