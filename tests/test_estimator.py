"""Model declarations, the estimator path's glue and the hand-crafted models' own pieces."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from suite.taskapi.data import TensorSource
from suite.errors import ConfigError, DataError, SkipRun
from suite.training.estimator import FittedClassifier
from suite.taskapi.models import Model, declaration, family_of


class WithModels:
    models = {"net": lambda: "built", "rule": Model(lambda: "ruled", family="hand-crafted", estimator=True)}


def test_a_bare_factory_is_deep_and_model_is_callable():
    assert family_of(WithModels, "net") == "deep" and not declaration(WithModels, "net").estimator
    assert family_of(WithModels, "rule") == "hand-crafted" and declaration(WithModels, "rule").estimator
    assert WithModels.models["rule"]() == "ruled"
    with pytest.raises(ConfigError, match="hand-crafted"):
        Model(lambda: None, family="classical")


def blobs(n=200, classes=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 3, generator=g) + 2.0 * F.one_hot(y, 3).float()
    return TensorSource(x=x, y=y)


@pytest.mark.parametrize("classes", [2, 3])
def test_fitted_classifier_logits_are_the_decision_function_and_give_the_log_loss(classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    train = blobs(classes=classes)
    model = FittedClassifier(lambda x: x.numpy(), LogisticRegression())
    model.fit(train, seed=0)
    x, y = train.tensors["x"], train.tensors["y"]
    logits = model(x)
    assert logits.shape == (len(y), classes)
    assert model.coefficients.numel() == (3 + 1) * (1 if classes == 2 else classes)
    proba = model.estimator.predict_proba(x.numpy())
    assert F.cross_entropy(logits, y).item() == pytest.approx(log_loss(y.numpy(), proba), rel=1e-4)
    assert (logits.argmax(1).numpy() == model.estimator.predict(x.numpy())).all()


def test_fitting_one_class_says_so():
    one = TensorSource(x=torch.randn(10, 3), y=torch.zeros(10, dtype=torch.long))
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(DataError, match="one class"):
        FittedClassifier(lambda x: x.numpy(), LogisticRegression()).fit(one, seed=0)


def test_byte_source_gives_back_the_exact_sentences():
    from tasks.text.classical import byte_source, texts

    sentences = ["Naïve, but GREAT!!", "", "a 😀 film", "x"]
    source = byte_source({"text": sentences, "label": [1, 0, 1, 0]})
    got = [t for batch in source.batches(2) for t in texts(batch["ids"], batch["mask"])]
    assert sorted(got) == sorted(["Naïve, but GREAT!!", " ", "a 😀 film", "x"])  # empty text -> one space


def frame(paddle, ball=None, trail=None):
    obs = np.zeros((10, 10, 4), dtype=bool)
    obs[9, paddle, 0] = True
    if ball is not None:
        obs[ball[0], ball[1], 1] = True
        obs[trail[0], trail[1], 2] = True
    return obs


def test_ball_tracker_moves_toward_where_the_ball_goes_next():
    from tasks.atari_rl import BallTracker

    space = gym.spaces.Box(0, 1, (10, 10, 4), dtype=bool)
    rule = BallTracker(space, gym.spaces.Discrete(3))
    obs = torch.as_tensor(np.stack([
        frame(4, ball=(5, 3), trail=(4, 4)),  # heading left to column 2: left
        frame(4, ball=(5, 5), trail=(4, 4)),  # heading right to column 6: right
        frame(4, ball=(5, 5), trail=(4, 6)),  # heading left to column 4, the paddle's: stay
        frame(4),  # no ball yet: stay
    ]))
    assert rule.greedy(obs).tolist() == [1, 2, 0, 0]
    with pytest.raises(SkipRun, match="MinAtar"):
        BallTracker(gym.spaces.Box(0, 255, (4, 84, 84), dtype=np.uint8), gym.spaces.Discrete(4))
