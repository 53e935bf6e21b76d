"""RaggedSource: the same batches as PaddedSource from items stored back to back, and the LibriSpeech cache."""
from __future__ import annotations

import pytest
import torch

from suite.data import PaddedSource, RaggedSource


def _both(n: int = 37, seed: int = 0) -> tuple[PaddedSource, RaggedSource]:
    """The same items (distinct values, so any misplaced sample shows) as a padded and a ragged split."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 30, (n,), generator=g)
    offsets = torch.cumsum(lengths, 0) - lengths
    flat = torch.arange(1, int(lengths.sum()) + 1, dtype=torch.int32)
    padded = torch.zeros(n, int(lengths.max()), dtype=torch.int32)
    for i, (o, k) in enumerate(zip(offsets.tolist(), lengths.tolist())):
        padded[i, :k] = flat[o:o + k]
    target = torch.randint(0, 5, (n, 3), generator=g)
    return (PaddedSource(lengths, ("audio",), window=2, audio=padded, target=target),
            RaggedSource(flat, offsets, lengths, "audio", window=2, target=target))


def _draw(source, shuffle: bool, **kw) -> list[dict]:
    gen = torch.Generator().manual_seed(7) if shuffle else None
    return list(source.batches(5, shuffle=shuffle, generator=gen, **kw))


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("kw", [{}, {"drop_last": True}, {"shard": (0, 2)}, {"shard": (1, 2), "drop_last": True}])
def test_ragged_batches_equal_padded_batches(shuffle, kw):
    padded, ragged = _both()
    want, got = _draw(padded, shuffle, **kw), _draw(ragged, shuffle, **kw)
    assert len(got) == len(want) > 1
    for a, b in zip(want, got):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].shape == b[k].shape and torch.equal(a[k], b[k]), k
    if kw.get("drop_last") and shuffle:  # 37 items: the last, short batch of 2 is dropped
        rank, world = kw.get("shard", (0, 1))
        assert len(got) == 7 and all(len(b["lengths"]) == len(range(rank, 5, world)) for b in got)


def test_ragged_pads_with_zeros_and_subset_moves_nothing_it_does_not_need():
    flat = torch.tensor([1, 2, 3, 4, 5, 6], dtype=torch.int16)
    source = RaggedSource(flat, torch.tensor([0, 3, 4]), torch.tensor([3, 1, 2]), y=torch.tensor([10, 11, 12]))
    batch = next(source.batches(3))
    assert batch["audio"].tolist() == [[1, 2, 3], [5, 6, 0], [4, 0, 0]]
    assert batch["y"].tolist() == [10, 12, 11] and batch["lengths"].tolist() == [3, 2, 1]
    small = source.subset(2)
    assert len(small) == 2 and small.flat.tolist() == [1, 2, 3, 4]
    assert source.nbytes() == 6 * 2 + 3 * (3 * 8)  # int16 samples; offsets, lengths, y
    assert source.to(torch.device("cpu")).device == torch.device("cpu")
