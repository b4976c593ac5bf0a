"""EMNIST Letters from the copies students have besides NIST's IDX files (emnist_study/formats.py): Kaggle's CSV,
NIST's MATLAB file, a folder TensorFlow Datasets prepared; each generated here in its format, read upright (an
asymmetric glyph proves it) with labels 0..25 and its source recorded. Then the refusal of training and test from
two different copies, the one line per dataset when the download fails,."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import run_all
import synthetic
from emnist_study import data, download, formats, sources
from emnist_study.errors import UserError
from helpers import ROOT, run_script

UPRIGHT_L = synthetic.glyph_L()


def expected_labels(split: str, per_class: int) -> np.ndarray:
    return synthetic.emnist_arrays(split, per_class)[1].astype(np.int64) - 1


def assert_upright_letters(folder, kind: str, per_class=(12, 4)) -> None:
    """Both splits read from `folder`: upright (image 0 is the 'L'), labels 0..25 in file order, and the record of
    the copy, the split and its size."""
    for split, count in zip(("train", "test"), per_class):
        letters = data.load_emnist_letters(split=split, data_dir=folder)
        assert letters.images.shape == (26 * count, 28, 28) and letters.images.dtype == np.uint8
        assert np.array_equal(letters.images[0], UPRIGHT_L), "the glyph came out transposed"
        assert np.array_equal(letters.labels, expected_labels(split, count))
        assert letters.class_names[0] == "A/a" and letters.class_names[25] == "Z/z"
        assert letters.source["format"] == kind and letters.source["split"] == split
        assert letters.source["images"] == 26 * count and letters.source["release"] == "other"
        assert letters.source["files"] and all(len(digest) == 64 for digest in letters.source["files"].values())


# --- Kaggle's CSV ---------------------------------------------------------------------------------------

def test_kaggle_csv_is_read_upright_with_its_labels(tmp_path):
    synthetic.write_emnist_csv(tmp_path)
    first_row = (tmp_path / "emnist-letters-train.csv").read_text().splitlines()[0].split(",")
    assert len(first_row) == 785 and first_row[0] == str(expected_labels("train", 12)[0] + 1)  # labels 1..26
    assert_upright_letters(tmp_path, "csv")
    assert "Kaggle's CSV" in data.load_emnist_letters(split="test", data_dir=tmp_path).source["description"]


@pytest.mark.parametrize("name", ["emnist.zip", "archive.zip"])
def test_kaggles_zipped_download_is_read_as_it_is(tmp_path, name):
    """Kaggle's command line saves emnist.zip, the name NIST's zip has in the `emnist` package's cache: a zip of that
    name holding the CSV files is read as Kaggle's, not refused as a broken NIST zip."""
    synthetic.write_emnist_csv(tmp_path, zipped=name)
    assert_upright_letters(tmp_path, "csv-zip")


def test_a_csv_with_a_header_row_is_read(tmp_path):
    synthetic.write_emnist_csv(tmp_path, header=True)
    assert_upright_letters(tmp_path, "csv")


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_csv_saved_by_a_spreadsheet_program_keeps_every_image(tmp_path, header, line_end):
    """Spreadsheet programs write a UTF-8 byte-order mark first, and often Windows line ends: neither costs an
    image (the mark once hid the first row's label from the header test, and the first image was skipped)."""
    synthetic.write_emnist_csv(tmp_path, header=header)
    for split in ("train", "test"):
        path = tmp_path / f"emnist-letters-{split}.csv"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_text().replace("\n", line_end).encode())
    assert_upright_letters(tmp_path, "csv")
    assert len(data.load_emnist_letters(split="train", data_dir=tmp_path).labels) == 12 * 26


def test_a_zip_declaring_more_than_any_copy_of_emnist_holds_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    """A zip bomb (a few MB unpacking to gigabytes) is refused from the sizes its members declare, not read."""
    synthetic.write_emnist_csv(tmp_path, zipped="emnist.zip")
    monkeypatch.setattr(formats, "MOST_IMAGES", {"letters": 100, "byclass": 100})  # fewer than the 12 x 26 here
    unpacked = []
    monkeypatch.setattr(formats.zipfile.ZipFile, "read", lambda *a, **k: unpacked.append(a) or b"")
    with pytest.raises(UserError, match=r"emnist-letters-train\.csv unpacks to 0\.0 GB, more than any copy of "
                                        r"EMNIST \(0\.0 GB at most\): it is not EMNIST's file") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert "\n" not in str(error.value) and not unpacked


def test_nist_zip_members_declaring_more_than_any_idx_file_are_refused_before_they_are_unpacked(tmp_path,
                                                                                                  monkeypatch):
    """NIST's gzip.zip: a member declaring more bytes than EMNIST's largest IDX file is refused from its declared
    size, before it is read."""
    from emnist_study import idx

    synthetic.write_emnist_zip(tmp_path / "gzip.zip")
    monkeypatch.setattr(idx, "MOST_IDX_BYTES", 100)  # less than the members here declare
    opened = []
    monkeypatch.setattr(sources.zipfile.ZipFile, "open", lambda *a, **k: opened.append(a))
    with pytest.raises(UserError, match=r"gzip\.zip:gzip/emnist-letters-train-images-idx3-ubyte\.gz unpacks to "
                                        r"0\.0 GB, more than any file of EMNIST") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert "\n" not in str(error.value) and not opened


@pytest.mark.parametrize("in_zip", [False, True])
def test_a_gzip_bomb_is_refused_after_unpacking_no_more_than_the_largest_idx_file(tmp_path, monkeypatch, in_zip):
    """A .gz IDX file (in a folder, or inside NIST's zip) that unpacks to more than any IDX file of MNIST or EMNIST
    is refused in one line once that much is unpacked, not read to its end."""
    import gzip
    import zipfile

    from emnist_study import idx

    synthetic.write_emnist_files(tmp_path)
    images = tmp_path / "emnist-letters-train-images-idx3-ubyte.gz"
    bomb = gzip.compress(bytes(3_000_000))  # 3 MB of zeros: 3 kB packed
    if in_zip:
        with zipfile.ZipFile(tmp_path / "gzip.zip", "w") as archive:
            for path in sorted(tmp_path.glob("*.gz")):
                archive.writestr(f"gzip/{path.name}", bomb if path == images else path.read_bytes())
                path.unlink()
    else:
        images.write_bytes(bomb)
    monkeypatch.setattr(idx, "MOST_IDX_BYTES", 100_000)
    monkeypatch.setattr(idx, "CHUNK_BYTES", 10_000)
    read = []
    real_read = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read", lambda self, n=-1: read.append(n) or real_read(self, n))
    with pytest.raises(UserError, match=r"emnist-letters-train-images-idx3-ubyte\.gz unpacks to more than 0 MB, "
                                        r"more than any IDX file of MNIST or EMNIST") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert "\n" not in str(error.value)
    assert 0 < sum(read) <= 110_000 and all(n > 0 for n in read)  # never "read it all"


def test_tfds_shards_larger_than_any_copy_of_emnist_are_refused_before_they_are_read(tmp_path, monkeypatch):
    synthetic.write_emnist_tfds(tmp_path)
    monkeypatch.setattr(formats, "MOST_TFRECORD_BYTES", 1)
    with pytest.raises(UserError, match=r"its train shards hold 0\.0 GB, more than any copy of EMNIST") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert "\n" not in str(error.value) and "prepare the folder again" in str(error.value)


@pytest.mark.parametrize("damage, message", [
    (lambda rows: rows[:1] + [rows[1].rsplit(",", 1)[0]] + rows[2:], "columns changed from 785 to 784"),
    (lambda rows: [row.rsplit(",", 1)[0] for row in rows], "has 784 values a row, expected 785"),
    (lambda rows: rows[:1] + [rows[1] + "x"] + rows[2:], "could not convert"),
    (lambda rows: [], "is empty"),
])
def test_a_damaged_csv_is_one_line(tmp_path, damage, message):
    synthetic.write_emnist_csv(tmp_path)
    path = tmp_path / "emnist-letters-train.csv"
    path.write_text("\n".join(damage(path.read_text().splitlines())))
    with pytest.raises(UserError, match=message) as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert "\n" not in str(error.value)


def test_csv_pixels_out_of_range_and_labels_out_of_range_are_refused(tmp_path):
    synthetic.write_emnist_csv(tmp_path)
    path = tmp_path / "emnist-letters-train.csv"
    rows = path.read_text().splitlines()
    path.write_text("\n".join(["1," + ",".join(["300"] * 784)] + rows[1:]))
    with pytest.raises(UserError, match="pixels 0..255"):
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    path.write_text("\n".join(["0," + rows[0].split(",", 1)[1]] + rows[1:]))  # 0 is no letter: labels run 1..26
    with pytest.raises(UserError, match="run 0..26, expected 1..26"):
        data.load_emnist_letters(split="train", data_dir=tmp_path)


# --- NIST's MATLAB file ---------------------------------------------------------------------------------

@pytest.mark.parametrize("labels_dtype", [np.float64, np.uint8])
def test_matlab_file_is_read_upright_with_its_labels(tmp_path, labels_dtype):
    synthetic.write_emnist_mat(tmp_path, labels_dtype=labels_dtype)
    assert_upright_letters(tmp_path, "mat")


def write_mat(directory, images_as=lambda images: images, labels_as=lambda labels: labels.astype(np.float64)):
    import scipy.io

    dataset = {}
    for split in ("train", "test"):
        images, labels = synthetic.emnist_arrays(split, 2)
        dataset[split] = {"images": images_as(images.reshape(len(images), -1)),
                          "labels": labels_as(labels.reshape(-1, 1))}
    scipy.io.savemat(directory / "emnist-letters.mat", {"dataset": dataset})


@pytest.mark.parametrize("scaled, expected", [
    (lambda images: images / 255.0, lambda images: images),
    (lambda images: images > 127, lambda images: (images > 127) * 255),
    (lambda images: (images > 127).astype(np.float64), lambda images: (images > 127) * 255),
])
def test_matlab_pixels_saved_as_0_to_1_are_read_as_0_to_255_saying_so(tmp_path, capsys, scaled, expected):
    """Taken as they are, pixels of 0..1 would train on images all but black, without a word."""
    write_mat(tmp_path, images_as=scaled)
    loaded = data.load_emnist_letters(split="test", data_dir=tmp_path)
    original, _ = synthetic.emnist_arrays("test", 2)
    assert np.array_equal(loaded.images, np.swapaxes(expected(original), 1, 2))
    assert "holds pixels from 0 to 1" in capsys.readouterr().out


def test_a_matlab_label_far_out_of_range_is_named_as_it_is(tmp_path):
    write_mat(tmp_path, labels_as=lambda labels: np.where(np.arange(len(labels))[:, None] == 3, 1e30, labels))
    with pytest.raises(UserError, match=r"dataset\.test\.labels\) holds 1e\+30, far outside the range"):
        data.load_emnist_letters(split="test", data_dir=tmp_path)


def test_matlab_rows_reshaped_column_major_are_upright_as_the_usual_loading_code_has_it(tmp_path):
    """What the loading code students copy does (reshape with order="F") agrees with the loader."""
    from scipy.io import loadmat

    path = synthetic.write_emnist_mat(tmp_path)
    rows = loadmat(path, simplify_cells=True)["dataset"]["train"]["images"]
    assert np.array_equal(rows[0].reshape(28, 28, order="F"), UPRIGHT_L)
    assert np.array_equal(data.load_emnist_letters(split="train", data_dir=tmp_path).images[0], UPRIGHT_L)


def test_nists_matlab_zip_is_read_as_it_is(tmp_path):
    synthetic.write_emnist_mat(tmp_path, in_zip=True)
    assert_upright_letters(tmp_path, "mat-zip")


def test_a_damaged_matlab_file_is_one_line(tmp_path):
    path = synthetic.write_emnist_mat(tmp_path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UserError, match="is not a readable MATLAB file") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert "\n" not in str(error.value)
    import scipy.io

    scipy.io.savemat(path, {"other": np.zeros(3)})
    with pytest.raises(UserError, match=r"has no dataset.train.images .*is it NIST's emnist-letters.mat\?"):
        data.load_emnist_letters(split="train", data_dir=tmp_path)


# --- a folder TensorFlow Datasets prepared ----------------------------------------------------------------

def test_tfds_folder_is_read_upright_from_any_level_of_it(tmp_path):
    folder = synthetic.write_emnist_tfds(tmp_path / "tensorflow_datasets")
    assert sorted(p.name for p in folder.iterdir()) == [
        "dataset_info.json", "emnist-test.tfrecord-00000-of-00001", "emnist-train.tfrecord-00000-of-00002",
        "emnist-train.tfrecord-00001-of-00002", "features.json"]
    for given in (tmp_path / "tensorflow_datasets", folder.parent.parent, folder.parent, folder):
        assert_upright_letters(given, "tfds")
    record = data.load_emnist_letters(split="train", data_dir=folder).source
    assert sorted(p.rsplit("/", 1)[-1] for p in record["files"]) == [
        "dataset_info.json", "emnist-train.tfrecord-00000-of-00002", "emnist-train.tfrecord-00001-of-00002"]


@pytest.mark.parametrize("splits", ['5', '[{"name": "test", "shardLengths": [Infinity]}]',
                                    '[{"name": "test", "shardLengths": "390"}]',
                                    '[{"name": "test", "shardLengths": [3.5]}]'])
def test_a_tfds_record_of_the_split_sizes_that_is_not_tfds_is_one_line(tmp_path, splits):
    folder = synthetic.write_emnist_tfds(tmp_path, per_class_train=2, per_class_test=2)
    info = json.loads((folder / "dataset_info.json").read_text())
    text = json.dumps({**info, "splits": "SPLITS"}).replace('"SPLITS"', splits)
    (folder / "dataset_info.json").write_text(text)
    with pytest.raises(UserError, match=r"dataset_info\.json: its record of the test split's size is not "
                                        r"TensorFlow Datasets' .*; prepare the folder again") as error:
        data.load_emnist_letters(split="test", data_dir=tmp_path)
    assert "\n" not in str(error.value)


def test_tfds_own_folder_is_looked_in_without_data_dir(offline_home, monkeypatch):
    synthetic.write_emnist_tfds(offline_home / "tensorflow_datasets")
    assert_upright_letters(None, "tfds")
    monkeypatch.setenv("TFDS_DATA_DIR", str(offline_home / "elsewhere"))  # TFDS's own setting moves it
    synthetic.write_emnist_tfds(offline_home / "elsewhere", per_class_train=2, per_class_test=2)
    assert data.load_emnist_letters(split="test").source["files"].popitem()[0].startswith(
        str(offline_home / "elsewhere"))


def test_the_newest_tfds_version_is_read_and_another_config_is_not_taken_for_letters(tmp_path):
    synthetic.write_emnist_tfds(tmp_path, per_class_train=2, per_class_test=2, version="3.0.0")
    synthetic.write_emnist_tfds(tmp_path, per_class_train=3, per_class_test=3, version="3.1.0")
    assert data.load_emnist_letters(split="test", data_dir=tmp_path).images.shape == (78, 28, 28)
    byclass = synthetic.write_emnist_tfds(tmp_path / "other", config="byclass")  # its files are emnist-*.tfrecord too
    assert formats.find_tfds(byclass, "test") is None and formats.find_tfds(byclass.parent, "test") is None


def test_a_tfds_folder_missing_images_is_one_line(tmp_path):
    folder = synthetic.write_emnist_tfds(tmp_path)
    (folder / "emnist-train.tfrecord-00001-of-00002").unlink()
    with pytest.raises(UserError, match="holds 1 of its train split's shards, named as parts of 2: the") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert "\n" not in str(error.value)
    info = json.loads((folder / "dataset_info.json").read_text())
    info["splits"][1]["shardLengths"] = ["1000"]  # the test split
    (folder / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="records 1,000 test images, its shards hold 104"):
        data.load_emnist_letters(split="test", data_dir=tmp_path)
    info["splits"][1]["shardLengths"] = ["104"]
    (folder / "dataset_info.json").write_text(json.dumps(info))
    shard = folder / "emnist-test.tfrecord-00000-of-00001"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = b"x" * 64  # a damaged record: its checksum tells
    shard.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="its test shards are not EMNIST images with labels") as error:
        data.load_emnist_letters(split="test", data_dir=tmp_path)
    assert "\n" not in str(error.value)


def test_finding_the_data_loads_no_tensorflow(tmp_path):
    """--help, --dry-run and the data check answer at once: finding a TFDS folder (and any other copy) reads JSON,
    never TensorFlow, which only reading its images imports."""
    synthetic.write_emnist_tfds(tmp_path / "tfds")
    synthetic.write_emnist_csv(tmp_path / "csv")
    synthetic.write_emnist_mat(tmp_path / "mat")
    code = ("import sys; from emnist_study import data\n"
            f"for folder in ('tfds', 'csv', 'mat'):\n"
            f"    print(data.ensure_available(['emnist-letters'], {str(tmp_path)!r} + '/' + folder))\n"
            "assert 'tensorflow' not in sys.modules and 'scipy' not in sys.modules, 'imported at the data check'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(a TensorFlow Datasets folder)" in result.stdout and "(Kaggle's CSV export)" in result.stdout


# --- which copy, and which split, a run used ----------------------------------------------------------------

def test_the_divisions_are_told_apart_by_their_counts():
    assert data.letters_release("train", 124_800) == data.letters_release("test", 20_800) == "official"
    assert data.letters_release("train", 88_800) == data.letters_release("test", 14_800) == "older"
    assert data.letters_release("test", 624) == data.letters_release("train", 20_800) == "other"
    record = {"description": "EMNIST Letters from Kaggle's CSV export in /d/emnist-letters-test.csv", "split": "test",
              "images": 14_800, "release": "older"}
    assert data.source_line(record) == ("the test split of EMNIST Letters from Kaggle's CSV export in "
                                        "/d/emnist-letters-test.csv (14,800 images; the older 88,800 / 14,800 split, "
                                        "which published results do not use)")


def test_a_run_trained_on_kaggles_csv_records_the_copy_and_the_split(tmp_path):
    import emnist_baseline
    from helpers import quick_args

    synthetic.write_emnist_csv(tmp_path / "kaggle", per_class_train=10, per_class_test=2)
    assert run_script(emnist_baseline, "--model", "mlp", *quick_args(tmp_path, tmp_path / "kaggle")) == 0
    (run,) = (tmp_path / "runs").iterdir()
    record = json.loads((run / "config.json").read_text())["data"]
    assert record["format"] == "csv" and record["split"] == "train" and record["images"] == 260
    assert record["release"] == "other" and "Kaggle's CSV" in record["description"]
    assert list(record["files"]) == [str(tmp_path / "kaggle" / "emnist-letters-train.csv")]


def test_the_report_says_when_the_letters_test_set_is_not_the_published_one():
    from dataclasses import replace

    from emnist_study import report
    from emnist_study.evaluation import RunResult

    true = np.arange(26)
    older = {"description": "EMNIST Letters from Kaggle's CSV export in /data/emnist-letters-test.csv",
             "split": "test", "images": 14_800, "release": data.letters_release("test", 14_800), "format": "csv"}
    run = RunResult(run="emnist_cnn", dataset="emnist-letters", network="CNN", params=1, epochs=1,
                    train_seconds=1.0, val_accuracy=0.9, predicted=true, true=true,
                    config={"script": "emnist_experiments.py", "model": "vgg_bn"}, test_source=older)
    fifth = report.answers({"emnist-letters": [run]})[4]
    assert "Kaggle's CSV export" in fifth and "14,800 images; the older 88,800 / 14,800 split" in fifth
    assert "not comparable with them" in fifth
    official = {"description": "EMNIST Letters from NIST's IDX files in /data", "split": "test", "images": 20_800,
                "release": "official", "format": "idx"}
    assert "not comparable" not in report.answers({"emnist-letters": [replace(run, test_source=official)]})[4]
    generated = replace(run, test_source={**official, "images": 624, "release": "other"})
    assert "624 images; neither NIST's" in report.answers({"emnist-letters": [generated]})[4]  # generated data, say


# --- training and test from one copy ---------------------------------------------------------------------------

def test_a_run_trained_on_one_copy_is_not_judged_on_another(tmp_path, capsys):
    """A run trained on Kaggle's CSV, judged with --data-dir at NIST's files: named, not judged (its test set
    would be another split's); a run trained on NIST's files beside it is judged."""
    import json

    import evaluate_test
    from helpers import run_script

    synthetic.write_emnist_files(tmp_path / "nist")
    for name, record in (("from_csv", {"format": "csv", "description": "EMNIST Letters from Kaggle's CSV export",
                                       "split": "train", "release": "other"}),
                         ("from_nist", {"format": "idx", "description": "EMNIST Letters from NIST's IDX files",
                                        "split": "train", "release": "official"})):
        run = synthetic.write_finished_run(tmp_path / "runs", name, "emnist-letters", synthetic.template_model(26))
        saved = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**saved, "data": record}))
    code = run_script(evaluate_test, "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "nist"),
                      "--results-dir", str(tmp_path / "results"))
    err = capsys.readouterr().err
    assert code == 0
    assert "not judged" in err and "from_csv" in err and "training and test must come from one copy" in err
    assert "from_nist" not in err

def test_a_training_split_without_its_test_split_is_refused_naming_the_file_to_put_where(tmp_path, offline_home):
    synthetic.write_emnist_csv(tmp_path)
    (tmp_path / "emnist-letters-test.csv").unlink()
    synthetic.write_emnist_zip(offline_home / ".cache" / "emnist" / "emnist.zip")  # NIST's: another copy
    for split in ("train", "test"):
        with pytest.raises(data.MixedCopies, match="training and test must come from one copy") as error:
            data.load_emnist_letters(split=split, data_dir=tmp_path)
        assert "\n" not in str(error.value)
    (offline_home / ".cache" / "emnist" / "emnist.zip").unlink()  # nothing else: NIST's download would be
    with pytest.raises(data.MixedCopies, match=re.escape(f"Put emnist-letters-test.csv in {tmp_path}") + "$"):
        data.load_train_val("emnist-letters", val_fraction=0.1, seed=1, data_dir=tmp_path)


def test_training_and_test_from_two_copies_are_refused(tmp_path):
    synthetic.write_emnist_csv(tmp_path / "kaggle")
    (tmp_path / "kaggle" / "emnist-letters-test.csv").unlink()
    synthetic.write_emnist_files(tmp_path / "nist")
    (tmp_path / "nist" / "emnist-letters-train-images-idx3-ubyte.gz").unlink()
    both = [tmp_path / "kaggle", tmp_path / "nist"]
    with pytest.raises(data.MixedCopies, match=r"training split is Kaggle's CSV export .* but its test split is "
                                               r"NIST's IDX files"):
        data.load_test_set("emnist-letters", both)
    with pytest.raises(UserError, match=r"missing data \(1 of 1 dataset\):\nEMNIST Letters: EMNIST Letters' "):
        data.ensure_available(["emnist-letters"], both)
    # copies of one kind in two folders are one copy: Kaggle's test CSV beside NIST's files is refused, in its
    # own folder it is taken
    synthetic.write_emnist_csv(tmp_path / "kaggle_test")
    (tmp_path / "kaggle_test" / "emnist-letters-train.csv").unlink()
    one_copy = [tmp_path / "kaggle", tmp_path / "kaggle_test"]
    assert data.load_test_set("emnist-letters", one_copy).source["format"] == "csv"


def test_the_official_files_first(tmp_path):
    """Where a folder holds several copies, NIST's files win (the documented order), then the MATLAB file, Kaggle's
    CSV and a TFDS folder."""
    synthetic.write_emnist_tfds(tmp_path)
    assert data.load_emnist_letters(split="test", data_dir=tmp_path).source["format"] == "tfds"
    synthetic.write_emnist_csv(tmp_path)
    assert data.load_emnist_letters(split="test", data_dir=tmp_path).source["format"] == "csv"
    synthetic.write_emnist_mat(tmp_path)
    assert data.load_emnist_letters(split="test", data_dir=tmp_path).source["format"] == "mat"
    synthetic.write_emnist_zip(tmp_path / "gzip.zip")
    assert data.load_emnist_letters(split="test", data_dir=tmp_path).source["format"] == "zip"
    synthetic.write_emnist_files(tmp_path)
    assert data.load_emnist_letters(split="test", data_dir=tmp_path).source["format"] == "idx"


# --- when NIST's download fails ----------------------------------------------------------------------------

ALTERNATIVES = ("gzip.zip", "emnist-letters-*-ubyte.gz", "emnist-letters.mat", "matlab.zip",
                "emnist-letters-train.csv", "emnist-letters-test.csv", "tfds.load('emnist/letters')")


def assert_lists_the_alternatives(message: str, folder) -> None:
    assert "\n" not in message
    for alternative in ALTERNATIVES:
        assert alternative in message, alternative
    assert f"put any one of these in {folder} (your --data-dir)" in message
    assert "tensorflow_datasets/emnist/letters" in message and ".cache/emnist/emnist.zip" in message


@pytest.fixture
def downloads_allowed(monkeypatch):
    monkeypatch.delenv("EMNIST_STUDY_NO_DOWNLOAD")


def test_an_offline_download_lists_the_other_ways_and_where_to_put_them(tmp_path, downloads_allowed, monkeypatch):
    monkeypatch.setattr(sources, "EMNIST_URL", (tmp_path / "unreachable.zip").as_uri())
    with pytest.raises(UserError, match=r"^could not download .*unreachable.zip \(.*No such file") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path)
    assert_lists_the_alternatives(str(error.value), tmp_path)


def test_a_download_with_a_wrong_checksum_lists_the_other_ways(tmp_path, downloads_allowed, monkeypatch):
    served = tmp_path / "server" / "gzip.zip"
    served.parent.mkdir()
    served.write_bytes(b"<html>Service Unavailable</html>")  # what a failing server sends instead
    monkeypatch.setattr(sources, "EMNIST_URL", served.as_uri())
    (tmp_path / "data").mkdir()
    with pytest.raises(UserError, match="^checksum mismatch") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path / "data")
    assert_lists_the_alternatives(str(error.value), tmp_path / "data")


def test_a_download_too_slow_to_finish_is_stopped_and_lists_the_other_ways(tmp_path, downloads_allowed,
                                                                         monkeypatch, offline_home):
    served = tmp_path / "server" / "gzip.zip"
    monkeypatch.setattr(sources, "EMNIST_URL", served.as_uri())
    monkeypatch.setattr(sources, "EMNIST_MD5", synthetic.write_emnist_zip(served))
    monkeypatch.setattr(download, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(download, "MOST_SECONDS_LEFT", 600)
    clock = iter(range(0, 10**9, 100))  # 100 s between chunks of 1,000 bytes: 10 bytes/s
    monkeypatch.setattr(download.time, "monotonic", lambda: next(clock))
    (tmp_path / "data").mkdir()
    with pytest.raises(UserError, match=r"is coming at 0.0 kB/s \(\d+ more hours\): stopped") as error:
        data.load_emnist_letters(split="train", data_dir=tmp_path / "data")
    assert_lists_the_alternatives(str(error.value), tmp_path / "data")
    assert list(offline_home.iterdir()) == []  # nothing half-written, no empty cache folders


def test_run_all_offline_says_in_one_line_per_dataset_why_each_is_missing(tmp_path, capsys, downloads_allowed,
                                                                         monkeypatch):
    """Issue 34, item 7: the data check prints one line per dataset with the download's own reason; the error is
    one line naming them."""
    monkeypatch.setattr(sources, "MNIST_URL", (tmp_path / "no-mnist.npz").as_uri())
    monkeypatch.setattr(sources, "EMNIST_URL", (tmp_path / "no-emnist.zip").as_uri())
    (tmp_path / "empty").mkdir()
    assert run_script(run_all, "--quick", "--data-dir", str(tmp_path / "empty"),
                      "--runs-dir", str(tmp_path / "runs")) == 1
    captured = capsys.readouterr()
    checked = captured.out.split("Checking the data every step needs:\n", 1)[1].splitlines()
    assert [line.split(":", 1)[0] for line in checked] == ["  mnist", "  emnist-letters"]
    for line, name in zip(checked, ("no-mnist.npz", "no-emnist.zip")):
        assert f"MISSING: could not download file://{tmp_path}/{name} ([Errno 2] No such file" in line
    assert "MNIST was not found in" in checked[0] and "mnist.npz" not in checked[1]
    assert_lists_the_alternatives(checked[1].split("MISSING: ", 1)[1], tmp_path / "empty")
    error = captured.err.strip()
    assert len(error.splitlines()) == 1 and "missing data (2 of 2 datasets)" in error
    assert "The line above for each says why and what to do" in error
