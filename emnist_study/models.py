"""The networks, by name. Each builder takes the number of classes and returns an uncompiled keras.Model.

Input is (28, 28, 1) float32 in [0, 1], as produced by `pipeline.make_dataset`.
"""

import keras
from keras import layers

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
        layers.Dense(num_classes, activation="softmax"),
    ], name="mnist_mlp")


def mnist_cnn(num_classes: int) -> keras.Model:
    """The Keras `mnist_cnn` example: two 3x3 convolutions, max-pooling, dropout, a 128-unit dense layer."""
    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        layers.Conv2D(32, kernel_size=3, activation="relu"),
        layers.Conv2D(64, kernel_size=3, activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ], name="mnist_cnn")


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
        layers.Dense(num_classes, activation="softmax"),
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
        layers.Dense(num_classes, activation="softmax", kernel_regularizer=reg),
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


MODELS = {"mnist_mlp": mnist_mlp, "mnist_cnn": mnist_cnn, "nielsen_dropout": nielsen_dropout,
          "nielsen_dense100": nielsen_dense100}


def build(name: str, num_classes: int, **options) -> keras.Model:
    return MODELS[name](num_classes, **options)


def load(path) -> keras.Model:
    """A saved model.keras, ready to predict (importing this module registers the custom layers it may use)."""
    return keras.models.load_model(path, compile=False)
