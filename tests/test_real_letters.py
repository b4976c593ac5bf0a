"""Real handwriting: EMNIST ByClass's letters (../shared/data/emnist-byclass-letters, 58,405 letters of ByClass's
test file re-split into a train and a test part) read as the letters steps read them where no EMNIST Letters copy
is found. Each test skips, saying what it needs, where the real files are not there."""

from dataclasses import replace

import numpy as np
import pytest

import emnist_baseline
from emnist_study import byclass, data, idx, recipes
from emnist_study.run_folder import read_summary
from emnist_study.run import Run

PARTS = {"train": 43_805, "test": 14_600}  # ../shared/data/SOURCES.md


# MNIST's border pixels are blank in every image: nearest centroids need no spread there
@pytest.mark.filterwarnings("ignore:self.within_class_std_dev_ has at least 1 zero:UserWarning")
def test_the_letters_come_upright_as_a_classifier_of_upright_real_mnist_reads_them(real_mnist, real_byclass_letters):
    """Not circular: MNIST's files are upright as stored (no turn in its loader), so a classifier trained on them
    reads an upright stroke. It calls upright `I`/`i` and `L`/`l` (a vertical stroke) a 1 far more often than the
    same images transposed (a horizontal one), and `Z`/`z` a 2."""
    from sklearn.neighbors import NearestCentroid

    digits = data.load_mnist(split="train", data_dir=real_mnist)
    reader = NearestCentroid().fit(digits.images.reshape(len(digits.images), -1) / 255.0, digits.labels)
    letters = data.load_emnist_letters(split="test", data_dir=real_byclass_letters)

    def read_as(images: np.ndarray, digit: int) -> float:
        return float((reader.predict(images.reshape(len(images), -1) / 255.0) == digit).mean())

    for letter, digit, upright_at_least, transposed_at_most in (("i", 1, 0.5, 0.1), ("l", 1, 0.5, 0.1),
                                                                ("z", 2, 0.3, 0.25)):
        images = letters.images[letters.labels == data.LETTERS.index(f"{letter.upper()}/{letter}")]
        upright, transposed = read_as(images, digit), read_as(images.transpose(0, 2, 1), digit)
        assert upright >= upright_at_least and transposed <= transposed_at_most, (letter, upright, transposed)
        assert upright > 1.5 * transposed


def mapping(folder) -> dict[int, str]:
    """NIST's emnist-byclass-mapping.txt: "label ASCII-code" a line."""
    lines = (folder / "emnist-byclass-mapping.txt").read_text().split("\n")
    return {int(label): chr(int(code)) for label, code in (line.split() for line in lines if line.strip())}


@pytest.mark.parametrize("split", ["train", "test"])
def test_merged_labels_and_cases_agree_with_byclass_mapping_file(real_byclass_letters, split):
    characters = mapping(real_byclass_letters)
    assert len(characters) == 62 and characters[10] == "A" and characters[36] == "a"
    stored = idx.read_idx(real_byclass_letters / f"emnist-byclass-{split}-labels-idx1-ubyte.gz", 1)
    letters = data.load_emnist_letters(split=split, data_dir=real_byclass_letters)
    assert len(letters.labels) == PARTS[split] == int((stored >= byclass.FIRST_CAPITAL).sum())
    cases = letters.fine_labels // 26
    assert np.array_equal(letters.fine_labels % 26, letters.labels)
    read = np.array([characters[label] for label in stored[stored >= byclass.FIRST_CAPITAL]])
    merged = np.array([data.LETTERS[label][0] for label in letters.labels])  # "A" of "A/a"
    assert np.array_equal(np.char.upper(read), merged)
    assert np.array_equal(np.char.islower(read), cases == 1)
    source = letters.source
    assert source["derived_from"] == "EMNIST ByClass" and source["release"] == "byclass"
    assert sum(source["images_per_class"].values()) == PARTS[split]
    assert source["capitals"] + source["small_letters"] == PARTS[split]


def test_a_short_training_on_real_letters_learns(real_byclass_letters, tmp_path):
    """One epoch of the warm-up MLP on 4,000 real letters (10% validating): far above the 1 in 26 of guessing and
    the 8% of always answering the commonest letter."""
    config = replace(recipes.LETTERS_BASELINES["mlp"], epochs=1, limit_images=4_000,
                     data_dir=[str(real_byclass_letters)], runs_dir=str(tmp_path / "runs"),
                     logs_dir=str(tmp_path / "logs"))
    emnist_baseline.train(Run(config), data.load_training_data(config), "mlp")
    summary = read_summary(tmp_path / "runs" / config.run_name)
    assert summary["best_val_accuracy"] > 0.5, summary


def test_the_plan_counts_the_real_letters_found(real_byclass_letters):
    assert data.training_split_size("emnist-letters", real_byclass_letters) == PARTS["train"]
