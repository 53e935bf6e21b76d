"""The reference stack (constraints.txt inside pyproject's ranges), the software fingerprint, and the
content fingerprints loaders record for the cell keys."""
import subprocess
import sys
from pathlib import Path

from suite.measuring import fingerprint
from tasks.speech.corpus import corpus_info
from tasks.text import data
from tasks.text.models import weights_sha256
from tests.helpers import load_script

ROOT = Path(__file__).resolve().parent.parent
check_constraints = load_script("scripts/check_constraints.py", "check_constraints")


def test_the_shipped_constraints_lie_inside_pyprojects_ranges():
    assert check_constraints.problems(ROOT / "pyproject.toml", ROOT / "constraints.txt") == []
    pins = check_constraints.pins(ROOT / "constraints.txt")
    assert (pins["torch"], pins["torchvision"], pins["torchaudio"]) == ("2.11.0", "0.26.0", "2.11.0")


def test_a_pin_outside_the_range_fails_with_one_line_naming_the_package(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "dlbench"\ndependencies = ["torch>=2.11", "numpy>=1.26"]\n'
                         '[project.optional-dependencies]\nall = ["dlbench[x]"]\nx = ["scipy>=1.11"]\n')
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# reference\ntorch==2.10.0\nNumPy==2.4.6  # fine\n")
    assert check_constraints.problems(pyproject, constraints) == [
        "constraints.txt: torch==2.10.0 is outside pyproject.toml's range torch>=2.11",
        "constraints.txt: scipy is not pinned (pyproject.toml asks scipy>=1.11): add scipy==X"]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_constraints.py"), str(pyproject),
                           str(constraints)], capture_output=True, text=True)
    assert done.returncode == 1 and "torch==2.10.0" in done.stderr.splitlines()[0]


def test_setup_installs_with_the_constraints_and_checks_them_first():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "-c constraints.txt" in setup
    assert setup.index("check_constraints.py") < setup.index("pip install -q -c")


def test_software_fingerprint_names_every_library_that_can_change_a_result():
    soft = fingerprint.software()
    for name in ("torchvision", "torchaudio", "transformers", "tokenizers", "datasets", "gymnasium", "ale-py",
                 "minatar", "soundfile", "espeakng-loader", "scipy", "numpy", "scikit-learn"):
        assert name in soft["packages"]
    assert "espeak_ng" in soft  # None where eSpeak NG is absent


def test_corpus_fingerprint_follows_the_manifest():
    manifest = {"espeak_version": "1.52.0", "route": "library", "voices": {"train": ["en+f1", "en+m1"]},
                "files": {"train_audio.npy": "aa"}}
    info = corpus_info(manifest, "train")
    assert info["synthesiser"] == "eSpeak NG 1.52.0" and info["synthesiser_route"] == "library"
    assert info["voices"] == 2 and len(info["fingerprint"]) == 64
    other = corpus_info({**manifest, "espeak_version": "1.51.1"}, "train")
    assert other["fingerprint"] != info["fingerprint"]


def test_text_content_fingerprint_sees_a_changed_label():
    a = data.as_dataset(["good film", "bad film"], [1, 0])
    b = data.as_dataset(["good film", "bad film"], [1, 1])
    assert data.content_sha256(a) == data.content_sha256(data.as_dataset(["good film", "bad film"], [1, 0]))
    assert data.content_sha256(a) != data.content_sha256(b)


def test_weights_hash_of_a_folder_changes_with_its_weights(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"one")
    first = weights_sha256(str(tmp_path))
    weights_sha256.cache_clear()
    (tmp_path / "model.safetensors").write_bytes(b"two")
    assert first and weights_sha256(str(tmp_path)) != first
    assert weights_sha256(str(tmp_path / "missing")) is None
