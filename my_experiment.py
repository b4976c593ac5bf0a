"""Your own experiment on EMNIST Letters: one complete recipe, its network, compile and fit on screen, to copy and
change.

emnist_experiments.py trains the registry's recipes by name (their settings in emnist_study/recipes.py, their
networks in warmup_mnist_cnn.py and emnist_study/models.py: `--list` says which). This script is the same kind of
recipe written out in Keras, as the warm-up scripts are: a small VGG-style CNN with batch norm, AdamW, label
smoothing, and the handwriting distortions of the registry's `augment` recipe. Copy it under a name of your own
and change what you like: a layer, the optimizer, the epochs, the distortions.

    cp my_experiment.py my_wider.py      # then edit my_wider.py: its runs are named my_wider
    python my_wider.py --quick           # a smoke run in seconds: does it build and train?
    python my_wider.py                   # the real run on EMNIST Letters, then the leaderboard

A run is named after its script (runs/my_wider), records its layers and optimizer in config.json, logs to
TensorBoard, and takes its place in the leaderboard of the experiments by validation accuracy (printed after it,
and saved as results/leaderboard.csv, as emnist_experiments.py does); evaluate_test.py judges it on the test set
with every other run, once, at the end.
"""

from pathlib import Path

from emnist_study import cli, interrupts
from emnist_study.config import TrainConfig

# What the run trains: named after this file, so a copy of it is a run of its own.
RECIPE = TrainConfig(script=Path(__file__).name, run_name=Path(__file__).stem, dataset="emnist-letters",
                     model=Path(__file__).stem, epochs=10, batch_size=128,
                     # the distortions handwriting survives, applied afresh to every training image each epoch
                     # (no flips: a mirrored 'b' is a 'd')
                     augment={"rotation_degrees": 10, "shift": 0.08, "zoom": 0.1, "shear": 0.15})
parser = cli.training_parser(__doc__, RECIPE)
parser.add_argument("--results-dir", default="results", help="where the leaderboard goes (default: %(default)s)")
if __name__ == "__main__":
    parser.parse_args()  # --help and mistaken flags answer here, before TensorFlow loads (below)

from emnist_study import quiet_tensorflow  # noqa: E402,F401  (first: TensorFlow starts without its chatter)
import keras  # noqa: E402
from keras import layers  # noqa: E402

from emnist_study.data import TrainVal, load_training_data  # noqa: E402
from emnist_study.run import Run  # noqa: E402
from emnist_experiments import leaderboard  # noqa: E402


# ## The network
def build_network(num_classes: int) -> keras.Model:
    """Two stages of two 3x3 convolutions with batch norm, each max-pooled, then a dense layer with dropout."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),  # grey levels scaled to [0, 1]
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),  # 14x14
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),  # 7x7
        layers.Flatten(),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.4),
        layers.Dense(num_classes, activation="softmax", dtype="float32"),  # float32 even under mixed precision
    ], name=RECIPE.model)


# ## Compile: every setting spelled out, so the run records what it trained with
def compile_network(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4),
                  # label smoothing: a target of 0.9 rather than 1 for the right letter, which curbs overconfidence
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
    return model


# ## Train
def train(run: Run, data: TrainVal) -> keras.Model:
    """Build, compile and fit the network on `data`, keeping everything in `run`; returns the saved model."""
    keras.utils.set_random_seed(run.config.seed)  # the same seed: the same initial weights, dropout and batches
    with run.scope():  # the arithmetic of --precision, and --distribute's devices
        model = compile_network(build_network(data.num_classes))

    # Locks the run and writes config.json; with --resume, the model and optimizer continue from the backup.
    with run.training(model, data):
        model.fit(run.train_batches, validation_data=run.val_batches, epochs=run.config.epochs,
                  steps_per_epoch=run.steps_per_epoch, initial_epoch=run.epochs_done,
                  # run.callbacks(): history.csv, best.weights.h5, summary.json, the backup, TensorBoard's HParams
                  callbacks=[keras.callbacks.TensorBoard(log_dir=run.logs_dir), *run.callbacks()],
                  verbose=run.verbose)
        return run.save(model)  # model.keras, and the run marked complete


# ## The data, then training
def main(argv=None):
    args = parser.parse_args(argv)
    config = cli.config_from_args(args, RECIPE)
    run = Run(config)
    # An existing run is left alone unless --resume or --overwrite says otherwise; a complete one is compared with
    # the network built here (a layer edited since it trained is refused, not taken for the trained one).
    if run.needs_training(network=lambda classes, _: compile_network(build_network(classes))):
        # EMNIST Letters' training images, upright, labels 0..25, a stratified 10% held out to validate
        train(run, load_training_data(config))
    leaderboard(args.runs_dir, Path(args.results_dir))  # every experiment so far, best validation accuracy first


if __name__ == "__main__":
    interrupts.run_main(main)
