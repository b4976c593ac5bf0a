"""Tiny datasets written in the official file formats, so the tests exercise the real loaders offline."""

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from emnist_study.idx import encode_idx


def glyph_L() -> np.ndarray:
    """An upright 'L': a bar down the left and a foot along the bottom. Not symmetric under transposition."""
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 6:10] = 255   # vertical stroke, left
    img[20:24, 6:22] = 255  # horizontal foot, bottom
    return img


def class_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Upright images a small network can tell apart: a bright block whose position encodes the class, plus noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 6)
        images[i, 2 + row * 5: 6 + row * 5, 2 + col * 4: 5 + col * 4] = 255
    return images


def balanced_labels(num_classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels)


def write_mnist_npz(directory: Path, per_class_train: int = 30, per_class_test: int = 10) -> Path:
    y_train = balanced_labels(10, per_class_train, seed=1).astype(np.uint8)
    y_test = balanced_labels(10, per_class_test, seed=2).astype(np.uint8)
    path = Path(directory) / "mnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x_train=class_images(y_train, 1), y_train=y_train,
                        x_test=class_images(y_test, 2), y_test=y_test)
    return path


def write_mnist_idx(directory: Path, compress: bool, per_class: int = 5) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for prefix, seed in (("train", 1), ("t10k", 2)):
        labels = balanced_labels(10, per_class, seed).astype(np.uint8)
        (directory / f"{prefix}-images-idx3-ubyte{suffix}").write_bytes(encode_idx(class_images(labels, seed), compress))
        (directory / f"{prefix}-labels-idx1-ubyte{suffix}").write_bytes(encode_idx(labels, compress))


def emnist_arrays(split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """(images as the official files store them, i.e. transposed; labels 1..26). Image 0 is an upright 'L'."""
    labels0 = balanced_labels(26, per_class, seed=3 if split == "train" else 4)
    upright = class_images(labels0, seed=5 if split == "train" else 6)
    upright[0] = glyph_L()
    return upright.transpose(0, 2, 1).copy(), (labels0 + 1).astype(np.uint8)


def emnist_file_bytes(split: str, per_class: int) -> dict[str, bytes]:
    images, labels = emnist_arrays(split, per_class)
    return {f"emnist-letters-{split}-images-idx3-ubyte.gz": encode_idx(images, compress=True),
            f"emnist-letters-{split}-labels-idx1-ubyte.gz": encode_idx(labels, compress=True)}


def write_emnist_files(directory: Path, per_class_train: int = 12, per_class_test: int = 4) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        for name, raw in emnist_file_bytes(split, per_class).items():
            (directory / name).write_bytes(raw)


def write_emnist_zip(path: Path, per_class_train: int = 12, per_class_test: int = 4) -> str:
    """NIST's gzip.zip layout (gzip/emnist-letters-*.gz, plus another dataset's file); returns its md5."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split, per_class in (("train", per_class_train), ("test", per_class_test)):
            for name, raw in emnist_file_bytes(split, per_class).items():
                archive.writestr(f"gzip/{name}", raw)
        archive.writestr("gzip/emnist-digits-mapping.txt", "0 48\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return hashlib.md5(buffer.getvalue()).hexdigest()


def block_mask(label: int) -> np.ndarray:
    """Where `class_images` draws the bright block of `label`."""
    mask = np.zeros((28, 28), np.float32)
    row, col = divmod(int(label), 6)
    mask[2 + row * 5: 6 + row * 5, 2 + col * 4: 5 + col * 4] = 1.0
    return mask


def template_model(num_classes: int, answer_for: dict | None = None):
    """A Keras model that is right on every image `class_images` makes: each output sums the pixels of one
    class's block. `answer_for={true: wrong}` makes it answer `wrong` for every image of class `true` instead."""
    import keras

    answer_for = answer_for or {}
    kernel = np.zeros((784, num_classes), np.float32)
    for label in range(num_classes):
        kernel[:, answer_for.get(label, label)] += block_mask(label).reshape(-1)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(num_classes, activation="softmax")])
    model.layers[-1].set_weights([kernel * 10, np.zeros(num_classes, np.float32)])
    return model


def write_finished_run(runs_dir: Path, name: str, dataset: str, model, script: str = "") -> Path:
    """A run directory as a finished training run leaves it, around a given model; `script` says which script
    trained it (the report's roles: warmup_mnist_cnn.py makes it the dataset's baseline)."""
    import json

    run = Path(runs_dir) / name
    run.mkdir(parents=True)
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"config": {"dataset": dataset, "model": "template", "epochs": 1,
                                                            "select": "last_epoch", "script": script}}))
    (run / "summary.json").write_text(json.dumps({"status": "complete", "best_val_accuracy": 1.0,
                                                  "final_val_accuracy": 1.0, "train_seconds": 1.0,
                                                  "params": model.count_params()}))
    return run
