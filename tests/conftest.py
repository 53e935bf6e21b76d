"""Test-wide settings: no network, data and caches in temporary folders."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# Set before any test imports transformers / datasets: a hub name must fail at once, offline.
_HOME = tempfile.mkdtemp(prefix="dlbench-test-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HOME"] = os.path.join(_HOME, "hf")
os.environ["DLBENCH_DATA"] = os.path.join(_HOME, "data")
os.environ.setdefault("MPLBACKEND", "Agg")
# The peak microbenchmark (suite.measuring.peak) at one small size: measured once per session in the temporary
# data folder, in milliseconds (also in the suites tests start as subprocesses); records still get
# their utilisation from the real code. On CUDA the real sizes stay (they take well under a second).
if not os.environ.get("DLBENCH_PEAK_SIZES"):
    import torch as _torch

    if not _torch.cuda.is_available():
        os.environ["DLBENCH_PEAK_SIZES"] = "512"


def pytest_unconfigure(config):
    """The temporary home goes with the session: built corpora and caches there are a test's own."""
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture
def results_dir(tmp_path):
    return tmp_path / "results"


@pytest.fixture
def smoke_options(results_dir):
    from suite.running.config import SuiteOptions

    return SuiteOptions(profile="smoke", device="cpu", results=results_dir)


@pytest.fixture(autouse=True)
def registry_state():
    """Each test gets the registry as it found it: tasks a test registers do not leak into the next."""
    from suite.taskapi import registry

    state = registry.snapshot()
    yield registry
    registry.restore(state)


def pytest_collection_finish(session):
    """Start the tests with an empty registry: toy tasks registered while test modules were imported
    (tests/toy_tasks.py registers on import, for --tasks-from) are dropped; built-ins load on first use."""
    from suite.taskapi import registry

    registry.reset()


def pytest_runtest_setup(item):
    if item.get_closest_marker("cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU; none on this machine")
