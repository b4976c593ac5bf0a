"""Finding, loading and splitting MNIST and EMNIST Letters, and any dataset by name (ByClass's from byclass.py).

Every loader returns uint8 images of shape (N, 28, 28), upright, and integer labels from 0. EMNIST Letters'
labels 1..26 become 0..25, and its images, which every copy stores transposed, are turned upright.

Where the data comes from, first match wins (sources.py holds what the datasets share: the folders, the caches,
the download, the checks; formats.py reads the copies of EMNIST Letters other than NIST's IDX files):
  1. the directories given by --data-dir (the flag may be given more than once; or the EMNIST_STUDY_DATA_DIR
     environment variable, several separated by ':'), each in turn searched for MNIST as `mnist.npz` or the
     official IDX files, and for EMNIST Letters as, in this order: the official `emnist-letters-*-idx?-ubyte[.gz]`
     files, NIST's `gzip.zip`, NIST's `emnist-letters.mat` (or a zip holding it, as NIST's matlab.zip does),
     Kaggle's `emnist-letters-{train,test}.csv` (or a zip holding them, as Kaggle's download is), a folder that
     TensorFlow Datasets prepared (the folder itself, or its emnist/letters/<version>); and, in a folder holding
     none of these, a copy of EMNIST ByClass (byclass.py says which), whose letters are then taken as EMNIST
     Letters: upper and lower case merged into the 26 classes, each image's case kept (letters_from_byclass);
  2. the usual caches: `~/.keras/datasets/mnist.npz`; the `emnist` package's `~/.cache/emnist/emnist.zip`, then
     TensorFlow Datasets' `~/tensorflow_datasets/emnist/letters/<version>` ($TFDS_DATA_DIR where set), then
     `~/tensorflow_datasets/emnist/byclass/<version>` (its letters, as above);
  3. a download of the official files into those caches, with a progress bar and a checksum.
Training and test must come from one copy: EMNIST Letters' two splits found in copies that divide the images
differently (NIST's files, Kaggle's CSV, TensorFlow Datasets) are refused, as is such a copy missing one split.

Training code calls `load_train_val`, which never reads a test set. Only `evaluate_test.py` calls
`load_test_set`; the low-level loaders make the caller name the split. Each split's `source` is the record a run
keeps in its config.json: the files and their sha256, the format, the split, its number of images and whether
that is NIST's official split.
"""

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import byclass, formats, idx
from .byclass import load_byclass_letters
from .config import TrainConfig
from .errors import UserError
from .sources import (DATASET_TITLES, DIGITS, EMNIST_ZIP_NAMES, LETTERS, SPLITS, LabelledImages, check_split,
                      source_record, validated_split,
                      emnist_cache, emnist_member_names, fetch, find_idx_file, keras_mnist_cache,
                      read_emnist_zip, read_emnist_zip_labels, resolve_data_dirs)
from .plurals import plural

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
    """(kind, paths) of the first copy of EMNIST Letters' `split` in the folders, then in the caches (the module's
    docstring gives the order); None where a download is needed. Kinds: "idx" (images, labels), "zip" (NIST's
    gzip.zip), and formats.py's "mat", "mat-zip", "csv", "csv-zip", "tfds" (the folder). Reads no images and
    creates nothing."""
    for directory in directories:
        found = find_letters_in(directory, split) or from_byclass(byclass.find_byclass_in(directory, split))
        if found:
            return found
    if emnist_cache().is_file():
        return "zip", (emnist_cache(),)
    for root in formats.tfds_roots():
        for folder in formats.version_folders(root / "emnist" / "letters"):
            if formats.is_emnist_folder(folder, split):
                return "tfds", (folder,)
    return from_byclass(byclass.find_byclass_cached(split))


def from_byclass(found: tuple[str, tuple[Path, ...]] | None) -> tuple[str, tuple[Path, ...]] | None:
    """A copy of EMNIST ByClass, found where no copy of EMNIST Letters is, as the letters' copy: its letters with
    their cases merged (kind "byclass-<the copy's kind>")."""
    return (formats.FROM_BYCLASS + found[0], found[1]) if found else None


def find_letters_in(directory: Path, split: str) -> tuple[str, tuple[Path, ...]] | None:
    found = [find_idx_file(directory, name) for name in emnist_member_names(split)]
    if all(found):
        return "idx", tuple(found)
    for name in EMNIST_ZIP_NAMES:
        if (directory / name).is_file() and is_nist_zip(directory / name, split):
            return "zip", (directory / name,)
    return formats.finds(directory, split)


def is_nist_zip(path: Path, split: str) -> bool:
    """Whether a zip named as NIST's is taken for it: yes unless it is readable and holds, instead of NIST's letters
    files, Kaggle's CSV or the MATLAB file (Kaggle's download is called emnist.zip too). A zip that is neither is
    taken, so that reading it says what is wrong."""
    names = formats.zip_names(path)
    if names is None or f"gzip/{emnist_member_names(split)[0]}.gz" in names:
        return True
    return not (formats.member_named(names, formats.csv_name(split)) or formats.member_named(names, formats.MAT_NAME))


FINDERS = {"mnist": find_mnist, "emnist-letters": find_emnist_letters}


def locate(dataset: str, split: str, directories: list[Path]) -> tuple[str, tuple[Path, ...]]:
    """Where one split of a dataset is: in the folders or the cache, else downloaded into the cache."""
    found = FINDERS[dataset](split, directories)
    if dataset == "emnist-letters":
        refuse_mixed_copies(split, found, directories)
    if found is None:
        fetch(dataset, directories)
        found = FINDERS[dataset](split, directories)
    return found


class MixedCopies(UserError):
    """EMNIST Letters' training and test splits found in different copies (refuse_mixed_copies)."""


def refuse_mixed_copies(split: str, found, directories: list[Path]) -> None:
    """EMNIST Letters' training and test splits must come from one family of copies (formats.FAMILIES): Kaggle's
    CSV, TensorFlow Datasets and NIST's files divide the images differently, so a network trained on one copy's
    training split may have seen images of another's test split. A split missing beside a copy that is not NIST's
    would be downloaded from NIST: refused too, naming the file to put where."""
    other_split = "test" if split == "train" else "train"
    other = find_emnist_letters(other_split, directories)
    family = formats.FAMILIES[found[0]] if found else "NIST"  # what is not found is downloaded: NIST's
    other_family = formats.FAMILIES[other[0]] if other else "NIST"
    if family == other_family:
        return
    if found is not None and other is not None:
        train, test = (found, other) if split == "train" else (other, found)
        raise MixedCopies(f"EMNIST Letters' training split is {copy_line(train)} but its test split is "
                          f"{copy_line(test)}: training and test must come from one copy (the copies divide the "
                          f"images differently, so the test set could hold images a network trained on). Give "
                          f"--data-dir only the folder of one copy, holding both of its splits")
    lone = found or other
    lone_split, missing_split = (split, other_split) if found else (other_split, split)
    kind, paths = lone
    emnist, inner = (byclass.KIND, kind.removeprefix(formats.FROM_BYCLASS)) if kind.startswith(formats.FROM_BYCLASS) \
        else ("letters", kind)
    wanted = {"csv": formats.csv_name(missing_split, emnist), "csv-zip": formats.csv_name(missing_split, emnist),
              "tfds": f"its {missing_split} shards"}.get(
        inner, f"the {' and '.join(emnist_member_names(missing_split, emnist))}[.gz] files")
    raise MixedCopies(f"EMNIST Letters' {lone_split} split is {copy_line(lone)}, but its {missing_split} split "
                      f"is not beside it, and NIST's download would be another copy: training and test must come "
                      f"from one copy. Put {wanted} in {paths[0] if kind == 'tfds' else paths[0].parent}")


def copy_line(found: tuple[str, tuple[Path, ...]]) -> str:
    kind, paths = found
    return f"{formats.TITLES[kind]} ({', '.join(str(p) for p in paths)})"


def ensure_available(datasets, data_dir=None, show=None) -> dict[str, str]:
    """Make sure every split of every dataset can be loaded, downloading what is found nowhere, before hours of
    training. Returns {dataset: where it is}. `show`, where given, gets one line per dataset as it is checked:
    where it is, or why it is missing (the download's failure among it) and what to do; a UserError then names the
    missing datasets in one line. Without `show`, the UserError holds those lines itself, one per dataset."""
    directories = resolve_data_dirs(data_dir)
    found, missing, mixed = {}, {}, []
    for dataset in datasets:
        base = "mnist" if dataset.startswith("mnist") else dataset
        try:
            located = [locate(base, split, directories) for split in SPLITS]
        except UserError as exc:
            if base not in missing and show:
                show(f"{dataset}: MISSING: {exc}")
            missing[base] = str(exc)
            if isinstance(exc, MixedCopies):
                mixed.append(base)
            continue
        paths = ", ".join(sorted({str(p) for _, paths in located for p in paths}))
        kinds = sorted({formats.TITLES.get(kind, kind) for kind, _ in located})
        found[dataset] = paths + (f" ({', '.join(kinds)})" if base == "emnist-letters" else "")
        if show:
            show(f"{dataset}: {found[dataset]}")
    if missing:
        hint = ""
        if list(missing) == ["emnist-letters"] and "mnist" in datasets:
            hint = " To run the MNIST steps alone meanwhile, add --only mnist."
        head = f"missing data ({len(missing)} of {plural(len(set(datasets)), 'dataset')})"
        if not show:
            raise UserError("\n".join([f"{head}:"] + [f"{DATASET_TITLES[m]}: {line}" for m, line in missing.items()])
                            + hint)
        where = ", ".join(str(d) for d in directories) or "the caches"
        named = [f"{DATASET_TITLES[m]}'s training and test splits are in different copies" if m in mixed
                 else f"{DATASET_TITLES[m]} was not found in {where}" for m in missing]
        raise UserError(f"{head}: {'; '.join(named)}. The line above for each says why and what to do.{hint}")
    return found


def training_split_size(dataset: str, data_dir=None) -> int | None:
    """How many images the training split of `dataset` ("mnist", "emnist-letters") holds in the copy loading it
    would find, counted from its labels alone: no image is read, nothing is downloaded, for run_all's plan. None
    where no copy is found here, or where the copy keeps its labels among the images (Kaggle's CSV, the MATLAB
    file, a TFDS folder)."""
    try:
        directories = resolve_data_dirs(data_dir)
        if dataset.startswith("mnist"):
            found = find_mnist("train", directories)
            if found and found[0] == "npz":
                return len(read_mnist_npz(found[1][0], "train")[1])
            return len(idx.read_idx(found[1][1], 1)) if found else None
        kind, paths = find_emnist_letters("train", directories) or (None, ())
        letters_in = {"idx": lambda: idx.read_idx(paths[1], 1),
                      "zip": lambda: read_emnist_zip_labels(paths[0], "train"),
                      "byclass-idx": lambda: idx.read_idx(paths[1], 1),
                      "byclass-zip": lambda: read_emnist_zip_labels(paths[0], "train", byclass.KIND)}
        if kind not in letters_in:
            return None
        labels = letters_in[kind]()
        return int((labels >= byclass.FIRST_CAPITAL).sum()) if kind.startswith(formats.FROM_BYCLASS) else len(labels)
    except UserError:
        return None


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
        (images, labels), where = read_mnist_npz(paths[0], split), str(paths[0])
        source = source_record(paths[0])
    else:
        images_path, labels_path = paths
        images, labels = idx.read_idx(images_path, 3), idx.read_idx(labels_path, 1)
        source = source_record(images_path, labels_path, what=f"MNIST IDX files in {images_path.parent}")
        where = f"{images_path.name} and {labels_path.name}"
    digits = validated_split(images, labels, DIGITS, source, where)
    digits.source.update(format=kind, split=split, images=len(digits.labels))
    return digits


# ---------------------------------------------------------------------------------------------------------
# EMNIST Letters

# The split of NIST's files (Cohen et al. 2017), on whose test set the published figures are measured; and the
# older, smaller one that Kaggle's CSV and TensorFlow Datasets' emnist/letters hold.
OFFICIAL_LETTERS = {"train": 124_800, "test": 20_800}
OLDER_LETTERS = {"train": 88_800, "test": 14_800}


def load_emnist_letters(*, split: str, data_dir=None) -> LabelledImages:
    """EMNIST Letters for `split`: images upright, labels 0..25 (0 = A/a), from whichever copy is found first."""
    check_split(split)
    kind, paths = locate("emnist-letters", split, resolve_data_dirs(data_dir))
    if kind.startswith(formats.FROM_BYCLASS):
        letters = letters_from_byclass(byclass.read_byclass((kind.removeprefix(formats.FROM_BYCLASS), paths), split),
                                       kind)
        print(f"No EMNIST Letters files found: the letters are {source_line(letters.source)}")
        return letters
    if kind == "idx":
        images_path, labels_path = paths
        images, labels = idx.read_idx(images_path, 3), idx.read_idx(labels_path, 1)
        where = f"{images_path.name} and {labels_path.name}"
        files, place = paths, images_path.parent
    elif kind == "zip":
        images, labels = read_emnist_zip(paths[0], split)
        where, files, place = str(paths[0]), paths, paths[0]
    else:
        images, labels = formats.READERS[kind](kind, paths[0], split)
        where, place = str(paths[0]), paths[0]
        files = formats.tfds_files(paths[0], split) if kind == "tfds" else paths
    if labels.size and (labels.min() < 1 or labels.max() > len(LETTERS)):
        raise UserError(f"EMNIST Letters labels in {where} run {labels.min()}..{labels.max()}, expected 1..26")
    source = source_record(*files, what=f"EMNIST Letters from {formats.TITLES[kind]} in {place}")
    # Every copy stores each image transposed, as NIST's files do; swapping the two pixel axes turns it upright.
    letters = validated_split(images.transpose(0, 2, 1), labels.astype(np.int64) - 1, LETTERS, source, where)
    letters.source.update(format=kind, split=split, images=len(letters.labels),
                          release=letters_release(split, len(letters.labels)))
    return letters


RELEASES = {"official": "NIST's official 124,800 / 20,800 split",
            "older": "the older 88,800 / 14,800 split, which published results do not use",
            "other": "neither NIST's 124,800 / 20,800 split nor the older 88,800 / 14,800",
            "byclass": "ByClass's natural letter frequencies, not the balanced EMNIST Letters split: comparable with "
                       "no published EMNIST Letters figure"}


def letters_from_byclass(all_classes: LabelledImages, kind: str) -> LabelledImages:
    """EMNIST Letters' 26 classes from a split of EMNIST ByClass: its letters (the digits left out), each capital
    and small letter merged into one class as the Letters split merges them (0 = A/a), each image's case kept in
    `fine_labels` (the 52 ByClass letter classes: letter + 26 x case, 26 = a) for the case check."""
    cased = byclass.letters_view(all_classes)
    per_class = np.bincount(cased.labels, minlength=len(LETTERS))
    where = all_classes.source.get("description", "")
    source = {**all_classes.source, "format": kind,
              "description": f"EMNIST ByClass's letters, upper and lower case merged into EMNIST Letters' 26 "
                             f"classes ({where})",
              "derived_from": "EMNIST ByClass", "images": len(cased.labels), "release": "byclass",
              "images_per_class": {name: int(n) for name, n in zip(LETTERS, per_class)},
              "capitals": int((cased.cases == 0).sum()), "small_letters": int((cased.cases == 1).sum())}
    return LabelledImages(cased.images, cased.labels, LETTERS, source,
                          fine_labels=cased.labels + len(LETTERS) * cased.cases)


def is_from_byclass(source: dict) -> bool:
    """Whether a split's record is of letters taken from EMNIST ByClass (letters_from_byclass)."""
    return source.get("derived_from") == "EMNIST ByClass"


def letters_release(split: str, count: int) -> str:
    """Which division of EMNIST Letters a split of `count` images belongs to (a key of RELEASES), for the record."""
    if count == OFFICIAL_LETTERS[split]:
        return "official"
    return "older" if count == OLDER_LETTERS[split] else "other"


def source_line(source: dict) -> str:
    """A split's record in words, for what a script prints: "the test split of EMNIST Letters from Kaggle's CSV
    export in ... (14,800 images; the older 88,800 / 14,800 split, ...)"."""
    details = [f"{source['images']:,} images"] if source.get("images") is not None else []
    if source.get("images_per_class"):
        counts = source["images_per_class"].values()
        details[-1:] = [f"{details[-1] if details else ''}, {min(counts):,} to {max(counts):,} a letter"]
    details += [RELEASES.get(source["release"], source["release"])] if source.get("release") else []
    split = f"the {source['split']} split of " if source.get("split") else ""
    return f"{split}{source.get('description', 'unknown data')}" + (f" ({'; '.join(details)})" if details else "")


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


def class_names_of(dataset: str) -> tuple:
    """What a network trained on the dataset named `dataset` answers in, output by output, without loading the
    data: "0".."9" for MNIST, "A/a".."Z/z" for EMNIST Letters, "A".."Z" then "a".."z" for ByClass's 52 letter
    classes, "0/5".. for merged MNIST."""
    if dataset == MERGED or dataset.startswith(MERGED + ":"):
        return tuple("/".join(map(str, group)) for group in parse_merge(dataset.partition(":")[2] or DEFAULT_MERGE))
    if dataset == BYCLASS_LETTERS:
        return byclass.CAPITALS + byclass.SMALL
    return LETTERS if dataset == "emnist-letters" else DIGITS


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
    source = {**train.source, "test_files": test_split_files(dataset, data_dir, train.source.get("files") or {})}
    return TrainVal(dataset, train.images[keep], train.labels[keep], train.images[held_out], train.labels[held_out],
                    train.class_names, source, fine_val)


def test_split_files(dataset: str, data_dir=None, known: dict | None = None) -> dict[str, str]:
    """The sha256 of the files holding the test split beside the training split found (none where it is not there:
    nothing is downloaded), for config.json: a test file edited after the run trained is then seen when the run is
    judged. Only their bytes are digested; no test image is read. `known`: digests already taken ({path: sha256}),
    of a file that holds both splits (mnist.npz, NIST's zip), which is not read again."""
    known = known or {}
    directories = resolve_data_dirs(data_dir)
    base = "mnist" if dataset == MERGED or dataset.startswith(MERGED + ":") else dataset
    try:
        if base == BYCLASS_LETTERS:
            found = byclass.find_byclass("test", directories)
        else:
            found = FINDERS[base]("test", directories) if base in FINDERS else None
    except UserError:  # a test split that is not readable is said when it is judged, not while training
        found = None
    paths = []
    for path in found[1] if found else ():
        # a TensorFlow Datasets folder: its test shards
        paths += sorted(p for p in path.iterdir() if "test" in p.name) if path.is_dir() else [path]
    return {str(p.resolve()): known.get(str(p.resolve())) or digest_now(p) for p in paths if p.is_file()}


def load_training_data(config: TrainConfig, expand: bool = True) -> TrainVal:
    """Training and validation data as the config describes (never the test set). `expand=False` skips the
    shifted copies of the training images, for code that wants the validation set alone."""
    dataset = load_train_val(config.dataset, val_fraction=config.val_fraction, seed=config.seed,
                                  data_dir=config.data_dir, limit=config.limit_images, validation=config.validation)
    if config.expand_shifts and expand:
        dataset.x_train, dataset.y_train = expand_with_shifts(dataset.x_train, dataset.y_train)
    return dataset


def load_test_set(dataset: str, data_dir=None) -> LabelledImages:
    """The test split. Only evaluate_test.py should call this: the test set judges, it never trains or tunes."""
    return load_split(dataset, "test", data_dir)


def is_official(source: dict) -> bool:
    """Whether a split's record is of NIST's own release (the split the published figures were measured on)."""
    return source.get("release") == "official" and formats.FAMILIES.get(source.get("format")) == "NIST"


CHANGED_DATA_FLAG = "--accept-changed-data"


def changed_data_files(recorded: dict, test: bool = False) -> list[str]:
    """The files a run records having trained on (config.json's `data`), and with `test` those of the test split
    beside them, that still stand where they stood but no longer hold the same bytes (their sha256 differs): the
    run's own data, changed after it trained. A file moved away is no change (a folder moved elsewhere is found by
    its contents)."""
    files = {**(recorded.get("files") or {}), **((recorded.get("test_files") or {}) if test else {})}
    return [path for path, digest in files.items() if Path(path).is_file() and digest_now(Path(path)) != digest]


def digest_now(path: Path) -> str:
    """A file's sha256, computed once per version of it (its size and modification time) however many runs ask:
    NIST's gzip.zip takes seconds to read."""
    status = path.stat()
    return _digest(str(path.resolve()), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    from .download import file_digest

    return file_digest(Path(path))


def refuse_changed_data(run_dir: Path, recorded: dict, accept: bool, test: bool = False) -> list[str]:
    """Refuse, in one line naming the files and what to do, to judge or show a run on data changed since it
    trained: the validation images rebuilt from it are not the run's, and the figures would silently be another
    run's (with `test`, for judging, the test split's files count too). With `accept` (the user's
    CHANGED_DATA_FLAG) the changed files are returned, for the output to say so."""
    changed = changed_data_files(recorded, test)
    if changed and not accept:
        raise UserError(f"{run_dir} trained on data that has changed since (the sha256 in its config.json differs): "
                        f"{', '.join(changed)}; put back the files it trained on, train it again with --overwrite, "
                        f"or pass {CHANGED_DATA_FLAG} to use them as they are now (the output says so)")
    return changed


def same_copy(trained: dict, judged: dict) -> bool:
    """Whether a run's training data and a test set come from the same kind of copy (formats.FAMILIES: NIST's
    files, Kaggle's CSV, TensorFlow Datasets), as the published splits pair them. A record without a format
    (MNIST's) is NIST's."""
    return formats.FAMILIES.get(trained.get("format"), "NIST") == formats.FAMILIES.get(judged.get("format"), "NIST")


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
