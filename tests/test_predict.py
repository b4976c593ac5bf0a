"""predict.py and the conversion behind it (emnist_study/handwriting.py): a letter photographed on a page comes back
as its 28x28 image, a word splits into its letters left to right, the CSV has its columns, and each kind of bad
input is one line and a non-zero exit.

The round trip's tolerance, for a letter drawn on a page as pages.photographed draws it (100-300 pixels tall, off
centre, uneven light, blur, grain) and converted back: a correlation of at least ROUND_TRIP_CORRELATION with the
original 28x28 image in the median, and no page below LEAST_CORRELATION; a mean absolute difference of at most
ROUND_TRIP_DIFFERENCE (of 255) in the median."""

import csv

import numpy as np
import pytest
from PIL import Image

import predict
import predict_fidelity
import rendered_letters
import synthetic
from emnist_study import data, handwriting, pages
from helpers import run_script_capturing

ROUND_TRIP_CORRELATION = 0.93
LEAST_CORRELATION = 0.6
ROUND_TRIP_DIFFERENCE = 16.0
COLUMNS = ["image", "index", "letter", "probability", "second", "second_probability", "third", "third_probability"]


FONT = next(font for font in rendered_letters.FONTS if font.name == "DejaVuSans.ttf")


def rendered(chars: str, font=FONT) -> np.ndarray:
    """EMNIST-like 28x28 images (upright, light on black) of `chars`, in one font (a pen's strokes: not bold)."""
    return np.stack([rendered_letters.render(c, font) for c in chars])


def page_file(tmp_path, images: np.ndarray, name: str, seed: int = 0, **how) -> str:
    return str(pages.save(pages.photographed(images, np.random.default_rng(seed), **how), tmp_path / name))


def converted(path: str) -> list[np.ndarray]:
    return [letter.image for letter in handwriting.letters_of_page(handwriting.read_page(path), path)]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


def assert_round_trip(originals: np.ndarray, tmp_path):
    correlations, differences = [], []
    for i, original in enumerate(originals):
        suffix = ".jpg" if i % 2 else ".png"
        found = converted(page_file(tmp_path, original[None], f"page-{i}{suffix}", seed=i,
                                    light_on_dark=i % 5 == 4))
        assert len(found) == 1, f"page {i}: {len(found)} letters found"
        correlations.append(correlation(found[0], original))
        differences.append(np.abs(found[0].astype(np.float64) - original).mean())
    assert np.median(correlations) >= ROUND_TRIP_CORRELATION, correlations
    assert min(correlations) >= LEAST_CORRELATION, correlations
    assert np.median(differences) <= ROUND_TRIP_DIFFERENCE, differences


def test_a_rendered_letter_photographed_comes_back_as_its_28x28_image(tmp_path):
    assert_round_trip(rendered("aBcDeFgHkMnRsTwZ"), tmp_path)


def test_a_real_handwritten_letter_photographed_comes_back_as_its_28x28_image(real_byclass_letters, tmp_path):
    test = data.load_emnist_letters(split="test", data_dir=real_byclass_letters)
    chosen = np.random.default_rng(3).choice(len(test.labels), 30, replace=False)
    assert_round_trip(test.images[chosen], tmp_path)


def test_a_word_splits_into_its_letters_left_to_right(tmp_path):
    word = rendered("hmbwe")
    found = converted(page_file(tmp_path, word, "word.png", seed=7))
    assert len(found) == len(word)
    for place, image in enumerate(found):  # each letter found is most like the letter at its place
        assert np.argmax([correlation(image, original) for original in word]) == place


def test_the_dots_of_i_and_j_stay_with_their_letters(tmp_path):
    word = rendered("ijij")
    found = converted(page_file(tmp_path, word, "dots.png", seed=2))
    assert len(found) == 4
    for original, image in zip(word, found):
        assert correlation(image, original) > 0.85


def test_a_broken_stroke_stays_with_its_letter(tmp_path):
    letter = rendered("T")
    letter[0, 14:17, :] = 0  # the stem cut through just below the bar: two pieces, one letter
    assert len(converted(page_file(tmp_path, letter, "broken.png", seed=4))) == 1


def test_specks_and_a_far_dot_are_not_letters():
    boxes = [(slice(0, 100), slice(0, 40)), (slice(0, 15), slice(50, 62)),  # a letter; a dot beside its top
             (slice(0, 100), slice(200, 240)), (slice(90, 95), slice(400, 405))]  # a letter; a speck far away
    assert sorted(map(sorted, handwriting.join_pieces(boxes, 100.0))) == [[0, 1], [2]]


@pytest.fixture
def letters_run(tmp_path):
    """A complete run on EMNIST Letters' 26 classes, around a small network (what it reads matters not here)."""
    return synthetic.write_finished_run(tmp_path / "runs", "letters", "emnist-letters", synthetic.template_model(26))


def test_predict_prints_the_letters_and_writes_the_csv_and_the_figure(letters_run, tmp_path, capsys):
    word = page_file(tmp_path, rendered("cab"), "word.jpg")
    letter = page_file(tmp_path, rendered("x"), "letter.png", light_on_dark=True)
    table = tmp_path / "out" / "read.csv"
    code, err = run_script_capturing(predict, str(letters_run), word, letter, "--csv", str(table), "--no-show")
    assert code == 0, err
    out = capsys.readouterr().out
    assert f"{word}: 3 letters read" in out and f"{letter}: 1 letter read" in out
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS
    assert [(row["image"], row["index"]) for row in rows] == [(word, "0"), (word, "1"), (word, "2"), (letter, "0")]
    for row in rows:
        assert {row["letter"], row["second"], row["third"]} <= set(data.LETTERS)
        assert 1 >= float(row["probability"]) >= float(row["second_probability"]) >= float(row["third_probability"])
    assert (tmp_path / "out" / "read.png").is_file()  # beside the CSV


def test_a_run_on_mnist_reads_digits_and_is_found_by_name_under_runs_dir(tmp_path):
    synthetic.write_finished_run(tmp_path / "runs", "digits", "mnist", synthetic.template_model(10))
    page = page_file(tmp_path, rendered("7"), "seven.png")
    code, err = run_script_capturing(predict, "digits", page, "--runs-dir", str(tmp_path / "runs"),
                                     "--csv", str(tmp_path / "read.csv"))
    assert code == 0, err
    with open(tmp_path / "read.csv", newline="") as f:
        assert next(csv.DictReader(f))["letter"] in data.DIGITS


def test_a_case_aware_run_says_which_sub_unit_won(tmp_path, capsys):
    import keras

    from emnist_study import subunits

    plain = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(26, "softmax")])
    model = subunits.with_case_aware_head(plain, 2)
    run = synthetic.write_finished_run(tmp_path / "runs", "cased", "emnist-letters", model)
    config = run / "config.json"
    config.write_text(config.read_text().replace('"model": "template"',
                                                 '"model": "template", "model_options": {"subunits": 2}'))
    code, err = run_script_capturing(predict, str(run), page_file(tmp_path, rendered("a"), "a.png"),
                                     "--csv", str(tmp_path / "read.csv"))
    assert code == 0, err
    assert "sub-unit" in capsys.readouterr().out
    with open(tmp_path / "read.csv", newline="") as f:
        assert next(csv.DictReader(f))["subunit"] in ("1", "2")


def one_line_error(run, *argv) -> str:
    code, err = run_script_capturing(predict, str(run), *argv)
    assert code == 1 and err.count("\n") == 1, err
    return err


def test_bad_images_are_one_line_each(letters_run, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    assert "is not an image" in one_line_error(letters_run, str(text))
    whole = tmp_path / "whole.png"
    Image.fromarray(pages.photographed(rendered("a"), np.random.default_rng(0)).image).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    assert "damaged or cut short" in one_line_error(letters_run, str(cut))
    assert "does not exist" in one_line_error(letters_run, str(tmp_path / "missing.jpg"))
    for shade, value in (("blank", 255), ("all black", 0)):
        path = tmp_path / f"{shade}.png"
        Image.fromarray(np.full((300, 400), value, np.uint8)).save(path)
        assert f"is {shade}" in one_line_error(letters_run, str(path))
    specks = np.full((300, 400), 230, np.uint8)
    for row, column in np.random.default_rng(0).integers(0, 298, size=(300, 2)):
        specks[row: row + 2, column: column + 2] = 40  # dust, nothing written
    path = tmp_path / "specks.png"
    Image.fromarray(specks).save(path)
    assert "no character found" in one_line_error(letters_run, str(path))


def test_a_run_that_does_not_exist_or_is_not_complete_is_one_line(letters_run, tmp_path):
    page = page_file(tmp_path, rendered("a"), "a.png")
    assert "no run" in one_line_error(tmp_path / "runs" / "nothing", page)
    summary = letters_run / "summary.json"
    summary.write_text(summary.read_text().replace('"complete"', '"interrupted"'))
    assert "has not finished" in one_line_error(letters_run, page)


def test_the_fidelity_measurement_runs_end_to_end(tmp_path, capsys):
    """predict_fidelity.py on a few rendered letters: it reads them through predict.py and reports."""
    folder = rendered_letters.write_loose(tmp_path / "letters", rendered_letters.official_files({"train": 1,
                                                                                                 "test": 2}))
    run = synthetic.write_finished_run(tmp_path / "runs", "letters", "emnist-letters", synthetic.template_model(26))
    code, err = run_script_capturing(predict_fidelity, str(run), "--data-dir", str(folder), "--letters", "4",
                                     "--words", "1", "--pages-dir", str(tmp_path / "pages"),
                                     "--results-dir", str(tmp_path / "results"))
    assert code == 0, err
    import json

    result = json.loads((tmp_path / "results" / "predict_fidelity.json").read_text())
    assert result["single_letters"] == 4 and result["words"] == 1
    assert 0 <= result["single_agreement"] <= 1 and 0 <= result["word_letter_agreement"] <= 1


def test_the_calibration_sweeps_the_constants_on_the_train_part_and_puts_them_back(tmp_path, capsys):
    """predict_fidelity.py --calibrate: each of the 15 settings' round trip on a few rendered letters of the train
    part; the conversion's constants are as they were afterwards."""
    folder = rendered_letters.write_loose(tmp_path / "letters", rendered_letters.official_files({"train": 1,
                                                                                                 "test": 1}))
    run = synthetic.write_finished_run(tmp_path / "runs", "letters", "emnist-letters", synthetic.template_model(26))
    constants = (handwriting.NIST_STROKE_PIXELS, handwriting.EMNIST_EDGE_BLUR)
    code, err = run_script_capturing(predict_fidelity, str(run), "--data-dir", str(folder), "--calibrate", "5",
                                     "--results-dir", str(tmp_path / "results"))
    assert code == 0, err
    assert (handwriting.NIST_STROKE_PIXELS, handwriting.EMNIST_EDGE_BLUR) == constants
    import json

    result = json.loads((tmp_path / "results" / "predict_calibration.json").read_text())
    assert result["letters"] == 5 and len(result["settings"]) == 15
    assert all(0.5 < row["correlation_median"] <= 1 for row in result["settings"])
    assert 0 < result["emnist_edge_blur_median"] < 3


def test_a_phone_photo_stands_as_its_exif_orientation_says(tmp_path):
    """A phone stores a portrait photo on its side with an EXIF orientation tag (6: turn it 90 degrees clockwise to
    view): the letter is read upright."""
    letter = rendered("L")
    upright = Image.fromarray(pages.photographed(letter, np.random.default_rng(1)).image)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.jpg", exif=exif)
    [found] = converted(str(tmp_path / "sideways.jpg"))
    assert correlation(found, letter[0]) > 0.9


def test_a_16_bit_scan_reads_as_an_8_bit_one(tmp_path):
    page = pages.photographed(rendered("e"), np.random.default_rng(2)).image
    Image.fromarray(page.astype(np.uint16) * 257).save(tmp_path / "scan16.png")
    Image.fromarray(page).save(tmp_path / "scan8.png")
    [deep], [shallow] = converted(str(tmp_path / "scan16.png")), converted(str(tmp_path / "scan8.png"))
    assert np.abs(deep.astype(int) - shallow).max() <= 2
