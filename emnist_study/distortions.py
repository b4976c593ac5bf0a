"""Elastic distortion of handwriting (Simard, Steinkraus & Platt 2003), in backend-independent keras.ops.

Each image gets its own random displacement field: uniform noise in [-1, 1] for every pixel, smoothed by a
Gaussian of width `sigma` pixels and scaled by `alpha`, so neighbouring pixels move together, as a pen stroke
wobbles. Simard et al. found it the distortion that helped MNIST most (99.6% with a plain CNN), beyond the affine
ones. (Keras 3.15's RandomElasticTransform, on TensorFlow, draws the same noise for both directions and, in a
tf.data pipeline, one field for the whole batch, so it is not used.)
"""

import math

from keras import ops


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
