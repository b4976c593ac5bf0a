"""Judging runs on a test set: cached predictions, Wilson confidence intervals, the exact McNemar test.

Predictions are cached under results/cache/, keyed by the sha256 of the model file and of the test data, so
evaluating again is instant and a retrained model (a new file) is evaluated anew.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from . import models, pipeline
from .download import file_digest
from .runs import read_json

# The run each dataset's others are compared with (McNemar): the Keras CNN, as the warm-up and baseline train it.
BASELINE_RUNS = {"mnist": "mnist_cnn", "emnist-letters": "emnist_cnn"}


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


def test_data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


def cached_probabilities(model_path: Path, images: np.ndarray, labels: np.ndarray, cache_dir: Path) -> np.ndarray:
    """The model's class probabilities on these images, from the cache when this exact model saw this exact
    data before."""
    key = f"{file_digest(model_path)[:20]}-{test_data_fingerprint(images, labels)[:12]}"
    path = Path(cache_dir) / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    probabilities = pipeline.predict(models.load(model_path), images)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.npy")
    np.save(tmp, probabilities)
    tmp.replace(path)
    return probabilities


@dataclass
class RunResult:
    """One run judged on its test set."""

    run: str
    dataset: str
    model: str
    params: int
    epochs: int
    train_seconds: float
    val_accuracy: float  # of the model evaluated (the last epoch's, or the best epoch's where it was kept)
    predicted: np.ndarray
    true: np.ndarray

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


def describe_run(run_dir: Path) -> dict:
    """What a run is, from its files: model name (with the ensemble size), parameters, epochs, timing."""
    config = read_json(run_dir / "config.json")["config"]
    summary = read_json(run_dir / "summary.json")
    combine = config.get("ensemble_combine", "vote")
    model = config["model"] + (f" x{config['ensemble']} {combine}" if config.get("ensemble", 1) > 1 else "")
    model += f" + {config['test_time_views']} views" if config.get("test_time_views") else ""
    params = summary.get("params") or models.load(run_dir / "model.keras").count_params()  # older runs lack it
    # The validation accuracy of the model that is evaluated: the best epoch's when model.keras holds it, and with
    # its distorted copies where it predicts from them.
    selected_best = config.get("select") == "best_val"
    val_accuracy = summary.get("val_accuracy_with_views") or (
        summary["best_val_accuracy"] if selected_best else summary["final_val_accuracy"])
    return {"dataset": config["dataset"], "model": model, "params": params, "epochs": config["epochs"],
            "train_seconds": summary.get("train_seconds"), "val_accuracy": val_accuracy}
