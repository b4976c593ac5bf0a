"""Warm-up 1: the Keras `mnist_mlp` example on MNIST (claimed 98.40% test accuracy after 20 epochs).

784 inputs -> Dense(512, ReLU) -> Dropout(0.2) -> Dense(512, ReLU) -> Dropout(0.2) -> softmax
(`emnist_study.models.mnist_mlp`); RMSprop (learning rate 0.001, rho 0.9, epsilon 1e-7), categorical
cross-entropy, batch 128, 20 epochs.

One deliberate difference from the original: it validated on the test set. Here the validation set is a
stratified 10% of the training images, and the test set is read only by evaluate_test.py.

    python warmup_mnist_mlp.py
    python warmup_mnist_mlp.py --quick            # a smoke run in seconds
"""

from emnist_study import cli, recipes


def main(argv=None):
    config = cli.parse_config(__doc__, recipes.MNIST_MLP, argv)
    from emnist_study import training  # TensorFlow loads here, after the flags: --help answers at once

    training.train(config)


if __name__ == "__main__":
    cli.run_main(main)
