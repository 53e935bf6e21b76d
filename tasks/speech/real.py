"""The real speech datasets of the `full` profile: listing by torchaudio, reading by soundfile.

torchaudio's `SPEECHCOMMANDS` and `LIBRISPEECH` classes list and download
the files (their `get_metadata` reads no audio); their `__getitem__` would
call `torchaudio.load`, which needs `torchcodec` since torchaudio 2.9, so
the audio is read here with `soundfile` as int16. A file that cannot be
read, or is not 16 kHz mono, is skipped and counted (`info`), never fatal.

LibriSpeech is decoded once into `DATA/librispeech_cache/<subset>/`: the
samples of every kept clip back to back in one raw int16 file (offsets are
the running sum of `lengths.npy`), `transcripts.json` ([path, transcript] per
clip) and `manifest.json` (listing checksum, counts, dtype, sample count,
file sizes). Later runs memory-map it: no decoding, and only the pages that
batches touch are read (or the whole file once, when moved to a GPU).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from suite import DataError, progress
from tasks.speech import MANIFEST, SAMPLE_RATE
from tasks.speech.audio import MIN_SAMPLES, Clips, at_least_one_window
from tasks.speech.corpus import KEYWORDS

SC_SPLITS = {"train": "training", "val": "validation", "test": "testing"}
NOISE_FOLDER = "_background_noise_"
# Each background-noise recording is cut by time into one region per split (train its first 80 %, val the
# next 10 %, test the last 10 %): a split's silence windows lie inside its own region, so no val or test
# window shares a sample with a training one.
NOISE_REGIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
LIBRI_SPLITS = {"train": "train-clean-100", "val": "dev-clean", "test": "test-clean"}
CACHE = "librispeech_cache"
FLAT = "audio.int16"  # every kept clip's samples back to back, raw little-endian int16


def read_clip(path: str) -> tuple[np.ndarray | None, str | None]:
    """int16 samples of a 16 kHz mono file, or None and the count it is skipped under."""
    import soundfile as sf

    try:
        data, rate = sf.read(path, dtype="int16", always_2d=True)
    except (RuntimeError, OSError, ValueError):  # soundfile raises LibsndfileError (a RuntimeError)
        return None, "unreadable_files"
    if rate != SAMPLE_RATE or data.shape[1] != 1:
        return None, "not_16k_mono"
    return data[:, 0], None


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
    (as many as an average keyword class; marked by a path ending in `#<start>:<stop>`, in samples),
    each inside the split's own region of its recording (`NOISE_REGIONS`), at a sample offset drawn
    from `seed` (a window is cut short where the region is under 1 s).
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
    regions = [noise_region(path, split) for path in noises]
    for i in range(per_class if noises else 0):
        lo, hi = regions[i % len(noises)]
        start = int(rng.integers(lo, max(lo, hi - SAMPLE_RATE) + 1))
        paths.append(f"{noises[i % len(noises)]}#{start}:{min(start + SAMPLE_RATE, hi)}")
        labels.append(11)
    return paths, labels


def noise_region(path: str, split: str) -> tuple[int, int]:
    """The samples [lo, hi) of a background-noise recording that `split`'s silence windows come from
    (an unreadable file has none; the reader then counts it)."""
    import soundfile as sf

    try:
        n = sf.info(path).frames
    except (RuntimeError, OSError, ValueError):
        n = 0
    first, last = NOISE_REGIONS[split]
    return int(n * first), int(n * last)


def read_speech_commands(paths: list[str]) -> tuple[list[np.ndarray], list[int], dict[str, int]]:
    """Read keyword clips; `file#start:stop` entries are windows of a background-noise file."""
    cache: dict[str, tuple[np.ndarray | None, str | None]] = {}  # a noise file serves many windows
    clips, kept, skipped = [], [], {"unreadable_files": 0, "not_16k_mono": 0}
    for i, entry in enumerate(progress(paths, desc="reading Speech Commands", unit="clip")):
        path, _, window = entry.partition("#")
        if path not in cache:
            cache[path] = read_clip(path)
        clip, why = cache[path]
        if why:
            skipped[why] += 1
            continue
        if window:
            start, stop = (int(v) for v in window.split(":"))
            clip = clip[start:stop]
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


def librispeech_clips(root: Path, split: str) -> tuple[Clips, list[str], dict]:
    """A LibriSpeech subset's clips, transcripts and counts, decoded once into the cache then memory-mapped.

    The cache, `root/librispeech_cache/<subset>/`, is rebuilt when its manifest is missing or does
    not match the listing (paths and transcripts), or when a file has the wrong size (truncated).
    """
    paths, texts, missing = librispeech_listing(root, split)
    archive = root / "LibriSpeech"
    listing = [[Path(os.path.relpath(p, archive)).as_posix(), t] for p, t in zip(paths, texts)]
    digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    folder = root / CACHE / LIBRI_SPLITS[split]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the ranks of a torchrun job load at once: one decodes, the rest wait
        manifest = _valid_cache(folder, digest) or build_cache(folder, paths, listing, digest)
    clips, kept = open_cache(folder, manifest)
    counts = {k: manifest[k] for k in ("unreadable_files", "not_16k_mono")}
    return clips, [text for _path, text in kept], {"source": "LibriSpeech (torchaudio listing, decoded cache)",
                                                   "missing_transcripts": missing, **counts}


def _valid_cache(folder: Path, digest: str) -> dict | None:
    """The manifest of a finished cache of this listing whose files have their recorded sizes, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        sizes = manifest["files"]
        ok = (manifest["listing_sha256"] == digest and manifest["min_samples"] == MIN_SAMPLES
              and sizes[FLAT] == 2 * manifest["samples"]
              and all((folder / name).stat().st_size == size for name, size in sizes.items()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest if ok else None


def build_cache(folder: Path, paths: list[str], listing: list[list[str]], digest: str) -> dict:
    """Decode every file once, streaming (one clip in memory at a time); files under temporary names,
    renamed when complete, the manifest last, so an interrupted build leaves no valid cache."""
    (folder / MANIFEST).unlink(missing_ok=True)  # from here on the old files are not a cache
    counts = {"unreadable_files": 0, "not_16k_mono": 0, "short_clips_padded": 0}
    lengths, kept = [], []
    tmp = {name: folder / f"{name}.tmp" for name in (FLAT, "lengths.npy", "transcripts.json", MANIFEST)}
    with open(tmp[FLAT], "wb") as out:
        for path, item in progress(zip(paths, listing), desc=f"decoding {folder.name}", total=len(paths),
                                   unit="file"):
            clip, why = read_clip(path)
            if why:
                counts[why] += 1
                continue
            counts["short_clips_padded"] += len(clip) < MIN_SAMPLES
            clip = at_least_one_window(clip)
            out.write(clip.astype("<i2", copy=False).tobytes())
            lengths.append(len(clip))
            kept.append(item)
    with open(tmp["lengths.npy"], "wb") as f:
        np.save(f, np.array(lengths, np.int64))
    tmp["transcripts.json"].write_text(json.dumps(kept))
    files = {name: tmp[name].stat().st_size for name in (FLAT, "lengths.npy", "transcripts.json")}
    manifest = {"source": f"LibriSpeech {folder.name}", "listing_sha256": digest, "listed": len(listing),
                "kept": len(kept), **counts, "dtype": "int16 little-endian", "sample_rate": SAMPLE_RATE,
                "samples": int(sum(lengths)), "min_samples": MIN_SAMPLES, "files": files,
                "made_by": "tasks/speech/real.py"}
    tmp[MANIFEST].write_text(json.dumps(manifest, indent=1))
    for name, path in tmp.items():  # the manifest is the last name in `tmp`
        os.replace(path, folder / name)
    return manifest


def open_cache(folder: Path, manifest: dict) -> tuple[Clips, list[list[str]]]:
    """The cached clips, memory-mapped (read where batches touch them), and [path, transcript] of each."""
    lengths = torch.from_numpy(np.load(folder / "lengths.npy"))
    flat = np.zeros(0, np.int16)
    if manifest["samples"]:  # numpy cannot map an empty file
        flat = np.memmap(folder / FLAT, dtype="<i2", mode="r", shape=(manifest["samples"],))
    with warnings.catch_warnings():
        # torch warns that it cannot write to a read-only map. Nothing writes to the split
        # (batches are gathered copies); a writable copy would cost the host RAM the cache saves.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
        flat = torch.from_numpy(flat)
    clips = Clips(flat, torch.cumsum(lengths, 0) - lengths, lengths, manifest["short_clips_padded"])
    return clips, json.loads((folder / "transcripts.json").read_text())
