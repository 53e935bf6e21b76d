"""Speech Commands v2 and LibriSpeech loading on tiny folders written in their exact layouts."""
from __future__ import annotations

from pathlib import Path

from tasks.keyword_spotting import KeywordSpotting
from tasks.speech import SAMPLE_RATE
from tasks.speech_recognition import SpeechRecognition
from tasks.speech.real import librispeech_listing, speech_commands_listing
from tests.helpers import write_librispeech, write_speech_commands


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
    assert source.tensors["audio"].shape[1] == SAMPLE_RATE
    assert len(source) == len(speech_commands_listing(tmp_path, "train")[0]) - 1
    batch = next(source.batches(4))
    assert task.batch_work(batch) == {"audio_s": 4.0}, "one second of audio per clip"


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
    assert float(task.batch_work(next(source.batches(1)))["audio_s"]) == 1.5
