"""Step 4: the warm-up networks carried over to EMNIST Letters (26 classes, upper and lower case merged).

`--model cnn` (the default) trains the same convolutional network as warmup_mnist_cnn.py, with the same compile
and fit, and 26 outputs; `--model mlp` the warm-up MLP and its recipe. The networks are imported from the
warm-up scripts, not copied: change a layer there and it changes here. Together with the MNIST warm-ups they
answer: how does the CNN do on letters compared with digits, and how much does convolution buy over the MLP?

The data: 124,800 training images (4,800 per letter), of which a stratified 10% validates; the loader turns
EMNIST's transposed images upright and maps its labels 1..26 to 0..25. The test set is left to evaluate_test.py.

    python emnist_baseline.py                      # downloads EMNIST (562 MB) on first use
    python emnist_baseline.py --model mlp --data-dir path/to/emnist
    python emnist_baseline.py --quick
"""

from emnist_study import cli, interrupts
from emnist_study.recipes import LETTERS_BASELINES

parser = cli.training_parser(__doc__, LETTERS_BASELINES["cnn"], variants=LETTERS_BASELINES)
parser.add_argument("--model", choices=sorted(LETTERS_BASELINES), default="cnn",
                    help="the warm-up network and recipe: cnn (12 epochs) or mlp (20 epochs) (default: %(default)s)")
if __name__ == "__main__":
    parser.parse_args()  # --help and mistaken flags answer here, before TensorFlow loads (below)

from emnist_study import quiet_tensorflow  # noqa: E402,F401  (first: TensorFlow starts without its chatter)
import keras  # noqa: E402

from emnist_study.data import TrainVal, load_training_data  # noqa: E402
from emnist_study.run import Run  # noqa: E402
# The same networks and compile settings as the warm-ups: defined once, there (Adadelta 1.0 / RMSprop 0.001)
from warmup_mnist_cnn import build_cnn, compile_cnn  # noqa: E402
from warmup_mnist_mlp import build_mlp, compile_mlp  # noqa: E402


# ## The network, compiled as in its warm-up
def build_and_compile(model_name: str, num_classes: int) -> keras.Model:
    if model_name == "cnn":
        return compile_cnn(build_cnn(num_classes))  # Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-7)
    return compile_mlp(build_mlp(num_classes))  # RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7)


# ## Train
def train(run: Run, data: TrainVal, model_name: str = "cnn") -> keras.callbacks.History:
    """Build, compile and fit the warm-up network on the letters, keeping everything in `run`; returns
    fit's History (model.keras is in the run's folder)."""
    keras.utils.set_random_seed(run.config.seed)  # the same seed: the same initial weights, dropout and batches
    with run.scope():  # the arithmetic of --precision, and --distribute's devices
        model = build_and_compile(model_name, data.num_classes)

    # Locks the run and writes config.json; with --resume, the model and optimizer continue from the backup.
    with run.training(model, data):
        # fit's History: history.history holds this fit's loss, accuracy, val_loss and val_accuracy, epoch
        # by epoch; history.csv holds the same columns for every epoch of the run, across resumes
        history = model.fit(run.train_batches, validation_data=run.val_batches, epochs=run.config.epochs,
                            steps_per_epoch=run.steps_per_epoch, initial_epoch=run.epochs_done,
                            # run.callbacks(): history.csv, best.weights.h5, summary.json, the backup, HParams
                            callbacks=[keras.callbacks.TensorBoard(log_dir=run.logs_dir), *run.callbacks()],
                            verbose=run.verbose)
        run.save(model)  # model.keras, and the run marked complete
    return history


# ## The data, then training
def main(argv=None):
    """Train the step; returns fit's History (None where nothing was trained: the run was already complete)."""
    args = parser.parse_args(argv)
    config = cli.config_from_args(args, LETTERS_BASELINES[args.model])
    run = Run(config)
    # An existing run is left alone unless --resume or --overwrite says otherwise; a complete one is compared with
    # the network built here (a layer edited since it trained is refused, not taken for the trained one).
    if run.needs_training(network=lambda classes, _: build_and_compile(args.model, classes)):
        # EMNIST Letters' 124,800 training images, upright, labels 0..25, a stratified 10% held out to validate
        return train(run, load_training_data(config), args.model)


if __name__ == "__main__":
    interrupts.run_main(main)
