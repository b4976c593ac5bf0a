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
    config = {"script": script, "run_name": name, "dataset": dataset, "model": "template", "epochs": 1,
              "batch_size": 32, "select": "last_epoch"}
    (run / "config.json").write_text(json.dumps({"config": config}))
    (run / "summary.json").write_text(json.dumps({"status": "complete", "best_val_accuracy": 1.0,
                                                  "final_val_accuracy": 1.0, "train_seconds": 1.0,
                                                  "params": model.count_params(), "val_images": 6000}))
    return run


# --- EMNIST Letters in the other formats students have it in (emnist_study/formats.py reads them) -------------

def emnist_csv_text(split: str, per_class: int, header: bool = False) -> str:
    """Kaggle's CSV of a split: a row per image, the label (1..26) then its 784 pixels in the order the IDX files
    store them (transposed); no header row, unless `header` (as some copies have)."""
    images, labels = emnist_arrays(split, per_class)
    rows = [",".join(map(str, [label, *image.reshape(-1)])) for image, label in zip(images, labels)]
    head = ["label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))] if header else []
    return "\n".join(head + rows) + "\n"


def write_emnist_csv(directory: Path, per_class_train: int = 12, per_class_test: int = 4,
                     zipped: str | None = None, header: bool = False) -> Path:
    """Kaggle's emnist-letters-{train,test}.csv in `directory`; with `zipped`, inside a zip of that name instead
    (Kaggle's download is one: emnist.zip from its command line, archive.zip from the browser). Returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    texts = {f"emnist-letters-{split}.csv": emnist_csv_text(split, per_class, header)
             for split, per_class in (("train", per_class_train), ("test", per_class_test))}
    if zipped:
        with zipfile.ZipFile(directory / zipped, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in texts.items():
                archive.writestr(name, text)
            archive.writestr("emnist-letters-mapping.txt", "1 65 97\n")
        return directory / zipped
    for name, text in texts.items():
        (directory / name).write_text(text)
    return directory


def emnist_mat_bytes(per_class_train: int = 12, per_class_test: int = 4, labels_dtype=np.float64) -> bytes:
    """NIST's emnist-letters.mat: a struct `dataset` with `train` and `test` (each `images`, N x 784 uint8 in the
    IDX files' order, and `labels`, N x 1) and `mapping`."""
    import scipy.io

    dataset = {}
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        images, labels = emnist_arrays(split, per_class)
        dataset[split] = {"images": images.reshape(len(images), -1),
                          "labels": labels.reshape(-1, 1).astype(labels_dtype),
                          "writers": np.zeros((len(labels), 1), np.uint16)}
    dataset["mapping"] = np.array([[i, 64 + i, 96 + i] for i in range(1, 27)])
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"dataset": dataset}, do_compression=True)
    return buffer.getvalue()


def write_emnist_mat(directory: Path, per_class_train: int = 12, per_class_test: int = 4, in_zip: bool = False,
                     labels_dtype=np.float64) -> Path:
    """emnist-letters.mat in `directory`, or (`in_zip`) NIST's matlab.zip holding matlab/emnist-letters.mat."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    raw = emnist_mat_bytes(per_class_train, per_class_test, labels_dtype)
    if in_zip:
        with zipfile.ZipFile(directory / "matlab.zip", "w") as archive:
            archive.writestr("matlab/emnist-letters.mat", raw)
            archive.writestr("matlab/emnist-digits.mat", b"not read")
        return directory / "matlab.zip"
    (directory / "emnist-letters.mat").write_bytes(raw)
    return directory / "emnist-letters.mat"


def write_emnist_tfds(root: Path, per_class_train: int = 12, per_class_test: int = 4, train_shards: int = 2,
                      config: str = "letters", version: str = "3.0.0") -> Path:
    """The folder `tfds.load("emnist/letters", data_dir=root)` prepares, <root>/emnist/<config>/<version>/:
    dataset_info.json, features.json and the shards emnist-{train,test}.tfrecord-NNNNN-of-NNNNN of tf.train.Example
    records ("image": a PNG of the image as the IDX files store it, 28x28x1; "label": 1..26 as stored). Returns it."""
    import json

    import tensorflow as tf

    folder = Path(root) / "emnist" / config / version
    folder.mkdir(parents=True, exist_ok=True)
    splits = []
    for split, per_class, count in (("train", per_class_train, train_shards), ("test", per_class_test, 1)):
        images, labels = emnist_arrays(split, per_class)
        lengths = []
        for shard, indices in enumerate(np.array_split(np.arange(len(labels)), count)):
            with tf.io.TFRecordWriter(str(folder / f"emnist-{split}.tfrecord-{shard:05d}-of-{count:05d}")) as out:
                for i in indices:
                    png = tf.io.encode_png(images[i][..., None]).numpy()
                    example = tf.train.Example(features=tf.train.Features(feature={
                        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(labels[i])]))}))
                    out.write(example.SerializeToString())
            lengths.append(str(len(indices)))
        splits.append({"name": split, "shardLengths": lengths, "numBytes": "0"})
    info = {"name": "emnist", "configName": config, "version": version, "splits": splits,
            "supervisedKeys": {"tuple": {"items": [{"featureKey": "image"}, {"featureKey": "label"}]}},
            "moduleName": "tensorflow_datasets.image_classification.mnist"}
    features = {"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict",
                "featuresDict": {"features": {
                    "image": {"pythonClassName": "tensorflow_datasets.core.features.image_feature.Image",
                              "image": {"shape": {"dimensions": ["28", "28", "1"]}, "dtype": "uint8"}},
                    "label": {"pythonClassName": "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
                              "classLabel": {"numClasses": "37"}}}}}
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2))
    (folder / "features.json").write_text(json.dumps(features, indent=2))
    return folder
