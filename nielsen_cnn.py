"""Warm-up 3: Nielsen's chapter-6 network on MNIST (claimed 99.60%; a vote of five such nets, 99.67%).

Michael Nielsen, "Neural Networks and Deep Learning", chapter 6, with his protocol:
- the first 50,000 MNIST training images train, the last 10,000 validate;
- the training images are expanded to 250,000 with copies shifted one pixel up, down, left and right;
- the network and its training are below (`build_nielsen`): plain SGD, learning rate 0.03, mini-batch 10, 40
  epochs, log-likelihood cost;
- the model kept is the epoch with the best validation accuracy (model.keras holds its weights).

`--batch-size B` scales the learning rate with it (0.03 * B / 10): network3.py averages the cost over the
mini-batch, so this keeps the step per image the same and lets a CPU use larger batches. `--ensemble N` trains N
members (seeds 1..N for --seed 1; other seeds' members share none of them), saved under runs/<name>/members/,
and saves a model that predicts by their majority vote. `--variant dense100` is the chapter's earlier step
(`build_nielsen_dense100`: two Dense(100, ReLU) layers, no dropout, L2 with lambda 0.1, 60 epochs; claimed 99.43%).

One deliberate difference from Nielsen: nothing. His protocol already keeps the test set out of training and
model selection. (The Keras examples, in the other warm-ups, did not.)

    python nielsen_cnn.py --data-dir ../shared/data --batch-size 50
    python nielsen_cnn.py --data-dir ../shared/data --ensemble 5
    python nielsen_cnn.py --quick
"""

from dataclasses import replace

from emnist_study import cli, interrupts
from emnist_study.recipes import NIELSEN_VARIANTS as VARIANTS

parser = cli.training_parser(__doc__, VARIANTS["dropout"], variants=VARIANTS)
parser.add_argument("--variant", choices=sorted(VARIANTS), default="dropout",
                    help="dropout: the final network (40 epochs); dense100: the earlier Dense(100)+L2 step "
                         "(60 epochs) (default: %(default)s)")
parser.add_argument("--ensemble", type=cli.positive_int, default=1,
                    help="train this many members and predict by their majority vote (default: 1)")
if __name__ == "__main__":
    parser.parse_args()  # --help and mistaken flags answer here, before TensorFlow loads (below)

from emnist_study import quiet_tensorflow  # noqa: E402,F401  (first: TensorFlow starts without its chatter)
import keras  # noqa: E402
from keras import layers  # noqa: E402

from emnist_study import distribute  # noqa: E402
from emnist_study.run import Run  # noqa: E402
from emnist_study.data import TrainVal, load_training_data  # noqa: E402
from emnist_study.config import TrainConfig  # noqa: E402
from emnist_study.training import train_ensemble  # noqa: E402


# ## The networks
def build_nielsen(num_classes: int) -> keras.Model:
    """Two convolution-pooling layers (20 then 40 filters of 5x5, ReLU, each max-pooled 2x2), two 1000-unit ReLU
    layers and the softmax, each of the last three with dropout 0.5 on its input, as network3.py applies it."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),  # grey levels scaled to [0, 1]
        layers.Conv2D(20, kernel_size=5, activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Conv2D(40, kernel_size=5, activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(1000, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(1000, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax", dtype="float32"),  # float32 even under mixed precision
    ], name="nielsen_dropout")


def build_nielsen_dense100(num_classes: int, l2_lambda: float, training_images: int) -> keras.Model:
    """The earlier step: the same convolutions, two Dense(100, ReLU) layers, no dropout, L2 on every weight.
    network3.py adds 0.5 * lambda * sum(w^2) / (mini-batches per epoch) to each mini-batch's mean cost: at its
    mini-batch of 10, 0.5 * lambda * 10 / training_images, which keeps the decay per epoch when the batch is scaled."""
    l2 = keras.regularizers.L2(0.5 * l2_lambda * 10 / training_images)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(20, kernel_size=5, activation="relu", kernel_regularizer=l2),
        layers.MaxPooling2D(pool_size=2),
        layers.Conv2D(40, kernel_size=5, activation="relu", kernel_regularizer=l2),
        layers.MaxPooling2D(pool_size=2),
        layers.Flatten(),
        layers.Dense(100, activation="relu", kernel_regularizer=l2),
        layers.Dense(100, activation="relu", kernel_regularizer=l2),
        layers.Dense(num_classes, activation="softmax", kernel_regularizer=l2, dtype="float32"),
    ], name="nielsen_dense100")


# ## Compile and train
def build_and_compile(config: TrainConfig, num_classes: int, training_images: int) -> keras.Model:
    if config.model == "nielsen_dense100":
        model = build_nielsen_dense100(num_classes, config.model_options["l2_lambda"], training_images)
    else:
        model = build_nielsen(num_classes)
    # 0.03 at Nielsen's batch of 10: the step per image his mean cost gives (the global batch, when distributed)
    learning_rate = 0.03 * distribute.global_batch_size(config) / 10
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def train(run: Run, data: TrainVal) -> keras.callbacks.History:
    """Build, compile and fit the run's network on `data`, keeping everything in `run`; returns
    fit's History (model.keras, with the best validation epoch's weights, is in the run's folder)."""
    config = run.config
    keras.utils.set_random_seed(config.seed)  # the same seed: the same initial weights, dropout and batches
    with run.scope():  # the arithmetic of --precision, and --distribute's devices
        model = build_and_compile(config, data.num_classes, len(data.y_train))

    # Locks the run and writes config.json; with --resume, the model and optimizer continue from the backup.
    with run.training(model, data):
        # fit's History: history.history holds this fit's loss, accuracy, val_loss and val_accuracy, epoch
        # by epoch; history.csv holds the same columns for every epoch of the run, across resumes
        history = model.fit(run.train_batches, validation_data=run.val_batches, epochs=config.epochs,
                            steps_per_epoch=run.steps_per_epoch, initial_epoch=run.epochs_done,
                            # run.callbacks(): history.csv, best.weights.h5, summary.json, the backup, HParams
                            callbacks=[keras.callbacks.TensorBoard(log_dir=run.logs_dir), *run.callbacks()],
                            verbose=run.verbose)
        run.save(model)  # model.keras with the best epoch's weights, and the run marked complete
    return history


# ## The data, then training
def main(argv=None):
    """Train the step; returns fit's History (None where nothing was trained: the run was already complete, or an
    ensemble)."""
    args = parser.parse_args(argv)
    defaults = VARIANTS[args.variant]
    if args.ensemble > 1:
        defaults = replace(defaults, run_name=f"{defaults.run_name}-ensemble{args.ensemble}", ensemble=args.ensemble)
    config = cli.config_from_args(args, defaults)
    run = Run(config)
    # An existing run is left alone unless --resume or --overwrite says otherwise; a complete one is compared with
    # the network built here (a layer edited since it trained is refused, not taken for the trained one).
    if not run.needs_training(network=lambda classes, images: build_and_compile(config, classes, images)):
        return
    data = load_training_data(config)  # the last 10,000 images validate; the first 50,000 with their shifted copies train
    print(f"Nielsen's protocol: {len(data.y_train):,} training images after the one-pixel shifts, "
          f"{len(data.y_val):,} validation, batch {config.batch_size}")
    if config.ensemble == 1:
        return train(run, data)
    else:
        train_ensemble(config, data, train)


if __name__ == "__main__":
    interrupts.run_main(main)
