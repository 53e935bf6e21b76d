"""The real speech datasets of the `full` profile: listing by torchaudio, reading by soundfile.

torchaudio's `SPEECHCOMMANDS` and `LIBRISPEECH` classes list and download
the files (their `get_metadata` reads no audio); their `__getitem__` would
call `torchaudio.load`, which needs `torchcodec` since torchaudio 2.9, so
the audio is read here with `soundfile` as int16. A file that cannot be
read, or is not 16 kHz mono, is skipped and counted (`info`), never fatal.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from suite.errors import DataError
from tasks._speech_corpus import KEYWORDS

SC_SPLITS = {"train": "training", "val": "validation", "test": "testing"}
NOISE_FOLDER = "_background_noise_"
LIBRI_SPLITS = {"train": "train-clean-100", "val": "dev-clean", "test": "test-clean"}


def read_clips(paths: list[str]) -> tuple[list[np.ndarray], list[int], dict[str, int]]:
    """int16 samples of each readable 16 kHz file, the indices kept, and counts of the skipped."""
    import soundfile as sf

    clips, kept, skipped = [], [], {"unreadable_files": 0, "not_16k_mono": 0}
    for i, path in enumerate(paths):
        try:
            data, rate = sf.read(path, dtype="int16", always_2d=True)
        except (RuntimeError, OSError, ValueError):  # soundfile raises LibsndfileError (a RuntimeError)
            skipped["unreadable_files"] += 1
            continue
        if rate != 16_000 or data.shape[1] != 1:
            skipped["not_16k_mono"] += 1
            continue
        clips.append(data[:, 0])
        kept.append(i)
    return clips, kept, skipped


def _dataset(cls, root: Path, name: str, **kw):
    try:
        return cls(str(root), download=True, **kw)
    except Exception as exc:  # noqa: BLE001 - offline or broken archive: one line saying how to fix it
        raise DataError(f"{name} is not in {root} and could not be downloaded ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}): run once online") from None


def speech_commands_listing(root: Path, split: str, seed: int = 0) -> tuple[list[str], list[int]]:
    """Paths and 12-class labels (10 keywords, 10 = unknown, 11 = silence) of a Speech Commands v2 split.

    As in the TensorFlow / MLPerf Tiny recipe, "unknown" is subsampled to the size of an average
    keyword class, and "silence" clips are 1 s windows of the `_background_noise_` recordings
    (as many as an average keyword class; marked by a path ending in `#<offset>`).
    """
    from torchaudio.datasets import SPEECHCOMMANDS

    ds = _dataset(SPEECHCOMMANDS, root, "Speech Commands v2", subset=SC_SPLITS[split])
    archive = root / "SpeechCommands"  # get_metadata's paths are relative to it
    paths, labels, unknown = [], [], []
    for n in range(len(ds)):
        relpath, _rate, word, _speaker, _utt = ds.get_metadata(n)
        path = str(archive / relpath)
        if word in KEYWORDS:
            paths.append(path)
            labels.append(KEYWORDS.index(word))
        else:
            unknown.append(path)
    per_class = max(1, len(paths) // len(KEYWORDS))
    rng = np.random.default_rng([seed, list(SC_SPLITS).index(split)])
    for i in sorted(rng.permutation(len(unknown))[:per_class]):
        paths.append(unknown[i])
        labels.append(10)
    noise_dir = archive / "speech_commands_v0.02" / NOISE_FOLDER
    noises = sorted(str(p) for p in noise_dir.glob("*.wav")) if noise_dir.is_dir() else []
    for i in range(per_class if noises else 0):
        # Offsets are drawn per split from the whole recording; silence is noise, not speech.
        paths.append(f"{noises[i % len(noises)]}#{int(rng.integers(0, 50)) * 16_000}")
        labels.append(11)
    return paths, labels


def read_speech_commands(paths: list[str]) -> tuple[list[np.ndarray], list[int], dict[str, int]]:
    """Read keyword clips; `file#offset` entries are 1 s windows of a background-noise file."""
    plain = [p.split("#")[0] for p in paths]
    cache: dict[str, tuple] = {}
    clips, kept, skipped = [], [], {"unreadable_files": 0, "not_16k_mono": 0}
    for i, (path, entry) in enumerate(zip(plain, paths)):
        if path not in cache:
            got, _kept, bad = read_clips([path])
            cache[path] = (got[0] if got else None, bad)
        clip, bad = cache[path]
        if clip is None:
            for k, v in bad.items():
                skipped[k] += v
            continue
        if "#" in entry:
            start = int(entry.split("#")[1]) % max(1, len(clip) - 16_000)
            clip = clip[start:start + 16_000]
        clips.append(clip)
        kept.append(i)
    return clips, kept, skipped


def librispeech_listing(root: Path, split: str) -> tuple[list[str], list[str], int]:
    """Paths and transcripts of a LibriSpeech subset; utterances whose transcript is missing are counted."""
    from torchaudio.datasets import LIBRISPEECH

    ds = _dataset(LIBRISPEECH, root, f"LibriSpeech {LIBRI_SPLITS[split]}", url=LIBRI_SPLITS[split])
    archive = root / "LibriSpeech"  # get_metadata's paths are relative to it
    paths, texts, missing = [], [], 0
    for n in range(len(ds)):
        try:
            relpath, _rate, text, _speaker, _chapter, _utt = ds.get_metadata(n)
        except (FileNotFoundError, ValueError, StopIteration):  # a .flac with no line in *.trans.txt
            missing += 1
            continue
        paths.append(os.fspath(archive / relpath))
        texts.append(text)
    return paths, texts, missing
