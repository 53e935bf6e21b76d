"""eSpeak NG synthesis and the cached corpora: rate, length, determinism, voice split, manifest."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from suite.errors import DataError
from tasks.speech import SAMPLE_RATE, corpus
from tasks.speech import synth

TINY = corpus.CorpusConfig("kws", (12, 6, 6))


def test_resample_22050_to_16k():
    assert len(synth.resample_to_16k(np.zeros(22_050, np.float32))) == 16_000


def test_synthesiser_speaks_16k_float32_of_plausible_length():
    audio = synth.synthesizer().speak("one two three", "en-us+f3", 160, 50, seed=1)
    assert audio.dtype == np.float32
    assert 0.5 * SAMPLE_RATE < len(audio) < 3 * SAMPLE_RATE  # three words at 160 wpm
    assert np.abs(audio).max() > 0.05  # not silence


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="the Debian espeak-ng command is not installed (apt-get install espeak-ng; .ci/run does)")
def test_command_route_speaks_the_same_16k_clip_as_asked():
    cli = synth.CommandSynth(shutil.which("espeak-ng"))
    assert cli.route == "cli" and cli.version
    audio = cli.speak("one two three", "en-us+f3", 160, 50, seed=1)
    assert audio.dtype == np.float32
    assert 0.5 * SAMPLE_RATE < len(audio) < 3 * SAMPLE_RATE
    assert np.abs(audio).max() > 0.05
    assert np.array_equal(audio, cli.speak("one two three", "en-us+f3", 160, 50, seed=1))
    assert len(cli.speak("one two three", "en-us+f3", 320, 50, seed=1)) < len(audio)  # faster rate, shorter clip
    assert "f3" in cli.variants()


def test_keyword_clips_are_one_second_and_silence_has_no_speech():
    plans = corpus.clip_plans(TINY, "train", ["f1", "m3"])
    clips = [corpus.render(p, "kws") for p in plans]
    assert all(c.dtype == np.int16 and len(c) == SAMPLE_RATE for c in clips)
    assert [p["label"] for p in plans] == list(range(12))
    assert plans[11]["text"] == ""  # the silence class: noise only


def test_voice_split_is_disjoint_and_complete():
    variants = synth.synthesizer().variants()
    split = corpus.split_voices(variants, seed=3)
    train, val, test = (set(split[s]) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(variants) and val and test
    for name in ("train", "val", "test"):
        for plan in corpus.clip_plans(TINY, name, split[name]):
            assert plan["voice"].split("+", 1)[1] in split[name]


def test_corpus_is_deterministic_cached_and_rebuilt_when_corrupt(tmp_path):
    first, _, manifest = corpus.load_split(tmp_path / "a", TINY, "test")
    assert len(first) == 6 and manifest["route"] in ("library", "cli") and manifest["counts"]["train"]["clips"] == 12

    folder = tmp_path / "a" / TINY.key()
    stamp = (folder / corpus.MANIFEST).stat().st_mtime_ns
    corpus._CHECKED.clear()
    corpus.load_split(tmp_path / "a", TINY, "test")
    assert (folder / corpus.MANIFEST).stat().st_mtime_ns == stamp  # reused, not rebuilt

    audio = folder / "test_audio.npy"
    audio.write_bytes(audio.read_bytes()[:-100])  # a truncated file
    corpus._CHECKED.clear()
    again, _, _ = corpus.load_split(tmp_path / "a", TINY, "test")  # rebuilt by other, fresh processes
    assert len(again) == 6 and all(np.array_equal(x, y) for x, y in zip(first, again))  # deterministic
    assert json.loads((folder / corpus.MANIFEST).read_text())["files"]["test_audio.npy"] == \
        manifest["files"]["test_audio.npy"]


def test_no_espeak_by_either_route_is_one_line_with_both_fixes(monkeypatch):
    def missing(self):
        raise ImportError("No module named 'espeakng_loader'")

    monkeypatch.setattr(synth, "_SYNTH", None)
    monkeypatch.setattr(synth.LibrarySynth, "__init__", missing)
    monkeypatch.setattr(synth.shutil, "which", lambda _name: None)
    with pytest.raises(DataError) as err:
        synth.synthesizer()
    message = str(err.value)
    assert "\n" not in message and "pip install espeakng-loader" in message and "apt-get install espeak-ng" in message
