"""Sentiment data: the VADER archive route, labels and splits, tokenizers, the SST-2 path.

Every archive here is built by the test in the exact layout of the PyPI sdist
(an outer tar.gz holding additional_resources/hutto_ICWSM_2014.tar.gz, whose
ground-truth files are CRLF, tab-separated id / mean valence / text).
No network: the pip fetch is replaced by a function that copies a local file.
"""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from suite.errors import DataError
from tasks.text import data
from tasks.text import models as tm


def _tar_add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def ground_truth(rows) -> bytes:
    return "".join(f"{i}\t{v}\t{t}\r\n" for i, v, t in rows).encode("utf-8")


def movie_rows(n: int = 60):
    """n polar rows alternating sign, plus a near-neutral one and a repeated text."""
    rows = [(str(i + 1), (2.1 if i % 2 else -1.7), f"snippet number {i} is {'great' if i % 2 else 'bad'}")
            for i in range(n)]
    rows.append((str(n + 1), 0.2, "a flat near neutral line"))
    rows.append((str(n + 2), 3.0, rows[1][2].upper()))  # same text as row 2, other case
    return rows


def make_sdist(path: Path, movie=None, broken_line: bool = False) -> Path:
    files = {name: ground_truth([(f"1_{i}", (1.5 if i % 2 else -1.5), f"{key} text {i}") for i in range(8)])
             for key, name in data.VADER_SETS.items()}
    body = ground_truth(movie or movie_rows())
    files[data.VADER_SETS["movie"]] = body + (b"no tabs on this line\r\n" if broken_line else b"")
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for name, payload in files.items():
            _tar_add(tar, f"hutto_ICWSM_2014/{name}", payload)
        _tar_add(tar, "hutto_ICWSM_2014/vader_icwsm2014_final.pdf", b"%PDF not extracted")
    with tarfile.open(path, "w:gz") as tar:
        _tar_add(tar, "vaderSentiment-3.3.2/setup.py", b"")
        _tar_add(tar, data.VADER_INNER, inner.getvalue())
    return path


@pytest.fixture
def fake_sdist(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    sdist = make_sdist(tmp_path / "src" / data.VADER_SDIST)
    monkeypatch.setattr(data, "VADER_SHA256", data.sha256_of(sdist))
    return sdist


def copying_fetch(sdist: Path, calls: list):
    def fetch(folder: Path) -> None:
        calls.append(folder)
        shutil.copy(sdist, folder / data.VADER_SDIST)
    return fetch


# -- archive -----------------------------------------------------------------------------
def test_fetch_extracts_only_ground_truth_with_manifest_then_reuses(tmp_path, fake_sdist):
    calls = []
    folder = data.ensure_vader(tmp_path / "data", fetch=copying_fetch(fake_sdist, calls))
    assert sorted(p.name for p in folder.iterdir()) == sorted([*data.VADER_SETS.values(), data.MANIFEST])
    manifest = json.loads((folder / data.MANIFEST).read_text())
    assert manifest["sdist_sha256"] == data.VADER_SHA256 and "3.3.2" in manifest["source"]
    assert data.manifest_ok(folder)
    data.ensure_vader(tmp_path / "data", fetch=copying_fetch(fake_sdist, calls))
    assert len(calls) == 1, "a verified folder must be reused, not fetched again"


def test_edited_file_is_detected_and_rebuilt(tmp_path, fake_sdist):
    calls = []
    folder = data.ensure_vader(tmp_path, fetch=copying_fetch(fake_sdist, calls))
    movie = folder / data.VADER_SETS["movie"]
    movie.write_text("1\t2.0\ttampered\r\n")
    assert not data.manifest_ok(folder)
    data.ensure_vader(tmp_path, fetch=copying_fetch(fake_sdist, calls))
    assert len(calls) == 2 and "tampered" not in movie.read_text()


def test_parser_reads_the_ground_truth_format(tmp_path, fake_sdist):
    folder = data.ensure_vader(tmp_path, fetch=copying_fetch(fake_sdist, []))
    rows = data.parse_ground_truth(folder / data.VADER_SETS["movie"])
    assert rows[0] == ("1", -1.7, "snippet number 0 is bad")
    assert rows[1] == ("2", 2.1, "snippet number 1 is great")  # CRLF stripped
    assert len(rows) == 62


def test_corrupt_sdist_names_the_fetch_command(tmp_path):
    folder = tmp_path / "vader"
    folder.mkdir()
    (folder / data.VADER_SDIST).write_bytes(b"not a tarball")
    with pytest.raises(DataError) as err:
        data.ensure_vader(tmp_path, fetch=lambda _f: pytest.fail("must not fetch"))
    message = str(err.value)
    assert "\n" not in message and "sha256" in message
    assert "-m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d" in message


def test_right_checksum_but_wrong_layout_is_a_data_error(tmp_path, monkeypatch):
    sdist = tmp_path / data.VADER_SDIST
    with tarfile.open(sdist, "w:gz") as tar:
        _tar_add(tar, "vaderSentiment-3.3.2/setup.py", b"")
    monkeypatch.setattr(data, "VADER_SHA256", data.sha256_of(sdist))
    with pytest.raises(DataError, match="does not hold the VADER ground truth"):
        data.extract_ground_truth(sdist, tmp_path / "out")


def test_failed_fetch_is_a_one_line_error_with_the_command(tmp_path):
    with pytest.raises(DataError) as err:
        data.ensure_vader(tmp_path, fetch=lambda folder: None)  # "succeeds" but leaves nothing
    assert "\n" not in str(err.value) and "pip download" in str(err.value)


def test_malformed_line_names_file_and_line(tmp_path, monkeypatch):
    sdist = make_sdist(tmp_path / data.VADER_SDIST, broken_line=True)
    monkeypatch.setattr(data, "VADER_SHA256", data.sha256_of(sdist))
    data.extract_ground_truth(sdist, tmp_path / "vader")
    with pytest.raises(DataError, match=r"movieReviewSnippets_GroundTruth.txt:63 "):
        data.parse_ground_truth(tmp_path / "vader" / data.VADER_SETS["movie"])


# -- labels and splits ----------------------------------------------------------------------
def test_labels_drop_the_neutral_band_and_repeated_texts():
    texts, labels = data.polar_rows(movie_rows(6), band=0.5)
    assert "a flat near neutral line" not in texts
    assert len(texts) == 6 and labels == [0, 1, 0, 1, 0, 1]
    assert data.polar_rows([("1", -0.49, "x"), ("2", 0.5, "y"), ("3", -0.5, "z")], band=0.5) == (["y", "z"], [1, 0])


def test_stratified_split_is_deterministic_disjoint_and_balanced():
    labels = [0] * 70 + [1] * 30
    a = data.stratified_split(labels, data.SPLIT_FRACTIONS, seed=0)
    assert a == data.stratified_split(labels, data.SPLIT_FRACTIONS, seed=0)
    assert a != data.stratified_split(labels, data.SPLIT_FRACTIONS, seed=1)
    every = sorted(i for idx in a.values() for i in idx)
    assert every == list(range(100)), "each item in exactly one split"
    assert [len(a[s]) for s in ("train", "val", "test")] == [80, 10, 10]
    for idx in a.values():
        assert sum(labels[i] for i in idx) / len(idx) == pytest.approx(0.3)


def test_vader_splits_hold_no_sentence_twice(tmp_path, fake_sdist):
    data.ensure_vader(tmp_path, fetch=copying_fetch(fake_sdist, []))
    splits = data.vader_splits(tmp_path, seed=0)
    assert set(splits) == {"train", "val", "test", "ood_tweets", "ood_amazon", "ood_nyt"}
    seen = {}
    for name in ("train", "val", "test"):
        for text in splits[name]["text"]:
            key = " ".join(text.lower().split())
            assert key not in seen, f"{text!r} in {seen.get(key)} and {name}"
            seen[key] = name
    assert len(seen) == 60 and splits["train"]["label"].count(1) == 24


def test_smoke_splits_are_disjoint_and_two_class():
    splits = data.smoke_splits()
    texts = [t for s in splits.values() for t in s["text"]]
    assert len(texts) == len(set(texts)) == 80
    for split in splits.values():
        assert set(split["label"]) == {0, 1}


def test_one_class_or_empty_training_split_is_rejected():
    with pytest.raises(DataError, match="needs both negative"):
        data.check_train_labels([1, 1, 1], "dataset 'x'")
    with pytest.raises(DataError, match="has 0 sentences"):
        data.check_train_labels([], "dataset 'x'")


# -- tokenizers -------------------------------------------------------------------------------
def test_wordpiece_is_trained_on_the_given_texts_only():
    train = ["the movie was wonderful", "the movie was awful", "wonderful acting"] * 3
    tok = tm.train_wordpiece(train, vocab_size=120)
    vocab = tok.get_vocab()
    assert {"movie", "wonderful", "awful"} <= set(vocab)
    assert "zeppelin" not in vocab  # a word never seen in training is not a whole token
    ids = tok("The MOVIE was wonderful")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.convert_ids_to_tokens(ids[1:-1]) == ["the", "movie", "was", "wonderful"]
    assert tok.pad_token_id == 0


def test_long_sentences_are_truncated_counted_and_masked():
    tok = tm.train_wordpiece(["good film"] * 4 + ["bad film"] * 4, vocab_size=60)
    texts = ["good film", "bad " * 30 + "film", "good good good good good"]
    source = tm.tokenize_split(data.as_dataset(texts, [1, 0, 1]), tok, max_len=6)
    assert source.info["truncated"] == 2 and source.info["max_len"] == 6
    ids, mask, lengths = source.tensors["ids"], source.tensors["mask"], source.tensors["lengths"]
    assert lengths.tolist() == [4, 6, 6] and ids.shape == (3, 6)
    assert ids[1, -1] == tok.sep_token_id, "a cut sentence keeps its final [SEP]"
    assert mask.tolist()[0] == [1, 1, 1, 1, 0, 0] and (ids[0, 4:] == tok.pad_token_id).all()
    assert source.info["tokens"] == 16
