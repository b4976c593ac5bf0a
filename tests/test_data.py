import hashlib

import numpy as np
import pytest

import synthetic
from emnist_study import data, sources
from emnist_study.errors import UserError


# --- real MNIST -------------------------------------------------------------------------------------------

def test_real_mnist_loads_with_its_official_counts(real_mnist):
    train = data.load_mnist(split="train", data_dir=real_mnist)
    test = data.load_mnist(split="test", data_dir=real_mnist)
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28)
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert train.images.mean() == pytest.approx(33.318, abs=0.01)
    assert train.class_names == data.DIGITS
    sha = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
    assert list(train.source["files"].values()) == [sha]


def test_real_mnist_is_upright(real_mnist):
    """Upright digits: the strokes of the 1s are tall, not wide."""
    train = data.load_mnist(split="train", data_dir=real_mnist)
    ones = train.images[train.labels == 1][:500].astype(float)
    height = (ones.sum(axis=2) > 0).sum(axis=1).mean()
    width = (ones.sum(axis=1) > 0).sum(axis=1).mean()
    assert height > 1.5 * width


# --- MNIST sources --------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_idx_files(tmp_path, compress):
    synthetic.write_mnist_idx(tmp_path, compress)
    train = data.load_mnist(split="train", data_dir=tmp_path)
    assert train.images.shape == (50, 28, 28)
    assert np.bincount(train.labels).tolist() == [5] * 10
    assert len(train.source["files"]) == 2


def test_mnist_from_keras_cache(offline_home, tmp_path):
    synthetic.write_mnist_npz(offline_home / ".keras" / "datasets", per_class_train=3)
    assert data.load_mnist(split="train").images.shape == (30, 28, 28)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    synthetic.write_mnist_npz(tmp_path, per_class_train=2)
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path))
    assert data.load_mnist(split="train").images.shape == (20, 28, 28)


def test_mnist_download_into_keras_cache(offline_home, tmp_path, monkeypatch):
    served = synthetic.write_mnist_npz(tmp_path / "server", per_class_train=2)
    monkeypatch.setattr(sources, "MNIST_URL", served.as_uri())
    monkeypatch.setattr(sources, "MNIST_SHA256", hashlib.sha256(served.read_bytes()).hexdigest())
    monkeypatch.delenv("EMNIST_STUDY_NO_DOWNLOAD")
    assert data.load_mnist(split="train").images.shape == (20, 28, 28)
    assert (offline_home / ".keras" / "datasets" / "mnist.npz").is_file()


# --- EMNIST Letters ------------------------------------------------------------------------------------

def test_emnist_images_come_out_upright(tmp_path):
    """The official files store each glyph transposed; the loader must undo that."""
    stored_images, _ = synthetic.emnist_arrays("train", per_class=2)
    assert np.array_equal(stored_images[0], synthetic.glyph_L().T)  # written the way the official files are
    assert not np.array_equal(synthetic.glyph_L(), synthetic.glyph_L().T)
    synthetic.write_emnist_files(tmp_path, per_class_train=2)
    train = data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert np.array_equal(train.images[0], synthetic.glyph_L())


def test_emnist_labels_start_at_zero(tmp_path):
    synthetic.write_emnist_files(tmp_path, per_class_train=3, per_class_test=2)
    train = data.load_emnist_letters(split="train", data_dir=tmp_path)
    test = data.load_emnist_letters(split="test", data_dir=tmp_path)
    assert sorted(set(train.labels.tolist())) == list(range(26))
    assert np.bincount(test.labels).tolist() == [2] * 26
    assert train.class_names[0] == "A/a" and train.class_names[25] == "Z/z" and len(data.LETTERS) == 26


def test_emnist_from_nist_zip_in_data_dir(tmp_path):
    synthetic.write_emnist_zip(tmp_path / "gzip.zip", per_class_train=2)
    train = data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert train.images.shape == (52, 28, 28)
    assert np.array_equal(train.images[0], synthetic.glyph_L())


def test_emnist_from_emnist_package_cache(offline_home):
    synthetic.write_emnist_zip(offline_home / ".cache" / "emnist" / "emnist.zip", per_class_test=3)
    test = data.load_emnist_letters(split="test")
    assert test.images.shape == (78, 28, 28)


def test_emnist_download_checks_md5_and_saves_where_emnist_package_looks(offline_home, tmp_path, monkeypatch):
    served = tmp_path / "server" / "gzip.zip"
    md5 = synthetic.write_emnist_zip(served, per_class_train=2)
    monkeypatch.setattr(sources, "EMNIST_URL", served.as_uri())
    monkeypatch.setattr(sources, "EMNIST_MD5", md5)
    monkeypatch.delenv("EMNIST_STUDY_NO_DOWNLOAD")
    train = data.load_emnist_letters(split="train")
    assert train.images.shape == (52, 28, 28)
    # where the `emnist` package keeps NIST's zip (its get_cached_data_path()), so a copy it made is found too
    assert (offline_home / ".cache" / "emnist" / "emnist.zip").is_file()


def test_emnist_download_with_wrong_checksum_leaves_nothing(offline_home, tmp_path, monkeypatch):
    served = tmp_path / "server" / "gzip.zip"
    synthetic.write_emnist_zip(served)
    monkeypatch.setattr(sources, "EMNIST_URL", served.as_uri())
    monkeypatch.delenv("EMNIST_STUDY_NO_DOWNLOAD")
    with pytest.raises(UserError, match="checksum mismatch"):
        data.load_emnist_letters(split="train")
    assert list(offline_home.iterdir()) == []  # neither the file nor the empty folders it would have gone in


def test_a_download_too_big_for_the_disk_is_refused_before_it_starts(offline_home, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    served = synthetic.write_mnist_npz(tmp_path / "server", per_class_train=2)
    monkeypatch.setattr(sources, "MNIST_URL", served.as_uri())
    monkeypatch.setattr(sources, "MNIST_SHA256", hashlib.sha256(served.read_bytes()).hexdigest())
    monkeypatch.delenv("EMNIST_STUDY_NO_DOWNLOAD")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(UserError, match=r"MB, but only 0 MB are free in .*\.keras/datasets: free some space"):
        data.load_mnist(split="train")
    assert list(offline_home.iterdir()) == []  # nothing half-written, no empty cache folders


def test_a_disk_that_fills_during_a_download_gets_one_line_and_leaves_nothing(offline_home, tmp_path,
                                                                            monkeypatch):
    import builtins
    import errno

    served = synthetic.write_mnist_npz(tmp_path / "server", per_class_train=2)
    monkeypatch.setattr(sources, "MNIST_URL", served.as_uri())
    monkeypatch.delenv("EMNIST_STUDY_NO_DOWNLOAD")
    real_open = builtins.open

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, chunk):
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return FullDisk(f) if str(path).endswith(".partial") and "w" in mode else f

    monkeypatch.setattr(builtins, "open", open_)
    with pytest.raises(UserError, match=r"the disk filled while downloading .*\(nothing was kept\)"):
        data.load_mnist(split="train")
    monkeypatch.setattr(builtins, "open", real_open)
    assert list(offline_home.iterdir()) == []


def test_several_data_dirs_are_searched_in_turn(tmp_path, monkeypatch):
    synthetic.write_mnist_npz(tmp_path / "digits")
    synthetic.write_emnist_files(tmp_path / "letters")
    both = [tmp_path / "letters", tmp_path / "digits"]
    assert data.load_mnist(split="train", data_dir=both).images.shape == (300, 28, 28)
    assert data.load_emnist_letters(split="train", data_dir=both).images.shape == (312, 28, 28)
    monkeypatch.setenv("EMNIST_STUDY_DATA_DIR", f"{tmp_path / 'letters'}:{tmp_path / 'digits'}")
    assert data.load_mnist(split="test").images.shape == (100, 28, 28)
    assert data.ensure_available(["mnist", "emnist-letters"]) == {
        "mnist": str(tmp_path / "digits" / "mnist.npz"),
        "emnist-letters": ", ".join(sorted(str(tmp_path / "letters" / f"emnist-letters-{split}-{kind}-ubyte.gz")
                                           for split in ("train", "test")
                                           for kind in ("images-idx3", "labels-idx1"))) + " (NIST's IDX files)"}


def test_data_dirs_are_recorded_absolute(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path)
    assert data.resolve_data_dirs(["here"]) == [tmp_path / "here"]


def test_real_emnist_labels_with_generated_images(tmp_path, real_emnist_labels):
    """The real label file (124,800 labels) read by the real loader, beside images made to match its count."""
    import shutil
    from emnist_study.idx import encode_idx
    shutil.copy(real_emnist_labels / "emnist-letters-train-labels-idx1-ubyte.gz", tmp_path)
    stored = np.zeros((124800, 28, 28), np.uint8)
    (tmp_path / "emnist-letters-train-images-idx3-ubyte").write_bytes(encode_idx(stored))
    train = data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert np.bincount(train.labels).tolist() == [4800] * 26
    assert (train.labels[:10] + 1).tolist() == [23, 7, 16, 15, 23, 17, 13, 11, 22, 24]


# --- bad input ---------------------------------------------------------------------------------------------

def test_missing_data_with_no_network_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.delenv("EMNIST_STUDY_NO_DOWNLOAD")
    monkeypatch.setattr(sources, "EMNIST_URL", (tmp_path / "unreachable.zip").as_uri())
    with pytest.raises(UserError) as excinfo:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    message = str(excinfo.value)
    assert "could not download" in message and "--data-dir" in message and "emnist.zip" in message
    assert "\n" not in message


def test_missing_mnist_with_downloads_disabled(tmp_path):
    with pytest.raises(UserError, match=r"MNIST was not found in .*--data-dir"):
        data.load_mnist(split="train", data_dir=tmp_path)


def test_emnist_labels_only_is_missing_images(tmp_path, real_emnist_labels):
    import shutil
    shutil.copy(real_emnist_labels / "emnist-letters-train-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(UserError, match="EMNIST Letters was not found"):
        data.load_emnist_letters(split="train", data_dir=tmp_path)


def test_data_dir_that_does_not_exist(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        data.load_mnist(split="train", data_dir=tmp_path / "nope")


def test_image_and_label_counts_disagree(tmp_path):
    synthetic.write_emnist_files(tmp_path, per_class_train=2)
    from emnist_study.idx import encode_idx
    (tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz").write_bytes(
        encode_idx(np.ones(51, np.uint8), compress=True))
    with pytest.raises(UserError, match="52 images but 51 labels"):
        data.load_emnist_letters(split="train", data_dir=tmp_path)


def test_truncated_gz_file(tmp_path):
    synthetic.write_emnist_files(tmp_path, per_class_train=2)
    path = tmp_path / "emnist-letters-train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="truncated or corrupt gzip"):
        data.load_emnist_letters(split="train", data_dir=tmp_path)


def test_truncated_npz(tmp_path):
    path = synthetic.write_mnist_npz(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match="not a readable .npz"):
        data.load_mnist(split="train", data_dir=tmp_path)


def test_corrupt_zip(tmp_path):
    (tmp_path / "gzip.zip").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(UserError, match="not a readable zip"):
        data.load_emnist_letters(split="train", data_dir=tmp_path)


def test_emnist_label_out_of_range(tmp_path):
    synthetic.write_emnist_files(tmp_path, per_class_train=1)
    from emnist_study.idx import encode_idx
    (tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz").write_bytes(
        encode_idx(np.zeros(26, np.uint8), compress=True))  # 0 is not a letter: labels run 1..26
    with pytest.raises(UserError, match="expected 1..26"):
        data.load_emnist_letters(split="train", data_dir=tmp_path)


# --- the validation split -------------------------------------------------------------------------------

def test_split_is_stratified_seeded_and_disjoint(tmp_path):
    synthetic.write_mnist_npz(tmp_path, per_class_train=50)
    a = data.load_train_val("mnist", val_fraction=0.1, seed=7, data_dir=tmp_path)
    b = data.load_train_val("mnist", val_fraction=0.1, seed=7, data_dir=tmp_path)
    c = data.load_train_val("mnist", val_fraction=0.1, seed=8, data_dir=tmp_path)
    assert len(a.y_val) == 50 and len(a.y_train) == 450
    assert np.bincount(a.y_val).tolist() == [5] * 10
    assert np.array_equal(a.x_val, b.x_val) and not np.array_equal(a.x_val, c.x_val)
    train_rows = {img.tobytes() for img in a.x_train}
    assert not any(img.tobytes() in train_rows for img in a.x_val)


def test_limit_keeps_a_stratified_subset(tmp_path):
    synthetic.write_emnist_files(tmp_path, per_class_train=20)
    subset = data.load_train_val("emnist-letters", val_fraction=0.1, seed=1, data_dir=tmp_path, limit=260)
    assert len(subset.y_train) + len(subset.y_val) == 260
    assert np.bincount(subset.y_train).tolist() == [9] * 26


def test_training_data_never_reads_the_test_split(tmp_path, monkeypatch):
    synthetic.write_mnist_npz(tmp_path)
    real_load_mnist = data.load_mnist

    def guarded(*, split, data_dir=None):
        assert split == "train", "training code read the test set"
        return real_load_mnist(split=split, data_dir=data_dir)

    monkeypatch.setitem(data.LOADERS, "mnist", guarded)
    data.load_train_val("mnist", val_fraction=0.1, seed=1, data_dir=tmp_path)


def test_loaders_make_the_caller_name_the_split(tmp_path):
    synthetic.write_mnist_npz(tmp_path)
    with pytest.raises(TypeError):
        data.load_mnist(data_dir=tmp_path)


def test_too_few_images_to_stratify(tmp_path):
    synthetic.write_mnist_npz(tmp_path, per_class_train=1)
    with pytest.raises(UserError, match="stratified"):
        data.load_train_val("mnist", val_fraction=0.1, seed=1, data_dir=tmp_path)
