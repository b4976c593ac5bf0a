"""EMNIST as students get it besides NIST's IDX files: Kaggle's CSV export, NIST's MATLAB file, and a folder that
TensorFlow Datasets prepared, of EMNIST Letters (`emnist="letters"`, the default) or of EMNIST ByClass
(`emnist="byclass"`: the same layouts under emnist-byclass-* names and emnist/byclass, labels 0..61). Each reader
returns one split as its file stores it, as NIST's IDX files do: images (N, 28, 28) transposed, labels as the copy
has them (letters 1..26). data.py and byclass.py turn them upright, check them and record where they came from;
data.py also decides the order in which the formats are looked for.

  Kaggle's CSV  emnist-letters-{train,test}.csv, loose or inside the zip Kaggle's download is: one row an image, the
                label then 784 pixels in the IDX files' (transposed) order, no header row. An older split than NIST's
                files: 88,800 / 14,800 rows, not 124,800 / 20,800 (the counts are read, never assumed).
  MATLAB        emnist-letters.mat, loose or inside NIST's matlab.zip: a struct `dataset` with `train` and `test`,
                each with `images` (N x 784 in the IDX files' order: reshaped column-major they are upright) and
                `labels` (N x 1). Read with scipy.io.loadmat.
  TFDS          the folder `tfds.load("emnist/letters")` prepares (~/tensorflow_datasets/emnist/letters/<version>/):
                dataset_info.json, features.json and shards emnist-{train,test}.tfrecord-NNNNN-of-NNNNN of
                tf.train.Example records, "image" a 28x28x1 PNG stored transposed, "label" 1..26 (TFDS declares 37
                classes). Read with tf.data, so tensorflow_datasets need not be installed; TensorFlow is imported
                only when such a folder is read.
"""

import codecs
import io
import json
import os
import re
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import UserError

PIXELS = 28 * 28


def mat_name(emnist: str = "letters") -> str:
    return f"emnist-{emnist}.mat"


MAT_NAME = mat_name()
TFDS_INFO = "dataset_info.json"
# What a found copy is, by the kind data.py's finders give it: the words for messages and records, and its family.
# Copies of one family hold the same division of the images into training and test sets; different families do not.
TITLES = {"idx": "NIST's IDX files", "zip": "NIST's gzip.zip", "mat": "NIST's MATLAB file",
          "mat-zip": "NIST's MATLAB file in a zip", "csv": "Kaggle's CSV export", "csv-zip": "Kaggle's CSV export "
          "in a zip", "tfds": "a TensorFlow Datasets folder"}
FAMILIES = {"idx": "NIST", "zip": "NIST", "mat": "NIST", "mat-zip": "NIST", "csv": "Kaggle's CSV",
            "csv-zip": "Kaggle's CSV", "tfds": "TensorFlow Datasets"}
# EMNIST Letters taken from a copy of EMNIST ByClass (byclass.py), where no copy of the Letters files is found:
# kind "byclass-<the copy's kind>". ByClass divides its images into training and test sets its own way.
FROM_BYCLASS = "byclass-"
for _kind in list(TITLES):
    TITLES[FROM_BYCLASS + _kind] = f"EMNIST ByClass's letters, cases merged, from {TITLES[_kind]}"
    FAMILIES[FROM_BYCLASS + _kind] = f"EMNIST ByClass ({FAMILIES[_kind]})"


def csv_name(split: str, kind: str = "letters") -> str:
    """Kaggle's file name for one split of an EMNIST dataset (`kind`: letters, byclass)."""
    return f"emnist-{kind}-{split}.csv"


# ---------------------------------------------------------------------------------------------------------
# Zips: Kaggle's download (the CSV files) and NIST's matlab.zip


def zip_names(path: Path) -> list[str] | None:
    """The members of a zip, or None where it cannot be read (reading it will then say what is wrong)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None


def member_named(names: list[str] | None, basename: str) -> str | None:
    """The first member whose file name (the folders inside the zip aside) is `basename`."""
    return next((name for name in names or () if name.rsplit("/", 1)[-1] == basename), None)


def zip_holding(directory: Path, basename: str) -> Path | None:
    """The first zip in `directory` holding a member named `basename`."""
    for archive in sorted(directory.glob("*.zip")):
        if archive.is_file() and member_named(zip_names(archive), basename):
            return archive
    return None


# The most images any real copy holds in one split (EMNIST Letters' 124,800 training images; ByClass's 697,932), and
# so the most bytes its members can take unpacked: a zip that declares more is not a copy of EMNIST (a zip bomb, a
# wrong file) and is refused before a byte of it is unpacked.
MOST_IMAGES = {"letters": 124_800, "byclass": 697_932}
CSV_ROW_BYTES = 4 * (1 + PIXELS) + 1  # "255," for every value and a line end (\r\n where it is "255" that ends)
MAT_IMAGE_BYTES = 8 * (1 + PIXELS)  # doubles, the widest type MATLAB stores them in, with the label
MAT_SPLITS = 2  # both splits are in the one file
MOST_TFRECORD_BYTES = 4096  # a TFDS record: a 28x28 PNG (a few hundred bytes) with its label, framed


def open_member(archive: zipfile.ZipFile, path: Path, basename: str, most_bytes: int) -> tuple[io.IOBase, str]:
    """(a stream of the member named `basename`, "zip:member" for messages), refused in one line where the member
    declares more than `most_bytes` unpacked."""
    member = member_named(archive.namelist(), basename)
    if member is None:
        raise UserError(f"{path} has no {basename}")
    declared = archive.getinfo(member).file_size
    if declared > most_bytes:
        raise UserError(f"{path}:{member} unpacks to {declared / 1e9:.1f} GB, more than any copy of EMNIST "
                        f"({most_bytes / 1e9:.1f} GB at most): it is not EMNIST's file; download it again")
    return archive.open(member), f"{path}:{member}"


@contextmanager
def member_stream(path: Path, basename: str, most_bytes: int):
    """(a stream of the member named `basename`, "zip:member" for messages), for a `with`; a zip that cannot be
    read is one line. See open_member."""
    try:
        with zipfile.ZipFile(path) as archive:
            stream, where = open_member(archive, path, basename, most_bytes)
            with stream:
                yield stream, where
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable zip file ({exc}); download it again") from None


def read_member(path: Path, basename: str, most_bytes: int) -> tuple[bytes, str]:
    """(the bytes of the member named `basename`, "zip:member" for messages); see open_member."""
    with member_stream(path, basename, most_bytes) as (stream, where):
        return stream.read(), where


# ---------------------------------------------------------------------------------------------------------
# Kaggle's CSV


def find_csv(directory: Path, split: str, emnist: str = "letters") -> tuple[str, tuple[Path, ...]] | None:
    """("csv", (file,)) or ("csv-zip", (zip,)) where `directory` holds Kaggle's CSV of `split` of the EMNIST
    dataset `emnist` (letters, byclass)."""
    loose = directory / csv_name(split, emnist)
    if loose.is_file():
        return "csv", (loose,)
    archive = zip_holding(directory, csv_name(split, emnist))
    return ("csv-zip", (archive,)) if archive else None


def read_csv(kind: str, path: Path, split: str, emnist: str = "letters") -> tuple[np.ndarray, np.ndarray]:
    """One split of Kaggle's CSV, read as a stream (never the whole text in memory at once)."""
    if kind == "csv":
        with open(path, "rb") as stream:
            return parse_csv(stream, str(path), emnist)
    with member_stream(path, csv_name(split, emnist), MOST_IMAGES[emnist] * CSV_ROW_BYTES) as (stream, where):
        return parse_csv(stream, where, emnist)


def parse_csv(stream, where: str, emnist: str = "letters") -> tuple[np.ndarray, np.ndarray]:
    """Kaggle's rows (the label, then 784 pixels) from a binary stream, as (images (N, 28, 28) as stored, labels).
    A byte-order mark (spreadsheet programs write one) and a row of column names (some copies add one) are
    skipped."""
    stream = io.BufferedReader(stream) if not hasattr(stream, "peek") else stream
    start = stream.peek(4096)[:4096]
    bom = start.startswith(codecs.BOM_UTF8)
    start = start.removeprefix(codecs.BOM_UTF8)
    if not start.strip():
        raise UserError(f"{where} is empty; download it again")
    text = io.TextIOWrapper(stream, encoding="utf-8-sig" if bom else "ascii", newline="")
    header = 0 if start.lstrip()[:1].isdigit() else 1
    try:
        rows = np.loadtxt(text, delimiter=",", dtype=np.int32, skiprows=header, ndmin=2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{where} is not EMNIST's CSV of whole numbers, a label then {PIXELS} pixels a row "
                        f"({exc}); download it again") from None
    if rows.shape[1] != 1 + PIXELS:
        raise UserError(f"{where} has {rows.shape[1]} values a row, expected {1 + PIXELS} (the label, then 28 x 28 "
                        f"pixels): is it Kaggle's {csv_name('<split>', emnist)}?")
    return rows[:, 1:].reshape(-1, 28, 28), rows[:, 0]


# ---------------------------------------------------------------------------------------------------------
# NIST's MATLAB file


def find_mat(directory: Path, emnist: str = "letters") -> tuple[str, tuple[Path, ...]] | None:
    """("mat", (file,)) or ("mat-zip", (zip,)) where `directory` holds emnist-<emnist>.mat (both splits are in
    it)."""
    name = mat_name(emnist)
    if (directory / name).is_file():
        return "mat", (directory / name,)
    archive = zip_holding(directory, name)
    return ("mat-zip", (archive,)) if archive else None


def read_mat(kind: str, path: Path, split: str, emnist: str = "letters") -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat  # here: scipy takes a moment to import

    if kind == "mat":
        source, where = path, str(path)
    else:
        raw, where = read_member(path, mat_name(emnist), MOST_IMAGES[emnist] * MAT_IMAGE_BYTES * MAT_SPLITS)
        source = io.BytesIO(raw)
    try:
        mat = loadmat(source, simplify_cells=True, variable_names=["dataset"])
    except Exception as exc:  # scipy's readers raise many kinds (ValueError, MatReadError, zlib's, v7.3's ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{where} is not a readable MATLAB file ({reason}); download NIST's matlab.zip again") from None
    try:
        part = mat["dataset"][split]
        images, labels = np.asarray(part["images"]), np.asarray(part["labels"])
    except (KeyError, TypeError, IndexError, ValueError):
        raise UserError(f"{where} has no dataset.{split}.images and dataset.{split}.labels: is it NIST's "
                        f"{mat_name(emnist)}?") from None
    if images.size % PIXELS or (images.ndim > 1 and images.shape[-1] != PIXELS):
        raise UserError(f"{where}: dataset.{split}.images has shape {images.shape}, expected N x {PIXELS}")
    # Row-major rows of 784 are the IDX files' (transposed) order, like the other readers' images.
    return (pixels_0_to_255(images, f"{where} (dataset.{split}.images)").reshape(-1, 28, 28),
            whole_numbers(labels, f"{where} (dataset.{split}.labels)").reshape(-1))


def pixels_0_to_255(images: np.ndarray, where: str) -> np.ndarray:
    """The images as whole numbers 0..255. A copy saved from a program that scales pixels to 0..1 (as floats, or
    as 0/1 true/false) is scaled back, saying so: taken as it is, every image would be all but black."""
    if images.size and images.dtype.kind in "biuf" and np.isfinite(images).all() and 0 <= images.min() and \
            images.max() <= 1:
        print(f"Note: {where} holds pixels from 0 to 1 ({images.dtype}), not EMNIST's 0..255: read as 0..255")
        return np.rint(images.astype(np.float64) * 255).astype(np.int64)
    return whole_numbers(images, where)


def whole_numbers(array: np.ndarray, where: str) -> np.ndarray:
    """An integer array of the same values; MATLAB often stores whole numbers as doubles."""
    if array.dtype.kind in "iu":
        return array
    if array.dtype.kind == "f" and np.isfinite(array).all() and np.array_equal(array, np.rint(array)):
        largest = array.flat[np.abs(array).argmax()] if array.size else 0
        if abs(largest) > np.iinfo(np.int32).max:
            raise UserError(f"{where} holds {largest:g}, far outside the range of EMNIST's values")
        return array.astype(np.int64)
    raise UserError(f"{where} holds {array.dtype} values that are not whole numbers")


# ---------------------------------------------------------------------------------------------------------
# A folder TensorFlow Datasets prepared


def tfds_roots() -> list[Path]:
    """Where TensorFlow Datasets keeps prepared data: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return [Path(os.environ["TFDS_DATA_DIR"]).expanduser()] if os.environ.get("TFDS_DATA_DIR") else \
        [Path.home() / "tensorflow_datasets"]


def tfds_cache(emnist: str = "letters") -> Path:
    return tfds_roots()[0] / "emnist" / emnist


def version_key(folder: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else -1 for part in folder.name.split("."))


def version_folders(folder: Path) -> list[Path]:
    """The sub-folders named like versions (3.0.0), the newest first."""
    if not folder.is_dir():
        return []
    found = [sub for sub in folder.iterdir() if sub.is_dir() and re.fullmatch(r"\d+(\.\d+)*", sub.name)]
    return sorted(found, key=version_key, reverse=True)


def shards(folder: Path, split: str) -> list[Path]:
    return sorted(folder.glob(f"*-{split}.tfrecord-*-of-*"))


def dataset_info(folder: Path) -> dict:
    try:
        info = json.loads((folder / TFDS_INFO).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{folder / TFDS_INFO} is not readable JSON ({exc}); prepare the folder again") from None
    if not isinstance(info, dict):
        raise UserError(f"{folder / TFDS_INFO} is not TensorFlow Datasets' dataset_info.json")
    return info


def is_emnist_folder(folder: Path, split: str, emnist: str = "letters") -> bool:
    """Whether `folder` is a prepared emnist/<emnist> (letters, byclass) holding `split`: dataset_info.json naming
    emnist (its config `emnist`, where it says, or the folder's), and the split's tfrecord shards."""
    if not ((folder / TFDS_INFO).is_file() and shards(folder, split)):
        return False
    try:
        info = dataset_info(folder)
    except UserError:
        return True  # reading it will say what is wrong
    config = info.get("configName") or (folder.parent.name if folder.parent.parent.name == "emnist" else None)
    return info.get("name", "emnist") == "emnist" and config in ((None, "letters") if emnist == "letters"
                                                                  else (emnist,))


def find_tfds(directory: Path, split: str, emnist: str = "letters") -> Path | None:
    """The prepared emnist/<emnist> folder in `directory`: the folder itself, or its emnist/<emnist>/<version>,
    <emnist>/<version> or <version> (the newest version holding `split`)."""
    candidates = [directory]
    for parent in (directory / "emnist" / emnist, directory / emnist, directory):
        candidates += version_folders(parent)
    return next((folder for folder in candidates if is_emnist_folder(folder, split, emnist)), None)


def tfds_files(folder: Path, split: str) -> list[Path]:
    """The files a split is read from (recorded with their sha256): its shards and dataset_info.json."""
    return shards(folder, split) + [folder / TFDS_INFO]


def declared_count(info: dict, split: str, where: Path) -> int | None:
    """The split's number of examples as dataset_info.json (`where`) records it: the sum of its shard lengths,
    whole numbers that TFDS writes as strings ("88800"). None where it records none; refused where the record is
    not TFDS's."""
    splits = info.get("splits") or []
    entries = ([e for e in splits if isinstance(e, dict) and e.get("name") == split] if isinstance(splits, list)
               else None)
    lengths = entries[0].get("shardLengths") if entries else None
    if entries is not None and not lengths:
        return None
    if entries is None or not isinstance(lengths, list) or not all(
            (isinstance(n, int) and not isinstance(n, bool) and n >= 0) or (isinstance(n, str) and n.isdigit())
            for n in lengths):
        raise UserError(f"{where}: its record of the {split} split's size is not TensorFlow Datasets' (a list "
                        f"of shard lengths under \"splits\"); prepare the folder again")
    return sum(int(n) for n in lengths)


def read_tfds(kind: str, folder: Path, split: str, emnist: str = "letters") -> tuple[np.ndarray, np.ndarray]:
    """One split of a prepared emnist/<emnist> folder, read with tf.data: images (N, 28, 28) as stored, labels."""
    prepare = f"tfds.load('emnist/{emnist}')"
    files = shards(folder, split)
    totals = {int(match.group(1)) for f in files if (match := re.search(r"-of-(\d+)$", f.name))}
    if totals and totals != {len(files)}:
        raise UserError(f"{folder} holds {len(files)} of its {split} split's shards, named as parts of "
                        f"{' and '.join(str(t) for t in sorted(totals))}: the preparation stopped early or was mixed "
                        f"with another; prepare it again ({prepare})")
    declared = declared_count(dataset_info(folder), split, folder / TFDS_INFO)
    size = sum(f.stat().st_size for f in files)
    if size > MOST_IMAGES[emnist] * MOST_TFRECORD_BYTES:
        raise UserError(f"{folder}: its {split} shards hold {size / 1e9:.1f} GB, more than any copy of EMNIST "
                        f"({MOST_IMAGES[emnist] * MOST_TFRECORD_BYTES / 1e9:.1f} GB at most): they are not "
                        f"EMNIST's; prepare the folder again ({prepare})")
    from . import quiet_tensorflow  # noqa: F401  TensorFlow starts as the scripts start it, only for this format
    import tensorflow as tf

    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        return tf.io.decode_png(example["image"], channels=1), example["label"]

    images, labels = [], []
    try:
        batches = tf.data.TFRecordDataset([str(f) for f in files], buffer_size=1 << 22).map(
            parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(4096)
        for image_batch, label_batch in batches:
            images.append(image_batch.numpy())
            labels.append(label_batch.numpy())
    except (tf.errors.OpError, ValueError) as exc:
        reason = (getattr(exc, "message", None) or str(exc)).splitlines()[0]
        raise UserError(f"{folder}: its {split} shards are not EMNIST images with labels ({reason}); prepare the "
                        f"folder again ({prepare})") from None
    images = np.concatenate(images) if images else np.zeros((0, 28, 28, 1), np.uint8)
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    if declared is not None and declared != len(labels):
        raise UserError(f"{folder}: dataset_info.json records {declared:,} {split} images, its shards hold "
                        f"{len(labels):,}: the download or preparation stopped early; prepare it again")
    return images[..., 0], labels


READERS = {"csv": read_csv, "csv-zip": read_csv, "mat": read_mat, "mat-zip": read_mat, "tfds": read_tfds}


def finds(directory: Path, split: str, emnist: str = "letters") -> tuple[str, tuple[Path, ...]] | None:
    """The first of the copies this module reads (the MATLAB file, Kaggle's CSV, a TFDS folder) of `split` of the
    EMNIST dataset `emnist` in `directory`, as (kind, paths)."""
    tfds = find_tfds(directory, split, emnist)
    return find_mat(directory, emnist) or find_csv(directory, split, emnist) or (("tfds", (tfds,)) if tfds else None)


def read(kind: str, path: Path, split: str, emnist: str = "letters") -> tuple[np.ndarray, np.ndarray]:
    """One split as `finds` found it: images (N, 28, 28) as stored (transposed), labels as the copy has them."""
    return READERS[kind](kind, path, split, emnist)


def files_read(kind: str, path: Path, split: str) -> list[Path]:
    """The files a split of such a copy is read from, recorded with their sha256."""
    return tfds_files(path, split) if kind == "tfds" else [path]
