"""Warm-up 2: the Keras `mnist_cnn` example on MNIST (claimed 99.25% test accuracy after 12 epochs).

The network, its compile and its fit are below, as Keras 2 last shipped the example: two 3x3 convolutions (32
and 64 filters), 2x2 max-pooling, dropout 0.25, a 128-unit dense layer, dropout 0.5, softmax; Adadelta with Keras
2's defaults spelled out (learning rate 1.0, rho 0.95, epsilon 1e-7: Keras 3's default learning rate, 0.001,
trains this network 1000x slower), categorical cross-entropy, batch 128, 12 epochs. Change a layer or a setting
here: the run records the network's layers and the optimizer's settings in runs/<name>/config.json.

The 99.25% sentence was written in 2015 for a different network and never re-measured as the example changed.
`--variant keras2015` trains that network (`build_cnn_2015`: 32 and 32 filters, the first convolution
'full'-padded, Glorot's initialisation as Keras drew it then) with Adadelta's epsilon of then, 1e-6; `--epsilon`
changes Adadelta's epsilon alone, so the two differences can be told apart.

One deliberate difference from the original: it validated on the test set. Here the validation set is a
stratified 10% of the training images, and the test set is read only by evaluate_test.py.

    python warmup_mnist_cnn.py
    python warmup_mnist_cnn.py --variant keras2015 --seed 2 --run-name mnist_cnn_keras2015-seed2
    python warmup_mnist_cnn.py --quick            # a smoke run in seconds
"""

from emnist_study import cli, interrupts, recipes

EPSILONS = {"keras2": 1e-7, "keras2015": 1e-6}  # Adadelta's default epsilon in Keras 2, and in June 2015
parser = cli.training_parser(__doc__, recipes.MNIST_CNN, variants=recipes.CNN_VARIANTS)
parser.add_argument("--variant", choices=sorted(recipes.CNN_VARIANTS), default="keras2",
                    help="keras2: the example as Keras 2 last shipped it; keras2015: the network and recipe the "
                         "99.25%% claim was written for (default: %(default)s)")
parser.add_argument("--epsilon", type=cli.positive_float,
                    help="Adadelta's epsilon (default: the variant's own: 1e-7 for keras2, 1e-6 for keras2015)")
if __name__ == "__main__":
    parser.parse_args()  # --help and mistaken flags answer here, before TensorFlow loads (below)

from emnist_study import quiet_tensorflow  # noqa: E402,F401  (first: TensorFlow starts without its chatter)
import keras  # noqa: E402
from keras import layers  # noqa: E402

from emnist_study.data import TrainVal, load_training_data  # noqa: E402
from emnist_study.models import Glorot2015  # noqa: E402
from emnist_study.run import Run  # noqa: E402


# ## The networks
def build_cnn(num_classes: int) -> keras.Model:
    """The Keras example's network, with `num_classes` outputs (10 digits here, 26 letters in emnist_baseline.py)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),  # grey levels scaled to [0, 1]
        layers.Conv2D(32, kernel_size=3, activation="relu"),
        layers.Conv2D(64, kernel_size=3, activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax", dtype="float32"),  # float32 even under mixed precision
    ], name="mnist_cnn")


def build_cnn_2015(num_classes: int) -> keras.Model:
    """The network of June 2015 (keras-team/keras e23e86a, Theano): 'full' padding on the first convolution (2
    pixels each side: 28x28 in, 30x30 out), 32 and 32 filters, every weight drawn by Glorot2015, biases zero."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.ZeroPadding2D(2),
        layers.Conv2D(32, kernel_size=3, activation="relu", kernel_initializer=Glorot2015()),
        layers.Conv2D(32, kernel_size=3, activation="relu", kernel_initializer=Glorot2015()),
        layers.MaxPooling2D(pool_size=2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu", kernel_initializer=Glorot2015()),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax", kernel_initializer=Glorot2015(), dtype="float32"),
    ], name="keras2015_cnn")


# ## Compile: Keras 2's Adadelta, every setting spelled out (Keras 3's default learning rate, 0.001, trains this
# network 1000x slower). emnist_baseline.py compiles the letters CNN here too, and the experiments' `baseline`
# recipe names the same settings (emnist_study/recipes.py: KERAS2_ADADELTA; a test holds the two equal).
def compile_cnn(model: keras.Model, epsilon: float = EPSILONS["keras2"]) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=epsilon),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_and_compile(num_classes: int, variant: str = "keras2", epsilon: float | None = None) -> keras.Model:
    model = build_cnn(num_classes) if variant == "keras2" else build_cnn_2015(num_classes)
    return compile_cnn(model, epsilon or EPSILONS[variant])


# ## Train
def train(run: Run, data: TrainVal, variant: str = "keras2", epsilon: float | None = None) -> keras.callbacks.History:
    """Build, compile and fit the variant's network on `data`, keeping everything in `run`; returns
    fit's History (model.keras is in the run's folder)."""
    keras.utils.set_random_seed(run.config.seed)  # the same seed: the same initial weights, dropout and batches
    with run.scope():  # the arithmetic of --precision, and --distribute's devices
        model = build_and_compile(data.num_classes, variant, epsilon)

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
    config = cli.config_from_args(args, recipes.CNN_VARIANTS[args.variant])
    run = Run(config)
    # An existing run is left alone unless --resume or --overwrite says otherwise; a complete one is compared with
    # the network built here (a layer edited since it trained is refused, not taken for the trained one).
    if run.needs_training(network=lambda classes, _: build_and_compile(classes, args.variant, args.epsilon)):
        # MNIST's 60,000 training images, a stratified 10% held out to validate; the test set is not read
        return train(run, load_training_data(config), args.variant, args.epsilon)


if __name__ == "__main__":
    interrupts.run_main(main)
