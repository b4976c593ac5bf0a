"""Warm-up 2: the Keras `mnist_cnn` example on MNIST (claimed 99.25% test accuracy after 12 epochs).

Two 3x3 convolutions (32 and 64 filters), 2x2 max-pooling, dropout 0.25, a 128-unit dense layer, dropout 0.5,
softmax (`emnist_study.models.mnist_cnn`); Adadelta with the Keras 2 defaults spelled out (learning rate 1.0,
rho 0.95, epsilon 1e-7), categorical cross-entropy, batch 128, 12 epochs.

One deliberate difference from the original: it validated on the test set. Here the validation set is a
stratified 10% of the training images, and the test set is read only by evaluate_test.py.

    python warmup_mnist_cnn.py --data-dir ../shared/data
    python warmup_mnist_cnn.py --quick            # a smoke run in seconds
"""

from emnist_study import cli, training
from emnist_study.runs import TrainConfig

DEFAULTS = TrainConfig(
    script="warmup_mnist_cnn.py",
    run_name="mnist_cnn",
    dataset="mnist",
    model="mnist_cnn",
    epochs=12,
    batch_size=128,
    # Keras 3 defaults Adadelta to learning_rate=0.001 (1000x too slow here); the original ran with Keras 2's 1.0.
    optimizer={"name": "adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7},
)


def main(argv=None):
    training.train(cli.parse_config(__doc__, DEFAULTS, argv))


if __name__ == "__main__":
    cli.run_main(main)
