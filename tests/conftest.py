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

import synthetic  # noqa: E402


# $EMNIST_STUDY_DATA_DIR (.ci/run names ../shared/data there, where it is) names the real data for the tests that
# need it, and is then taken out of every test's way (module-scoped fixtures and the scripts the tests start
# included), so that each test reads the data it names and no other. It is kept under a name of the tests' own for
# pytest-xdist's workers, which start from this process's environment.
REAL_DATA_ENV = "EMNIST_STUDY_TESTS_REAL_DATA"
if "EMNIST_STUDY_DATA_DIR" in os.environ:
    os.environ[REAL_DATA_ENV] = os.environ.pop("EMNIST_STUDY_DATA_DIR")


def folders_holding(name: str) -> Path | None:
    """The first folder holding the real file `name` where the scripts look for data: the folders
    $EMNIST_STUDY_DATA_DIR named, then Keras's cache. Looked up once, before the tests give themselves an empty
    home."""
    listed = [Path(d) for d in os.environ.get(REAL_DATA_ENV, "").split(os.pathsep) if d]
    for folder in (*listed, Path.home() / ".keras" / "datasets"):
        if (folder / name).is_file():
            return folder
    return None


REAL_MNIST = folders_holding("mnist.npz")
REAL_EMNIST_LABELS = folders_holding("emnist-letters-train-labels-idx1-ubyte.gz")
REAL_BYCLASS_LETTERS = folders_holding("emnist-byclass-train-images-idx3-ubyte.gz")


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
def real_mnist():
    """A folder holding the real MNIST (mnist.npz); the test is skipped, saying so, where there is none."""
    if REAL_MNIST is None:
        pytest.skip("needs the real MNIST: set EMNIST_STUDY_DATA_DIR to a folder holding mnist.npz, or keep it in "
                    "~/.keras/datasets (python warmup_mnist_cnn.py downloads it there)")
    return REAL_MNIST


@pytest.fixture
def real_emnist_labels():
    """A folder holding the real EMNIST Letters label files; the test is skipped, saying so, where there is none."""
    if REAL_EMNIST_LABELS is None:
        pytest.skip("needs the real EMNIST Letters label files (emnist-letters-*-labels-idx1-ubyte.gz): set "
                    "EMNIST_STUDY_DATA_DIR to a folder holding them")
    return REAL_EMNIST_LABELS


@pytest.fixture
def real_byclass_letters():
    """A folder holding real EMNIST ByClass letters in NIST's IDX files (../shared/data/emnist-byclass-letters: the
    letters of ByClass's test file, re-split into train and test parts, and the mapping file); the test is skipped,
    saying so, where there is none."""
    if REAL_BYCLASS_LETTERS is None:
        pytest.skip("needs real EMNIST ByClass letters (emnist-byclass-{train,test}-*-ubyte.gz and "
                    "emnist-byclass-mapping.txt): set EMNIST_STUDY_DATA_DIR to a folder holding them")
    return REAL_BYCLASS_LETTERS


@pytest.fixture
def mnist_dir(tmp_path):
    """Generated MNIST in the official mnist.npz format: 600 training images (60 a digit), 100 test images."""
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=60, per_class_test=10)
    return tmp_path / "data"


@pytest.fixture
def small_filesystem(tmp_path):
    """A real filesystem of a given size (a tmpfs mounted under tmp_path), for what a full disk does; the test is
    skipped where mounting one is not allowed."""
    import subprocess

    mounted = []

    def mount(size: str) -> Path:  # "8k", "38m"
        folder = tmp_path / f"small-{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"needs a small filesystem, and mounting a tmpfs is not allowed here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], capture_output=True)
