"""uint8 arrays in memory -> batched tf.data pipelines of float32 images in [0, 1] and one-hot labels.

Images stay uint8 until a batch is formed (EMNIST Letters as float32 would take 390 MB); scaling happens per
batch inside the graph, where it costs next to nothing.
"""

import numpy as np
import tensorflow as tf


def scale_images(images):
    """uint8 (batch, 28, 28) -> float32 (batch, 28, 28, 1) in [0, 1], as the Keras examples feed their models."""
    return tf.cast(images, tf.float32)[..., tf.newaxis] / 255.0


def scale_batch(images, labels, num_classes: int):
    return scale_images(images), tf.one_hot(labels, num_classes)


def make_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int, *,
                 shuffle: bool, seed: int | None = None) -> tf.data.Dataset:
    """A dataset of (images, one-hot labels) batches; shuffled anew each epoch when `shuffle`."""
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: scale_batch(x, y, num_classes), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def predict(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Class probabilities for uint8 images, batch by batch."""
    ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(scale_images)
    return model.predict(ds, verbose=0)
