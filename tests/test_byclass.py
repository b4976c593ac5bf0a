"""EMNIST ByClass and the case check, on letters of known case rendered from fonts and written in the official
layout (loose IDX .gz files, and NIST's gzip.zip), images stored transposed as the official files store them."""

import json
from dataclasses import asdict

import numpy as np
import pytest

import evaluate_test
import rendered_letters
import show_misclassified
import synthetic
from emnist_study import byclass, case_check, data, subunits
from emnist_study.errors import UserError
from emnist_study.config import TrainConfig
from helpers import run_script

PER_CASE = {"train": 4, "test": 2}  # renderings of each letter in each case
LUMPED = "o"  # the hand-built head below gives both cases of this letter one sub-unit


def marker_pixel(letter: int, case: int) -> tuple[int, int]:
    row, col = divmod(2 * letter + case, 26)
    return row, col + 1


def stamp_markers(images: np.ndarray, byclass_labels: np.ndarray) -> np.ndarray:
    """Blank the top two rows (EMNIST's margin) and light one pixel there naming the letter and its case, so a
    head built by hand can pick a sub-unit by case, as a trained head would that had found it."""
    marked = images.copy()
    marked[:, :2] = 0
    for i, label in enumerate(byclass_labels):
        if label >= byclass.FIRST_CAPITAL:
            case = int(label >= byclass.FIRST_SMALL)
            marked[(i, *marker_pixel(label - (byclass.FIRST_SMALL if case else byclass.FIRST_CAPITAL), case))] = 255
    return marked


def upright_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """What the loader must return: the images upright, before the files stored them transposed."""
    images, labels = rendered_letters.byclass_split(PER_CASE[split], 1, 0 if split == "train" else 10)
    return stamp_markers(images, labels), labels


def marker_model(lumped: str = LUMPED):
    """A case-aware head over the marker pixels: sub-unit 2*letter + case, except both cases of `lumped`'s
    letters in their first unit. Right on the letter of every marked image."""
    import keras

    kernel = np.zeros((28 * 28, 52), np.float32)
    for letter, name in enumerate(rendered_letters.SMALL):
        for case in (0, 1):
            row, col = marker_pixel(letter, case)
            kernel[row * 28 + col, 2 * letter + (0 if name in lumped else case)] = 30.0
    inputs = keras.Input((28, 28, 1))
    head = keras.layers.Dense(52, activation="softmax", name=subunits.SUBUNITS_LAYER)
    model = keras.Model(inputs, subunits.SumSubunits(2)(head(keras.layers.Flatten()(inputs))))
    head.set_weights([kernel, np.zeros(52, np.float32)])
    return model


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The same rendered letters as loose files in one folder and as NIST's gzip.zip in another."""
    root = tmp_path_factory.mktemp("byclass")
    files = rendered_letters.official_files(PER_CASE, digits_per_class=1, marked=stamp_markers)
    loose = rendered_letters.write_loose(root / "loose", files)
    zipped = rendered_letters.write_zip(root / "zipped" / "gzip.zip", files).parent
    return root, loose, zipped


def test_byclass_loads_upright_with_its_62_labels_from_loose_files_and_from_the_zip(folders):
    _, loose, zipped = folders
    expected_images, expected_labels = upright_split("test")
    assert not np.array_equal(expected_images, expected_images.transpose(0, 2, 1))  # orientation can be told
    for folder in (loose, zipped):
        test = byclass.load_emnist_byclass(split="test", data_dir=folder)
        assert np.array_equal(test.images, expected_images) and np.array_equal(test.labels, expected_labels)
        assert len(test.class_names) == 62 and test.class_names[10] == "A" and test.class_names[36] == "a"
    assert byclass.find_byclass("test", [zipped]) == ("zip", (zipped / "gzip.zip",))
    assert byclass.find_byclass("train", [loose])[0] == "idx"


def test_byclass_is_found_in_the_emnist_cache_and_a_corrupt_zip_is_a_one_line_error(folders, offline_home):
    _, _, zipped = folders
    cache = data.emnist_cache()
    cache.parent.mkdir(parents=True)
    cache.write_bytes((zipped / "gzip.zip").read_bytes())
    assert len(byclass.load_emnist_byclass(split="test").labels) == len(upright_split("test")[1])
    cache.write_bytes(cache.read_bytes()[:5000])  # a download cut short
    with pytest.raises(UserError) as error:
        byclass.load_emnist_byclass(split="test")
    assert "is not a readable zip file" in str(error.value) and "\n" not in str(error.value)


def test_the_letters_view_leaves_the_digits_out_and_puts_the_case_beside_the_letter(folders):
    _, loose, _ = folders
    view = byclass.load_cased_letters(split="test", data_dir=loose)
    images, labels = upright_split("test")
    is_letter = labels >= 10
    assert np.array_equal(view.images, images[is_letter])
    assert np.array_equal(view.labels + 10 + 26 * view.cases, labels[is_letter])
    assert view.class_names == data.LETTERS and set(np.bincount(view.labels)) == {2 * PER_CASE["test"]}
    reference = data.load_split(data.BYCLASS_LETTERS, "test", loose)  # the reference network's 52 classes
    assert reference.class_names[0] == "A" and reference.class_names[26] == "a" and len(reference.class_names) == 52
    assert np.array_equal(reference.labels, view.labels + 26 * view.cases)
    letters = data.load_emnist_letters(split="test", data_dir=loose)  # the letters files: case merged
    assert np.array_equal(letters.labels, view.labels) and np.array_equal(letters.images, view.images)


def test_a_zip_without_byclass_is_not_taken_for_it_and_missing_byclass_is_a_one_line_error(tmp_path):
    synthetic.write_emnist_zip(tmp_path / "gzip.zip")  # the letters alone
    assert byclass.find_byclass("test", [tmp_path]) is None
    with pytest.raises(UserError) as error:
        byclass.load_emnist_byclass(split="test", data_dir=tmp_path)
    assert "EMNIST ByClass was not found" in str(error.value) and "emnist-byclass-*-ubyte" in str(error.value)
    assert "\n" not in str(error.value)
    assert "not found" in byclass.where_found(tmp_path)


def test_case_scores_where_the_answer_is_known():
    letters = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 14, 14, 14])  # A/a, B/b, O/o
    cases = np.array([0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1])
    unit = np.array([0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1])  # A/a and B/b by case (B's units the other way), O/o not
    probs = np.full((len(letters), 52), 0.001)
    probs[np.arange(len(letters)), 2 * letters + unit] = 1.0
    record = case_check.measure(probs, letters, cases, 2)
    a, b, o = (record["letters"][c] for c in (0, 1, 14))
    assert a["units"] == [[2, 0], [0, 2]] and a["purity"] == 1.0 and a["nmi"] == 1.0 and a["by_case"]
    assert b["units"] == [[0, 4], [1, 0]] and b["purity"] == 1.0 and b["by_case"] and b["majority_share"] == 0.8
    assert o["units"] == [[1, 1], [0, 1]] and o["purity"] == pytest.approx(2 / 3, abs=1e-4) and not o["by_case"]
    assert o["same_shape"] and not a["same_shape"] and record["letters"][2]["purity"] is None  # C/c: no images
    assert record["purity"] == pytest.approx(11 / 12, abs=1e-4)
    assert record["purity_ignoring_case"] == pytest.approx(8 / 12, abs=1e-4)
    assert case_check.case_separation(np.array([[9, 1], [1, 9]])) == 0.9
    assert case_check.case_separation(np.array([[9, 4], [1, 6]])) == 0.6  # most capitals apart, small letters not
    assert case_check.case_separation(np.array([[5, 9], [0, 1]])) == 0.0  # no unit the capitals' own


def test_a_quick_run_is_checked_on_a_sample_of_every_letter_and_case(folders):
    _, loose, _ = folders
    letters = byclass.load_cased_letters(split="test", data_dir=loose)
    sample = case_check.stratified_letters(letters, 52)
    assert sorted(sample.labels + 26 * sample.cases) == list(range(52))
    assert case_check.stratified_letters(letters, 1000) is letters


def test_reference_case_accuracy_compares_the_letters_two_classes():
    letters, cases = np.array([0, 0, 1]), np.array([0, 1, 1])
    probs = np.zeros((3, 52))
    probs[0, 0], probs[1, 26], probs[2, 1] = 0.9, 0.9, 0.9  # A right, a right, b taken for B
    assert case_check.reference_case_accuracy(probs, letters, cases)[:3] == [1.0, 0.0, None]


def reference_model(wrong_case: str = "z"):
    """A plain 52-class network over the marker pixels (A..Z, then a..z), right on every marked image but for
    the small letters of `wrong_case`, which it takes for capitals."""
    import keras

    kernel = np.zeros((28 * 28, 52), np.float32)
    for letter, name in enumerate(rendered_letters.SMALL):
        for case in (0, 1):
            row, col = marker_pixel(letter, case)
            kernel[row * 28 + col, letter + (0 if name in wrong_case else 26 * case)] = 30.0
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(52, activation="softmax")])
    model.layers[-1].set_weights([kernel, np.zeros(52, np.float32)])
    return model


def finished_run(runs_dir, name: str, dataset: str, model, data_dir, **options):
    run = synthetic.write_finished_run(runs_dir, name, dataset, model, script="emnist_experiments.py")
    config = TrainConfig(script="emnist_experiments.py", run_name=name, dataset=dataset, model="vgg_bn", epochs=1,
                         batch_size=32, val_fraction=0.25, data_dir=[str(data_dir)], **options)
    (run / "config.json").write_text(json.dumps({"config": asdict(config)}))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "val_images": 52}))  # as training records it
    return run


@pytest.fixture(scope="module")
def case_aware_run(folders):
    """A finished case-aware letters run around the hand-built head, trained (so its config says) from the loose
    folder; beside it, a finished reference run on ByClass's 52 letter classes."""
    root, loose, _ = folders
    finished_run(root / "runs", "byclass_exp_baseline", data.BYCLASS_LETTERS, reference_model(), loose)
    return finished_run(root / "runs", "exp_case_aware_resplit", "emnist-letters", marker_model(), loose,
                        model_options={"subunits": 2})


def test_one_command_measures_the_case_and_the_report_includes_it(case_aware_run, capsys, monkeypatch):
    root = case_aware_run.parent.parent
    results = root / "results"
    # evaluate_test.py measures a run not yet checked, and its report carries the table
    assert run_script(evaluate_test, "--runs-dir", str(root / "runs"), "--results-dir", str(results)) == 0
    report = (results / "RESULTS.md").read_text()
    assert "## The case-aware head against the true case" in report and "### emnist-byclass-letters" in report
    assert "| `O/o` | 2 | 2 | 2 / 2 | 0 / 0 | 0.500 (0.500) | 0.000 | no | yes | 100.0% |" in report
    assert "split by case: 11 of the 11 letters whose cases differ in shape, 14 of the 15" in report
    record = json.loads((case_aware_run / case_check.RECORD_FILE).read_text())
    assert record["images"] == 26 * 2 * PER_CASE["test"] and record["nmi"] < 1.0
    assert [r["letter"] for r in record["letters"] if not r["by_case"]] == ["O/o"]
    assert record["reference_run"] == "byclass_exp_baseline" and record["reference_case_accuracy"][-1] == 0.5
    capsys.readouterr()

    (case_aware_run / case_check.RECORD_FILE).unlink()
    (results / "exp_case_aware_resplit_case_check.png").unlink()
    assert run_script(show_misclassified, "exp_case_aware_resplit", "--runs-dir", str(root / "runs"),
                      "--results-dir", str(results), "--no-show") == 0
    printed = capsys.readouterr().out
    assert "Against ByClass's case labels (104 test letters)" in printed
    assert "| `A/a` | 2 | 2 | 2 / 0 | 0 / 2 |" in printed
    assert (results / "exp_case_aware_resplit_case_check.png").stat().st_size > 10_000
    assert json.loads((case_aware_run / case_check.RECORD_FILE).read_text())["purity"] == record["purity"]

    monkeypatch.setenv("HOME", str(root / "empty-home"))  # without ByClass anywhere: said, and nothing else changes
    assert case_check.check_run(case_aware_run, [str(root)], results) is None
    assert "No case check: EMNIST ByClass was not found" in capsys.readouterr().out


def test_the_figure_colours_each_image_by_its_true_case(folders):
    _, loose, _ = folders
    letters = byclass.load_cased_letters(split="test", data_dir=loose)
    probs = subunits.subunit_probabilities(marker_model(lumped=""), letters.images)
    record = case_check.measure(probs, letters.labels, letters.cases, 2)
    chosen = case_check.most_confident_of_each_unit(probs, letters.labels, 2, case_check.PER_UNIT)
    assert all(letters.cases[indices].tolist() == [unit] * PER_CASE["test"] for (_, unit), indices in chosen.items())
    figure = case_check.plot_case_units(letters, chosen, record, "t")
    for unit, case in ((0, 0), (1, 1)):  # unit 1 took the capitals, unit 2 the small letters
        drawn = np.asarray(figure.axes[unit].images[0].get_array())
        ink = drawn[drawn.sum(axis=2) < 2.0]  # pixels well away from white
        blue, orange = (ink[:, 2] > ink[:, 0]).mean(), (ink[:, 0] > ink[:, 2]).mean()
        assert (blue if case == 0 else orange) == 1.0


# --- EMNIST Letters taken from a copy of ByClass, where no copy of the Letters files is found -----------------

@pytest.fixture(scope="module")
def byclass_only(folders):
    """The rendered letters as ByClass's loose IDX files alone, no Letters files beside them."""
    root, loose, _ = folders
    files = rendered_letters.official_files(PER_CASE, digits_per_class=1, marked=stamp_markers)
    return rendered_letters.write_loose(root / "byclass-only", {n: raw for n, raw in files.items() if "byclass" in n})


def byclass_csv_text(split: str) -> str:
    """Kaggle's emnist-byclass-<split>.csv: the ByClass label (0..61), then the pixels as the IDX files store them."""
    images, labels = upright_split(split)
    stored = images.transpose(0, 2, 1).reshape(len(images), -1)
    return "\n".join(",".join(map(str, [label, *row])) for label, row in zip(labels, stored)) + "\n"


def test_the_letters_are_byclass_letters_cases_merged_where_no_letters_copy_is_found(byclass_only, capsys):
    view = byclass.load_cased_letters(split="test", data_dir=byclass_only)
    letters = data.load_emnist_letters(split="test", data_dir=byclass_only)
    assert np.array_equal(letters.images, view.images) and np.array_equal(letters.labels, view.labels)
    assert letters.class_names == data.LETTERS and np.array_equal(letters.fine_labels, view.labels + 26 * view.cases)
    source = letters.source
    assert source["format"] == "byclass-idx" and data.is_from_byclass(source) and not data.is_official(source)
    assert source["images_per_class"]["A/a"] == 2 * PER_CASE["test"] and source["capitals"] == 26 * PER_CASE["test"]
    assert all(str(byclass_only) in path for path in source["files"])
    printed = capsys.readouterr().out
    assert printed.count("No EMNIST Letters files found") == 1 and "ByClass's natural letter frequencies" in printed
    # the validation set keeps each image's case; the training script says what it trains on
    split = data.load_train_val("emnist-letters", val_fraction=0.25, seed=1, data_dir=byclass_only)
    assert np.array_equal(split.fine_val % 26, split.y_val) and set(split.fine_val // 26) == {0, 1}
    assert data.same_copy(source, data.load_emnist_letters(split="train", data_dir=byclass_only).source)
    nist = data.load_emnist_letters(split="test", data_dir=folders_loose(byclass_only)).source
    assert nist["format"] == "idx" and not data.same_copy(source, nist)  # the Letters files, where they are, first


def folders_loose(byclass_only):
    return byclass_only.parent / "loose"


def test_byclass_from_kaggles_csv_and_from_a_tfds_folder_gives_the_same_letters(byclass_only, tmp_path):
    expected = data.load_emnist_letters(split="test", data_dir=byclass_only)
    kaggle = tmp_path / "kaggle"
    kaggle.mkdir()
    for split in ("train", "test"):
        (kaggle / f"emnist-byclass-{split}.csv").write_text(byclass_csv_text(split))
    from_csv = data.load_emnist_letters(split="test", data_dir=kaggle)
    assert from_csv.source["format"] == "byclass-csv" and np.array_equal(from_csv.images, expected.images)
    assert np.array_equal(from_csv.fine_labels, expected.fine_labels)
    assert data.find_emnist_letters("train", [kaggle])[0] == "byclass-csv"
    tfds = synthetic.write_emnist_tfds(tmp_path / "tfds", per_class_train=2, per_class_test=2, config="byclass")
    found = data.find_emnist_letters("test", [tmp_path / "tfds"])
    assert found == ("byclass-tfds", (tfds,))
    from_tfds = data.load_emnist_letters(split="test", data_dir=tmp_path / "tfds")
    # synthetic's labels 1..26 are ByClass's digits 1-9 and capitals A-P: the capitals alone are letters
    assert len(from_tfds.labels) == 2 * 17 and set(from_tfds.fine_labels // 26) == {0}


def test_a_training_split_without_its_test_split_is_refused_naming_the_files(byclass_only, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    for path in byclass_only.glob("emnist-byclass-train-*"):
        (lone / path.name).write_bytes(path.read_bytes())
    with pytest.raises(UserError) as error:
        data.load_emnist_letters(split="train", data_dir=lone)
    assert "emnist-byclass-test-images-idx3-ubyte and emnist-byclass-test-labels-idx1-ubyte[.gz]" in str(error.value)


def test_the_plan_scales_with_the_letters_found(byclass_only, capsys):
    import run_all

    assert data.training_split_size("emnist-letters", byclass_only) == 52 * PER_CASE["train"]
    assert data.training_split_size("emnist-letters", folders_loose(byclass_only)) == 52 * PER_CASE["train"]
    assert data.training_split_size("emnist-letters", byclass_only / "nowhere") is None
    assert run_script(run_all, "--dry-run", "--only", "emnist-letters", "--data-dir", str(byclass_only)) == 0
    printed = capsys.readouterr().out
    assert "Scaled to the 208 training images of the emnist-letters copy found here (the full split holds 124,800)" \
        in printed
    assert "about 0.0 hours of training" in printed
    assert run_script(run_all, "--dry-run", "--only", "emnist-letters") == 0
    assert "Scaled" not in capsys.readouterr().out


@pytest.fixture(scope="module")
def byclass_trained_run(folders, byclass_only):
    """A finished case-aware run around the hand-built head whose config.json says it trained on ByClass's letters
    from the byclass-only folder."""
    root, _, _ = folders
    run = finished_run(root / "byclass-runs", "exp_case_aware_resplit", "emnist-letters", marker_model(),
                       byclass_only, model_options={"subunits": 2})
    record = json.loads((run / "config.json").read_text())
    source = data.load_emnist_letters(split="train", data_dir=byclass_only).source
    (run / "config.json").write_text(json.dumps({**record, "data": source}))
    return run


def test_a_run_on_byclass_letters_is_case_checked_on_its_own_validation_letters(byclass_trained_run, capsys):
    results = byclass_trained_run.parent.parent / "byclass-results"
    assert case_check.check_run(byclass_trained_run, None, results) is not None
    record = json.loads((byclass_trained_run / case_check.RECORD_FILE).read_text())
    assert record["split"].startswith("validation letters") and record["images"] == 52  # a quarter of 208
    assert "(52 validation letters)" in capsys.readouterr().out


def test_the_report_on_byclass_letters_says_what_they_are(byclass_trained_run, capsys):
    root = byclass_trained_run.parent.parent
    results = root / "byclass-results"
    assert run_script(evaluate_test, "--runs-dir", str(byclass_trained_run.parent), "--results-dir",
                      str(results)) == 0
    report = (results / "RESULTS.md").read_text()
    assert "**The letters here are not the EMNIST Letters split.**" in report
    assert "No comparison with the published EMNIST Letters figures is drawn" in report
    assert "SpinalNet" not in report and "not comparable with them" not in report
    assert "its own validation letters for a run trained on ByClass's letters" in report


def test_balanced_accuracy_stands_beside_plain_accuracy_where_classes_are_unequal():
    from emnist_study import report
    from emnist_study.evaluation import RunResult, balanced_accuracy, classes_unequal

    true = np.array([0] * 8 + [1] * 2)  # a common letter, a rare one
    predicted = np.array([0] * 8 + [0, 1])
    assert balanced_accuracy(true, predicted) == 0.75 and classes_unequal(true)
    assert not classes_unequal(np.array([0, 0, 1, 1, 1]))
    run = RunResult(run="emnist_cnn", dataset="emnist-letters", network="CNN", params=1, epochs=1,
                    train_seconds=1.0, val_accuracy=0.9, predicted=predicted, true=true,
                    config={"script": "emnist_baseline.py", "model": "mnist_cnn"})
    rows = report.csv_rows({"emnist-letters": [run]})
    assert rows[0]["balanced_accuracy"] == 0.75 and rows[0]["test_accuracy"] == 0.9
    assert "| balanced accuracy |" in report.markdown_table(rows, balanced=True)
    assert "| 75.00% |" in report.markdown_table(rows, balanced=True)
    assert "balanced" not in report.markdown_table(rows)
    table = report.per_class_table(run)
    assert "; balanced accuracy, the mean of these: 75.00%, against 90.00% plain;" in table and "(of 2)" in table
