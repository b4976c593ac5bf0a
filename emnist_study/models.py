"""The networks, by name. Each builder takes the number of classes and returns an uncompiled keras.Model.

Input is (28, 28, 1) float32 in [0, 1], as produced by `pipeline.make_dataset`.
"""

from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
from keras import layers

from .distortions import random_affine
from .errors import UserError

INPUT_SHAPE = (28, 28, 1)


def mnist_mlp(num_classes: int) -> keras.Model:
    """The Keras `mnist_mlp` example: 784 -> 512 -> 512 -> classes, ReLU, dropout 0.2."""
    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        layers.Flatten(),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.2),
        *classifier_head(num_classes),
    ], name="mnist_mlp")


@keras.saving.register_keras_serializable(package="emnist_study")
class SumSubunits(layers.Layer):
    """The case-aware head's second half: (batch, classes * k) sub-unit probabilities -> (batch, classes), each
    class's probability the sum of its k sub-units' (unit c * k + j belongs to class c).

    Trained with the cross-entropy of that sum, the network needs only the class labels, yet is free to give the
    different shapes of one class (an `A` and an `a`) sub-units of their own. Free is not the same as pushed: left
    alone, a class's second unit can die and the first take both shapes. So, while training, the layer adds a loss
    of `diversity` times minus the mutual information between image and sub-unit within each class (in the
    batch): high when each image picks one unit clearly and the class's images share its units out, zero when
    one unit takes everything. It changes no class probability, only how a class divides among its units.

    With `paired_copies`, each training batch holds two distorted copies of every image (the first half of the
    batch and the second, as the pipeline pairs them), and the term adds the mutual information between the
    units the two copies pick (Ji et al.'s Invariant Information Clustering, 2019): highest when both copies
    pick the same unit and the class's images share the units out. A split by slant or stroke width, which a
    distortion changes, then scores lower than a split by shape, which survives it. (Alone, without the first
    term, it let some classes collapse into one unit: measured on merged MNIST, see docs/case-aware.md.) A class can still
    collapse, and neither term can lift it out again; `subunits.ResplitIdleSubunits` restarts such a class.
    """

    def __init__(self, subunits: int, diversity: float = 1.0, paired_copies: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.subunits = subunits
        self.diversity = diversity
        self.paired_copies = paired_copies

    def call(self, probabilities, training=None):
        ops = keras.ops
        units = ops.shape(probabilities)[-1]
        grouped = ops.reshape(probabilities, (-1, units // self.subunits, self.subunits))  # (batch, class, unit)
        class_probabilities = ops.sum(grouped, axis=-1)
        if training and self.diversity:
            information = within_class_information(grouped, class_probabilities)
            if self.paired_copies:
                information = information + paired_copy_information(grouped, class_probabilities)
            self.add_loss(-self.diversity * information)
        return class_probabilities

    def get_config(self):
        return {**super().get_config(), "subunits": self.subunits, "diversity": self.diversity,
                "paired_copies": self.paired_copies}


def within_class_information(grouped, class_probabilities, eps: float = 1e-7):
    """Mutual information between image and sub-unit within each class, averaged over classes: the entropy of
    the class's average split among its units minus the average entropy of each image's split. Images count
    towards a class by the probability the network gives them of being in it."""
    ops = keras.ops
    split = grouped / (class_probabilities[..., None] + eps)  # p(unit | class, image), (batch, class, unit)
    weight = class_probabilities / (ops.sum(class_probabilities, axis=0, keepdims=True) + eps)  # sums to 1 per class
    average_split = ops.sum(weight[..., None] * split, axis=0)  # (class, unit)
    entropy_of_average = -ops.sum(average_split * ops.log(average_split + eps), axis=-1)
    average_entropy = ops.sum(weight * -ops.sum(split * ops.log(split + eps), axis=-1), axis=0)
    return ops.mean(entropy_of_average - average_entropy)


def paired_copy_information(grouped, class_probabilities, eps: float = 1e-7):
    """Mutual information between the sub-units two copies of an image pick, within each class, averaged over
    classes. Copy i of the batch's first half pairs with copy i of its second half; pairs count towards a class
    by the probability the network gives them of being in it (the mean over the two copies)."""
    ops = keras.ops
    half = ops.shape(grouped)[0] // 2
    split = grouped / (class_probabilities[..., None] + eps)  # p(unit | class, image), (batch, class, unit)
    weight = (class_probabilities[:half] + class_probabilities[half:]) / 2
    weight = weight / (ops.sum(weight, axis=0, keepdims=True) + eps)  # sums to 1 per class
    joint = ops.einsum("nc,nck,ncl->ckl", weight, split[:half], split[half:])  # p(unit of copy 1, of copy 2 | class)
    joint = (joint + ops.transpose(joint, (0, 2, 1))) / 2
    marginal = ops.sum(joint, axis=-1)  # (class, unit)
    independent = marginal[:, :, None] * marginal[:, None, :]
    return ops.mean(ops.sum(joint * (ops.log(joint + eps) - ops.log(independent + eps)), axis=(1, 2)))


SUBUNITS_LAYER = "subunits"


def classifier_head(num_classes: int, subunits: int = 1, kernel_regularizer=None, paired_copies: bool = False) -> list:
    """The output layers of every network here: a plain softmax over the classes, or, with subunits K > 1, the
    case-aware head: a softmax over classes * K sub-units whose probabilities are summed per class."""
    # float32 even under mixed precision: a softmax and its log-loss need more than bfloat16's 8 bits of mantissa.
    if subunits == 1:
        return [layers.Dense(num_classes, activation="softmax", kernel_regularizer=kernel_regularizer,
                             dtype="float32")]
    return [layers.Dense(num_classes * subunits, activation="softmax", kernel_regularizer=kernel_regularizer,
                         name=SUBUNITS_LAYER, dtype="float32"),
            SumSubunits(subunits, paired_copies=paired_copies, dtype="float32")]


def subunit_model(model: keras.Model) -> keras.Model:
    """A model giving the sub-unit probabilities of a network with the case-aware head."""
    return keras.Model(model.inputs, model.get_layer(SUBUNITS_LAYER).output)


def mnist_cnn(num_classes: int, subunits: int = 1) -> keras.Model:
    """The Keras `mnist_cnn` example: two 3x3 convolutions, max-pooling, dropout, a 128-unit dense layer.
    (`subunits` > 1 swaps in the case-aware head; 1 is the original.)"""
    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        layers.Conv2D(32, kernel_size=3, activation="relu"),
        layers.Conv2D(64, kernel_size=3, activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        *classifier_head(num_classes, subunits),
    ], name="mnist_cnn")


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


def keras2015_cnn(num_classes: int) -> keras.Model:
    """The network Keras's mnist_cnn example had when its 99.25% claim was written (June 2015, Theano): a 3x3
    convolution with 'full' padding (2 pixels each side: 28x28 in, 30x30 out), a second 3x3 convolution, both
    32 filters, max-pooling, dropout 0.25, Dense(128), dropout 0.5, softmax; every weight drawn by Glorot2015,
    biases zero."""
    def init():  # each layer its own initializer object: Keras refuses one seeded object shared by layers
        return Glorot2015()

    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        layers.ZeroPadding2D(2),
        layers.Conv2D(32, kernel_size=3, activation="relu", kernel_initializer=init()),
        layers.Conv2D(32, kernel_size=3, activation="relu", kernel_initializer=init()),
        layers.MaxPooling2D(pool_size=2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu", kernel_initializer=init()),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax", kernel_initializer=init(), dtype="float32"),
    ], name="keras2015_cnn")


def nielsen_conv_layers(l2: float) -> list:
    """Nielsen's two convolution-pooling layers: 20 then 40 filters of 5x5, ReLU, each max-pooled 2x2."""
    reg = keras.regularizers.L2(l2) if l2 else None
    return [
        layers.Conv2D(20, kernel_size=5, activation="relu", kernel_regularizer=reg),
        layers.MaxPooling2D(pool_size=2),
        layers.Conv2D(40, kernel_size=5, activation="relu", kernel_regularizer=reg),
        layers.MaxPooling2D(pool_size=2),
        layers.Flatten(),
    ]


def nielsen_dropout(num_classes: int) -> keras.Model:
    """Nielsen's chapter-6 network (99.60%): the convolutions, then two 1000-unit ReLU layers and the softmax,
    each with dropout 0.5 on its input, as network3.py applies it."""
    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        *nielsen_conv_layers(l2=0.0),
        layers.Dropout(0.5),
        layers.Dense(1000, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(1000, activation="relu"),
        layers.Dropout(0.5),
        *classifier_head(num_classes),
    ], name="nielsen_dropout")


def nielsen_dense100(num_classes: int, l2_lambda: float = 0.0, training_images: int = 250_000) -> keras.Model:
    """The chapter's earlier step (99.43%): the convolutions, two Dense(100, ReLU) layers, softmax; L2 on all
    weights. network3.py adds 0.5 * lambda * sum(w^2) / (mini-batches per epoch) to each mini-batch's mean cost;
    at its mini-batch of 10 that is 0.5 * lambda * 10 / training_images. Keeping that figure when the batch (and
    with it the learning rate) is scaled keeps the weight decay per epoch the same."""
    l2 = 0.5 * l2_lambda * 10 / training_images
    reg = keras.regularizers.L2(l2) if l2 else None
    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        *nielsen_conv_layers(l2),
        layers.Dense(100, activation="relu", kernel_regularizer=reg),
        layers.Dense(100, activation="relu", kernel_regularizer=reg),
        *classifier_head(num_classes, kernel_regularizer=reg),
    ], name="nielsen_dense100")


@keras.saving.register_keras_serializable(package="emnist_study")
class MajorityVote(layers.Layer):
    """Combine members' class probabilities by majority vote, as Nielsen's ensemble does.

    The output is each class's share of the votes; a tie goes to the class with the higher mean probability
    (a small fraction of it is added), where Nielsen's argmax would take the lower class index.
    """

    def call(self, member_probabilities):
        stacked = keras.ops.stack(member_probabilities, axis=0)  # (members, batch, classes)
        classes = keras.ops.shape(stacked)[-1]
        votes = keras.ops.mean(keras.ops.one_hot(keras.ops.argmax(stacked, axis=-1), classes), axis=0)
        return (votes + 1e-3 * keras.ops.mean(stacked, axis=0)) / (1 + 1e-3)


def majority_vote(members: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose prediction is the vote of `members` (which must have distinct names)."""
    inputs = keras.Input(INPUT_SHAPE)
    return keras.Model(inputs, MajorityVote()([member(inputs) for member in members]), name=name)


def conv_bn(filters: int, bn_momentum: float) -> list:
    return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(momentum=bn_momentum),
            layers.Activation("relu")]


def vgg_bn(num_classes: int, width: int = 32, dropout: float = 0.4, subunits: int = 1,
           bn_momentum: float = 0.99, paired_copies: bool = False) -> keras.Model:
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
        *classifier_head(num_classes, subunits, paired_copies=paired_copies),
    ], name="vgg_bn")


@keras.saving.register_keras_serializable(package="emnist_study")
class MeanProbabilities(layers.Layer):
    """Average the members' class probabilities (a soft-vote ensemble)."""

    def call(self, member_probabilities):
        return keras.ops.mean(keras.ops.stack(member_probabilities, axis=0), axis=0)


def average_ensemble(members: list[keras.Model], name: str = "ensemble") -> keras.Model:
    inputs = keras.Input(INPUT_SHAPE)
    return keras.Model(inputs, MeanProbabilities()([member(inputs) for member in members]), name=name)


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


MODELS = {"mnist_mlp": mnist_mlp, "mnist_cnn": mnist_cnn, "keras2015_cnn": keras2015_cnn, "nielsen_dropout": nielsen_dropout,
          "nielsen_dense100": nielsen_dense100, "vgg_bn": vgg_bn}


def build(name: str, num_classes: int, **options) -> keras.Model:
    return MODELS[name](num_classes, **options)


def load(path) -> keras.Model:
    """A saved model.keras, ready to predict (importing this module registers the custom layers it may use).
    One that cannot be loaded (missing, empty, truncated, or holding code Keras's safe mode refuses, such as a
    Lambda layer) is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing; train the run again with --overwrite")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds (ValueError, OSError, zipfile's, h5py's) for a bad file
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise UserError(f"{path} cannot be loaded ({reason}); train the run again with --overwrite, or delete "
                        f"it") from None
