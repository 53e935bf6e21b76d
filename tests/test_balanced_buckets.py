"""Class-balanced length buckets: PaddedSource(balance=...) draws batches of similar lengths that hold
every class in its share, each item once an epoch; without `balance` the batches are as before."""
from __future__ import annotations

import pytest
import torch

from suite.taskapi.data import PaddedSource, balanced_order
from tasks.sentiment import Sentiment


def test_balanced_order_holds_each_class_in_its_share_longest_first():
    lengths = torch.tensor([5, 9, 1, 7, 3, 8, 2, 6, 4, 10, 11, 12])
    classes = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1])  # 3 : 1
    order = balanced_order(lengths, classes)
    assert sorted(order.tolist()) == list(range(12))
    for start in range(0, 12, 4):  # every run of 4 holds three of class 0 and one of class 1
        assert classes[order[start:start + 4]].tolist().count(1) == 1
    for c in (0, 1):  # each class keeps its length order, longest first
        kept = lengths[order][classes[order] == c].tolist()
        assert kept == sorted(kept, reverse=True)


def _source(n: int = 64, balance: str | None = "y") -> PaddedSource:
    g = torch.Generator().manual_seed(3)
    lengths = torch.randint(1, 40, (n,), generator=g)
    y = torch.arange(n) % 2
    ids = torch.arange(1, n * 40 + 1).view(n, 40)
    return PaddedSource(lengths, ("ids",), window=8, balance=balance, ids=ids, y=y)  # one window: exact shares


def _label_counts(source: PaddedSource, seed: int) -> list[int]:
    batches = list(source.batches(8, shuffle=True, generator=torch.Generator().manual_seed(seed), drop_last=True))
    seen = torch.cat([b["ids"][:, 0] for b in batches])
    assert sorted(seen.tolist()) == sorted(source.tensors["ids"][:, 0].tolist())  # each item once an epoch
    for b in batches:
        assert b["ids"].shape[1] == int(b["lengths"].max())  # still trimmed to the batch's longest
    return [int(b["y"].sum()) for b in batches]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_source_gives_every_batch_half_of_each_label(seed):
    assert _label_counts(_source(), seed) == [4] * 8
    assert _label_counts(_source().select(torch.arange(0, 64, 2)).to(torch.device("cpu")), seed) == [0] * 4
    picked = _source().select(torch.cat([torch.arange(0, 48, 2), torch.arange(1, 17, 2)]))  # 24 : 8
    assert _label_counts(picked, seed) == [2] * 4


def test_unbalanced_source_batches_are_unchanged_and_do_swing():
    counts = [_label_counts(_source(balance=None), seed) for seed in range(5)]
    assert any(c != [4] * 8 for c in counts)
    plain, balanced = _source(balance=None), _source()
    assert [b["y"].tolist() for b in plain.batches(8)] == [b["y"].tolist() for b in balanced.batches(8)]


def test_balance_names_a_given_tensor():
    with pytest.raises(ValueError, match="labels"):
        PaddedSource(torch.tensor([1, 2]), ("ids",), balance="labels", ids=torch.ones(2, 2), y=torch.zeros(2))


def test_sentiment_training_batches_hold_both_labels_evenly(tmp_path):
    task = Sentiment(Sentiment.spec_for("smoke", "bilstm"), tmp_path)
    source = task.load("train")
    assert source.balance == "y"
    share = source.tensors["y"].float().mean().item()
    for batch in source.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0), drop_last=True):
        assert abs(batch["y"].float().mean().item() - share) <= 1 / 16 + 1e-6
