"""`data.fraction` on every source: `BatchSource.select` keeps the split's type and its batching.

Parametrised over every model of every supervised entry-point task (the model picks the source:
tokens or bytes, audio or cached features), on the smoke data; nothing here names a source type.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from suite.taskapi import registry
from suite.running.config import SuiteOptions
from suite.taskapi.data import training_fraction
from suite.running.runner import run_one
from suite.taskapi.task import Task

TASKS = registry.entry_point_tasks()
CASES = [(name, model) for name, cls in sorted(TASKS.items()) if issubclass(cls, Task) for model in cls.models]
FRACTION, SEED, BATCH = 0.5, 3, 8


def smoke_train_split(name: str, model: str):
    cls = TASKS[name]
    return cls(cls.spec_for("smoke", model), Path(os.environ["DLBENCH_DATA"])).load("train")


def items(source) -> list[dict[str, torch.Tensor]]:
    """Every item as a batch of one, in the source's own unshuffled order."""
    return list(source.batches(1))


def key(item: dict[str, torch.Tensor]) -> tuple:
    return tuple((k, tuple(v.shape), v.cpu().contiguous().numpy().tobytes()) for k, v in sorted(item.items()))


@pytest.mark.parametrize("name,model", CASES)
def test_a_fraction_keeps_the_sources_type_items_and_batching(name, model):
    source = smoke_train_split(name, model)
    cut = training_fraction(source, FRACTION, SEED)

    assert type(cut) is type(source)
    assert len(cut) == round(len(source) * FRACTION)
    assert cut.info == {**source.info, "fraction": FRACTION}
    assert training_fraction(source, FRACTION, SEED).nbytes() == cut.nbytes() < source.nbytes()

    # The cut holds items of the source, each once, and the same items for the same seed.
    cut_items = [key(item) for item in items(cut)]
    source_items = [key(item) for item in items(source)]
    assert len(cut_items) == len(cut)
    for item in set(cut_items):
        assert cut_items.count(item) <= source_items.count(item), "an item the source does not hold"
    again = [key(item) for item in items(training_fraction(source, FRACTION, SEED))]
    assert again == cut_items
    assert [key(item) for item in items(training_fraction(source, FRACTION, SEED + 1))] != cut_items

    # Batches are the source's batching of the kept items: unshuffled batches of BATCH are the
    # items in the same order, each batch only as wide as its widest item (padding is trimmed).
    singles = items(cut)
    for i, batch in enumerate(cut.batches(BATCH)):
        rows = singles[i * BATCH : (i + 1) * BATCH]
        assert set(batch) == set(rows[0])
        for k, tensor in batch.items():
            assert len(tensor) == len(rows)
            if tensor.dim() >= 2:
                widths = [row[k].shape[1] for row in rows]
                assert tensor.shape[1] == max(widths), f"{k}: batch width {tensor.shape[1]}, items {widths}"
            for r, row in enumerate(rows):
                own = row[k][0]
                got = tensor[r][: own.shape[0]] if own.dim() >= 1 else tensor[r]
                assert torch.equal(got, own), f"{k}: row {r} of batch {i} is not its item"
    shuffled = list(cut.batches(BATCH, shuffle=True, generator=torch.Generator().manual_seed(0), drop_last=True))
    assert len(shuffled) == len(cut) // BATCH and all(len(b[k]) == BATCH for b in shuffled for k in b)

@pytest.mark.parametrize("name,model", [("sentiment", "bilstm"), ("speech_recognition", "ctc_bigru"),
                                        ("speech_recognition", "mfcc_linear_ctc")])
def test_a_fraction_trains_length_bucketed_tasks(name, model, tmp_path):
    options = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, set=["data.fraction=0.5"])
    record = run_one(TASKS[name], model, 0, options, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["variant"] == "data.fraction=0.5"
    full = len(smoke_train_split(name, model))
    assert record["data_info"]["train"]["samples"] == round(full * 0.5)
    assert record["data_info"]["train"]["fraction"] == 0.5
