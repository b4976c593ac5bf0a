"""Finding, loading and splitting MNIST and EMNIST Letters.

Every loader returns uint8 images of shape (N, 28, 28), upright, and integer labels from 0. EMNIST Letters'
labels 1..26 become 0..25, and its images, which the official files store transposed, are turned upright.

Where the data comes from, first match wins:
  1. a directory given by --data-dir (or the EMNIST_STUDY_DATA_DIR environment variable) holding
     MNIST as `mnist.npz` or the official IDX files, and EMNIST Letters as the official
     `emnist-letters-*-idx?-ubyte[.gz]` files or NIST's `gzip.zip`;
  2. the usual caches: `~/.keras/datasets/mnist.npz`, and the `emnist` package's `~/.cache/emnist/emnist.zip`;
  3. a download into those caches, with a progress bar and a checksum.

Training code calls `load_train_val`, which never reads a test set. Only `evaluate_test.py` calls
`load_test_set`; the low-level loaders make the caller name the split.
"""

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import emnist
import numpy as np
from sklearn.model_selection import train_test_split

from . import idx
from .download import download, file_digest
from .errors import UserError

DATA_DIR_ENV = "EMNIST_STUDY_DATA_DIR"
DATASETS = ("mnist", "emnist-letters")
SPLITS = ("train", "test")
DIGITS = tuple("0123456789")
LETTERS = tuple(f"{c.upper()}/{c}" for c in "abcdefghijklmnopqrstuvwxyz")

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EMNIST_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
EMNIST_MD5 = "58c8d27c78d21e728a6bc7b3cc06412e"
EMNIST_ZIP_NAMES = ("gzip.zip", "emnist.zip")  # NIST's name, and the name the `emnist` package caches it under


@dataclass
class LabelledImages:
    """One split of a dataset: uint8 images (N, 28, 28), upright; int64 labels from 0; where they came from."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple
    source: dict = field(default_factory=dict)  # {"description": ..., "files": {path: sha256}}
    fine_labels: np.ndarray | None = None  # mnist-merged: the true digit behind each merged label


@dataclass
class TrainVal:
    """What a training script gets: training and validation data, and no test set."""

    dataset: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: tuple
    source: dict
    fine_val: np.ndarray | None = None  # mnist-merged: the true digit of each validation image

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# ---------------------------------------------------------------------------------------------------------
# Where to look


def resolve_data_dir(data_dir) -> Path | None:
    """The --data-dir value, else the environment variable, else None; an explicit path must exist."""
    value = data_dir or os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        origin = "--data-dir" if data_dir else DATA_DIR_ENV
        raise UserError(f"{origin} {value} does not exist or is not a directory")
    return path


def keras_mnist_cache() -> Path:
    return Path.home() / ".keras" / "datasets" / "mnist.npz"


def emnist_cache() -> Path:
    return Path(emnist.get_cached_data_path())


def find_idx_file(directory: Path, name: str) -> Path | None:
    """`name` or `name.gz` in `directory`, whichever exists."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def describe(*paths: Path, what: str | None = None) -> dict:
    """Where data came from, for the run config: a description and the sha256 of every file read."""
    files = {str(p.resolve()): file_digest(p) for p in paths}
    return {"description": what or str(paths[0].resolve()), "files": files}


# ---------------------------------------------------------------------------------------------------------
# MNIST


def read_mnist_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    keys = ("x_train", "y_train") if split == "train" else ("x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise UserError(f"{path} has no {', '.join(missing)}: is it the Keras mnist.npz?")
            return npz[keys[0]], npz[keys[1]]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path} is not a readable .npz file ({exc}); download it again") from None


def load_mnist(*, split: str, data_dir=None) -> LabelledImages:
    """MNIST digits for `split` ("train" or "test"), from --data-dir, the Keras cache, or a download."""
    check_split(split)
    directory = resolve_data_dir(data_dir)
    if directory is not None:
        npz = directory / "mnist.npz"
        if npz.is_file():
            return checked(*read_mnist_npz(npz, split), DIGITS, describe(npz), str(npz))
        image_name, label_name = MNIST_IDX_FILES[split]
        images_path, labels_path = find_idx_file(directory, image_name), find_idx_file(directory, label_name)
        if images_path and labels_path:
            source = describe(images_path, labels_path, what=f"MNIST IDX files in {directory.resolve()}")
            return checked(idx.read_idx(images_path, 3), idx.read_idx(labels_path, 1), DIGITS, source,
                           f"{images_path.name} and {labels_path.name}")
    cache = keras_mnist_cache()
    if not cache.is_file():
        looked_in = f"{directory} (mnist.npz or the IDX files), " if directory else ""
        download(MNIST_URL, cache, "sha256", MNIST_SHA256,
                 f"MNIST was not found in {looked_in}{cache}. Put mnist.npz (or the four official IDX files) in a "
                 f"directory and pass it with --data-dir, or save {MNIST_URL} as {cache}.")
    return checked(*read_mnist_npz(cache, split), DIGITS, describe(cache), str(cache))


# ---------------------------------------------------------------------------------------------------------
# EMNIST Letters


def emnist_member_names(split: str) -> tuple[str, str]:
    return (f"emnist-letters-{split}-images-idx3-ubyte", f"emnist-letters-{split}-labels-idx1-ubyte")


def read_emnist_zip(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one split of EMNIST Letters from NIST's gzip.zip (members gzip/emnist-letters-*.gz)."""
    images_name, labels_name = emnist_member_names(split)
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = []
            for name, ndim in ((images_name, 3), (labels_name, 1)):
                member = f"gzip/{name}.gz"
                try:
                    raw = archive.read(member)
                except KeyError:
                    raise UserError(f"{path} has no {member}: is it NIST's EMNIST gzip.zip?") from None
                arrays.append(idx.parse_idx(raw, f"{path.name}:{member}", ndim))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable zip file ({exc}); download it again") from None
    return arrays[0], arrays[1]


def load_emnist_letters(*, split: str, data_dir=None) -> LabelledImages:
    """EMNIST Letters for `split`: images upright, labels 0..25 (0 = A/a)."""
    check_split(split)
    directory = resolve_data_dir(data_dir)
    images = labels = source = None
    if directory is not None:
        images_path, labels_path = (find_idx_file(directory, name) for name in emnist_member_names(split))
        zips = [directory / name for name in EMNIST_ZIP_NAMES if (directory / name).is_file()]
        if images_path and labels_path:
            images, labels = idx.read_idx(images_path, 3), idx.read_idx(labels_path, 1)
            source = describe(images_path, labels_path, what=f"EMNIST Letters IDX files in {directory.resolve()}")
            where = f"{images_path.name} and {labels_path.name}"
        elif zips:
            images, labels = read_emnist_zip(zips[0], split)
            source, where = describe(zips[0]), str(zips[0])
    if images is None:
        cache = emnist_cache()
        if not cache.is_file():
            looked_in = f"{directory} (the emnist-letters-{split}-*-ubyte.gz files or gzip.zip), " if directory else ""
            download(EMNIST_URL, cache, "md5", EMNIST_MD5,
                     f"EMNIST Letters was not found in {looked_in}{cache}. Download {EMNIST_URL} (562 MB) and save "
                     f"it as {cache}, or put it (or the four emnist-letters-*-ubyte.gz files in it) in a directory "
                     f"and pass that with --data-dir.")
        images, labels = read_emnist_zip(cache, split)
        source, where = describe(cache), str(cache)
    if labels.size and (labels.min() < 1 or labels.max() > len(LETTERS)):
        raise UserError(f"EMNIST Letters labels in {where} run {labels.min()}..{labels.max()}, expected 1..26")
    # The official files store each image transposed; swapping the two pixel axes turns it upright.
    return checked(images.transpose(0, 2, 1), labels.astype(np.int64) - 1, LETTERS, source, where)


# ---------------------------------------------------------------------------------------------------------
# Shared checks, the validation split, and the entry points the scripts use


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")


def checked(images, labels, class_names, source, where) -> LabelledImages:
    """Validate shapes, counts and label range, and package the arrays."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise UserError(f"images in {where} have shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise UserError(f"{where}: {len(images):,} images but {len(labels):,} labels; the files do not belong together")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise UserError(f"labels in {where} run {labels.min()}..{labels.max()}, expected 0..{len(class_names) - 1}")
    return LabelledImages(np.ascontiguousarray(images, dtype=np.uint8), labels, class_names, source)


# ---------------------------------------------------------------------------------------------------------
# mnist-merged: digits merged into classes of two (or more), so the case-aware head can be tested on real data


MERGED = "mnist-merged"
DEFAULT_MERGE = "0-5,1-6,2-7,3-8,4-9"


def parse_merge(spec: str) -> list[tuple[int, ...]]:
    """"0-5,1-6,..." -> [(0, 5), (1, 6), ...]; every digit must appear exactly once."""
    try:
        groups = [tuple(int(d) for d in group.split("-")) for group in spec.split(",")]
    except ValueError:
        raise UserError(f"--merge {spec!r} is not like 0-5,1-6,2-7,3-8,4-9") from None
    digits = sorted(d for group in groups for d in group)
    if digits != list(range(10)):
        raise UserError(f"--merge {spec!r} must name each digit 0..9 exactly once")
    return groups


def load_mnist_merged(*, split: str, data_dir=None, merge: str = DEFAULT_MERGE) -> LabelledImages:
    """MNIST with digits merged into classes (labels are the group's index); the digits stay in fine_labels."""
    digits = load_mnist(split=split, data_dir=data_dir)
    groups = parse_merge(merge)
    to_group = np.empty(10, np.int64)
    for index, group in enumerate(groups):
        to_group[list(group)] = index
    return LabelledImages(digits.images, to_group[digits.labels], tuple("/".join(map(str, g)) for g in groups),
                          {**digits.source, "merge": merge}, fine_labels=digits.labels)


LOADERS = {"mnist": load_mnist, "emnist-letters": load_emnist_letters}


def load_split(dataset: str, split: str, data_dir=None) -> LabelledImages:
    """One split of a dataset by name: "mnist", "emnist-letters", or "mnist-merged[:0-5,1-6,...]"."""
    if dataset == MERGED or dataset.startswith(MERGED + ":"):
        merge = dataset.partition(":")[2] or DEFAULT_MERGE
        return load_mnist_merged(split=split, data_dir=data_dir, merge=merge)
    if dataset not in LOADERS:
        raise UserError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)} or {MERGED}:0-5,1-6,...")
    return LOADERS[dataset](split=split, data_dir=data_dir)


def stratified_split(labels: np.ndarray, held_out: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): a fraction (float) or a count (int) of images held out, in proportion to each
    class, the same for the same seed."""
    try:
        keep, held_out = train_test_split(np.arange(len(labels)), test_size=held_out, random_state=seed,
                                          stratify=labels)
    except ValueError as exc:
        raise UserError(f"cannot hold out {held_out:g} of {len(labels)} images stratified by class: {exc}") from None
    return np.sort(keep), np.sort(held_out)


def last_split(count: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) holding out the last `fraction` of the images, in file order. For MNIST at 1/6
    this is Nielsen's protocol: the first 50,000 training images train, the last 10,000 validate."""
    n_held_out = int(round(count * fraction))
    if not 0 < n_held_out < count:
        raise UserError(f"cannot hold out {fraction:g} of {count} images")
    return np.arange(count - n_held_out), np.arange(count - n_held_out, count)


def load_train_val(dataset: str, *, val_fraction: float, seed: int, data_dir=None, limit: int | None = None,
                   validation: str = "stratified") -> TrainVal:
    """The training split of `dataset`, divided into training and validation images.

    `validation` is "stratified" (seeded, in proportion to each class) or "last" (the last images, in file order).
    `limit` keeps a stratified subset of that many training images first (the --quick profile).
    """
    train = load_split(dataset, "train", data_dir)
    chosen = np.arange(len(train.labels))
    # (When fewer images than classes would be left out, the subset is as good as everything: keep it all.)
    if limit is not None and len(chosen) - limit >= len(np.unique(train.labels)):
        _, chosen = stratified_split(train.labels, limit, seed)
    if validation == "last":
        keep, held_out = last_split(len(chosen), val_fraction)
    else:
        keep, held_out = stratified_split(train.labels[chosen], val_fraction, seed)
    keep, held_out = chosen[keep], chosen[held_out]
    fine_val = None if train.fine_labels is None else train.fine_labels[held_out]
    return TrainVal(dataset, train.images[keep], train.labels[keep], train.images[held_out], train.labels[held_out],
                    train.class_names, train.source, fine_val)


def load_test_set(dataset: str, data_dir=None) -> LabelledImages:
    """The test split. Only evaluate_test.py should call this: the test set judges, it never trains or tunes."""
    return load_split(dataset, "test", data_dir)


def expand_with_shifts(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nielsen's expanded training set: each image, then copies shifted one pixel up, down, left and right
    (the pixels shifted in are blank). 50,000 images become 250,000."""
    shifted = [images]
    for axis, step in ((1, -1), (1, 1), (2, -1), (2, 1)):
        moved = np.roll(images, step, axis=axis)
        edge = 0 if step == 1 else -1  # the row or column that wrapped around
        if axis == 1:
            moved[:, edge, :] = 0
        else:
            moved[:, :, edge] = 0
        shifted.append(moved)
    return np.concatenate(shifted), np.tile(labels, len(shifted))
