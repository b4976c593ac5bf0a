"""uint8 arrays in memory -> batched tf.data pipelines of float32 images in [0, 1] and one-hot labels.

Images stay uint8 until a batch is formed (EMNIST Letters as float32 would take 390 MB); scaling happens per
batch inside the graph, where it costs next to nothing.
"""

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
import numpy as np
import tensorflow as tf

from . import interrupts
from .distortions import elastic_distort


class StopWhenInterrupted(keras.callbacks.Callback):
    """Stop at the next batch once Ctrl-C was pressed, even where Python swallowed the KeyboardInterrupt it raised
    (see interrupts.interrupted): training, validation and prediction all check."""

    def check(self, batch, logs=None):
        if interrupts.interrupted():
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_predict_batch_end = check


def scale_images(images):
    """uint8 (batch, 28, 28) -> float32 (batch, 28, 28, 1) in [0, 1], as the Keras examples feed their models."""
    return tf.cast(images, tf.float32)[..., tf.newaxis] / 255.0


def scale_batch(images, labels, num_classes: int):
    return scale_images(images), tf.one_hot(labels, num_classes)


def augmenter(spec: dict) -> list:
    """Random distortions that handwriting survives: small rotations, shifts, zoom and shear; never flips (a
    mirrored 'b' is a 'd'). What moves in from outside the image is blank, like the background. (The elastic
    distortion, which is no Keras layer, is applied in `distort`.)"""
    fill = dict(fill_mode="constant", fill_value=0.0)
    steps = []
    if spec.get("rotation_degrees"):
        steps.append(keras.layers.RandomRotation(spec["rotation_degrees"] / 360.0, **fill))
    if spec.get("shift"):
        steps.append(keras.layers.RandomTranslation(spec["shift"], spec["shift"], **fill))
    if spec.get("zoom"):
        steps.append(keras.layers.RandomZoom(spec["zoom"], **fill))
    if spec.get("shear"):
        steps.append(keras.layers.RandomShear(x_factor=spec["shear"], **fill))
    return steps


class BatchSeeds(keras.random.SeedGenerator):
    """The seeds of one batch's random draws: a new one for every draw, all fixed by the run's seed and the batch's
    number. So the distortions are the same in every run with that seed, a resumed run's included, and no two
    draws share their random numbers. (The Keras layers' own seed generators are variables that a parallel
    tf.data map advances in no fixed order, and layers built with one seed draw the same numbers: the rotation
    of every image would be tied to its zoom.)"""

    def __init__(self, seed: int, batch_index):  # no state variable: nothing for a tf.data map to race on
        self.seed, self.batch_index, self.draws = seed, tf.cast(batch_index, tf.int64), 0

    def next(self, ordered=True):
        self.draws += 1  # counted as the graph is traced, the same way every time
        return tf.stack([tf.constant(self.seed * 1000 + self.draws, tf.int64), self.batch_index])


def distort(images, augment: dict, layers: list, seeds: BatchSeeds):
    """(batch, 28, 28, 1) float images distorted as `augment` says: Simard's elastic distortion first, when it
    names one ({"alpha": 34, "sigma": 4}), then the Keras layers from `augmenter`, each drawing from `seeds`."""
    if augment.get("elastic"):
        noise = tf.random.stateless_uniform(tf.concat([tf.shape(images)[:3], [2]], axis=0),
                                            seed=seeds.next(), minval=-1.0, maxval=1.0)
        images = elastic_distort(images, noise, **augment["elastic"])
    for layer in layers:
        images = layer.transform_images(images, layer.get_random_transformation(images, seed=seeds), training=True)
    return images


def make_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int, *,
                 shuffle: bool, seed: int | None = None, augment: dict | None = None,
                 repeat: bool = False, paired_copies: bool = False, start_epoch: int = 0) -> tf.data.Dataset:
    """A dataset of (images, one-hot labels) batches; shuffled anew each epoch when `shuffle`, and randomly
    distorted, per batch inside the graph, when `augment` names distortions.

    `repeat` makes it endless (one epoch after another, each reshuffled), for `fit` with `steps_per_epoch`:
    Keras then keeps one iterator for the whole run. Given a fresh iterator every epoch, Keras 3 traces its
    training step again at the start of an epoch that follows a validation pass: on 2 CPU cores up to 12 s of a
    31 s mnist_cnn epoch (measured: docs/speed.md).

    `paired_copies` makes every batch two distorted copies of its images, one in each half, for the case-aware
    head's agreement term (models.SumSubunits).

    `start_epoch` (with `repeat`) begins with the batches of that epoch, for a resumed run: the batches of the
    epochs before are drawn and passed over (before any scaling or distortion, so it costs little), and the run
    continues with the very batches, distortions included, that an uninterrupted run would see."""
    if paired_copies and not augment:
        raise ValueError("paired copies need distortions (augment) to make the two copies differ")
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    first_batch = start_epoch * steps_per_epoch(len(labels), batch_size) if repeat else 0
    if repeat:
        ds = ds.repeat().skip(first_batch)
    ds = ds.map(lambda x, y: scale_batch(x, y, num_classes), num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        layers = augmenter(augment)

        def distort_batch(batch_index, batch):
            images, labels = batch
            if paired_copies:  # two copies of each image, distorted independently
                images, labels = tf.concat([images, images], axis=0), tf.concat([labels, labels], axis=0)
            return distort(images, augment, layers, BatchSeeds(seed or 0, batch_index)), labels

        ds = ds.enumerate(start=first_batch).map(distort_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Batches in one pass over `images` (the last one may be short)."""
    return -(-images // batch_size)


def predict(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Class probabilities for uint8 images, in batches of at most `batch_size`, all of one size: the last is
    padded with blank images, whose answers are dropped. A short last batch would make Keras trace the network a
    second time, which for a network predicting from distorted copies costs more than predicting itself."""
    count = len(images)
    batches = max(1, -(-count // batch_size))
    size = max(1, -(-count // batches))
    padding = np.zeros((batches * size - count, *images.shape[1:]), dtype=images.dtype)
    ds = tf.data.Dataset.from_tensor_slices(np.concatenate([images, padding]))
    ds = ds.batch(size, drop_remainder=True).map(scale_images)
    return model.predict(ds, verbose=0, callbacks=[StopWhenInterrupted()])[:count]


def training_batches(data, batch_size: int, config, start_epoch: int = 0):
    """(training batches, validation batches, steps per epoch) for `model.fit` on a run's TrainVal `data`: the
    training images shuffled by the run's seed (from `start_epoch` on, so a resumed run sees the batches it would
    have), distorted where config.augment says, repeated; the validation images in order."""
    train = make_dataset(data.x_train, data.y_train, data.num_classes, batch_size, shuffle=True, seed=config.seed,
                         augment=config.augment, repeat=True, paired_copies=config.paired_copies,
                         start_epoch=start_epoch)
    val = make_dataset(data.x_val, data.y_val, data.num_classes, batch_size, shuffle=False)
    return train, val, steps_per_epoch(len(data.y_train), batch_size)
