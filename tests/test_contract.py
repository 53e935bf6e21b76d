"""The contract test: every task the `dlbench.tasks` entry points declare x every model, smoke profile, CPU.

A new task is covered by declaring its entry point; nothing here names a task. Toy tasks of the
harness tests are not entry points, so they never reach these cases.
"""
from __future__ import annotations

import math

import pytest
import torch

from suite.results import records
from suite.taskapi import registry
from suite.taskapi.models import FAMILIES, declaration
from suite.running.run_record import ESTIMATOR_UTILISATION_NOTE
from suite.running.runner import run_one
from suite.taskapi.spec import PROFILES, TARGETLESS_PROFILES
from suite.taskapi.task import RLTask, Task, missing_members

TASKS = registry.entry_point_tasks()
CASES = [(name, model) for name, cls in sorted(TASKS.items()) for model in cls.models]
SUPERVISED = [(n, m) for n, m in CASES if issubclass(TASKS[n], Task) and not declaration(TASKS[n], m).estimator]
ESTIMATORS = [(n, m) for n, m in CASES if declaration(TASKS[n], m).estimator]


def test_registry_is_not_empty_and_every_entry_point_loaded():
    assert TASKS, "no task registered: is dlbench installed (pip install -e .), so its entry points exist?"
    registry.load_tasks()
    assert registry.UNAVAILABLE == {}, f"task entry points failed to load: {registry.UNAVAILABLE}"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_declares_the_contract(name):
    cls = TASKS[name]
    assert cls.version >= 1
    assert issubclass(cls, (Task, RLTask)) and not missing_members(cls)
    assert cls.kind == ("supervised" if issubclass(cls, Task) else "rl")
    for opt in cls.options:
        assert opt.help.strip() and "\n" not in opt.help, f"{name}: option {opt.name} needs a one-line help"
        assert isinstance(opt.default, opt.type) or opt.default is None
    assert set(cls.profiles) == set(PROFILES), f"{name} must declare smoke, quick, full and speed"
    for profile, prof in cls.profiles.items():
        if profile in TARGETLESS_PROFILES:
            assert prof.target is None, f"{name}/{profile}: the speed profile has no target"
            assert set(prof.recipes) <= set(cls.models)
            continue
        split, metric = prof.target.metric.split("/", 1)
        assert split in prof.eval_splits, f"{name}/{profile}: target split {split!r} is not evaluated"
        # Validation decides, test reports: no run stops on (or is tuned against) the split it reports.
        assert split != "test" and "test" in prof.eval_splits, f"{name}/{profile}: stop on val, report test"
        assert prof.budget.eval_every, f"{name}/{profile}: the profile sets the evaluation cadence"
        if cls.kind == "supervised":
            assert metric in cls.metrics, f"{name}/{profile}: target metric {metric!r} is not declared"
            assert cls.metrics[metric] == prof.target.higher_is_better
        assert prof.target.source.strip(), f"{name}/{profile}: target has no source"
        assert set(prof.recipes) <= set(cls.models)


@pytest.mark.parametrize("name,model", SUPERVISED)
def test_supervised_model_trains_one_step(name, model):
    """Finite loss, and every trainable parameter receives a gradient."""
    cls = TASKS[name]
    spec = cls.spec_for("smoke", model)
    import os
    from pathlib import Path

    task = cls(spec, Path(os.environ["DLBENCH_DATA"]))
    torch.manual_seed(0)
    net = task.build_model()
    batch = next(task.load("train").batches(min(8, spec.recipe.batch_size), shuffle=False))
    loss = task.loss(net, batch)
    assert loss.dim() == 0 and math.isfinite(loss.item())
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None)]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    net.eval()
    with torch.no_grad():
        metrics = task.evaluate(net, task.load(spec.eval_splits[0]))
    assert set(cls.metrics) <= set(metrics), f"declared metrics missing: {set(cls.metrics) - set(metrics)}"


@pytest.mark.parametrize("name,model", CASES)
def test_smoke_run_writes_a_record_that_round_trips(name, model, smoke_options):
    record = run_one(TASKS[name], model, 0, smoke_options, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert records.validate(record) == []
    if declaration(TASKS[name], model).estimator:  # fitted or a rule: no FLOP count, so no utilisation
        assert record["utilisation"] is None and record["utilisation_note"] == ESTIMATOR_UTILISATION_NOTE
    else:  # model FLOP/s over the machine's measured peak (tests measure it small, once: conftest.py)
        assert record["utilisation"] is not None, record["utilisation_note"]
        assert 0 < record["utilisation"] <= 1, (record["utilisation"], record["flops_per_sample"],
                                                record["flops_method"])
        assert record["hardware"]["peak_flops"]["fp32"] > 0 and record["flops_method"]
    loaded = records.read_records([smoke_options.results])
    assert len(loaded) == 1
    assert {k: v for k, v in loaded[0].items() if k != "_path"} == \
        {k: v for k, v in record.items() if k != "_path"}
    assert record["family"] == declaration(TASKS[name], model).family in FAMILIES
    assert record["curve"], "no eval point in the learning curve"
    if (name, model) in ESTIMATORS:
        check_estimator_record(record, TASKS[name])
        return
    assert record["train_time_s"] > 0 and record["throughput"]["value"] > 0
    target = TASKS[name].profiles["smoke"].target
    assert target.metric in record["final_metrics"] and target.quality_metric in record["final_metrics"]
    assert record["eval_cadence"]["every"] == TASKS[name].profiles["smoke"].budget.eval_every
    assert all(math.isfinite(v) for v in record["final_metrics"].values())
    steps = [p["step"] for p in record["curve"]]
    assert steps == sorted(set(steps)), "curve steps must increase"
    assert all(math.isfinite(p["train/loss"]) for p in record["curve"])
    if TASKS[name].kind == "rl":
        assert record["throughput"]["unit"] == "env_steps/s"
        assert record["samples"] == steps[-1], "RL samples are the env steps taken"
        assert all(p["val/episodes"] >= 1 for p in record["curve"])
        assert record["final_metrics"]["test/episodes"] >= 1
    else:
        assert record["throughput"]["unit"] == "samples/s"
    # each of the task's own units is reported beside samples/s as a finite, positive rate
    extra = record["throughput"].get("extra") or {}
    assert all(math.isfinite(v) and v > 0 for v in extra.values()), extra


def check_estimator_record(record: dict, cls) -> None:
    """A fitted model: one fit (train time, samples/s), one eval point; a rule: train time 0, no throughput."""
    assert len(record["curve"]) == 1, "a fitted model or rule is evaluated once"
    target = cls.profiles["smoke"].target.metric
    assert target in record["final_metrics"]
    assert all(math.isfinite(v) for v in record["final_metrics"].values())
    if record["train_time_s"] == 0:  # a rule
        assert record["throughput"] is None and record["curve"][0]["step"] == 0
        if record["reached_target"]:
            assert record["time_to_target_s"] == 0
    else:
        assert record["throughput"]["unit"] == "samples/s" and record["throughput"]["value"] > 0
        assert record["samples"] == record["data_info"]["train"]["samples"]
        assert record["params"] > 0, "fitted coefficients count as parameters"
