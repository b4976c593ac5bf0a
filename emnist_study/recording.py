"""What a run records as it trains: the network it built (each layer as a line, the compiled optimizer's settings,
for config.json) and each epoch (RunRecorder: fit's History as history.csv, summary.json, the best weights), all
committed through the run's backup so that they agree after any kill."""

import math
import time

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras

from . import backup, run_folder
from .run_folder import atomic_write

# The settings of a compiled optimizer that a run records (those a script may set; off switches are left out).
OPTIMIZER_SETTINGS = ("learning_rate", "rho", "momentum", "nesterov", "centered", "beta_1", "beta_2", "epsilon",
                      "amsgrad", "weight_decay")
# What config.json records of each layer (where the layer has it), so that a changed layer shows in the run.
LAYER_SETTINGS = ("units", "filters", "kernel_size", "strides", "padding", "activation", "rate", "pool_size",
                  "use_bias", "momentum", "subunits", "paired_copies")


def optimizer_settings(optimizer: keras.optimizers.Optimizer) -> dict:
    """What a compiled optimizer trains with, as a recipe names it: {"name": "adadelta", "learning_rate": 1.0, ...}."""
    config = optimizer.get_config()
    settings = {"name": type(optimizer).__name__.lower()}
    for key in OPTIMIZER_SETTINGS:
        value = config.get(key)
        if value in (None, False) or (key == "momentum" and value == 0):
            continue
        # a float32 variable's 0.0010000000474974513 is the 0.001 the script wrote
        settings[key] = float(f"{value:.7g}") if isinstance(value, float) else value
    return settings


def network_layers(model: keras.Model) -> list[str]:
    """Each layer of the network as one line: "Conv2D(filters=32, kernel_size=[3, 3], activation=relu)"."""
    lines = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # an ensemble's member, or a network inside a wrapper
            lines += [f"{layer.name}/{line}" for line in network_layers(layer)]
            continue
        config = layer.get_config()
        shown = [f"{key}={config[key]}" for key in LAYER_SETTINGS if key in config and config[key] is not None]
        if config.get("kernel_regularizer"):  # {"class_name": "L2", "config": {"l2": 2e-05}, ...}
            shown.append(f"kernel_regularizer={config['kernel_regularizer']['config']}")
        initializer = (config.get("kernel_initializer") or {}).get("class_name", "GlorotUniform")
        if initializer != "GlorotUniform":  # Keras's default
            shown.append(f"kernel_initializer={initializer}")
        lines.append(f"{type(layer).__name__}({', '.join(shown)})".replace("'", ""))
    return lines


class RunRecorder(keras.callbacks.Callback):
    """Measures every epoch; once CommitEpoch commits it, writes history.csv, summary.json and the best weights
    (all atomically, and all agreeing with the backup: see backup.py)."""

    def __init__(self, run, val_images: int, history: list[dict] = ()):  # run: the Run it records
        super().__init__()
        self.run = run
        self.val_images = val_images
        self.rows = list(history)  # the committed epochs
        self.measured = None  # the epoch just measured, until it is committed
        self.diverged = False
        self.epoch_started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
               "seconds": time.perf_counter() - self.epoch_started}
        self.measured = row
        if math.isnan(row.get("loss", 0.0)):  # TerminateOnNaN stops the run; this epoch is never committed
            self.diverged = True
        elif self.improves(row):  # saved now: a later callback (the case-aware head's re-split) may change them
            self.run.backup_dir.mkdir(exist_ok=True)
            save_weights_atomic(self.model, backup.best_weights_path(self.run.backup_dir, row["epoch"]))

    def improves(self, row: dict) -> bool:
        best = self.best_row()
        return best is None or row.get("val_accuracy", -1) > best["val_accuracy"]

    def commit(self) -> None:
        """The epoch measured last is done: its state goes into the backup, then history.csv, summary.json and,
        where it is the best so far, best.weights.h5 follow."""
        row, self.measured = self.measured, None
        if row is None or self.diverged:
            return
        improved, best_before = self.improves(row), self.best_row()
        self.rows.append(row)
        best = self.best_row()
        backup.save_state(self.model, self.run.backup_dir, row["epoch"], self.rows, best and best["epoch"])
        if improved:
            backup.copy_atomic(backup.best_weights_path(self.run.backup_dir, row["epoch"]),
                               run_folder.best_weights_path(self.run.dir))
        self.write_files("running")
        backup.prune(self.run.backup_dir, keep_best={r["epoch"] for r in (best, best_before) if r})

    def write_files(self, status: str) -> None:
        run_folder.write_history(self.run.dir, self.rows)
        self.write_summary(status)

    def best_row(self) -> dict | None:
        rows = [r for r in self.rows if not math.isnan(r.get("val_accuracy", math.nan))]
        return max(rows, key=lambda r: r["val_accuracy"]) if rows else None

    def write_summary(self, status: str, **extra) -> None:
        best = self.best_row()
        seconds = sum(r["seconds"] for r in self.rows)
        summary = {
            "status": status,
            "epochs_completed": len(self.rows),
            "epochs_planned": self.run.config.epochs,
            "params": self.model.count_params(),
            "best_epoch": best["epoch"] if best else None,
            "best_val_accuracy": best["val_accuracy"] if best else None,
            "final_val_accuracy": self.rows[-1].get("val_accuracy") if self.rows else None,
            "train_seconds": round(seconds, 2),
            "seconds_per_epoch": round(seconds / len(self.rows), 2) if self.rows else None,
            "val_images": self.val_images,
            **extra,
        }
        run_folder.write_summary(self.run.dir, **summary)


class CommitEpoch(keras.callbacks.Callback):
    """Commits each epoch (RunRecorder.commit): after every callback that changes the model at an epoch's end."""

    def __init__(self, recorder: RunRecorder):
        super().__init__()
        self.recorder = recorder

    def on_epoch_end(self, epoch, logs=None):
        self.recorder.commit()


def save_weights_atomic(model: keras.Model, path) -> None:
    with atomic_write(path) as tmp:
        model.save_weights(tmp)


def save_model_atomic(model: keras.Model, path) -> None:
    with atomic_write(path) as tmp:
        model.save(tmp)


