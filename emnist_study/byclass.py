"""EMNIST ByClass, for its case labels: the only EMNIST split that keeps upper and lower case apart (labels 0-9
the digits, 10-35 `A`-`Z`, 36-61 `a`-`z`). It ships in NIST's gzip.zip beside EMNIST Letters, so whoever has the
letters from that zip has ByClass too.

It is found, read and checked as the letters are (sources.py holds what they share): the official
`emnist-byclass-*-idx?-ubyte[.gz]` files or NIST's gzip.zip in a --data-dir folder, then the `emnist` package's
cache, then a download; images stored transposed are turned upright. Two views of it serve the case check
(case_check.py): its letters as EMNIST Letters labels them (0..25) with their case beside them, which never reaches
training; and its 52 letter classes (dataset "emnist-byclass-letters"), on which a plain reference network can
learn case outright.
"""

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import idx, sources
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


def find_byclass(split: str, directories: list[Path]) -> tuple[str, tuple[Path, ...]] | None:
    """("idx", (images, labels)) or ("zip", (path,)) for the first directory holding ByClass, then the `emnist`
    cache; None where it is nowhere here. Reads no images and creates nothing."""
    for directory in directories:
        found = [sources.find_idx_file(directory, name) for name in sources.emnist_member_names(split, KIND)]
        if all(found):
            return "idx", tuple(found)
        for name in sources.EMNIST_ZIP_NAMES:
            if (directory / name).is_file() and zip_holds_byclass(directory / name, split):
                return "zip", (directory / name,)
    cache = sources.emnist_cache()
    return ("zip", (cache,)) if cache.is_file() and zip_holds_byclass(cache, split) else None


def locate_byclass(split: str, directories: list[Path]) -> tuple[str, tuple[Path, ...]]:
    """Where one split of ByClass is: in the folders or the cache, else downloaded (NIST's zip) into the cache."""
    found = find_byclass(split, directories)
    if found is None:
        sources.fetch(BYCLASS, directories)
        found = find_byclass(split, directories)
    if found is None:  # the download is NIST's zip, which always holds ByClass; a zip that does not is not NIST's
        raise UserError(f"{sources.emnist_cache()} has no EMNIST ByClass files: is it NIST's EMNIST gzip.zip?")
    return found


def load_emnist_byclass(*, split: str, data_dir=None) -> sources.LabelledImages:
    """EMNIST ByClass for `split`: images upright, labels 0..61 (CLASS_NAMES)."""
    sources.check_split(split)
    kind, paths = locate_byclass(split, sources.resolve_data_dirs(data_dir))
    if kind == "idx":
        images_path, labels_path = paths
        images, labels = idx.read_idx(images_path, 3), idx.read_idx(labels_path, 1)
        source = sources.describe(images_path, labels_path,
                                  what=f"EMNIST ByClass IDX files in {images_path.parent}")
        where = f"{images_path.name} and {labels_path.name}"
    else:
        images, labels = sources.read_emnist_zip(paths[0], split, KIND)
        source, where = sources.describe(paths[0]), f"{paths[0]} (EMNIST ByClass)"
    # The official files store each image transposed, as the letters' do; swapping the pixel axes turns it upright.
    return sources.checked(images.transpose(0, 2, 1), labels, CLASS_NAMES, source, where)


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
