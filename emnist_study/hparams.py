"""Runs side by side in TensorBoard: every run's hyperparameters and final metrics through the HParams plugin (the
HPARAMS tab of `tensorboard --logdir logs`, one row per run, sortable by any column), and its figures in the
IMAGES tab.

Each run's log folder, logs/<run-name>/, is one HParams session: its hyperparameters are config.json's settings
(those that define the run; nested ones flattened, "optimizer.learning_rate"), written when training starts, so
that a run still training is listed too; its final metrics (final_metrics) are written when it ends. TensorBoard
also offers the per-epoch scalars under logs/<run-name>/train and /validation as columns (their last values).
"""

import json
import time
from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before TensorFlow starts)
import keras
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from .config import TrainConfig
from . import run_folder
from .run_folder import read_summary

def hyperparameters(config: TrainConfig) -> dict:
    """The run's defining settings as HParams values (bool, number or string): nested dicts flattened with '.',
    lists as JSON; unset (None) and empty settings left out."""
    flat = {}

    def add(name, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                add(f"{name}.{key}", inner)
        elif isinstance(value, (list, tuple)):
            if value:
                flat[name] = json.dumps(value)
        elif value is not None:
            flat[name] = value if isinstance(value, (bool, int, float, str)) else str(value)

    for name, value in config.defining_fields().items():
        if name != "run_name":  # the session's own name already
            add(name, value)
    return flat


def tensorboard_step(epoch: int) -> int:
    """Where epoch `epoch` (counted from 1, as history.csv and the plots count) sits in TensorBoard, whose
    keras.callbacks.TensorBoard counts epochs from 0 as Keras does: a run's final metrics and figures go beside
    its last epoch's scalars."""
    return max(epoch - 1, 0)


def write_session(logs_dir, config: TrainConfig) -> None:
    """Open the run's HParams session: its hyperparameters, in logs_dir itself."""
    writer = tf.summary.create_file_writer(str(logs_dir))
    with writer.as_default():
        hp.hparams(hyperparameters(config), trial_id=trial_id(config), start_time_secs=int(time.time()))
    writer.close()


def trial_id(config: TrainConfig) -> str:
    """The run's row name in the HPARAMS tab, as TensorBoard names its logs: an ensemble's member under its
    ensemble (exp_ensemble_tta/members/member1), so that members of different ensembles stay apart."""
    logs_dir = Path(config.logs_dir)
    return (f"{logs_dir.parent.name}/{run_folder.MEMBERS}/{config.run_name}" if logs_dir.name == run_folder.MEMBERS
            else config.run_name)


def write_metrics(logs_dir, metrics: dict, step: int) -> None:
    """The run's final metrics, as scalars at `step` (its last epoch) in logs_dir, where HParams looks for them."""
    writer = tf.summary.create_file_writer(str(logs_dir))
    with writer.as_default():
        for name, value in metrics.items():
            if value is not None:
                tf.summary.scalar(name, float(value), step=step)
    writer.close()


def final_metrics(rows: list[dict], best: dict | None) -> dict:
    """The columns of the HPARAMS tab a finished run fills in, validation accuracy first, as the study judges by it:
    from its history rows (one per completed epoch) and its best row."""
    if not rows:
        return {}
    last = rows[-1]
    return {"best_val_accuracy": best and best.get("val_accuracy"), "best_epoch": best and best["epoch"],
            "final_val_accuracy": last.get("val_accuracy"), "final_val_loss": last.get("val_loss"),
            "final_accuracy": last.get("accuracy"), "final_loss": last.get("loss"),
            "train_seconds": sum(r.get("seconds", 0.0) for r in rows)}


class HParamsRecorder(keras.callbacks.Callback):
    """Opens the run's HParams session when training starts; writes its final metrics when training ends, from
    the rows the run's recorder (run.RunRecorder) committed, a resumed run's earlier epochs included."""

    def __init__(self, recorder):
        super().__init__()
        self.recorder = recorder

    def on_train_begin(self, logs=None):
        write_session(self.recorder.run.logs_dir, self.recorder.run.config)

    def on_train_end(self, logs=None):
        rows = self.recorder.rows
        write_metrics(self.recorder.run.logs_dir, final_metrics(rows, self.recorder.best_row()),
                      step=tensorboard_step(rows[-1]["epoch"]) if rows else 0)


def record_ensemble(run, summary: dict) -> None:
    """An ensemble's own session (its members have theirs, under members/): its settings and the combined
    model's validation accuracy."""
    write_session(run.logs_dir, run.config)
    write_metrics(run.logs_dir, {"best_val_accuracy": summary["best_val_accuracy"],
                                 "final_val_accuracy": summary["final_val_accuracy"],
                                 "train_seconds": summary["train_seconds"]}, step=tensorboard_step(run.config.epochs))


def run_logs_dir(saved_config: dict) -> Path | None:
    """Where a saved run's TensorBoard logs are (config.json's logs_dir and run name), if they exist."""
    path = Path(saved_config.get("logs_dir", "logs")) / saved_config["run_name"]
    return path if path.is_dir() else None


def write_images(logs_dir, pngs: dict, step: int) -> None:
    """PNG files into the run's IMAGES tab, each under its tag ({"validation/confusion": path, ...})."""
    writer = tf.summary.create_file_writer(str(logs_dir))
    with writer.as_default():
        for tag, path in pngs.items():
            image = tf.image.decode_png(tf.io.read_file(str(path)), channels=3)
            tf.summary.image(tag, image[tf.newaxis], step=step)
    writer.close()


def add_figures(run_dir: Path, saved_config: dict, pngs: dict) -> Path | None:
    """A finished run's figures into its IMAGES tab, at its last epoch; returns the log folder written to (None
    where the run's logs are not on this machine)."""
    logs_dir = run_logs_dir(saved_config)
    if logs_dir is None:
        return None
    step = read_summary(run_dir).get("epochs_completed") if run_folder.has_summary(run_dir) else None
    write_images(logs_dir, pngs, step=tensorboard_step(step or saved_config["epochs"]))
    return logs_dir
