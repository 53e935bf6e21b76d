"""The quick recipes: every model of a profile is evaluated on the profile's cadence, and the model
options the recipes use do what they say."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from suite.taskapi import registry
from suite.errors import ConfigError, DlbenchError
from suite.training.optim import build_optimizer
from suite.taskapi.spec import Budget, Recipe


def test_every_model_of_a_profile_is_evaluated_on_the_same_cadence():
    """The cadence belongs to the profile: a recipe that changes the length of training keeps it."""
    for task in registry.load_tasks().values():
        for profile in task.profiles:
            cadences = {task.spec_for(profile, model).eval_every for model in task.models}
            assert cadences == {task.profiles[profile].budget.eval_every}, (task.name, profile, cadences)


def test_a_recipe_that_sets_its_own_cadence_is_refused_at_registration():
    from tests.toy_tasks import ToyLinear

    quick = ToyLinear.profiles["quick"]
    recipe = Recipe(batch_size=32, budget=Budget(max_steps=10, max_time_s=30, eval_every=1))
    profiles = {**ToyLinear.profiles, "quick": dataclasses.replace(quick, recipes={"linear": recipe})}
    cls = type("ToyCadence", (ToyLinear,), {"name": "toy_cadence", "profiles": profiles})
    with pytest.raises(DlbenchError, match=r"toy_cadence.*'quick'.*'linear'.*eval_every=1.*belongs to the profile"):
        registry.register_task(cls)
    assert "toy_cadence" not in registry.TASKS


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
