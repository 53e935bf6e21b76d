"""The precision policies a recipe declares: `--precision auto` on CPUs (the rule in
suite.running.device.choose_precision, the machine's verdict from flags and measured peaks, the flags read
from a fake /proc/cpuinfo, the run's record), on CUDA GPUs (`Recipe.cuda_tf32` and the race in
bench/gpu_precision.py behind it) and channels_last on CPUs (use_channels_last)."""
from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from suite.measuring import fingerprint, peak
from suite.running import runner
from suite.running.config import SuiteOptions
from suite.running.device import choose_precision, cpu_bf16_verdict, use_channels_last
from suite.taskapi import registry

ROOT = Path(__file__).resolve().parent.parent

CPU = torch.device("cpu")
FAST = (True, "flags avx512_bf16; measured matmul peak bf16 909 / fp32 226 GFLOP/s = 4.0x")
SLOW = (False, "no native bf16 in the CPU flags")

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni avx_vnni
"""
SAPPHIRE_RAPIDS = ("model name\t: Intel Xeon Platinum 8488C\n"
                   "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n")
OLD_XEON = "model name\t: Intel Xeon Processor\nflags\t\t: fpu sse2 avx avx2 avx512f avx512bw\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize("recipe_bf16, machine, expected", [
    (True, FAST, "bf16"),    # declared and the machine qualifies
    (True, SLOW, "fp32"),    # declared, machine slow in bf16
    (False, FAST, "fp32"),   # machine fast, recipe declares no win
    (False, SLOW, "fp32"),
])
def test_auto_on_cpu_picks_bf16_only_when_recipe_and_machine_agree(recipe_bf16, machine, expected):
    precision, why = choose_precision("auto", CPU, recipe_bf16, machine)
    assert precision == expected
    assert why.startswith("auto: ")
    if recipe_bf16:
        assert machine[1] in why  # the evidence is in the reason


@pytest.mark.parametrize("request_", ["bf16", "fp32"])
@pytest.mark.parametrize("recipe_bf16, machine", [(True, FAST), (True, SLOW), (False, FAST), (False, SLOW)])
def test_an_explicit_precision_always_wins(request_, recipe_bf16, machine):
    expected = (request_, f"--precision {request_} asked explicitly")
    assert choose_precision(request_, CPU, recipe_bf16, machine) == expected


def test_auto_without_a_verdict_stays_fp32():
    assert choose_precision("auto", CPU, True, None)[0] == "fp32"


def test_flags_from_fake_cpuinfo():
    assert fingerprint.cpu_flags(EPYC) == ["avx2", "avx512_bf16", "avx512f"]
    assert fingerprint.cpu_flags(SAPPHIRE_RAPIDS) == ["amx_bf16", "amx_tile", "avx2", "avx512_bf16", "avx512f"]
    assert fingerprint.cpu_flags(OLD_XEON) == ["avx2", "avx512f"]
    assert fingerprint.cpu_flags(GRAVITON3) == ["bf16"]
    assert fingerprint.cpu_flags("processor\t: 0\n") is None  # no flags line: unknown


PEAK_4X = {"fp32": 226e9, "bf16": 909e9}
PEAK_1X = {"fp32": 226e9, "bf16": 240e9}


def test_verdict_needs_native_bf16_and_a_measured_2x():
    fast, why = cpu_bf16_verdict(fingerprint.cpu_flags(EPYC), PEAK_4X)
    assert fast and "avx512_bf16" in why and "4.0x" in why
    assert cpu_bf16_verdict(fingerprint.cpu_flags(SAPPHIRE_RAPIDS), PEAK_4X)[0]
    assert not cpu_bf16_verdict(fingerprint.cpu_flags(EPYC), PEAK_1X)[0]  # a flag but no measured win
    slow, why = cpu_bf16_verdict(fingerprint.cpu_flags(OLD_XEON), PEAK_4X)  # no flag: figures not trusted
    assert not slow and "no native bf16" in why
    assert cpu_bf16_verdict(None, PEAK_4X)[0]  # flags unknown (macOS): the peaks decide
    no_peak = cpu_bf16_verdict(fingerprint.cpu_flags(EPYC), {"fp32": None, "bf16": None, "error": "OOM"})
    assert no_peak == (False, "no measured bf16 / fp32 peak (OOM)")


def test_a_cpu_without_native_bf16_is_not_measured(monkeypatch, tmp_path):
    monkeypatch.setattr(fingerprint, "cpu_flags", lambda: ["avx2", "avx512f"])
    monkeypatch.setattr(peak, "machine_peak", lambda *a, **k: pytest.fail("measured a CPU without bf16"))
    assert peak.cpu_bf16_fast(tmp_path)[0] is False


def test_a_run_records_the_resolved_precision_and_why(monkeypatch, tmp_path):
    from tasks.image_classification import ImageClassification

    monkeypatch.setattr(peak, "cpu_bf16_fast", lambda _data_dir: FAST)
    declaring = dict(ImageClassification.profiles)
    smoke = declaring["smoke"]
    declaring["smoke"] = dataclasses.replace(smoke, recipes={
        **smoke.recipes, "mlp": dataclasses.replace(smoke.recipes.get("mlp"), cpu_bf16=True)})

    class Declaring(ImageClassification):
        profiles = declaring

    records = {}
    for task, request, expected in ((Declaring, "auto", "bf16"), (ImageClassification, "auto", "fp32"),
                                    (Declaring, "fp32", "fp32")):
        opts = SuiteOptions(profile="smoke", device="cpu", precision=request, results=tmp_path, max_steps=1)
        record = runner.run_one(task, "mlp", 0, opts, log=lambda _m: None)
        assert record["status"] == "ok", record["error"]
        assert record["config"]["precision"] == expected and record["config"]["precision_request"] == request
        assert record["precision_reason"]
        assert record["hardware"]["cpu_flags"] is None or isinstance(record["hardware"]["cpu_flags"], list)
        records[task.__name__, request] = record
    assert FAST[1] in records["Declaring", "auto"]["precision_reason"]
    assert records["Declaring", "auto"]["config"]["recipe"]["cpu_bf16"] is True
    # a recipe that declares nothing keeps the config (and hash) it had before `cpu_bf16` existed
    assert "cpu_bf16" not in records["ImageClassification", "auto"]["config"]["recipe"]


def test_channels_last_on_cpu_only_where_the_recipe_declares_it():
    assert use_channels_last(CPU, recipe_cpu=True)
    assert not use_channels_last(CPU)
    assert not use_channels_last(torch.device("mps"), recipe_cpu=True)


def test_a_channels_last_recipe_trains_on_cpu(tmp_path):
    from tasks.image_classification import ImageClassification

    smoke = ImageClassification.profiles["smoke"]

    class Declaring(ImageClassification):
        profiles = {**ImageClassification.profiles, "smoke": dataclasses.replace(smoke, recipes={
            **smoke.recipes, "cnn": dataclasses.replace(smoke.recipes["cnn"], cpu_channels_last=True)})}

    opts = SuiteOptions(profile="smoke", device="cpu", precision="fp32", results=tmp_path, max_steps=2)
    record = runner.run_one(Declaring, "cnn", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["config"]["recipe"]["cpu_channels_last"] is True


def test_evaluating_more_often_leaves_the_training_trajectory_unchanged(tmp_path):
    """Issue #16 evaluates some quick recipes more often (finer time-to-target): that is only honest if
    evaluation draws no random numbers (dropout, SpecAugment, data order) and changes no state."""
    from suite.taskapi.spec import Budget
    from tasks.keyword_spotting import KeywordSpotting

    finals = []
    for eval_every in (16, 48):  # samples: every step and every third step at batch 16
        smoke = KeywordSpotting.profiles["smoke"]
        profiles = {**KeywordSpotting.profiles, "smoke": dataclasses.replace(
            smoke, target=dataclasses.replace(smoke.target, value=1.01),  # never met: all 6 steps run
            budget=Budget(max_steps=6, max_time_s=60, eval_every=eval_every))}
        task = type("Cadence", (KeywordSpotting,), {"profiles": profiles})
        opts = SuiteOptions(profile="smoke", device="cpu", precision="fp32", results=tmp_path)
        record = runner.run_one(task, "ds_cnn", 0, opts, log=lambda _m: None)
        assert record["status"] == "ok", record["error"]
        assert record["steps"] == 6 and len(record["curve"]) == 6 * 16 // eval_every
        finals.append(record["final_metrics"])
    assert finals[0] == finals[1]


# -- CUDA: Recipe.cuda_tf32 and the race behind it (bench/gpu_precision.py) ---------------------------

CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def gpu_race():
    from tests.helpers import load_script

    return load_script("bench/gpu_precision.py", "bench_gpu_precision")


@pytest.mark.parametrize("tf32, supported, expected", [
    (False, True, "bf16"), (True, True, "fp32"), (False, False, "fp32"), (True, False, "fp32")])
def test_auto_on_cuda_follows_the_recipe_declaration(monkeypatch, tf32, supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    precision, why = choose_precision("auto", CUDA, recipe_cuda_tf32=tf32)
    assert precision == expected
    assert ("cuda_tf32" in why) == tf32
    assert choose_precision("bf16", CUDA, recipe_cuda_tf32=True)[0] == "bf16"  # explicit still wins


def speed_record(task, model, precision, rate, **kw):
    record = {"status": "ok", "profile": "speed", "task": task, "model": model,
              "config": {"device": "cuda:0", "precision": precision, "compile": False},
              "throughput": {"value": rate, "unit": "samples/s"}}
    for key, value in kw.items():
        (record["config"] if key in ("device", "compile") else record)[key] = value
    return record


def test_the_race_takes_medians_of_eager_cuda_speed_runs_and_applies_the_threshold(gpu_race):
    records = [speed_record("t", "a", "bf16", r) for r in (100, 90, 300)]  # median 100
    records += [speed_record("t", "a", "fp32", r) for r in (111, 115)]  # median 113: >= 1.10x
    records += [speed_record("t", "b", "bf16", 100), speed_record("t", "b", "fp32", 109)]  # under 1.10x
    records += [speed_record("t", "b", "fp32", 1e9, compile=True),  # compiled, CPU, failed, other profile: out
                speed_record("t", "b", "fp32", 1e9, device="cpu"),
                speed_record("t", "b", "fp32", 1e9, status="failed"),
                speed_record("t", "b", "fp32", 1e9, profile="quick"),
                speed_record("t", "c", "bf16", 100)]  # one precision only: no row
    rows = {row["model"]: row for row in gpu_race.race(records)}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["bf16"] == 100 and rows["a"]["fp32"] == 113 and rows["a"]["tf32"] is True
    assert rows["b"]["ratio"] == pytest.approx(1.09) and rows["b"]["tf32"] is False


def test_every_cuda_tf32_declaration_matches_the_shipped_gpu_race(gpu_race):
    """The recipes' `cuda_tf32` are what the shipped GPU speed records show: a declaration changed
    without a race (or a race rerun without updating the recipes) fails here."""
    from suite.results.records import read_records

    registry.load_tasks()
    rows = gpu_race.race(read_records(sorted((ROOT / "results" / "reference").glob("NVIDIA-*"))))
    assert rows, "no GPU speed records under results/reference/"
    wrong = [(r["task"], r["model"], round(r["ratio"], 2)) for r in rows
             if gpu_race.declared(r["task"], r["model"]) != r["tf32"]]
    assert not wrong, wrong
    assert any(r["tf32"] for r in rows) and not all(r["tf32"] for r in rows)


def test_cuda_tf32_enters_the_config_only_when_declared():
    from suite.running.config import RunOptions

    image = registry.get_task("image_classification")
    atari = registry.get_task("atari_rl")
    opts = RunOptions(profile="speed")
    plain = runner.resolved_config(image.spec_for("speed", "cnn"), opts, "cuda", "bf16", 1)
    declared_ = runner.resolved_config(atari.spec_for("speed", "ppo_cnn"), opts, "cuda", "fp32", 1)
    assert "cuda_tf32" not in plain["recipe"]
    assert declared_["recipe"]["cuda_tf32"] is True


def test_a_peak_measured_busy_does_not_decide_against_native_flags():
    busy = {**PEAK_1X, "other_cpu_share": 0.84}
    fast, why = cpu_bf16_verdict(fingerprint.cpu_flags(EPYC), busy)
    assert fast and "84%" in why and "flags decide" in why
    assert not cpu_bf16_verdict(fingerprint.cpu_flags(EPYC), {**PEAK_1X, "other_cpu_share": 0.1})[0]  # idle 1x: no
    assert not cpu_bf16_verdict(fingerprint.cpu_flags(OLD_XEON), busy)[0]  # no native flag: still no
    assert not cpu_bf16_verdict(None, busy)[0]  # flags unknown: the (busy) peaks still decide


def quick_record(task, model, precision, ttt, seed=0, **kw):
    record = {"status": "ok", "profile": "quick", "task": task, "model": model, "seed": seed,
              "config": {"device": "cuda:0", "precision": precision, "compile": False},
              "reached_target": ttt is not None, "time_to_target_s": ttt}
    for key, value in kw.items():
        (record["config"] if key in ("device", "compile") else record)[key] = value
    return record


def test_the_time_to_target_race_counts_a_miss_as_never_and_applies_the_threshold(gpu_race):
    records = [quick_record("t", "a", "bf16", t, seed=i) for i, t in enumerate((3.0, 3.3, None))]  # median 3.3
    records += [quick_record("t", "a", "fp32", t, seed=i) for i, t in enumerate((2.9, 2.8, 3.0))]  # 2.9
    records += [quick_record("t", "b", "bf16", t, seed=i) for i, t in enumerate((2.0, 2.1))]
    records += [quick_record("t", "b", "fp32", t, seed=i) for i, t in enumerate((None, None))]  # never
    records += [quick_record("t", "b", "bf16", 99.0, device="cpu"), quick_record("t", "b", "bf16", 99.0, compile=True),
                quick_record("t", "b", "bf16", 99.0, profile="speed"),
                quick_record("t", "b", "bf16", 99.0, status="failed")]  # left out
    rows = {row["model"]: row for row in gpu_race.race_time_to_target(records)}
    assert rows["a"]["bf16"] == 3.3 and rows["a"]["fp32"] == 2.9
    assert rows["a"]["ratio"] == pytest.approx(3.3 / 2.9) and rows["a"]["tf32"] is True  # 1.14x
    assert rows["a"]["reached"] == {"bf16": 2, "fp32": 3}
    assert rows["b"]["fp32"] == math.inf and rows["b"]["ratio"] == 0.0 and rows["b"]["tf32"] is False
    assert gpu_race.race_time_to_target([quick_record("t", "a", "bf16", 1.0)]) == []  # one precision: no row


def test_the_time_to_target_race_reads_the_shipped_quick_records_and_says_when_it_cannot():
    done = subprocess.run([sys.executable, "bench/gpu_precision.py", "--time-to-target", "--from-records",
                           str(ROOT / "results" / "reference" / "NVIDIA-H200")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    # The shipped GPU quick records ran in bf16 only: no race to read, and the bench says so in one line.
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == "gpu_precision: no model has eager CUDA quick runs in both bf16 and fp32"


def test_the_live_time_to_target_race_runs_both_precisions_alternating_first(gpu_race, tmp_path):
    """The sequence the GPU check runs (`--time-to-target` without records), here on a CPU and the smoke
    profile: each seed trains in bf16 and in fp32, the first precision alternating from seed to seed, and
    every run leaves its record with the precision it asked for."""
    done = gpu_race.run_time_to_target_race(["image_classification"], reps=2, results=tmp_path, device="cpu",
                                            profile="smoke")
    assert [(r["seed"], r["config"]["precision"]) for r in done] == [(0, "fp32"), (0, "bf16"), (1, "bf16"),
                                                                      (1, "fp32")]
    assert all(r["status"] == "ok" and r["profile"] == "smoke" for r in done)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4
    assert gpu_race.race_time_to_target(done) == []  # smoke runs on a CPU never decide a CUDA quick recipe


def test_a_fitted_model_records_the_fp32_it_runs_in_whatever_is_asked(tmp_path):
    """scikit-learn fits and predicts on the host in fp32: `--precision bf16` must not label it bf16 (the
    families view would then name it "logreg_pixels in bf16"), and a Ray driver's planned config agrees."""
    image = registry.get_task("image_classification")
    opts = SuiteOptions(profile="smoke", device="cpu", precision="bf16", results=tmp_path)
    record = runner.run_one(image, "logreg_pixels", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["config"]["precision"] == "fp32" and record["config"]["precision_request"] == "bf16"
    assert record["precision_reason"].startswith("a fitted model fits and predicts on the host in fp32")
    planned = runner.planned_config(image, "logreg_pixels", 0, opts, "cpu")
    assert planned["precision"] == "fp32" and planned == {k: v for k, v in record["config"].items()}
    deep = runner.run_one(image, "mlp", 0, opts, log=lambda _m: None)
    assert deep["config"]["precision"] == "bf16", "a trained model still runs what was asked"


def test_a_planned_cuda_config_follows_the_recipes_tf32_declaration():
    """The config a Ray driver expects from a CUDA worker under `auto`: fp32 where the recipe declares
    TF32 faster (atari full ppo_cnn), bf16 elsewhere, fp32 for a fitted model."""
    atari, image = registry.get_task("atari_rl"), registry.get_task("image_classification")
    opts = SuiteOptions(profile="full")
    assert atari.profiles["full"].recipes["ppo_cnn"].cuda_tf32
    assert runner.planned_config(atari, "ppo_cnn", 0, opts, "cuda:0")["precision"] == "fp32"
    assert runner.planned_config(image, "cnn", 0, opts, "cuda:0")["precision"] == "bf16"
    assert runner.planned_config(image, "logreg_pixels", 0, opts, "cuda:0")["precision"] == "fp32"
