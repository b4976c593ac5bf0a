"""Warm-up 1: the Keras `mnist_mlp` example on MNIST (claimed 98.40% test accuracy after 20 epochs).

The network, its compile and its fit are below, as the Keras example has them: 784 inputs -> Dense(512, ReLU)
-> Dropout(0.2) -> Dense(512, ReLU) -> Dropout(0.2) -> softmax; RMSprop (learning rate 0.001, rho 0.9, epsilon
1e-7), categorical cross-entropy, batch 128, 20 epochs. Change a layer or a setting here: the run records the
network's layers and the optimizer's settings in runs/<name>/config.json.

One deliberate difference from the original: it validated on the test set. Here the validation set is a
stratified 10% of the training images, and the test set is read only by evaluate_test.py.

    python warmup_mnist_mlp.py
    python warmup_mnist_mlp.py --quick            # a smoke run in seconds
"""

from emnist_study import cli, interrupts, recipes

parser = cli.training_parser(__doc__, recipes.MNIST_MLP)
if __name__ == "__main__":
    parser.parse_args()  # --help and mistaken flags answer here, before TensorFlow loads (below)

from emnist_study import quiet_tensorflow  # noqa: E402,F401  (first: TensorFlow starts without its chatter)
import keras  # noqa: E402
from keras import layers  # noqa: E402

from emnist_study.data import TrainVal, load_training_data  # noqa: E402
from emnist_study.run import Run  # noqa: E402


# ## The network
def build_mlp(num_classes: int) -> keras.Model:
    """The Keras example's network, with `num_classes` outputs (10 digits here, 26 letters in emnist_baseline.py)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),  # grey levels scaled to [0, 1]
        layers.Flatten(),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(num_classes, activation="softmax", dtype="float32"),  # float32 even under mixed precision
    ], name="mnist_mlp")


# ## Compile: the example's RMSprop, every setting spelled out (emnist_baseline.py compiles the letters MLP here too)
def compile_mlp(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


# ## Train
def train(run: Run, data: TrainVal) -> keras.callbacks.History:
    """Build, compile and fit the network on `data`, keeping everything in `run`; returns
    fit's History (model.keras is in the run's folder)."""
    keras.utils.set_random_seed(run.config.seed)  # the same seed: the same initial weights, dropout and batches
    with run.scope():  # the arithmetic of --precision, and --distribute's devices
        model = compile_mlp(build_mlp(data.num_classes))

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
    config = cli.config_from_args(parser.parse_args(argv), recipes.MNIST_MLP)
    run = Run(config)
    # An existing run is left alone unless --resume or --overwrite says otherwise; a complete one is compared with
    # the network built here (a layer edited since it trained is refused, not taken for the trained one).
    if run.needs_training(network=lambda classes, _: compile_mlp(build_mlp(classes))):
        # MNIST's 60,000 training images, a stratified 10% held out to validate; the test set is not read
        return train(run, load_training_data(config))


if __name__ == "__main__":
    interrupts.run_main(main)
