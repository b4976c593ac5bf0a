"""EMNIST ByClass, for its case labels: the only EMNIST split that keeps upper and lower case apart (labels 0-9
the digits, 10-35 `A`-`Z`, 36-61 `a`-`z`). It ships in NIST's gzip.zip beside EMNIST Letters, so whoever has the
letters from that zip has ByClass too.

It is found, read and checked as the letters are (sources.py holds what they share): in a --data-dir folder, the
official `emnist-byclass-*-idx?-ubyte[.gz]` files, NIST's gzip.zip, `emnist-byclass.mat` (or NIST's matlab.zip),
Kaggle's `emnist-byclass-{train,test}.csv` (or its zip), or a folder `tfds.load("emnist/byclass")` prepared; then
the `emnist` package's cache and `~/tensorflow_datasets/emnist/byclass`; then a download. Images stored transposed
are turned upright. Its views:
  - its letters as EMNIST Letters labels them (0..25) with their case beside them: the case check's letters
    (case_check.py), and, where no copy of EMNIST Letters is found, the letters steps' data themselves (data.py);
  - its 52 letter classes (dataset "emnist-byclass-letters"), on which a plain reference network can learn case
    outright.
"""

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import formats, idx, sources
from .errors import UserError

BYCLASS = "emnist-byclass"
KIND = "byclass"  # in the file names: emnist-byclass-*
CAPITALS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
SMALL = tuple("abcdefghijklmnopqrstuvwxyz")
CLASS_NAMES = sources.DIGITS + CAPITALS + SMALL  # ByClass's 62 labels, in order
FIRST_CAPITAL, FIRST_SMALL = 10, 36


@dataclass
class CasedLetters:
    """Letters with their case: uint8 images (N, 28, 28), upright; letter labels 0..25 as EMNIST Letters has them
    (0 = A/a); case 0 for a capital, 1 for a small letter."""

    images: np.ndarray
    labels: np.ndarray
    cases: np.ndarray
    source: dict = field(default_factory=dict)
    class_names: tuple = sources.LETTERS


def zip_holds_byclass(path: Path, split: str) -> bool:
    """Whether a gzip.zip has the ByClass split (an unreadable zip counts: reading it will say what is wrong)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return True
    return all(f"gzip/{name}.gz" in names for name in sources.emnist_member_names(split, KIND))


def find_byclass_in(directory: Path, split: str) -> tuple[str, tuple[Path, ...]] | None:
    """(kind, paths) of ByClass's `split` in one folder: "idx" (images, labels), "zip" (NIST's gzip.zip), or
    formats.py's "mat", "mat-zip", "csv", "csv-zip", "tfds"; None where the folder holds none."""
    found = [sources.find_idx_file(directory, name) for name in sources.emnist_member_names(split, KIND)]
    if all(found):
        return "idx", tuple(found)
    for name in sources.EMNIST_ZIP_NAMES:
        if (directory / name).is_file() and zip_holds_byclass(directory / name, split):
            return "zip", (directory / name,)
    return formats.finds(directory, split, KIND)


def find_byclass_cached(split: str) -> tuple[str, tuple[Path, ...]] | None:
    """ByClass's `split` in the caches: the `emnist` package's zip, then TensorFlow Datasets' emnist/byclass."""
    cache = sources.emnist_cache()
    if cache.is_file() and zip_holds_byclass(cache, split):
        return "zip", (cache,)
    for root in formats.tfds_roots():
        for folder in formats.version_folders(root / "emnist" / KIND):
            if formats.is_emnist_folder(folder, split, KIND):
                return "tfds", (folder,)
    return None


def find_byclass(split: str, directories: list[Path]) -> tuple[str, tuple[Path, ...]] | None:
    """(kind, paths) of the first copy of ByClass's `split` in the folders, then the caches; None where it is
    nowhere here. Reads no images and creates nothing."""
    for directory in directories:
        found = find_byclass_in(directory, split)
        if found:
            return found
    return find_byclass_cached(split)


def locate_byclass(split: str, directories: list[Path]) -> tuple[str, tuple[Path, ...]]:
    """Where one split of ByClass is: in the folders or the cache, else downloaded (NIST's zip) into the cache."""
    found = find_byclass(split, directories)
    if found is None:
        sources.fetch(BYCLASS, directories)
        found = find_byclass(split, directories)
    if found is None:  # the download is NIST's zip, which always holds ByClass; a zip that does not is not NIST's
        raise UserError(f"{sources.emnist_cache()} has no EMNIST ByClass files: is it NIST's EMNIST gzip.zip?")
    return found


def read_byclass(found: tuple[str, tuple[Path, ...]], split: str) -> sources.LabelledImages:
    """ByClass's `split` from the copy `found` (find_byclass): images upright, labels 0..61 (CLASS_NAMES)."""
    kind, paths = found
    if kind == "idx":
        images_path, labels_path = paths
        images, labels = idx.read_idx(images_path, 3), idx.read_idx(labels_path, 1)
        source = sources.source_record(images_path, labels_path,
                                  what=f"EMNIST ByClass IDX files in {images_path.parent}")
        where = f"{images_path.name} and {labels_path.name}"
    elif kind == "zip":
        images, labels = sources.read_emnist_zip(paths[0], split, KIND)
        source, where = sources.source_record(paths[0]), f"{paths[0]} (EMNIST ByClass)"
    else:
        images, labels = formats.read(kind, paths[0], split, KIND)
        source = sources.source_record(*formats.files_read(kind, paths[0], split),
                                  what=f"EMNIST ByClass from {formats.TITLES[kind]} in {paths[0]}")
        where = str(paths[0])
    source.update(format=kind, split=split)
    # Every copy stores each image transposed, as the letters' do; swapping the pixel axes turns it upright.
    return sources.validated_split(images.transpose(0, 2, 1), labels, CLASS_NAMES, source, where)


def load_emnist_byclass(*, split: str, data_dir=None) -> sources.LabelledImages:
    """EMNIST ByClass for `split`: images upright, labels 0..61 (CLASS_NAMES)."""
    sources.check_split(split)
    return read_byclass(locate_byclass(split, sources.resolve_data_dirs(data_dir)), split)


def letters_view(byclass: sources.LabelledImages) -> CasedLetters:
    """ByClass's letters (its digits left out) with EMNIST Letters' labels, 0..25, and each one's case beside it."""
    keep = byclass.labels >= FIRST_CAPITAL
    labels = byclass.labels[keep]
    cases = (labels >= FIRST_SMALL).astype(np.int64)
    letters = labels - np.where(cases == 1, FIRST_SMALL, FIRST_CAPITAL)
    return CasedLetters(byclass.images[keep], letters, cases, byclass.source)


def load_cased_letters(*, split: str, data_dir=None) -> CasedLetters:
    return letters_view(load_emnist_byclass(split=split, data_dir=data_dir))


def load_byclass_letters(*, split: str, data_dir=None) -> sources.LabelledImages:
    """ByClass's letters as 52 classes, `A`..`Z` (0..25) then `a`..`z` (26..51): the data set of the reference
    network, which is trained with the case labels the case-aware head never sees."""
    letters = load_cased_letters(split=split, data_dir=data_dir)
    return sources.LabelledImages(letters.images, letters.labels + len(CAPITALS) * letters.cases,
                                  CAPITALS + SMALL, letters.source)


def where_found(data_dir=None) -> str:
    """Where ByClass's test split is, or that it is not there, for run_all's data check (nothing is downloaded:
    the study needs ByClass only for the case check)."""
    directories = sources.resolve_data_dirs(data_dir)
    found = find_byclass("test", directories)
    if found is None:
        return ("not found, so the case-aware run's sub-units are not checked against the true case (NIST's "
                "gzip.zip holds ByClass: give its folder with --data-dir)")
    return f"{', '.join(str(p) for p in found[1])} (the case check of the case-aware run)"
