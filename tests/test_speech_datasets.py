"""Speech Commands v2 and LibriSpeech loading on tiny folders written in their exact layouts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tasks.keyword_spotting import KeywordSpotting
from tasks.speech_recognition import SpeechRecognition
from tasks.speech.real import librispeech_listing, speech_commands_listing

RATE = 16_000


def write_wav(path: Path, seconds: float = 1.0, fmt: str = "WAV") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(str(path))).integers(-3000, 3000, int(RATE * seconds)).astype(np.int16)
    sf.write(path, noise, RATE, format=fmt, subtype="PCM_16")


def write_speech_commands(root: Path) -> Path:
    base = root / "SpeechCommands" / "speech_commands_v0.02"
    for word in ("yes", "no", "go", "bed", "dog"):
        for speaker in ("aaaa1111", "bbbb2222", "cccc3333"):
            write_wav(base / word / f"{speaker}_nohash_0.wav")
    write_wav(base / "_background_noise_" / "white_noise.wav", seconds=3.0)
    (base / "validation_list.txt").write_text("yes/bbbb2222_nohash_0.wav\nbed/bbbb2222_nohash_0.wav\n")
    (base / "testing_list.txt").write_text("yes/cccc3333_nohash_0.wav\nno/cccc3333_nohash_0.wav\n"
                                           "dog/cccc3333_nohash_0.wav\n")
    (base / "go" / "aaaa1111_nohash_0.wav").write_bytes(b"RIFF\x00\x00not a wav")  # corrupt
    return base


def test_speech_commands_listing_follows_the_split_files(tmp_path):
    write_speech_commands(tmp_path)
    paths, labels = speech_commands_listing(tmp_path, "test")
    names = [Path(p.split("#")[0]).parent.name for p in paths]
    # yes (0), no (1); one unknown (10) per average keyword class; silence (11) from background noise
    assert sorted(zip(names, labels)) == [("_background_noise_", 11), ("dog", 10), ("no", 1), ("yes", 0)]
    train, train_labels = speech_commands_listing(tmp_path, "train")
    keywords = sorted(f"{Path(p).parent.name}/{Path(p).name}" for p, y in zip(train, train_labels) if y < 10)
    # everything not in validation_list.txt / testing_list.txt; "go/aaaa1111" is listed though corrupt
    assert keywords == ["go/aaaa1111_nohash_0.wav", "go/bbbb2222_nohash_0.wav", "go/cccc3333_nohash_0.wav",
                        "no/aaaa1111_nohash_0.wav", "no/bbbb2222_nohash_0.wav", "yes/aaaa1111_nohash_0.wav"]
    # 6 keyword clips over 10 keywords: at least one unknown (bed or dog, not held out) and one silence
    unknown = [Path(p).parent.name + "/" + Path(p).name for p, y in zip(train, train_labels) if y == 10]
    assert len(unknown) == 1 and unknown[0] in {"bed/aaaa1111_nohash_0.wav", "bed/cccc3333_nohash_0.wav",
                                                "dog/aaaa1111_nohash_0.wav", "dog/bbbb2222_nohash_0.wav"}
    assert train_labels.count(11) == 1


def test_keyword_task_reads_speech_commands_and_counts_corrupt_files(tmp_path):
    write_speech_commands(tmp_path)
    task = KeywordSpotting(KeywordSpotting.spec_for("full", "ds_cnn"), tmp_path)
    source = task.load("train")
    assert source.info["unreadable_files"] == 1
    assert source.tensors["audio"].shape[1] == RATE
    assert len(source) == len(speech_commands_listing(tmp_path, "train")[0]) - 1


def write_librispeech(root: Path, subset: str) -> None:
    chapter = root / "LibriSpeech" / subset / "19" / "198"
    for utt in range(3):
        write_wav(chapter / f"19-198-{utt:04d}.flac", seconds=1.5, fmt="FLAC")
    (chapter / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 IT'S A TEST\n")
    (chapter / "19-198-0001.flac").write_bytes(b"fLaC broken")  # corrupt audio


def test_librispeech_listing_reads_trans_txt_and_counts_missing(tmp_path):
    write_librispeech(tmp_path, "test-clean")
    paths, texts, missing = librispeech_listing(tmp_path, "test")
    assert [Path(p).name for p in paths] == ["19-198-0000.flac", "19-198-0001.flac"]
    assert texts == ["NORTHANGER ABBEY", "IT'S A TEST"] and missing == 1  # 0002 has no transcript line


def test_recognition_task_reads_librispeech_and_skips_corrupt_audio(tmp_path):
    write_librispeech(tmp_path, "test-clean")
    task = SpeechRecognition(SpeechRecognition.spec_for("full", "ctc_bigru"), tmp_path)
    source = task.load("test")
    assert len(source) == 1
    assert source.info["unreadable_files"] == 1 and source.info["missing_transcripts"] == 1
    assert source.info["mean_clip_s"] == 1.5
