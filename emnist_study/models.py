"""The experiments' own networks, and what a saved model needs to load.

The assignment's networks are in the step scripts, where a student reads them: the warm-up MLP
(warmup_mnist_mlp.build_mlp), the Keras CNN and its 2015 form (warmup_mnist_cnn.build_cnn, build_cnn_2015) and
Nielsen's networks (nielsen_cnn.build_nielsen, build_nielsen_dense100). Here: the VGG-style network the experiments
go on with, the test-time views, Glorot's 2015 initialisation (a saved 2015 network names it), and `load`.

A builder takes the number of classes and returns an uncompiled keras.Model with a plain softmax head (the
case-aware head replaces it where a recipe asks: subunits.with_case_aware_head). Input is (28, 28, 1) float32 in
[0, 1], as produced by `pipeline.make_dataset`.
"""

import zipfile
from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
from keras import layers

from . import ensembles, subunits  # noqa: F401  (their layers must be known to load a saved model)
from .distortions import random_affine
from .errors import UserError

INPUT_SHAPE = (28, 28, 1)


@keras.saving.register_keras_serializable(package="emnist_study")
class Glorot2015(keras.initializers.Initializer):
    """Glorot's uniform initialisation as Keras drew it in 2015: U(+-sqrt(2 / (fan_in + fan_out))), where for a
    convolution fan_in counts input channels x kernel rows x columns but fan_out the filters alone. (Today's
    GlorotUniform draws U(+-sqrt(6 / ...)) and counts the kernel in fan_out too: wider weights.)"""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        receptive = 1
        for size in shape[:-2]:
            receptive *= size
        fan_in, fan_out = shape[-2] * receptive, shape[-1]
        limit = (2.0 / (fan_in + fan_out)) ** 0.5
        return keras.random.uniform(shape, -limit, limit, dtype=dtype, seed=self.seed)

    def get_config(self):
        return {"seed": self.seed}


def conv_bn(filters: int, bn_momentum: float) -> list:
    return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(momentum=bn_momentum),
            layers.Activation("relu")]


def vgg_bn(num_classes: int, width: int = 32, dropout: float = 0.4, bn_momentum: float = 0.99) -> keras.Model:
    """A small VGG-style network with batch norm: three stages of two 3x3 convolutions (width, 2x, 4x
    filters), each stage max-pooled, then a 256-unit dense layer with dropout. About 0.6 M parameters at
    width 32.

    `bn_momentum` is how much of batch norm's running mean and variance (what the network uses when predicting)
    each step keeps. Keras's 0.99 needs a few hundred steps to forget its starting values, so a network checked
    after its first few hundred steps predicts badly however well it trains; 0.9 forgets them in a few dozen."""
    m = bn_momentum
    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        *conv_bn(width, m), *conv_bn(width, m), layers.MaxPooling2D(2),              # 14x14
        *conv_bn(2 * width, m), *conv_bn(2 * width, m), layers.MaxPooling2D(2),      # 7x7
        *conv_bn(4 * width, m), *conv_bn(4 * width, m), layers.MaxPooling2D(2),      # 3x3
        layers.Flatten(),
        layers.Dense(256, use_bias=False), layers.BatchNormalization(momentum=m), layers.Activation("relu"),
        layers.Dropout(dropout),
        # float32 even under mixed precision: a softmax and its log-loss need more than bfloat16's 8 bits of mantissa
        layers.Dense(num_classes, activation="softmax", dtype="float32"),
    ], name="vgg_bn")


@keras.saving.register_keras_serializable(package="emnist_study")
class DistortedView(layers.Layer):
    """The images randomly rotated, sheared, zoomed and shifted within `distortions` (the training augmentation's
    ranges), at prediction as well as in training, and the same at every call for a given seed."""

    def __init__(self, distortions: dict, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.distortions = distortions
        self.seed = seed

    def call(self, images):
        return random_affine(images, self.distortions, self.seed)

    def compute_output_shape(self, input_shape):  # saves Keras tracing call() to learn the shape it keeps
        return input_shape

    def get_config(self):
        return {**super().get_config(), "distortions": self.distortions, "seed": self.seed}


@keras.saving.register_keras_serializable(package="emnist_study")
class StackViews(layers.Layer):
    """The image and its distorted copies as one batch: (views x batch, 28, 28, 1), copy after copy."""

    def call(self, views):
        return keras.ops.concatenate(views, axis=0)

    def compute_output_shape(self, input_shapes):
        return (None, *input_shapes[0][1:])


@keras.saving.register_keras_serializable(package="emnist_study")
class MeanOverViews(layers.Layer):
    """(views x batch, classes) probabilities -> (batch, classes), each image's mean over its views."""

    def __init__(self, views: int, **kwargs):
        super().__init__(**kwargs)
        self.views = views

    def call(self, probabilities):
        classes = keras.ops.shape(probabilities)[-1]
        return keras.ops.mean(keras.ops.reshape(probabilities, (self.views, -1, classes)), axis=0)

    def compute_output_shape(self, input_shape):
        return (None, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "views": self.views}


def with_test_time_views(model: keras.Model, distortions: dict, views: int) -> keras.Model:
    """A model whose prediction is `model`'s probabilities averaged over the image and `views` distorted copies
    of it (test-time augmentation). A network trained on distorted images (softened by the interpolation) sees in
    the copies what it trained on, and one copy's mistake is outvoted by the others (measured: docs/experiments.md,
    sgd_tta). Costs views + 1 predictions; training is unchanged. The copies go through the network as one batch,
    so the network is traced once, not once per copy."""
    inputs = keras.Input(INPUT_SHAPE)
    if not views:
        return keras.Model(inputs, model(inputs), name=f"{model.name}_views")
    copies = [inputs] + [DistortedView(distortions, seed=view)(inputs) for view in range(1, views + 1)]
    return keras.Model(inputs, MeanOverViews(views + 1)(model(StackViews()(copies))), name=f"{model.name}_views")


NETWORKS = {"vgg_bn": vgg_bn}


def load(path) -> keras.Model:
    """A saved model.keras, ready to predict (importing this module registers the custom layers it may use).
    One that cannot be loaded (missing, empty, truncated, or holding code Keras's safe mode refuses, such as a
    Lambda layer) is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing: its run has not finished (continue it with --resume), or the file was "
                        f"deleted (train the run again with --overwrite)")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is damaged (empty, truncated, or not a .keras file); its run is finished, so "
                        f"--resume cannot rebuild it: train the run again with --overwrite, or delete it")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds (ValueError, OSError, zipfile's, h5py's) for a bad file
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise UserError(f"{path} cannot be loaded ({reason}); train the run again with --overwrite, or delete "
                        f"it") from None
