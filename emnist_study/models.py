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


MODELS = {"mnist_mlp": mnist_mlp, "mnist_cnn": mnist_cnn}


def build(name: str, num_classes: int) -> keras.Model:
    return MODELS[name](num_classes)
