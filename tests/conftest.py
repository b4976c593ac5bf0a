import os
from pathlib import Path

import pytest

# Under pytest-xdist each worker trains with one TensorFlow thread: two workers on two cores then share them out, as
# run_all.py's side-by-side steps do, instead of four threads contending for two. Child processes the tests start
# inherit it, unless they set their own.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

# TensorFlow starts here as it does in the scripts (oneDNN kernels on, quiet), whichever test module imports it
# first: a run trained in the test process and one trained by a script then compute alike, number for number.
from emnist_study import quiet_tensorflow  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


# The files in the order pytest-xdist should hand them out, longest first (pytest.ini's --no-loadscope-reorder keeps
# this order; by default it hands out the files with the most tests first): the quick study's file starts at once,
# so that its long fixture runs beside the other files rather than after them, and the quick files come last, to
# fill in while the other worker finishes. The rest follow in any order.
SLOWEST_FIRST = ["test_run_all.py", "test_benchmark.py", "test_experiments.py", "test_training_runs.py",
                 "test_reliability.py", "test_warmups.py", "test_run_anywhere.py", "test_interrupts.py"]


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order


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
