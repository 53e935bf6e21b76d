"""Speech corpora synthesised with eSpeak NG, cached in the data folder with a manifest.

Two corpora share this code: sentences from a seeded grammar (ASR) and
one-second keyword clips in the 12 Speech Commands classes (keyword
spotting). Each clip draws an accent, a voice variant, a speaking rate, a
pitch, an amplitude, a background noise at some SNR and a position, all
from a generator seeded by the corpus seed and the clip's index.

`voices` ("espeak", the default, or "espeak+flite"; `--set task.voices`) names
the synthesisers of the training split: with flite, every other training clip
of each class (of each clip, for sentences) is spoken by one of flite's training voices (`voices.FLITE_TRAIN`) instead,
so the corpus keeps its size and its val / test splits (eSpeak NG's held-out
voices). flite's other voices are never trained on: they speak the held-out
set `ood_flite` (tasks/speech/heldout.py).

Split by voice: the voice variants (the speaker-like presets) are split
80/10/10 into train / val / test, so val and test voices are never heard
in training (accents are shared: they are the dialects, not the speakers).

eSpeak NG keeps internal state (pitch flutter, phase) from one clip to the
next, so a clip depends on what the same process spoke before. Generation
therefore runs in fixed shards, each in a fresh process: the output depends
only on the seed, not on how many cores did the work.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from suite import ConfigError, DataError, SplitUnavailable, TaskOption, progress, sha256_of
from tasks.speech import MANIFEST, SAMPLE_RATE
from tasks.speech.synth import ACCENTS, synthesizer
from tasks.speech.voices import FLITE_TRAIN, STRETCH, flite

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine",
                 "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "backward",
                 "follow", "forward", "learn", "visual")
KWS_LABELS = KEYWORDS + ("_unknown_", "_silence_")
SNRS_DB = (None, 30.0, 20.0, 10.0, 5.0)  # None: no added noise
SHARD = 1000  # clips per fresh process (each pays ~1.5 s to import scipy.signal)
REPO_ROOT = Path(__file__).resolve().parents[2]  # tasks/speech/corpus.py -> the repository
CORPUS_FILES = {f"{split}_{suffix}" for split in ("train", "val", "test")
                for suffix in ("audio.npy", "lengths.npy", "meta.json")}
_CHECKED: set[Path] = set()  # folders verified by this process (checksums are read once)

DIGITS = "zero one two three four five six seven eight nine".split()
GRAMMAR = {
    "<cmd>": ["turn <onoff> the <room> <device>", "set the <device> to <num>", "<move> <dir> <num> steps",
              "play <genre> music", "call <name> at <num> <num> <num>", "open the <room> door",
              "what is the weather in <city>", "remind me to <task> at <num> o'clock",
              "<digits>", "<name> wants <num> <thing>", "please <move> <dir>", "stop the <device>"],
    "<onoff>": ["on", "off"],
    "<room>": ["kitchen", "bedroom", "garage", "office", "bathroom", "garden", "living room"],
    "<device>": ["lights", "heater", "radio", "fan", "oven", "television", "alarm", "music"],
    "<move>": ["go", "move", "walk", "turn", "jump"],
    "<dir>": ["left", "right", "up", "down", "forward", "back"],
    "<genre>": ["jazz", "rock", "classical", "country", "quiet", "loud"],
    "<name>": ["alice", "bob", "carol", "david", "emma", "frank", "grace", "henry"],
    "<city>": ["london", "paris", "boston", "tokyo", "berlin", "madrid"],
    "<task>": ["call mom", "buy milk", "feed the cat", "water the plants", "take the pills"],
    "<thing>": ["apples", "books", "cups of tea", "tickets", "red balloons"],
    "<num>": DIGITS + ["ten", "twenty", "fifty", "hundred"],
    "<digits>": ["<d> <d> <d>", "<d> <d> <d> <d>", "<d> <d> <d> <d> <d>"],
    "<d>": DIGITS,
}


VOICES = ("espeak", "espeak+flite")  # the values of `--set task.voices`: the training split's synthesisers
DEFAULT_VOICES = "espeak"
VOICES_OPTION = TaskOption("voices", str, DEFAULT_VOICES, "synthesisers of the training split of the synthesised "
                           "corpora: espeak, or espeak+flite (every other clip of each class by flite's voices "
                           "awb, kal16; val / test unchanged)", choices=VOICES)


@dataclass(frozen=True)
class CorpusConfig:
    """What decides a corpus's content; its hash names the cache folder."""

    kind: str  # "asr" | "kws"
    per_split: tuple[int, int, int]  # clips in train, val, test
    seed: int = 1234
    version: int = 1
    voices: str = DEFAULT_VOICES  # the training split's synthesisers (one of VOICES)

    def as_dict(self) -> dict:
        """The config as the manifest stores it; the default voices are left out, so an eSpeak-only corpus
        keeps the name and manifest it had before other synthesisers could train."""
        out = asdict(self)
        if self.voices == DEFAULT_VOICES:
            del out["voices"]
        elif self.kind == "kws":  # names the pick, so a corpus cached when flite spoke only the odd classes is rebuilt
            out["flite_clips"] = "every other clip of each class"
        return json.loads(json.dumps(out))

    def key(self) -> str:
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return f"{self.kind}-{hashlib.sha256(blob).hexdigest()[:10]}"


def split_voices(variants: list[str], seed: int) -> dict[str, list[str]]:
    """Voice variants split 80/10/10 (at least one each) by a seeded shuffle: no voice in two splits."""
    order = list(variants)
    np.random.default_rng(seed).shuffle(order)
    n_eval = max(1, len(order) // 10)
    return {"val": sorted(order[:n_eval]), "test": sorted(order[n_eval:2 * n_eval]),
            "train": sorted(order[2 * n_eval:])}


def expand(template: str, rng: np.random.Generator) -> str:
    """A sentence from the grammar: each <slot> replaced by a random choice, recursively."""
    words = []
    for token in template.split():
        if token in GRAMMAR:
            choices = GRAMMAR[token]
            words.append(expand(choices[rng.integers(len(choices))], rng))
        else:
            words.append(token)
    return " ".join(words)


def clip_plans(config: CorpusConfig, split: str, voices: list[str]) -> list[dict]:
    """Everything about each clip of a split except its samples: text, label, voice, rate, noise..."""
    index = ("train", "val", "test").index(split)
    rng = np.random.default_rng([config.seed, index])
    plans = []
    for i in range(config.per_split[index]):
        plan = {"seed": int(rng.integers(2**31)), "voice": f"{ACCENTS[rng.integers(len(ACCENTS))]}+"
                f"{voices[rng.integers(len(voices))]}", "rate": int(rng.integers(120, 230)),
                "pitch": int(rng.integers(20, 80)), "gain": float(rng.uniform(0.1, 0.9)),
                "snr_db": SNRS_DB[rng.integers(len(SNRS_DB))], "noise": ["white", "pink", "brown"][rng.integers(3)]}
        if config.kind == "asr":
            plan["text"] = expand("<cmd>", rng)
        else:
            plan.update(kws_word(i, rng))
        plans.append(plan)
    if split == "train" and "flite" in config.voices.split("+"):
        flite_rng = np.random.default_rng([config.seed, index, 1])  # apart: the eSpeak plans stay as they were
        for plan in every_other_of_each_label(plans):
            del plan["rate"], plan["pitch"]  # eSpeak NG's settings; flite's rate is its duration stretch
            plan.update(synth="flite", voice=FLITE_TRAIN[flite_rng.integers(len(FLITE_TRAIN))],
                        stretch=float(flite_rng.uniform(*STRETCH)))
    return plans


def every_other_of_each_label(plans: list[dict]) -> list[dict]:
    """The second, fourth, ... clip of each label (of each clip where there are no labels): keyword clips take
    the classes in turn, so every other clip alone would give one synthesiser the even classes and the other
    the odd ones, and a model could read the class from the voice."""
    seen: dict = {}
    picked = []
    for plan in plans:
        seen[plan.get("label")] = seen.get(plan.get("label"), 0) + 1
        if seen[plan.get("label")] % 2 == 0:
            picked.append(plan)
    return picked


def kws_word(i: int, rng: np.random.Generator) -> dict:
    """The label and word of keyword clip `i`: classes in turn (balanced), the word drawn within its class."""
    label = i % len(KWS_LABELS)
    words = {10: UNKNOWN_WORDS, 11: ("",)}.get(label, (KEYWORDS[label % 10],))
    return {"label": label, "text": words[rng.integers(len(words))]}


def colored_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink (1/f) or brown (1/f^2) noise, shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum *= {"white": 1.0, "pink": f ** -0.5, "brown": f ** -1.0}[kind]
    noise = np.fft.irfft(spectrum, n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def render(plan: dict, kind: str) -> np.ndarray:
    """One clip as int16 at 16 kHz: speech trimmed, placed, scaled, with noise at the planned SNR."""
    if not plan["text"]:
        return mix(np.zeros(0, np.float32), plan, kind)
    if plan.get("synth") == "flite":
        return mix(flite().speak(plan["text"], plan["voice"], plan["stretch"]), plan, kind)
    return mix(synthesizer().speak(plan["text"], plan["voice"], plan["rate"], plan["pitch"], plan["seed"]), plan, kind)


def mix(speech: np.ndarray, plan: dict, kind: str) -> np.ndarray:
    """Float speech at 16 kHz -> the clip as int16: trimmed, placed, scaled by the plan's gain, with its
    noise at its SNR (drawn from the plan's seed, so every synthesiser's clips get the same treatment)."""
    rng = np.random.default_rng(plan["seed"])
    loud = np.flatnonzero(np.abs(speech) > 0.01)
    speech = speech[loud[0]:loud[-1] + 1] if len(loud) else speech[:0]
    if kind == "kws":
        total = SAMPLE_RATE
        speech = speech[:total]
    else:
        total = len(speech) + int(rng.integers(SAMPLE_RATE // 20, SAMPLE_RATE // 2))
    out = np.zeros(total, np.float32)
    start = int(rng.integers(0, total - len(speech) + 1))
    if len(speech):
        out[start:start + len(speech)] = speech / (np.abs(speech).max() + 1e-9) * plan["gain"]
    noise = colored_noise(total, plan["noise"], rng)
    if not len(speech):  # a silence clip: background noise only, at a random level
        out += noise * float(rng.uniform(0.001, 0.1)) * (plan["snr_db"] is not None)
    elif plan["snr_db"] is not None:
        speech_rms = float(np.sqrt(np.mean(speech**2))) / (np.abs(speech).max() + 1e-9) * plan["gain"]
        out += noise * speech_rms / (10 ** (plan["snr_db"] / 20))
    return (np.clip(out, -1, 1) * 32767).astype(np.int16)


def render_shard(plans_path: str, out_path: str) -> None:
    """Worker: render the plans in a JSON file into an .npz (run as `python -m tasks.speech.corpus`)."""
    job = json.loads(Path(plans_path).read_text())
    clips = [render(p, job["kind"]) for p in job["plans"]]
    lengths = np.array([len(c) for c in clips], np.int64)
    audio = np.concatenate(clips) if clips else np.zeros(0, np.int16)
    np.savez(out_path, audio=audio, lengths=lengths, route=np.array(synthesizer().route))


def workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _run_shard(kind: str, plans: list[dict], tmp: Path, i: int) -> tuple[str, list[np.ndarray]]:
    plans_path, out_path = tmp / f"shard{i}.json", tmp / f"shard{i}.npz"
    plans_path.write_text(json.dumps({"kind": kind, "plans": plans}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           PARENT_ENV: str(os.getpid())}
    done = subprocess.run([sys.executable, "-m", "tasks.speech.corpus", str(plans_path), str(out_path)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr.strip() or "no output").splitlines()
        raise DataError(f"speech synthesis worker failed: {lines[-1]}")
    with np.load(out_path) as out:  # each out[key] re-reads the file: read every array once
        audio, lengths, route = out["audio"], out["lengths"], str(out["route"])
    ends = np.cumsum(lengths)
    return route, [audio[e - n:e] for e, n in zip(ends, lengths)]


def synthesize(plans: list[dict], kind: str, tmp: Path) -> tuple[str, list[np.ndarray]]:
    """All clips of `plans`, shard by shard, each shard in a fresh process (see module docstring)."""
    shards = [plans[i:i + SHARD] for i in range(0, len(plans), SHARD)]
    if not shards:
        return "", []
    done = []
    with ThreadPoolExecutor(min(workers(), len(shards))) as pool, \
            progress(desc=f"eSpeak NG {kind} corpus", total=len(plans), unit="clip") as bar:
        for result in pool.map(_run_shard, [kind] * len(shards), shards, [tmp] * len(shards), range(len(shards))):
            done.append(result)
            bar.update(len(result[1]))
    for path in tmp.glob("shard*"):
        path.unlink()
    return done[0][0], [clip for _, clips in done for clip in clips]


def _valid(folder: Path, config: CorpusConfig) -> bool:
    """True when the folder holds a finished corpus of `config` whose files match their checksums."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        # Every split's three files must be listed: an empty (or short) list would check nothing.
        return manifest["config"] == config.as_dict() and set(files) >= CORPUS_FILES and all(
            sha256_of(folder / name) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def build(folder: Path, config: CorpusConfig) -> None:
    """Synthesise every split into a temporary folder, then swap it in (a crash leaves no half corpus)."""
    synth = synthesizer()  # fails here, with the install hint, when neither route exists
    voices = split_voices(synth.variants(), config.seed)
    extra = check_voices(config)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    plans = {split: clip_plans(config, split, voices[split]) for split in ("train", "val", "test")}
    # All splits in one list, so a small corpus costs one worker process, not three.
    route, clips = synthesize(sum(plans.values(), []), config.kind, tmp)
    files, counts, start = {}, {}, 0
    for split, split_plans in plans.items():
        part, start = clips[start:start + len(split_plans)], start + len(split_plans)
        lengths = np.array([len(c) for c in part], np.int64)
        np.save(tmp / f"{split}_audio.npy", np.concatenate(part) if part else np.zeros(0, np.int16))
        np.save(tmp / f"{split}_lengths.npy", lengths)
        (tmp / f"{split}_meta.json").write_text(json.dumps(split_plans))
        counts[split] = {"clips": len(part), "hours": round(float(lengths.sum()) / SAMPLE_RATE / 3600, 4)}
        for suffix in ("audio.npy", "lengths.npy", "meta.json"):
            files[f"{split}_{suffix}"] = sha256_of(tmp / f"{split}_{suffix}")
    manifest = {"source": "eSpeak NG synthesis", "route": route or synth.route, "espeak_version": synth.version,
                "config": config.as_dict(), "voices": voices, "counts": counts, "files": files,
                "sample_rate": SAMPLE_RATE, "made_by": "tasks/speech/corpus.py", **extra}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def check_voices(config: CorpusConfig) -> dict:
    """What the manifest says of the training split's other synthesisers; a DataError when one is missing
    (a training corpus must hold what its config says, so a missing voice is not left out)."""
    if config.voices not in VOICES:
        raise ConfigError("task.voices", config.voices, f"wants one of {', '.join(VOICES)}")
    if config.voices == DEFAULT_VOICES:
        return {}
    try:
        synth = flite(required_for=f"task.voices={config.voices}")
    except SplitUnavailable as exc:  # an evaluation set may be skipped; the training split may not
        raise DataError(str(exc)) from None
    missing = sorted(set(FLITE_TRAIN) - set(synth.voices()))
    if missing:
        raise DataError(f"task.voices={config.voices}: flite at {synth.exe} lacks the voices {', '.join(missing)}: "
                        "install Debian's flite 2.2 (`sudo apt-get install flite`)")
    return {"flite_version": synth.version, "flite_train_voices": list(FLITE_TRAIN)}


def corpus_info(manifest: dict, split: str) -> dict:
    """What a split's `info` says of a synthesised corpus: its source, synthesiser (and version) and fingerprint.

    The fingerprint is the sha256 of the manifest (every file's checksum, the corpus config, the eSpeak NG
    version and route), so corpora that differ in content get other cells in the tables.
    """
    info = {"source": f"eSpeak NG {manifest['espeak_version']} ({manifest['route']} route)",
            "synthesiser": f"eSpeak NG {manifest['espeak_version']}", "synthesiser_route": manifest["route"],
            "fingerprint": hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest(),
            "voices": len(manifest["voices"][split])}
    if split == "train" and manifest.get("flite_version"):
        info.update(synthesiser=f"{info['synthesiser']} + {manifest['flite_version']}",
                    flite_voices=manifest["flite_train_voices"])
    return info


def load_split(root: Path, config: CorpusConfig, split: str) -> tuple[list[np.ndarray], list[dict], dict]:
    """Clips (int16), their plans and the manifest; synthesised on first use, rebuilt when broken."""
    folder = root / config.key()
    if folder not in _CHECKED and not _valid(folder, config):
        build(folder, config)
    _CHECKED.add(folder)
    audio = np.load(folder / f"{split}_audio.npy")
    lengths = np.load(folder / f"{split}_lengths.npy")
    ends = np.cumsum(lengths)
    clips = [audio[e - n:e] for e, n in zip(ends, lengths)]
    plans = json.loads((folder / f"{split}_meta.json").read_text())
    manifest = json.loads((folder / MANIFEST).read_text())
    return clips, plans, manifest


PARENT_ENV = "DLBENCH_SYNTH_PARENT"


def die_with_parent(parent: int) -> None:
    """End this worker when its parent dies (kill -9 included): PR_SET_PDEATHSIG on Linux, else polling."""
    import signal
    import threading

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


@dataclass(frozen=True)
class CorpusLoader:
    """A task's dataset loader for the corpus `config`: (data folder, split) -> (clips, each plan's `field`
    (the label or the text), info); the corpus is synthesised into DATA/`folder` on first use."""

    folder: str
    config: CorpusConfig
    field: str

    def __call__(self, data_dir: Path, split: str) -> tuple[list[np.ndarray], list, dict]:
        clips, plans, manifest = load_split(Path(data_dir) / self.folder, self.config, split)
        return clips, [plan[self.field] for plan in plans], corpus_info(manifest, split)


def loader(folder: str, config: CorpusConfig, field: str) -> CorpusLoader:
    return CorpusLoader(folder, config, field)


def with_voices(load, voices: str, dataset: str):
    """The dataset loader `load` with the training voices `voices` (`--set task.voices`): a synthesised
    corpus gets them in its config (and so in its name and fingerprint); recorded speech takes none."""
    if isinstance(load, CorpusLoader):
        return CorpusLoader(load.folder, replace(load.config, voices=voices), load.field)
    if voices != DEFAULT_VOICES:
        raise ConfigError("task.voices", voices, f"dataset {dataset!r} is recorded speech: only "
                          f"{DEFAULT_VOICES!r} applies (the other voices are for the synthesised corpora)")
    return load


if __name__ == "__main__":
    if os.environ.get(PARENT_ENV, "").isdigit():
        die_with_parent(int(os.environ[PARENT_ENV]))
    render_shard(sys.argv[1], sys.argv[2])
