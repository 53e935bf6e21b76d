"""Variants from the command line: `--set recipe.* / model.*` reach the run, its config hash and its table row."""
from __future__ import annotations

import json

import pytest
import torch

from suite.results import compare, records
from suite.running.benchmark import run_suite
from suite.running.config import SuiteOptions
from suite.errors import ConfigError
from suite.running.runner import planned_config
from tasks.image_classification import ImageClassification, cnn, mlp
from tests.test_cli import run


def opts(tmp_path, *sets: str, models: str = "mlp", **kw) -> SuiteOptions:
    return SuiteOptions(profile="smoke", device="cpu", tasks=["image_classification"], models=models,
                        results=tmp_path / "r", set=list(sets), **kw)


def spec(*sets: str, model: str = "mlp"):
    given = dict(s.split("=", 1) for s in sets)
    return ImageClassification.spec_for("smoke", model, 0, {}, given)


def test_recipe_keys_replace_the_resolved_recipe_with_values_of_the_fields_type():
    base = spec().recipe
    got = spec("recipe.lr=0.01", "recipe.batch_size=32", "recipe.optimizer=sgd", "recipe.weight_decay=0.1")
    assert (got.recipe.lr, got.recipe.batch_size, got.recipe.optimizer, got.recipe.weight_decay) == (0.01, 32, "sgd", 0.1)
    assert type(got.recipe.batch_size) is int and got.recipe.model_kwargs == base.model_kwargs
    assert got.overrides == {"recipe.batch_size": 32, "recipe.lr": 0.01, "recipe.optimizer": "sgd",
                             "recipe.weight_decay": 0.1}
    assert spec().overrides == {} and spec().recipe == base


@pytest.mark.parametrize("setting, expected", [
    ("recipe.lr=-1", "recipe.lr=-1.0: must be > 0"),
    ("recipe.batch_size=abc", "wants an int"),
    ("recipe.optimizer=adam", "use 'adamw' or 'sgd'"),
    ("recipe.weight_decay=-0.1", "must be >= 0"),
    ("recipe.momentum=0.5", "valid: recipe.lr, recipe.batch_size, recipe.optimizer, recipe.weight_decay, recipe.ema_decay, model.depth"),
    ("model.nosuch=1", "model.depth, model.width, model.activation, model.dropout"),
])
def test_bad_values_and_unknown_keys_name_key_value_and_rule(setting, expected):
    with pytest.raises(ConfigError) as err:
        spec(setting)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_model_keys_merge_into_model_kwargs_parsed_as_int_float_bool_or_str():
    got = spec("model.depth=4", "model.activation=tanh", "model.dropout=0.5")
    assert got.recipe.model_kwargs == {"width": 64, "depth": 4, "activation": "tanh", "dropout": 0.5}
    assert spec("model.residual=true", model="cnn").recipe.model_kwargs["residual"] is True


def test_overrides_enter_the_config_and_its_hash_only_when_set():
    plain = planned_config(ImageClassification, "mlp", 0, SuiteOptions(profile="smoke", device="cpu"), "cpu")
    lr = planned_config(ImageClassification, "mlp", 0,
                        SuiteOptions(profile="smoke", device="cpu", set=["recipe.lr=0.01"]), "cpu")
    assert "overrides" not in plain  # default runs keep the hash they had before variants existed
    assert lr["overrides"] == {"recipe.lr": 0.01} and lr["recipe"]["lr"] == 0.01
    assert records.config_hash(plain) != records.config_hash(lr)


def test_default_models_are_unchanged_and_depth_width_activation_vary_them():
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # counts of the models before depth / width / activation existed
    assert [params(mlp(1, 8, 10)), params(mlp(1, 28, 10)), params(mlp(3, 32, 10, width=2048))] == \
        [1130506, 1867786, 10518538]
    assert [params(cnn(1, 8, 10)), params(cnn(1, 28, 10, width=24)), params(cnn(3, 32, 10, width=64, residual=True))] \
        == [94186, 53362, 6573120]
    assert params(mlp(1, 8, 10, depth=4, width=16)) != params(mlp(1, 8, 10, width=16))
    assert params(cnn(1, 8, 10, depth=2)) < params(cnn(1, 8, 10))
    for name in ("relu", "tanh", "sigmoid", "gelu"):
        assert params(cnn(1, 8, 10, activation=name)) == 94186
    with pytest.raises(ConfigError, match="use one of relu, tanh, sigmoid, gelu"):
        mlp(1, 8, 10, activation="swish")


def test_two_variants_of_one_model_are_separate_rows_and_resume_tells_them_apart(tmp_path):
    quiet = lambda _m: None  # noqa: E731
    run_suite(opts(tmp_path), log=quiet)
    run_suite(opts(tmp_path, "recipe.lr=0.01", "model.depth=4"), log=quiet)
    written = [json.loads(p.read_text()) for p in sorted((tmp_path / "r" / "runs").glob("*.json"))]
    assert sorted(str(r["variant"]) for r in written) == ["None", "recipe.lr=0.01,model.depth=4"]
    assert all(r["status"] == "ok" for r in written)
    varied = next(r for r in written if r["variant"])
    assert varied["config"]["overrides"] == {"recipe.lr": 0.01, "model.depth": 4}
    assert varied["params"] != next(r for r in written if not r["variant"])["params"]
    table = compare.to_table(compare.to_frame(written), "model")
    assert len(table) == 2 and sorted(table["variant"]) == ["-", "model.depth=4; recipe.lr=0.01"]
    again, _ = run_suite(opts(tmp_path, "model.depth=4", "recipe.lr=0.01", resume=True), log=quiet)
    assert len(list((tmp_path / "r" / "runs").glob("*.json"))) == 2  # same variant, any order: resumed


def test_an_unknown_key_stops_the_suite_before_any_run_in_one_line(tmp_path):
    done = run("run_all.py", "--profile", "smoke", "--device", "cpu", "--tasks", "image_classification",
               "--models", "mlp", "--set", "model.depht=4", "--results", str(tmp_path / "r"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "valid: recipe.lr" in done.stderr and "model.depth" in done.stderr
    assert not (tmp_path / "r" / "runs").exists() or not list((tmp_path / "r" / "runs").glob("*.json"))


def test_data_fraction_trains_on_a_seeded_fraction_of_the_training_split(tmp_path):
    from suite.taskapi.data import TensorSource, training_fraction

    source = TensorSource({"fingerprint": "f"}, x=torch.arange(100.0), y=torch.arange(100))
    cut = training_fraction(source, 0.3, seed=0)
    assert len(cut) == 30 and cut.info["fraction"] == 0.3 and torch.equal(cut.tensors["x"].long(), cut.tensors["y"])
    assert torch.equal(training_fraction(source, 0.3, seed=0).tensors["y"], cut.tensors["y"])
    assert not torch.equal(training_fraction(source, 0.3, seed=1).tensors["y"], cut.tensors["y"])
    assert training_fraction(source, None, 0) is source
    for bad in ("0", "1.5", "half"):
        with pytest.raises(ConfigError, match="wants a fraction of the training split in"):
            spec(f"data.fraction={bad}")

    run_suite(opts(tmp_path, "data.fraction=0.3"), log=lambda _m: None)
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "r" / "runs").glob("*.json")]
    full = len(ImageClassification(spec(), tmp_path).load("train"))
    assert record["status"] == "ok" and record["variant"] == "data.fraction=0.3"
    assert record["data_info"]["train"]["samples"] == round(full * 0.3)


def test_a_model_key_some_models_lack_records_their_runs_as_skipped_and_the_others_run(tmp_path):
    records_, status = run_suite(opts(tmp_path, "model.depth=1", models="mlp,resnet18,logreg_pixels"),
                                 log=lambda _m: None)
    by_model = {r["model"]: r for r in records_}
    assert status == 0 and by_model["mlp"]["status"] == "ok" and by_model["mlp"]["variant"] == "model.depth=1"
    for model in ("resnet18", "logreg_pixels"):
        assert by_model[model]["status"] == "skipped"
        assert by_model[model]["error"] == (f"image_classification/{model} does not take --set model.depth; "
                                            "the other models ran with it")
    assert len(list((tmp_path / "r" / "runs").glob("*.json"))) == 3
    with pytest.raises(ConfigError, match="model.dpeth='1': not a key of image_classification/resnet18; valid: "):
        run_suite(opts(tmp_path, "model.dpeth=1", models="resnet18,mlp"), log=lambda _m: None)  # no model takes it
