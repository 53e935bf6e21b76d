"""Speech Commands v2 and LibriSpeech loading on tiny folders written in their exact layouts."""
from __future__ import annotations

from pathlib import Path

from tasks.keyword_spotting import KeywordSpotting
from tasks.speech import SAMPLE_RATE
from tasks.speech.corpus import KEYWORDS
from tasks.speech_recognition import SpeechRecognition
from tasks.speech.real import librispeech_listing, read_clip, read_speech_commands, speech_commands_listing
from tests.helpers import write_librispeech, write_speech_commands, write_wav


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


def write_silence_tree(root: Path) -> None:
    """Speech Commands with 40 keyword files a word (empty: the listing reads none; 4 each in val and test),
    so each split gets several silence windows, and two background-noise recordings of 20 s and 13 s."""
    base = root / "SpeechCommands" / "speech_commands_v0.02"
    held_out = {"validation_list.txt": [], "testing_list.txt": []}
    for word in KEYWORDS:
        (base / word).mkdir(parents=True)
        for k in range(40):
            name = f"{word}/{k:08x}_nohash_0.wav"
            (base / name).touch()
            if k % 10 >= 8:
                held_out["validation_list.txt" if k % 10 == 8 else "testing_list.txt"].append(name)
    for listing, names in held_out.items():
        (base / listing).write_text("\n".join(names) + "\n")
    write_wav(base / "_background_noise_" / "pink_noise.wav", seconds=13.0)
    write_wav(base / "_background_noise_" / "white_noise.wav", seconds=20.0)


def silence_windows(root: Path, split: str) -> list[tuple[str, int, int]]:
    """(recording, first sample, end sample) of each silence clip of `split`, found by its samples in the recording."""
    paths, labels = speech_commands_listing(root, split)
    entries = [p for p, y in zip(paths, labels) if y == 11]
    clips, kept, _ = read_speech_commands(entries)
    windows = []
    for i, clip in zip(kept, clips):
        recording = entries[i].split("#")[0]
        at = read_clip(recording)[0].tobytes().find(clip.tobytes())
        assert at >= 0 and at % 2 == 0, f"{entries[i]}: not a window of its recording"
        windows.append((Path(recording).name, at // 2, at // 2 + len(clip)))
    return windows


def test_val_and_test_silence_never_overlaps_a_training_window(tmp_path):
    write_silence_tree(tmp_path)
    train = silence_windows(tmp_path, "train")
    assert len(train) == 32 and {w[0] for w in train} == {"pink_noise.wav", "white_noise.wav"}
    for split in ("val", "test"):
        windows = silence_windows(tmp_path, split)
        assert len(windows) == 4 and all(stop - start == SAMPLE_RATE for _, start, stop in windows)
        overlaps = [(w, t) for w in windows for t in train if w[0] == t[0] and w[1] < t[2] and t[1] < w[2]]
        assert not overlaps, f"{split} silence windows overlapping training ones: {overlaps}"
    assert silence_windows(tmp_path, "val") == silence_windows(tmp_path, "val"), "drawn from the seed"


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


def test_full_keyword_records_carry_a_fingerprint_of_each_splits_listing(tmp_path, monkeypatch):
    from tasks import keyword_spotting
    from tasks.speech import real

    write_silence_tree(tmp_path)
    prints = {split: keyword_spotting.load_real(tmp_path, split)[2]["fingerprint"] for split in ("train", "val")}
    assert prints["train"] != prints["val"]
    assert keyword_spotting.load_real(tmp_path, "val")[2]["fingerprint"] == prints["val"], "the listing is seeded"
    monkeypatch.setattr(real, "NOISE_REGIONS", {**real.NOISE_REGIONS, "val": (0.0, 0.1)})  # other windows
    assert keyword_spotting.load_real(tmp_path, "val")[2]["fingerprint"] != prints["val"]
