"""Issue #16's quick recipes: each keeps the old target, time cap and evaluation cadence, and its
schedule is the budget it runs; the model options the new recipes use do what they say."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from suite import registry
from suite.errors import ConfigError
from suite.optim import build_optimizer
from suite.task import Recipe

BENCH = Path(__file__).resolve().parent.parent / "bench" / "quick_recipes.py"


def old_recipes() -> dict:
    """bench/quick_recipes.py's OLD table: each default model's quick budget and recipe before issue #16."""
    spec = importlib.util.spec_from_file_location("quick_recipes_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.OLD


@pytest.mark.parametrize("task_name", ["keyword_spotting", "sentiment", "image_classification"])
def test_new_quick_recipe_keeps_target_cap_and_cadence(task_name):
    registry.load_tasks()
    task = registry.get_task(task_name)
    old_budget, _old_recipe, _precision = old_recipes()[task_name]
    spec = task.spec_for("quick", task.default_model)
    assert spec.target == task.profiles["quick"].target  # the target is the profile's, never the recipe's
    assert spec.budget.max_time_s >= old_budget.max_time_s
    assert spec.budget.evals_per_epoch <= old_budget.evals_per_epoch  # no extra evaluations bought
    assert spec.budget.max_epochs <= old_budget.max_epochs  # the schedule runs over the budget it has


def test_ds_cnn_time_mask_sets_the_widest_time_mask():
    from tasks.keyword_spotting import DSCNN

    model = DSCNN(width=8, blocks=1, dropout=0.0, time_mask=3)
    assert [m.mask_param for m in model.frontend.time_masks] == [3, 3]
    audio = (torch.randn(2, 16000) * 3000).to(torch.int16)
    assert model(audio, augment=True).shape == (2, 12)


def tiny_setup():
    from tasks.text import models as tm

    return tm.TextSetup(vocab_size=tm.MINILM_CONFIG["vocab_size"], pad_id=0, max_len=16)


def test_mean_pooling_ignores_padding_and_frozen_embeddings_leave_the_optimizer():
    from tasks.text import models as tm

    torch.manual_seed(0)
    model = tm.pretrained_classifier(tiny_setup(), layers=1, pooling="mean", freeze_embeddings=True).eval()
    assert isinstance(model, tm.MeanPoolClassifier)
    embeddings = model.encoder.get_input_embeddings().weight
    assert not embeddings.requires_grad
    optimised = {id(p) for group in build_optimizer(model, Recipe()).param_groups for p in group["params"]}
    assert id(embeddings) not in optimised and id(model.head.weight) in optimised
    assert all(not p.requires_grad for n, p in model.encoder.named_parameters() if n.startswith("pooler."))

    ids = torch.tensor([[101, 2307, 3185, 102, 0, 0]])
    mask = (ids != 0).long()
    other_padding = ids.clone()
    other_padding[0, 4:] = 2000  # what stands in padded places must not change the sentence's logits
    with torch.no_grad():
        assert torch.allclose(model(ids, mask), model(other_padding, mask), atol=1e-5)
        assert model(ids, mask).shape == (1, 2)


def test_cls_pooling_stays_the_default():
    from tasks.text import models as tm

    model = tm.pretrained_classifier(tiny_setup(), layers=1)
    assert isinstance(model, tm.HFClassifier)
    assert model.hf.get_input_embeddings().weight.requires_grad


def test_unknown_pooling_is_refused():
    from tasks.text import models as tm

    with pytest.raises(ConfigError, match="model.pooling"):
        tm.pretrained_classifier(tiny_setup(), layers=1, pooling="max")
