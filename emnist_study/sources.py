"""What the loaders of every dataset share, importing none of them (data.py: MNIST and EMNIST Letters; byclass.py:
EMNIST ByClass): where the files are (the --data-dir folders, then the caches, then a download; data.py's docstring
tells the order), the names of NIST's files and how its zip is read, and the checks every split passes on its way
to a LabelledImages (uint8 images (N, 28, 28), int64 labels from 0).
"""

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import formats, idx
from .download import download, file_digest
from .errors import UserError

DATA_DIR_ENV = "EMNIST_STUDY_DATA_DIR"
SPLITS = ("train", "test")
DIGITS = tuple("0123456789")
LETTERS = tuple(f"{c.upper()}/{c}" for c in "abcdefghijklmnopqrstuvwxyz")

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
EMNIST_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
EMNIST_MD5 = "58c8d27c78d21e728a6bc7b3cc06412e"
EMNIST_ZIP_NAMES = ("gzip.zip", "emnist.zip")  # NIST's name, and the name the `emnist` package caches it under
DATASET_TITLES = {"mnist": "MNIST", "emnist-letters": "EMNIST Letters", "emnist-byclass": "EMNIST ByClass"}


@dataclass
class LabelledImages:
    """One split of a dataset: uint8 images (N, 28, 28), upright; int64 labels from 0; where they came from."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple
    source: dict = field(default_factory=dict)  # {"description": ..., "files": {path: sha256}}
    fine_labels: np.ndarray | None = None  # mnist-merged: the true digit behind each merged label


# ---------------------------------------------------------------------------------------------------------
# Where to look


def resolve_data_dirs(data_dir) -> list[Path]:
    """The --data-dir values (None, one path, or a list), else the environment variable's, else none; each must
    be an existing directory. Returned absolute, so a run records where its data really was."""
    if isinstance(data_dir, (str, Path)):
        values, origin = [data_dir], "--data-dir"
    elif data_dir:
        values, origin = list(data_dir), "--data-dir"
    else:
        values, origin = [v for v in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep) if v], DATA_DIR_ENV
    paths = []
    for value in values:
        try:
            path = Path(value).expanduser().resolve()
        except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError("Symlink loop ..."), later ones OSError
            raise UserError(f"{origin} {value} is a symbolic link that leads back to itself (a loop); give the "
                            f"folder that holds the data") from None
        if not path.is_dir():
            raise UserError(f"{origin} {value} does not exist or is not a directory")
        paths.append(path)
    return paths


def keras_mnist_cache() -> Path:
    return Path.home() / ".keras" / "datasets" / "mnist.npz"


def emnist_cache() -> Path:
    """Where the `emnist` package (PyPI emnist 0.0) caches NIST's zip: a zip it fetched is found, and one saved here is
    where it looks. (The project does not use the package: its IDX reader fails under NumPy 2.)"""
    return Path.home() / ".cache" / "emnist" / "emnist.zip"


def find_idx_file(directory: Path, name: str) -> Path | None:
    """`name` or `name.gz` in `directory`, whichever exists."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def emnist_member_names(split: str, kind: str = "letters") -> tuple[str, str]:
    return (f"emnist-{kind}-{split}-images-idx3-ubyte", f"emnist-{kind}-{split}-labels-idx1-ubyte")


def source_record(*paths: Path, what: str | None = None) -> dict:
    """Where data came from, for the run config: a description and the sha256 of every file read."""
    files = {str(p.resolve()): file_digest(p) for p in paths}
    return {"description": what or str(paths[0].resolve()), "files": files}


def where_looked(dataset: str, directories: list[Path]) -> str:
    """The places a dataset was looked for, for an error message: the folders, with what was looked for in them
    (for EMNIST Letters, how_to_get lists it), then the caches."""
    wanted = {"mnist": " (mnist.npz or the four IDX files)", "emnist-letters": ""}.get(
        dataset, f" (the {dataset}-*-ubyte[.gz] files or gzip.zip)")
    caches = {"mnist": [keras_mnist_cache()],
              "emnist-letters": [emnist_cache(), formats.tfds_cache()]}.get(dataset, [emnist_cache()])
    places = ([f"{', '.join(str(d) for d in directories)}{wanted}"] if directories else []) + [str(c) for c in caches]
    return ", ".join(places[:-1]) + f" or {places[-1]}" if len(places) > 1 else places[0]


def how_to_get(dataset: str, directories: list[Path] = ()) -> str:
    """What to do where a dataset is nowhere: the other ways to get it, and the folder to put them in."""
    into = f"{directories[0]} (your --data-dir)" if directories else "a folder and pass it with --data-dir"
    if dataset == "mnist":
        return (f"put mnist.npz (or the four official IDX files) in {into}, or save {MNIST_URL} as "
                f"{keras_mnist_cache()}")
    if dataset == "emnist-letters":
        return (f"put any one of these in {into}: NIST's gzip.zip ({EMNIST_URL}, 562 MB; saved as {emnist_cache()} "
                f"it is found without --data-dir) or the four emnist-letters-*-ubyte.gz files in it; NIST's "
                f"emnist-letters.mat (in its matlab.zip); Kaggle's emnist-letters-train.csv and "
                f"emnist-letters-test.csv (an older, smaller split); or the folder tfds.load('emnist/letters') "
                f"prepares (found without --data-dir in {formats.tfds_cache()}); failing all of these, a copy of "
                f"EMNIST ByClass (its emnist-byclass-*-ubyte.gz files, Kaggle's emnist-byclass-*.csv or "
                f"tfds.load('emnist/byclass')'s folder), whose letters are then taken, cases merged")
    return (f"download {EMNIST_URL} (562 MB) and save it as {emnist_cache()}, or put it (or the "
            f"{dataset}-*-ubyte.gz files in it) in {into}")


def fetch(dataset: str, directories: list[Path]) -> Path:
    """Download a dataset into its cache (the caller found it nowhere else); where that fails, one line says why,
    where it was looked for, and the other ways to get it."""
    what_to_do = (f"{DATASET_TITLES[dataset]} was not found in {where_looked(dataset, directories)}. "
                  f"To fix: {how_to_get(dataset, directories)}.")
    if dataset == "mnist":
        return download(MNIST_URL, keras_mnist_cache(), "sha256", MNIST_SHA256, what_to_do)
    return download(EMNIST_URL, emnist_cache(), "md5", EMNIST_MD5, what_to_do)


# ---------------------------------------------------------------------------------------------------------
# Reading NIST's zip, and the checks every split passes


def read_emnist_zip(path: Path, split: str, kind: str = "letters") -> tuple[np.ndarray, np.ndarray]:
    """Read one split of an EMNIST dataset (`kind`: letters, byclass) from NIST's gzip.zip (members
    gzip/emnist-<kind>-*.gz)."""
    images_name, labels_name = emnist_member_names(split, kind)
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = []
            for name, ndim in ((images_name, 3), (labels_name, 1)):
                member = f"gzip/{name}.gz"
                try:
                    declared = archive.getinfo(member).file_size
                except KeyError:
                    raise UserError(f"{path} has no {member}: is it NIST's EMNIST gzip.zip?") from None
                if declared > idx.MOST_IDX_BYTES:  # refused before a byte is unpacked (a zip bomb, a wrong file)
                    raise UserError(f"{path}:{member} unpacks to {declared / 1e9:.1f} GB, more than any file of "
                                    f"EMNIST: it is not NIST's gzip.zip; download it again")
                with archive.open(member) as stream:  # read as a stream: the member is never in memory twice
                    arrays.append(idx.read_idx_stream(stream, f"{path.name}:{member}", ndim))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable zip file ({exc}); download it again") from None
    return arrays[0], arrays[1]


def read_emnist_zip_labels(path: Path, split: str, kind: str = "letters") -> np.ndarray:
    """The labels alone of one split of an EMNIST dataset in NIST's gzip.zip (to count its images quickly)."""
    member = f"gzip/{emnist_member_names(split, kind)[1]}.gz"
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
            return idx.read_idx_stream(stream, f"{path.name}:{member}", 1)
    except (KeyError, zipfile.BadZipFile, OSError, EOFError):
        raise UserError(f"{path} has no readable {member}") from None


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")


def validated_split(images, labels, class_names, source, where) -> LabelledImages:
    """Validate shapes, counts, pixels and labels, and package the arrays (see pixel_bytes for the pixels)."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise UserError(f"images in {where} have shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise UserError(f"{where}: {len(images):,} images but {len(labels):,} labels; the files do not belong together")
    if labels.dtype.kind not in "iu":  # a cast would truncate 2.7 to 2, or wrap -1 to 255
        raise UserError(f"labels in {where} are {labels.dtype}, not whole numbers; store the class numbers as "
                        f"integers")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise UserError(f"labels in {where} run {labels.min()}..{labels.max()}, expected 0..{len(class_names) - 1}")
    return LabelledImages(np.ascontiguousarray(pixel_bytes(images, where)), labels, class_names, source)


def pixel_bytes(images: np.ndarray, where: str) -> np.ndarray:
    """Images as uint8 pixels 0..255. Whole numbers in 0..255 of any integer type are taken as they are; floats
    all within [0, 1] (images already scaled) become round(255 x). Anything else is refused: a plain cast would
    wrap 256 to 0, or turn every scaled pixel into 0 or 1 and leave the network blank images to learn from."""
    if images.dtype == np.uint8 or not images.size:
        return images.astype(np.uint8, copy=False)
    low, high = images.min(), images.max()
    if images.dtype.kind in "iu" and 0 <= low and high <= 255:
        return images.astype(np.uint8)
    if images.dtype.kind == "f" and np.isfinite(low) and np.isfinite(high) and 0 <= low and high <= 1:
        return np.rint(images * 255).astype(np.uint8)
    raise UserError(f"images in {where} are {images.dtype} from {low} to {high}; expected pixels 0..255 as uint8 "
                    f"(or floats scaled to [0, 1])")
