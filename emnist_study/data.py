"""Finding, loading and splitting MNIST and EMNIST Letters, and any dataset by name (ByClass's from byclass.py).

Every loader returns uint8 images of shape (N, 28, 28), upright, and integer labels from 0. EMNIST Letters'
labels 1..26 become 0..25, and its images, which the official files store transposed, are turned upright.

Where the data comes from, first match wins (sources.py holds what the datasets share: the folders, the caches,
the download, the checks):
  1. the directories given by --data-dir (the flag may be given more than once; or the EMNIST_STUDY_DATA_DIR
     environment variable, several separated by ':'), each searched for MNIST as `mnist.npz` or the official IDX
     files, and for EMNIST Letters as the official `emnist-letters-*-idx?-ubyte[.gz]` files or NIST's `gzip.zip`;
  2. the usual caches: `~/.keras/datasets/mnist.npz`, and the `emnist` package's `~/.cache/emnist/emnist.zip`;
  3. a download into those caches, with a progress bar and a checksum.

Training code calls `load_train_val`, which never reads a test set. Only `evaluate_test.py` calls
`load_test_set`; the low-level loaders make the caller name the split.
"""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import idx
from .byclass import load_byclass_letters
from .errors import UserError
from .sources import (DATASET_TITLES, DIGITS, EMNIST_ZIP_NAMES, LETTERS, SPLITS, LabelledImages, check_split,
                      checked, describe, emnist_cache, emnist_member_names, fetch, find_idx_file, how_to_get,
                      keras_mnist_cache, read_emnist_zip, resolve_data_dirs, where_looked)
from .sources import DATA_DIR_ENV  # noqa: F401 (cli.py takes it from here, beside resolve_data_dirs)

DATASETS = ("mnist", "emnist-letters")
MNIST_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


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


def find_mnist(split: str, directories: list[Path]) -> tuple[str, tuple[Path, ...]] | None:
    """("npz", (path,)) or ("idx", (images, labels)) for the first directory holding MNIST, then the Keras cache;
    None where a download is needed. Reads and creates nothing."""
    for directory in directories:
        if (directory / "mnist.npz").is_file():
            return "npz", (directory / "mnist.npz",)
        found = [find_idx_file(directory, name) for name in MNIST_IDX_FILES[split]]
        if all(found):
            return "idx", tuple(found)
    return ("npz", (keras_mnist_cache(),)) if keras_mnist_cache().is_file() else None


def find_emnist_letters(split: str, directories: list[Path]) -> tuple[str, tuple[Path, ...]] | None:
    """("idx", (images, labels)) or ("zip", (path,)) for the first directory holding EMNIST Letters, then the
    `emnist` cache; None where a download is needed. Reads and creates nothing."""
    for directory in directories:
        found = [find_idx_file(directory, name) for name in emnist_member_names(split)]
        if all(found):
            return "idx", tuple(found)
        zips = [directory / name for name in EMNIST_ZIP_NAMES if (directory / name).is_file()]
        if zips:
            return "zip", (zips[0],)
    return ("zip", (emnist_cache(),)) if emnist_cache().is_file() else None


FINDERS = {"mnist": find_mnist, "emnist-letters": find_emnist_letters}


def locate(dataset: str, split: str, directories: list[Path]) -> tuple[str, tuple[Path, ...]]:
    """Where one split of a dataset is: in the folders or the cache, else downloaded into the cache."""
    found = FINDERS[dataset](split, directories)
    if found is None:
        fetch(dataset, directories)
        found = FINDERS[dataset](split, directories)
    return found


def ensure_available(datasets, data_dir=None) -> dict[str, str]:
    """Make sure every split of every dataset can be loaded, downloading what is found nowhere, before hours of
    training. Returns {dataset: where it is}; raises one UserError naming every dataset still missing, where it
    was looked for, and what to do."""
    directories = resolve_data_dirs(data_dir)
    found, missing = {}, []
    for dataset in datasets:
        base = "mnist" if dataset.startswith("mnist") else dataset
        try:
            located = [locate(base, split, directories) for split in SPLITS]
        except UserError:
            missing.append(base)
            continue
        found[dataset] = ", ".join(sorted({str(p) for _, paths in located for p in paths}))
    if missing:
        lines = [f"{DATASET_TITLES[m]} was not found in {where_looked(m, directories)}; to fix: {how_to_get(m)}"
                 for m in missing]
        hint = ""
        if missing == ["emnist-letters"] and "mnist" in datasets:
            hint = " To run the MNIST steps alone meanwhile, add --only mnist."
        raise UserError(f"missing data ({len(missing)} of {len(set(datasets))} datasets). " + " ".join(lines)
                        + f".{hint}")
    return found


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
    kind, paths = locate("mnist", split, resolve_data_dirs(data_dir))
    if kind == "npz":
        return checked(*read_mnist_npz(paths[0], split), DIGITS, describe(paths[0]), str(paths[0]))
    images_path, labels_path = paths
    source = describe(images_path, labels_path, what=f"MNIST IDX files in {images_path.parent}")
    return checked(idx.read_idx(images_path, 3), idx.read_idx(labels_path, 1), DIGITS, source,
                   f"{images_path.name} and {labels_path.name}")


# ---------------------------------------------------------------------------------------------------------
# EMNIST Letters


def load_emnist_letters(*, split: str, data_dir=None) -> LabelledImages:
    """EMNIST Letters for `split`: images upright, labels 0..25 (0 = A/a)."""
    check_split(split)
    kind, paths = locate("emnist-letters", split, resolve_data_dirs(data_dir))
    if kind == "idx":
        images_path, labels_path = paths
        images, labels = idx.read_idx(images_path, 3), idx.read_idx(labels_path, 1)
        source = describe(images_path, labels_path, what=f"EMNIST Letters IDX files in {images_path.parent}")
        where = f"{images_path.name} and {labels_path.name}"
    else:
        images, labels = read_emnist_zip(paths[0], split)
        source, where = describe(paths[0]), str(paths[0])
    if labels.size and (labels.min() < 1 or labels.max() > len(LETTERS)):
        raise UserError(f"EMNIST Letters labels in {where} run {labels.min()}..{labels.max()}, expected 1..26")
    # The official files store each image transposed; swapping the two pixel axes turns it upright.
    return checked(images.transpose(0, 2, 1), labels.astype(np.int64) - 1, LETTERS, source, where)


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


# ---------------------------------------------------------------------------------------------------------
# The entry points the scripts use, and the validation split


LOADERS = {"mnist": load_mnist, "emnist-letters": load_emnist_letters}
# EMNIST ByClass's 52 letter classes (A..Z, a..z): the case check's reference network trains on them
BYCLASS_LETTERS = "emnist-byclass-letters"


def load_split(dataset: str, split: str, data_dir=None) -> LabelledImages:
    """One split of a dataset by name: "mnist", "emnist-letters", or "mnist-merged[:0-5,1-6,...]"."""
    if dataset == MERGED or dataset.startswith(MERGED + ":"):
        merge = dataset.partition(":")[2] or DEFAULT_MERGE
        return load_mnist_merged(split=split, data_dir=data_dir, merge=merge)
    if dataset == BYCLASS_LETTERS:
        return load_byclass_letters(split=split, data_dir=data_dir)
    if dataset not in LOADERS:
        raise UserError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)} or {MERGED}:0-5,1-6,...")
    return LOADERS[dataset](split=split, data_dir=data_dir)


def stratified_split(labels: np.ndarray, held_out: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): a fraction (float) or a count (int) of images held out, in proportion to each
    class, the same for the same seed."""
    from sklearn.model_selection import train_test_split  # here: scikit-learn takes a second to import

    try:
        keep, held_out = train_test_split(np.arange(len(labels)), test_size=held_out, random_state=seed,
                                          stratify=labels)
    except ValueError as exc:
        raise UserError(f"cannot hold out {held_out:g} of {len(labels)} images stratified by class: {exc}") from None
    return np.sort(keep), np.sort(held_out)


def stratified_subset(split: LabelledImages, count: int, seed: int = 0) -> LabelledImages:
    """`count` images of a split, in proportion to each class (the whole split where it holds no more)."""
    if len(split.labels) - count < len(np.unique(split.labels)):
        return split
    _, chosen = stratified_split(split.labels, count, seed)
    fine = None if split.fine_labels is None else split.fine_labels[chosen]
    return LabelledImages(split.images[chosen], split.labels[chosen], split.class_names,
                          {**split.source, "subset": count}, fine)


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
