"""Distortions of handwriting in backend-independent keras.ops: Simard, Steinkraus & Platt's (2003) elastic one,
and the affine ones drawn the same at every call, for predicting from distorted copies of an image.

Each image gets its own random displacement field: uniform noise in [-1, 1] for every pixel, smoothed by a
Gaussian of width `sigma` pixels and scaled by `alpha`, so neighbouring pixels move together, as a pen stroke
wobbles. Simard et al. found it the distortion that helped MNIST most (99.6% with a plain CNN), beyond the affine
ones. (Keras 3.15's RandomElasticTransform, on TensorFlow, draws the same noise for both directions and, in a
tf.data pipeline, one field for the whole batch, so it is not used.)
"""

import math

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
from keras import ops, random


def gaussian_kernel(sigma: float) -> list[float]:
    """A normalised 1-D Gaussian out to 2 sigma each side."""
    radius = max(1, int(math.ceil(2 * sigma)))
    weights = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    return [w / sum(weights) for w in weights]


def elastic_distort(images, noise, alpha: float, sigma: float):
    """Distort (batch, height, width, 1) float images by the field that `noise` (batch, height, width, 2),
    uniform in [-1, 1], gives. Pixels pulled in from outside the image are blank."""
    taps = gaussian_kernel(sigma)
    kernel = ops.convert_to_tensor(taps, dtype="float32")
    field = ops.depthwise_conv(noise, ops.tile(ops.reshape(kernel, (-1, 1, 1, 1)), (1, 1, 2, 1)), padding="same")
    field = ops.depthwise_conv(field, ops.tile(ops.reshape(kernel, (1, -1, 1, 1)), (1, 1, 2, 1)), padding="same")
    field = alpha * field
    return bilinear_sample(images[..., 0], field[..., 0], field[..., 1])[..., None]


def bilinear_sample(images, dy, dx):
    """(batch, height, width) images read at (row + dy, column + dx), bilinearly; blank outside the image.
    (Gathers from the flattened batch, because keras.ops.image.map_coordinates needs a batch size known when the
    graph is built, which a tf.data pipeline does not give.)"""
    shape = ops.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    rows = ops.reshape(ops.cast(ops.arange(height), "float32"), (1, -1, 1)) + dy
    cols = ops.reshape(ops.cast(ops.arange(width), "float32"), (1, 1, -1)) + dx
    top, left = ops.floor(rows), ops.floor(cols)
    last_row, last_col = ops.cast(height - 1, "float32"), ops.cast(width - 1, "float32")
    image_start = ops.reshape(ops.arange(batch), (-1, 1, 1)) * height * width
    flat = ops.reshape(images, (-1,))
    result = 0.0
    for row, row_weight in ((top, 1.0 - (rows - top)), (top + 1.0, rows - top)):
        for col, col_weight in ((left, 1.0 - (cols - left)), (left + 1.0, cols - left)):
            inside = (row >= 0) & (row <= last_row) & (col >= 0) & (col <= last_col)
            r = ops.cast(ops.clip(row, 0, last_row), "int32")
            c = ops.cast(ops.clip(col, 0, last_col), "int32")
            pixel = ops.take(flat, image_start + r * width + c)
            result = result + ops.where(inside, pixel, 0.0) * row_weight * col_weight
    return result


def random_affine(images, distortions: dict, seed: int):
    """(batch, height, width, 1) images each rotated, shifted, zoomed and sheared at random, within the ranges
    `distortions` gives (the training augmentation's keys: rotation_degrees, shift, zoom, shear; others are
    ignored). Every call with the same seed draws the same distortions (image i of any batch gets the same one),
    so predictions made from them can be reproduced. Pixels pulled in from outside the image are blank.

    The distortions are applied one after another, each interpolating the image anew, as the Keras layers of the
    training pipeline do: the repeated interpolation softens the strokes, and a network trained on such images
    is surer of images that look like them than of sharp ones."""
    shape = ops.shape(images)
    height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")
    limits = [math.radians(distortions.get("rotation_degrees", 0.0)), distortions.get("shift", 0.0),
              distortions.get("shift", 0.0), distortions.get("zoom", 0.0), distortions.get("shear", 0.0)]
    draws = random.uniform((shape[0], len(limits)), -1.0, 1.0, seed=seed) * ops.convert_to_tensor(limits)
    angle, shift_y, shift_x, zoom, shear = (ops.reshape(draws[:, i], (-1, 1, 1)) for i in range(len(limits)))
    # Each step maps an output pixel (y, x), measured from the image's centre, to the point it reads.
    steps = [lambda y, x: (ops.sin(angle) * x + ops.cos(angle) * y, ops.cos(angle) * x - ops.sin(angle) * y),
             lambda y, x: (y + shift_y * height, x + shift_x * width),
             lambda y, x: ((1.0 + zoom) * y, (1.0 + zoom) * x),
             lambda y, x: (y, x + shear * y)]
    y = ops.reshape(ops.arange(shape[1], dtype="float32"), (1, -1, 1)) - (height - 1) / 2
    x = ops.reshape(ops.arange(shape[2], dtype="float32"), (1, 1, -1)) - (width - 1) / 2
    images = images[..., 0]
    for step in steps:
        source_y, source_x = step(y, x)
        images = bilinear_sample(images, source_y - y, source_x - x)
    return images[..., None]
