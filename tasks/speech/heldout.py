"""Held-out speech sets: speech that no synthesiser of the training corpus made, never trained on.

  ood_flite      flite's held-out voices rms and slt (`voices.FLITE_HELD_OUT`)
  ood_piper      the neural Piper voice en_US-joe-medium
  real_librivox  (speech recognition only) the five LibriVox recordings of Debian's
                 `pocketsphinx-testdata` (Sense and Sensibility, one reader, 16 kHz), with
                 their transcripts; normalised like the task's text (tasks/speech/audio.py)

The synthesised sets hold the task's own words: keyword spotting's 12 balanced
classes (silence clips are noise alone, as in its test split), speech
recognition's command grammar (tasks/speech/corpus.py), each sentence drawn
anew from a seed of its own. Every clip gets the test split's treatment
(`corpus.mix`: trimmed, placed, a random gain, noise at 5-30 dB SNR or none)
and a speaking rate drawn from `voices.STRETCH`; only the synthesiser differs.

Each set is built once into DATA/<task folder>/<key>/ (audio.npy, lengths.npy,
meta.json, manifest.json with checksums and counts), swapped in whole, checked
on first use in a process and rebuilt when a file does not match its checksum.
A clip that cannot be made (its voice is missing, its synthesis fails) and a
recording that cannot be used (no transcript, unreadable, not 16 kHz mono) is
left out; the manifest counts each reason. An empty set is a DataError naming
it. A missing synthesiser or package is `SplitUnavailable`: the run goes on and
records the set as skipped, with the install line.

Each split's `info` has a `set_sha256` (the manifest's hash), not a
`fingerprint`: a held-out set does not key comparison cells, so a machine that
lacks Piper still pools its in-domain results with one that has it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from suite import DataError, SplitUnavailable, progress, sha256_of
from tasks.speech import MANIFEST, SAMPLE_RATE
from tasks.speech import voices
from tasks.speech.corpus import SNRS_DB, expand, kws_word, mix, workers

SET_FILES = ("audio.npy", "lengths.npy", "meta.json")
LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
LIBRIVOX_INSTALL = "sudo apt-get install pocketsphinx-testdata"
_CHECKED: set[Path] = set()  # folders verified by this process


@dataclass(frozen=True)
class HeldOutConfig:
    """What decides a synthesised held-out set's content; its hash names the folder."""

    kind: str  # "asr" | "kws"
    synth: str  # "flite" | "piper"
    clips: int
    seed: int = 4321  # not the training corpus's seed: other sentences, other noise
    version: int = 1

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return f"{self.kind}-{self.synth}-{hashlib.sha256(blob).hexdigest()[:10]}"


def synthesiser(name: str):
    """The synthesiser of a held-out set (SplitUnavailable, with the install line, when missing)."""
    if name == "flite":
        return voices.flite(required_for="ood_flite")
    if name == "piper":
        return voices.piper()
    raise ValueError(f"no held-out synthesiser {name!r}")


SET_VOICES = {"flite": voices.FLITE_HELD_OUT, "piper": (voices.PIPER_VOICE,)}


def plans(config: HeldOutConfig) -> list[dict]:
    """Every clip's text (or label and word), voice, rate, gain, noise and SNR, from the set's seed."""
    rng = np.random.default_rng([config.seed, config.clips])
    names = SET_VOICES[config.synth]
    out = []
    for i in range(config.clips):
        plan = {"seed": int(rng.integers(2**31)), "voice": names[rng.integers(len(names))],
                "stretch": float(rng.uniform(*voices.STRETCH)), "gain": float(rng.uniform(0.1, 0.9)),
                "snr_db": SNRS_DB[rng.integers(len(SNRS_DB))], "noise": ["white", "pink", "brown"][rng.integers(3)]}
        plan.update({"text": expand("<cmd>", rng)} if config.kind == "asr" else kws_word(i, rng))
        out.append(plan)
    return out


def render_all(todo: list[dict], kind: str, synth, desc: str) -> tuple[list[np.ndarray], list[dict], Counter]:
    """Clips of the plans that can be made, their plans, and a count of the others by reason."""
    have = set(synth.voices())
    left_out: Counter = Counter()

    def one(plan: dict) -> np.ndarray | str:
        if plan["voice"] not in have:
            return f"voice {plan['voice']} missing from {synth.route}"
        if not plan["text"]:
            return mix(np.zeros(0, np.float32), plan, kind)
        try:
            speech = synth.speak(plan["text"], plan["voice"], plan["stretch"])
        except Exception as exc:  # noqa: BLE001 - one clip that fails is left out and counted, never fatal
            return f"synthesis failed ({type(exc).__name__})"
        return mix(speech, plan, kind) if len(speech) else "synthesis gave no audio"

    # flite runs one process per clip: threads keep every core busy. Piper's session has its own threads.
    threads = workers() if synth.route == "flite" else 1
    clips, kept = [], []
    with ThreadPoolExecutor(threads) as pool, progress(desc=desc, total=len(todo), unit="clip") as bar:
        for plan, got in zip(todo, pool.map(one, todo)):
            bar.update(1)
            if isinstance(got, str):
                left_out[got] += 1
            else:
                clips.append(got)
                kept.append(plan)
    return clips, kept, left_out


def write_set(folder: Path, clips: list[np.ndarray], meta: list, manifest: dict) -> dict:
    """Write a set into a temporary folder with checksums, then swap it in (a crash leaves no half set)."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    lengths = np.array([len(c) for c in clips], np.int64)
    np.save(tmp / "audio.npy", np.concatenate(clips).astype(np.int16) if clips else np.zeros(0, np.int16))
    np.save(tmp / "lengths.npy", lengths)
    (tmp / "meta.json").write_text(json.dumps(meta))
    manifest = {**manifest, "clips": len(clips), "hours": round(float(lengths.sum()) / SAMPLE_RATE / 3600, 4),
                "sample_rate": SAMPLE_RATE, "files": {name: sha256_of(tmp / name) for name in SET_FILES},
                "made_by": "tasks/speech/heldout.py"}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return manifest


def valid(folder: Path, expect: dict) -> bool:
    """True when the folder holds a finished set whose manifest has the `expect` items and whose files match
    their checksums."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        return all(manifest.get(k) == v for k, v in expect.items()) and set(files) == set(SET_FILES) and all(
            sha256_of(folder / name) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def read_set(folder: Path, name: str) -> tuple[list[np.ndarray], list, dict]:
    """Clips, meta entries and manifest of a built set; a DataError naming it when it holds no clip."""
    manifest = json.loads((folder / MANIFEST).read_text())
    if not manifest["clips"]:
        why = ", ".join(f"{n} {reason}" for reason, n in manifest.get("left_out", {}).items()) or "nothing planned"
        raise DataError(f"held-out set {name} in {folder} is empty (left out: {why}): install what it needs, "
                        f"delete {folder} and run again")
    audio, lengths = np.load(folder / "audio.npy"), np.load(folder / "lengths.npy")
    ends = np.cumsum(lengths)
    return [audio[e - n:e] for e, n in zip(ends, lengths)], json.loads((folder / "meta.json").read_text()), manifest


def set_info(manifest: dict) -> dict:
    """What a split's `info` says of a held-out set: its source, counts left out and a hash of its manifest."""
    return {"source": manifest["source"], "held_out": True, "left_out": manifest.get("left_out", {}),
            "set_sha256": hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()}


def synthesised_set(root: Path, name: str, config: HeldOutConfig, field: str) -> tuple[list[np.ndarray], list, dict]:
    """The held-out set `name` of `config` under `root`: (clips, each plan's `field`, info); built on first
    use, rebuilt when corrupt; SplitUnavailable when its synthesiser is missing."""
    folder = root / config.key()
    if folder not in _CHECKED and not valid(folder, {"config": asdict(config)}):
        synth = synthesiser(config.synth)
        clips, kept, left_out = render_all(plans(config), config.kind, synth, f"{name}: {synth.route} {config.kind}")
        write_set(folder, clips, kept, {"source": f"{synth.version} synthesis", "config": asdict(config),
                                        "voices": list(SET_VOICES[config.synth]), "left_out": dict(left_out)})
    _CHECKED.add(folder)
    clips, meta, manifest = read_set(folder, name)
    return clips, [plan[field] for plan in meta], set_info(manifest)


# -- real speech: LibriVox recordings of pocketsphinx-testdata -------------------------------------------------
TRANSCRIPT_LINE = re.compile(r"^\s*(?:<s>)?\s*(?P<text>.*?)\s*(?:</s>)?\s*\((?P<id>[^()\s]+)\)\s*$")


def read_transcription(path: Path) -> dict[str, str]:
    """{recording id: transcript} of a Sphinx transcription file (`<s> words </s> (id)` per line)."""
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = TRANSCRIPT_LINE.match(line)
        if match and match["text"]:
            out[match["id"]] = match["text"]
    return out


def source_digest(source: Path) -> str:
    """sha256 over the source folder's file names and checksums: a changed package rebuilds the set."""
    listing = sorted((p.name, sha256_of(p)) for p in source.iterdir() if p.is_file())
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def build_librivox(folder: Path, source: Path, digest: str) -> None:
    """Read every recording of `source` that has a transcript into the set folder."""
    from tasks.speech.real import read_clip

    transcripts = read_transcription(source / "transcription") if (source / "transcription").is_file() else {}
    recordings = {p.stem: p for p in sorted(source.glob("*.wav"))}
    left_out: Counter = Counter()
    clips, meta = [], []
    for rec_id, path in progress(sorted(recordings.items()), desc="real_librivox: reading", unit="file"):
        if rec_id not in transcripts:
            left_out["recording without transcript"] += 1
            continue
        clip, why = read_clip(str(path))
        if why:
            left_out[{"unreadable_files": "unreadable recording", "not_16k_mono": "not 16 kHz mono"}[why]] += 1
            continue
        clips.append(clip)
        meta.append({"id": rec_id, "text": transcripts[rec_id]})
    missing = len(set(transcripts) - set(recordings))
    if missing:
        left_out["transcript without recording"] += missing
    write_set(folder, clips, meta, {"source": f"LibriVox recordings of {source} (Debian pocketsphinx-testdata)",
                                    "source_sha256": digest, "left_out": dict(left_out)})


def librivox_set(root: Path, source: Path | None = None) -> tuple[list[np.ndarray], list[str], dict]:
    """real_librivox: (clips, transcripts, info) of the recordings in `source` (default LIBRIVOX_DIR); built
    into `root`/real_librivox on first use."""
    source = Path(source or LIBRIVOX_DIR)
    if not source.is_dir():
        raise SplitUnavailable(f"real_librivox needs the LibriVox recordings in {source}: {LIBRIVOX_INSTALL}")
    folder = root / "real_librivox"
    if folder not in _CHECKED:
        digest = source_digest(source)
        if not valid(folder, {"source_sha256": digest}):
            build_librivox(folder, source, digest)
        _CHECKED.add(folder)
    clips, meta, manifest = read_set(folder, "real_librivox")
    return clips, [m["text"] for m in meta], set_info(manifest)


# -- the sets of each task -----------------------------------------------------------------------------------
# Sizes: one evaluation of a set costs a few seconds on 2 CPU cores and its synthesis well under a minute.
SETS = {"kws": {"ood_flite": HeldOutConfig("kws", "flite", 240), "ood_piper": HeldOutConfig("kws", "piper", 240)},
        "asr": {"ood_flite": HeldOutConfig("asr", "flite", 160), "ood_piper": HeldOutConfig("asr", "piper", 160),
                "real_librivox": None}}
SPLITS = {kind: tuple(sets) for kind, sets in SETS.items()}  # the eval split names, per kind of task


def load_set(root: Path, kind: str, split: str, field: str) -> tuple[list[np.ndarray], list, dict]:
    """The held-out split `split` of a task of `kind` ("kws" | "asr"), its data under `root`: (clips, each
    clip's `field` ("label" | "text"), info)."""
    if split == "real_librivox":
        return librivox_set(root)
    return synthesised_set(root, split, SETS[kind][split], field)
