"""Judging runs on a test set: cached predictions, Wilson confidence intervals, the exact McNemar test.

Predictions are cached under results/cache/, keyed by the sha256 of the model file and of the test data, so
evaluating again is instant and a retrained model (a new file) is evaluated anew.
"""

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from . import models, pipeline, recipes, run_folder
from .download import file_digest
from .errors import UserError
from .run_folder import atomic_write, read_json, read_run_config, read_summary

# What each run is, from its config (role_of): the part of the study it answers. report.py's questions ask for
# roles, not run names, so quick runs and other seeds count too.
# The role each dataset's runs are compared with (McNemar): the Keras CNN, as the warm-up and baseline train it.
BASELINE_ROLES = {"mnist": "keras_cnn", "emnist-letters": "letters_cnn"}


def role_of(config: dict) -> str:
    script, model = config.get("script", ""), config.get("model", "")
    if script == "warmup_mnist_mlp.py":
        return "keras_mlp"
    if script == "warmup_mnist_cnn.py":
        if model == "keras2015_cnn":
            return "keras2015_cnn"
        return "keras_cnn_eps1e-6" if config.get("optimizer", {}).get("epsilon") == 1e-6 else "keras_cnn"
    if script == "nielsen_cnn.py":
        return "nielsen_vote" if config.get("ensemble", 1) > 1 else "nielsen"
    if script == "emnist_baseline.py":
        return "letters_cnn" if model == "mnist_cnn" else "letters_mlp"
    return "experiment" if script == "emnist_experiments.py" else "other"


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for an accuracy of correct/total."""
    interval = binomtest(correct, total).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def mcnemar_exact(right_a: np.ndarray, right_b: np.ndarray) -> tuple[int, int, float]:
    """Exact McNemar test on the same test images: (a right where b is wrong, b right where a is wrong, p-value).

    Only the images the two models disagree on count; under "no real difference" each such image is a fair coin.
    """
    a_only = int(np.sum(right_a & ~right_b))
    b_only = int(np.sum(~right_a & right_b))
    p_value = 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return a_only, b_only, p_value


def per_class_accuracy(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(true, minlength=num_classes)
    right = np.bincount(true[predicted == true], minlength=num_classes)
    return np.divide(right, counts, out=np.full(num_classes, np.nan), where=counts > 0)


def balanced_accuracy(true: np.ndarray, predicted: np.ndarray) -> float:
    """The mean of the per-class accuracies (scikit-learn's balanced accuracy): where classes are unequal, a
    network that neglects the rare ones scores lower here than in plain accuracy."""
    from sklearn.metrics import balanced_accuracy_score  # here: scikit-learn takes a second to import

    return float(balanced_accuracy_score(true, predicted))


def classes_unequal(labels: np.ndarray) -> bool:
    """Whether a test set's classes hold different numbers of images (EMNIST ByClass's letters do; MNIST's digits
    differ by a little, which the report leaves alone: under 1.5x between the largest and the smallest)."""
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    return bool(len(counts)) and counts.max() > 1.5 * counts.min()


def letters_of_cased(probabilities: np.ndarray) -> np.ndarray:
    """The letter (0..25) a network on ByClass's 52 letter classes (A..Z, then a..z) reads, its case merged: the
    letter whose capital and small letter together are the most probable."""
    half = probabilities.shape[1] // 2
    return (probabilities[:, :half] + probabilities[:, half:]).argmax(axis=1)


def test_data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


def cached_probabilities(model_path: Path, images: np.ndarray, labels: np.ndarray, cache_dir: Path) -> np.ndarray:
    """The model's class probabilities on these images, from the cache when this exact model saw this exact
    data before. Each cache file records the checksums of the model and the data it came from and of its own
    probabilities: one that cannot be read, was damaged or replaced, or came from another model or other data is
    computed again, saying so."""
    if not Path(model_path).is_file():
        raise UserError(f"{model_path} is missing; train the run again with --overwrite")
    model_sha, data_sha = file_digest(model_path), test_data_fingerprint(images, labels)
    path = Path(cache_dir) / f"{model_sha[:20]}-{data_sha[:12]}.npz"
    if path.is_file():
        cached, why = read_cache(path, model_sha, data_sha, len(images))
        if cached is not None:
            return cached
        print(f"The cached predictions {path} {why}; predicting again")
    probabilities = pipeline.predict(models.load(model_path), images)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"model_sha256": model_sha, "data_sha256": data_sha, "sha256": probabilities_digest(probabilities)}
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, probabilities=probabilities, record=np.array(json.dumps(record)))
    return probabilities


def probabilities_digest(probabilities: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(probabilities, dtype=np.float32).tobytes()
                          + str(probabilities.shape).encode()).hexdigest()


def read_cache(path: Path, model_sha: str, data_sha: str, images: int) -> tuple[np.ndarray | None, str]:
    """(the probabilities the cache file at `path` holds, "") where they stand for this model's predictions on this
    data; (None, why not) otherwise."""
    try:
        with np.load(path, allow_pickle=False) as cached:
            record, probabilities = json.loads(str(cached["record"])), cached["probabilities"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        return None, f"are unreadable ({type(exc).__name__}: {exc})"
    if not isinstance(record, dict) or (record.get("model_sha256"), record.get("data_sha256")) != (model_sha, data_sha):
        return None, "came from another model or other data"
    if probabilities.ndim != 2 or len(probabilities) != images or record.get("sha256") != probabilities_digest(
            probabilities):
        return None, "were damaged (their checksum differs)"
    return probabilities, ""


@dataclass
class RunResult:
    """One run judged on its test set."""

    run: str
    dataset: str
    network: str  # in words (recipes.network_name)
    params: int
    epochs: int
    train_seconds: float
    val_accuracy: float  # of the model evaluated (the last epoch's, or the best epoch's where it was kept)
    predicted: np.ndarray
    true: np.ndarray
    val_images: int = 0  # how many validation images val_accuracy was measured on (0: not known)
    config: dict = field(default_factory=dict)  # the run's config.json "config"
    subunits: dict | None = None  # the run's subunits.json, for a case-aware head that has one
    case_check: dict | None = None  # its case_check.json: the sub-units against ByClass's case labels (letters)
    test_source: dict = field(default_factory=dict)  # the record of the test set it was judged on (data.py)
    # a network on ByClass's 52 letter classes: its letters (0..25), each letter's two cases' probabilities summed
    letters_predicted: np.ndarray | None = None
    # the files it trained on that changed after it trained, where evaluate_test.py was told to judge it anyway
    data_changed: list = field(default_factory=list)

    @property
    def role(self) -> str:
        return role_of(self.config)

    @property
    def right(self) -> np.ndarray:
        return self.predicted == self.true

    @property
    def errors(self) -> int:
        return int((~self.right).sum())

    @property
    def test_accuracy(self) -> float:
        return float(self.right.mean())

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(int(self.right.sum()), len(self.true))

    @property
    def balanced_accuracy(self) -> float:
        return balanced_accuracy(self.true, self.predicted)


def run_facts(run_dir: Path) -> dict:
    """What a run is, from its files: the network in words (recipes.network_name), parameters, epochs, timing, its
    config, and the size of its validation set."""
    config = read_run_config(run_dir)
    summary = read_summary(run_dir)
    # The validation accuracy of the model that is evaluated: the best epoch's when model.keras holds it, and with
    # its distorted copies where it predicts from them.
    selected_best = config.get("select") == "best_val"
    val_accuracy = summary.get("val_accuracy_with_views") or (
        summary["best_val_accuracy"] if selected_best else summary["final_val_accuracy"])
    units_path, case_path = Path(run_dir) / run_folder.SUBUNITS, Path(run_dir) / run_folder.CASE_CHECK
    return {"dataset": config["dataset"], "network": recipes.network_name(config), "params": summary["params"],
            "epochs": config["epochs"], "train_seconds": summary["train_seconds"], "val_accuracy": val_accuracy,
            "val_images": summary["val_images"], "config": config,
            "subunits": read_json(units_path) if units_path.is_file() else None,
            "case_check": read_json(case_path) if case_path.is_file() else None}
