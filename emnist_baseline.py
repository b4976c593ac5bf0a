"""Step 4: the warm-up networks carried over to EMNIST Letters (26 classes, upper and lower case merged).

`--model cnn` (the default) trains the same convolutional network and recipe as warmup_mnist_cnn.py, with 26
outputs; `--model mlp` the warm-up MLP and its recipe. Together with the MNIST warm-ups they answer: how does the
CNN do on letters compared with digits, and how much does convolution buy over the MLP on letters?

The data: 124,800 training images (4,800 per letter), of which a stratified 10% validates; the loader turns
EMNIST's transposed images upright and maps its labels 1..26 to 0..25. The test set is left to evaluate_test.py.

    python emnist_baseline.py                      # downloads EMNIST (562 MB) on first use
    python emnist_baseline.py --model mlp --data-dir path/to/emnist
    python emnist_baseline.py --quick
"""

from emnist_study import cli
from emnist_study.recipes import LETTERS_BASELINES


def main(argv=None):
    parser = cli.training_parser(__doc__, LETTERS_BASELINES["cnn"], variants=LETTERS_BASELINES)
    parser.add_argument("--model", choices=sorted(LETTERS_BASELINES), default="cnn",
                        help="the warm-up network and recipe: cnn (12 epochs) or mlp (20 epochs) (default: %(default)s)")
    args = parser.parse_args(argv)
    from emnist_study import training  # TensorFlow loads here, after the flags: --help answers at once

    training.train(cli.config_from_args(args, LETTERS_BASELINES[args.model]))


if __name__ == "__main__":
    cli.run_main(main)
