import os
from pathlib import Path

import pytest

# Under pytest-xdist each worker trains with one TensorFlow thread: two workers on two cores then share them out, as
# run_all.py's side-by-side steps do, instead of four threads contending for two (the tiny test models gain
# nothing from a second thread). Child processes the tests start inherit it, unless they set their own.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

# TensorFlow starts here as it does in the scripts (oneDNN kernels on, quiet), whichever test module imports it
# first: a run trained in the test process and one trained by a script then compute alike, number for number.
from emnist_study import quiet_tensorflow  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def offline_home(tmp_path, monkeypatch):
    """Every test gets an empty home (no dataset caches), no data dir from the environment, and no downloads."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("EMNIST_STUDY_DATA_DIR", raising=False)
    monkeypatch.setenv("EMNIST_STUDY_NO_DOWNLOAD", "1")
    return home


@pytest.fixture
def shared_data():
    if not (SHARED_DATA / "mnist.npz").is_file():
        pytest.fail(f"real MNIST is expected at {SHARED_DATA}/mnist.npz (../shared beside the checkout)")
    return SHARED_DATA
