"""What the case-aware head's sub-units learned: which unit each image lights up, and how well those units
line up with a hidden label the network never saw (the digit behind a merged MNIST class; upper vs lower case)."""

from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from . import figures, models, pipeline
from .data import TrainVal
from .runs import write_json_atomic


def subunit_probabilities(model, images: np.ndarray) -> np.ndarray:
    """(N, classes * k) sub-unit probabilities of a network with the case-aware head."""
    return pipeline.predict(models.subunit_model(model), images)


def class_probabilities(subunit_probs: np.ndarray, subunits: int) -> np.ndarray:
    """(N, classes) class probabilities: each class's sub-unit probabilities summed, as the head's output layer does."""
    return subunit_probs.reshape(len(subunit_probs), -1, subunits).sum(axis=2)


def purity(units: np.ndarray, hidden: np.ndarray) -> float:
    """The share of images whose unit's most common hidden label is their own (1.0: each unit one label)."""
    total = 0
    for unit in np.unique(units):
        total += np.bincount(hidden[units == unit]).max()
    return total / len(units)


def recovery(subunit_probs: np.ndarray, hidden: np.ndarray) -> dict:
    """Purity and normalised mutual information of each image's most active sub-unit against the hidden label."""
    units = subunit_probs.argmax(axis=1)
    return {"purity": round(float(purity(units, hidden)), 4),
            "nmi": round(float(normalized_mutual_info_score(hidden, units)), 4),
            "units_used": int(len(np.unique(units))), "images": int(len(units))}


def most_confident_images(subunit_probs: np.ndarray, labels: np.ndarray, subunits: int, per_unit: int):
    """For each class and each of its sub-units, the indices of the class's images that unit is most sure of."""
    num_classes = subunit_probs.shape[1] // subunits
    chosen = {}
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        for j in range(subunits):
            order = np.argsort(-subunit_probs[members, c * subunits + j], kind="stable")
            chosen[(c, j)] = members[order[:per_unit]]
    return chosen


def describe(probs: np.ndarray, dataset: TrainVal, run_dir: Path, subunits: int, results_dir: Path,
             show: bool = False) -> Path:
    """Draw, for each class, the validation images each sub-unit is most sure of (results/<run>_subunits.png),
    from the sub-unit probabilities of the validation images; where the hidden label is known (merged MNIST), also
    score the sub-units against it (<run>/subunits.json)."""
    per_unit = 8
    chosen = most_confident_images(probs, dataset.y_val, subunits, per_unit)
    title = f"{run_dir.name}: the validation images each sub-unit is most sure of"
    if dataset.fine_val is not None:
        scores = recovery(probs, dataset.fine_val)
        write_json_atomic(run_dir / "subunits.json", {"hidden_label": "digit", "split": "validation", **scores})
        title += f" (purity {scores['purity']:.3f}, NMI {scores['nmi']:.3f} against the hidden digit)"
        print(f"Sub-units against the hidden digits: purity {scores['purity']:.4f}, NMI {scores['nmi']:.4f}")
    return figures.save(figures.plot_subunits(dataset.x_val, chosen, dataset.class_names, subunits, per_unit, title),
                        results_dir / f"{run_dir.name}_subunits.png", show=show)
