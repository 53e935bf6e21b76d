"""RaggedSource: the same batches as PaddedSource from items stored back to back, and the LibriSpeech cache."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tests.helpers import write_librispeech, write_wav

from suite.taskapi.data import PaddedSource, RaggedSource
from tasks.speech import real as speech_real
from tasks.speech.audio import decode
from tasks.speech.real import read_clip
from tasks.speech_recognition import SpeechRecognition


def _both(tail: int, n: int = 37, seed: int = 0) -> tuple[PaddedSource, RaggedSource]:
    """The same items (distinct values, so any misplaced sample shows) as a padded and a ragged split.

    `tail` junk samples after the last item: with none, batches holding the last item are read
    sample by sample (whole rows would run past the end); with enough, every batch is read by rows.
    """
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 30, (n,), generator=g)
    offsets = torch.cumsum(lengths, 0) - lengths
    flat = torch.arange(1, int(lengths.sum()) + 1, dtype=torch.int32)
    padded = torch.zeros(n, int(lengths.max()), dtype=torch.int32)
    for i, (o, k) in enumerate(zip(offsets.tolist(), lengths.tolist())):
        padded[i, :k] = flat[o:o + k]
    target = torch.randint(0, 5, (n, 3), generator=g)
    flat = torch.cat([flat, torch.full((tail,), -1, dtype=torch.int32)])
    return (PaddedSource(lengths, ("audio",), window=2, audio=padded, target=target),
            RaggedSource(flat, offsets, lengths, "audio", window=2, target=target))


def _draw(source, shuffle: bool, **kw) -> list[dict]:
    gen = torch.Generator().manual_seed(7) if shuffle else None
    return list(source.batches(5, shuffle=shuffle, generator=gen, **kw))


@pytest.mark.parametrize("tail", [0, 30])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("kw", [{}, {"drop_last": True}, {"shard": (0, 2)}, {"shard": (1, 2), "drop_last": True}])
def test_ragged_batches_equal_padded_batches(tail, shuffle, kw):
    padded, ragged = _both(tail)
    want, got = _draw(padded, shuffle, **kw), _draw(ragged, shuffle, **kw)
    assert len(got) == len(want) > 1
    for a, b in zip(want, got):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].shape == b[k].shape and torch.equal(a[k], b[k]), k
    if kw.get("drop_last") and shuffle:  # 37 items: the last, short batch of 2 is dropped
        rank, world = kw.get("shard", (0, 1))
        assert len(got) == 7 and all(len(b["lengths"]) == len(range(rank, 5, world)) for b in got)


@pytest.mark.parametrize("tail", [0, 30])
def test_ragged_items_are_the_padded_rows_of_any_index(tail):
    # whole rows (tail 30) and sample by sample (tail 0: the last item's row would run past the end)
    padded, ragged = _both(tail)
    for index in (torch.tensor([36, 0, 5]), torch.tensor([3]), torch.arange(37).flip(0)):
        longest = int(padded.tensors["lengths"][index].max())
        assert torch.equal(ragged.items(index), padded.tensors["audio"][index, :longest])


def test_ragged_pads_with_zeros_and_select_keeps_only_the_selected_samples():
    flat = torch.tensor([1, 2, 3, 4, 5, 6], dtype=torch.int16)
    source = RaggedSource(flat, torch.tensor([0, 3, 4]), torch.tensor([3, 1, 2]), y=torch.tensor([10, 11, 12]))
    batch = next(source.batches(3))
    assert batch["audio"].tolist() == [[1, 2, 3], [5, 6, 0], [4, 0, 0]]
    assert batch["y"].tolist() == [10, 12, 11] and batch["lengths"].tolist() == [3, 2, 1]
    small = source.select(torch.tensor([2, 0]))
    assert len(small) == 2 and small.flat.tolist() == [5, 6, 1, 2, 3] and small.offsets.tolist() == [0, 2]
    assert next(small.batches(2))["audio"].tolist() == [[1, 2, 3], [5, 6, 0]]
    assert small.tensors["y"].tolist() == [12, 10] and small.nbytes() == 5 * 2 + 2 * (3 * 8)
    assert source.nbytes() == 6 * 2 + 3 * (3 * 8)  # int16 samples; offsets, lengths, y
    assert source.to(torch.device("cpu")).device == torch.device("cpu")


@pytest.mark.cuda
@pytest.mark.parametrize("tail", [0, 30])
def test_ragged_batches_on_cuda_equal_cpu_batches(tail):
    _padded, ragged = _both(tail)
    on_gpu = ragged.to(torch.device("cuda"))
    for a, b in zip(_draw(ragged, True), _draw(on_gpu, True), strict=True):
        assert all(b[k].is_cuda and torch.equal(a[k], b[k].cpu()) for k in a)


# -- the LibriSpeech decoded cache ---------------------------------------------------
def _libri(root: Path) -> Path:
    """test-clean as `write_librispeech` writes it (one good clip, one corrupt, one without transcript),
    plus a chapter with clips of several lengths, one shorter than a window and one in stereo."""
    write_librispeech(root, "test-clean")
    chapter = root / "LibriSpeech" / "test-clean" / "20" / "201"
    for utt, seconds in enumerate((0.6, 2.0, 0.01, 1.2)):
        write_wav(chapter / f"20-201-{utt:04d}.flac", seconds=seconds, fmt="FLAC")
    sf.write(chapter / "20-201-0003.flac", np.zeros((16_000, 2), np.int16), 16_000, format="FLAC")
    (chapter / "20-201-0000.trans.txt").unlink(missing_ok=True)
    (chapter / "20-201.trans.txt").write_text("20-201-0000 GO\n20-201-0001 TURN IT ON NOW\n20-201-0002 A\n"
                                              "20-201-0003 STEREO\n")
    return root / "librispeech_cache" / "test-clean"


def _load(root: Path):
    return SpeechRecognition(SpeechRecognition.spec_for("full", "ctc_bigru"), root).load("test")


def _counting_reader(monkeypatch) -> list[str]:
    calls: list[str] = []

    def counted(path):
        calls.append(path)
        return read_clip(path)

    monkeypatch.setattr(speech_real, "read_clip", counted)
    return calls


def _snapshot(source: RaggedSource) -> dict:
    """Copies of a split's tensors: a test that truncates the mapped file in place must not read the map."""
    return {"flat": source.flat.clone(), "offsets": source.offsets.clone(), "info": source.info,
            **{k: v.clone() for k, v in source.tensors.items()}}


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] if k == "info" else torch.equal(a[k], b[k]) for k in a)


def test_librispeech_cache_is_decoded_once_then_mapped(tmp_path, monkeypatch):
    cache = _libri(tmp_path)
    calls = _counting_reader(monkeypatch)
    first = _load(tmp_path)
    assert len(calls) == 6  # every listed file (20-198-0002 has no transcript line: not listed)
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["kept"] == 4 and manifest["samples"] == 16_000 * (1.5 + 0.6 + 2.0) + 400
    assert sorted(p.name for p in cache.iterdir()) == ["audio.int16", "build.lock", "lengths.npy",
                                                       "manifest.json", "transcripts.json"]
    assert first.info["unreadable_files"] == 1 and first.info["not_16k_mono"] == 1
    assert first.info["short_clips_padded"] == 1 and first.info["missing_transcripts"] == 1
    # Clips kept in listing order; the 10 ms clip is stored padded to one window, then dropped by
    # transcript_source: 3 feature frames cannot hold the one character of "a" after 4x subsampling.
    folder = tmp_path / "LibriSpeech/test-clean/20/201"
    short = sf.read(folder / "20-201-0002.flac", dtype="int16")[0]
    assert torch.equal(first.flat[-400:], torch.from_numpy(np.pad(short, (0, 240))))
    assert first.info["transcript_too_long"] == 1
    batch = next(first.batches(8))
    assert batch["lengths"].tolist() == [32_000, 24_000, 9_600]
    assert torch.equal(batch["audio"][0], torch.from_numpy(sf.read(folder / "20-201-0001.flac", dtype="int16")[0]))
    assert batch["audio"][2, 9_600:].abs().sum() == 0
    assert [decode(t[:n].tolist()) for t, n in zip(batch["target"], batch["target_lengths"])] == \
        ["turn it on now", "northanger abbey", "go"]

    def no_decoding(path):
        raise AssertionError(f"decoded {path} although the cache is valid")

    monkeypatch.setattr(speech_real, "read_clip", no_decoding)
    _same(_snapshot(first), _snapshot(_load(tmp_path)))


@pytest.mark.parametrize("damage", ["manifest removed", "flat truncated", "transcript changed"])
def test_librispeech_cache_is_rebuilt_when_broken_or_stale(tmp_path, monkeypatch, damage):
    cache = _libri(tmp_path)
    first = _snapshot(_load(tmp_path))
    if damage == "manifest removed":  # what a build interrupted before its last rename leaves
        (cache / "manifest.json").unlink()
    elif damage == "flat truncated":
        with open(cache / "audio.int16", "r+b") as f:
            f.truncate(1000)
    else:
        trans = tmp_path / "LibriSpeech/test-clean/20/201/20-201.trans.txt"
        trans.write_text(trans.read_text().replace("TURN IT ON NOW", "TURN IT OFF"))
    calls = _counting_reader(monkeypatch)
    again = _snapshot(_load(tmp_path))
    assert len(calls) == 6 and (cache / "manifest.json").exists()
    if damage == "transcript changed":
        assert torch.equal(again["flat"], first["flat"]) and not torch.equal(again["target"], first["target"])
    else:
        _same(first, again)
