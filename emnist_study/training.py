"""Compile-time helpers and `fit`: the callbacks every run gets, and what it writes when it ends.

Every run gets: TensorBoard logs, TerminateOnNaN, and a `RunRecorder` that, after every epoch, commits the
training state to the run's backup (backup.py: what --resume continues from), then writes history.csv,
summary.json and the best-validation weights from it.
"""

import math
import os
import shutil
import sys
import time
from dataclasses import asdict, replace

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
import numpy as np

from . import backup, cli, data, distribute, hparams, models, pipeline, precision, recipes, subunits
from .data import TrainVal, stratified_split
from .errors import UserError
from .runs import (Run, TrainConfig, atomic_write, member_seed, nearest_existing, now, read_json, write_csv_atomic,
                   write_json_atomic)

OPTIMIZERS = {
    "adadelta": keras.optimizers.Adadelta,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
}


def build_optimizer(spec: dict, schedule: dict | None = None, total_steps: int | None = None):
    """An optimizer from its config, e.g. {"name": "adadelta", "learning_rate": 1.0, "rho": 0.95}.

    Every setting is spelled out in the config rather than left to library defaults: Keras 3 changed Adadelta's
    default learning rate from 1.0 to 0.001, which silently ruins the mnist_cnn reproduction.
    With schedule {"name": "cosine", "warmup_fraction": f}, the learning rate climbs linearly from 0 to the
    configured one over the first f of the `total_steps`, then follows a cosine down to 0.
    """
    settings = dict(spec)
    if schedule:
        peak = settings.pop("learning_rate")
        warmup = int(schedule.get("warmup_fraction", 0.0) * total_steps)
        if warmup:
            settings["learning_rate"] = keras.optimizers.schedules.CosineDecay(
                0.0, total_steps - warmup, warmup_target=peak, warmup_steps=warmup)
        else:
            settings["learning_rate"] = keras.optimizers.schedules.CosineDecay(peak, total_steps)
    return OPTIMIZERS[settings.pop("name")](**settings)


class RunRecorder(keras.callbacks.Callback):
    """Measures every epoch; once CommitEpoch commits it, writes history.csv, summary.json and the best weights
    (all atomically, and all agreeing with the backup: see backup.py)."""

    def __init__(self, run: Run, val_images: int, history: list[dict] = ()):
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
                               self.run.path("best.weights.h5"))
        self.write_files("running")
        backup.prune(self.run.backup_dir, keep_best={r["epoch"] for r in (best, best_before) if r})
        backup.pause_for_tests(f"epoch-end:{row['epoch']}")

    def write_files(self, status: str) -> None:
        write_csv_atomic(self.run.path("history.csv"), self.rows)
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
            "updated_at": now(),
            **extra,
        }
        write_json_atomic(self.run.path("summary.json"), summary)


class CommitEpoch(keras.callbacks.Callback):
    """Commits each epoch (RunRecorder.commit): after every callback that changes the model at an epoch's end."""

    def __init__(self, recorder: RunRecorder):
        super().__init__()
        self.recorder = recorder

    def on_epoch_end(self, epoch, logs=None):
        self.recorder.commit()


class TensorBoardEpochsFromOne(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback, logging epoch n as step n: Keras counts epochs from 0, while history.csv,
    the plots and the progress bar count from 1, and one run should read alike everywhere."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


# Tests only: seconds to pause after every training batch, so that a test can interrupt a run mid-epoch.
SLOW_BATCHES_ENV = "EMNIST_STUDY_TEST_SLOW_BATCHES"


class PauseAfterBatches(keras.callbacks.Callback):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def save_weights_atomic(model: keras.Model, path) -> None:
    with atomic_write(path) as tmp:
        model.save_weights(tmp)


def save_model_atomic(model: keras.Model, path) -> None:
    with atomic_write(path) as tmp:
        model.save(tmp)


def fit(model: keras.Model, data: TrainVal, config: TrainConfig, run: Run) -> list[dict]:
    """Train `model` (compiled) on `data`, recording everything in `run`. Returns the per-epoch history."""
    try:
        return fit_locked(model, data, config, run)
    finally:
        run.release()


# A run holds up to this many copies of its training state at once: best.weights.h5, the backup's two latest states
# and its best epoch's weights, the one being written, and model.keras before the backup is removed.
STATE_COPIES = 6


def refuse_if_no_room(model: keras.Model, run: Run) -> None:
    """A one-line refusal, before anything is written, when the run's disk has too little space for its files (a
    resumed run's files already there count as written). Catching it here rather than at the epoch that fills the
    disk saves the user an evening's wait."""
    state_bytes = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in backup.state_variables(model))
    written = sum(f.stat().st_size for f in run.dir.rglob("*") if f.is_file()) if run.dir.is_dir() else 0
    need = STATE_COPIES * state_bytes - written
    folder = nearest_existing(run.dir)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise UserError(f"training {run.dir.name} needs about {need / 2**20:,.0f} MB of disk for its weights and "
                        f"backups, but only {free / 2**20:,.0f} MB are free in {folder}: free some space there, or "
                        f"choose another --runs-dir")


def fit_locked(model: keras.Model, data: TrainVal, config: TrainConfig, run: Run) -> list[dict]:
    refuse_if_no_room(model, run)
    run.create(data.source)  # locks the run (until fit releases it): a second writer refuses
    resumed = backup.restore(model, run) if config.resume else None
    epochs_done = resumed["epoch"] if resumed else 0
    train_ds = pipeline.make_dataset(data.x_train, data.y_train, data.num_classes, config.batch_size,
                                     shuffle=True, seed=config.seed, augment=config.augment, repeat=True,
                                     paired_copies=config.paired_copies, start_epoch=epochs_done)
    val_ds = pipeline.make_dataset(data.x_val, data.y_val, data.num_classes, config.batch_size, shuffle=False)
    recorder = RunRecorder(run, len(data.y_val), resumed["history"] if resumed else ())
    recorder.set_model(model)
    callbacks = [
        pipeline.StopWhenInterrupted(),
        keras.callbacks.TerminateOnNaN(),
        recorder,
        CommitEpoch(recorder),
        TensorBoardEpochsFromOne(log_dir=str(run.logs_dir)),
        hparams.HParamsRecorder(recorder),  # the run's row in TensorBoard's HPARAMS tab
    ]
    if os.environ.get(SLOW_BATCHES_ENV):
        callbacks.append(PauseAfterBatches(float(os.environ[SLOW_BATCHES_ENV])))
    resplit = resplit_callback(data, config) if config.resplit_idle_units and config.subunits > 1 else None
    if resplit:
        # after the recorder, so best.weights.h5 holds the weights its validation accuracy was measured on;
        # before the commit, so a resumed run continues from the new split
        callbacks.insert(3, resplit)
    if recorder.rows:
        recorder.write_files("running")  # from the backup, which they may lag by an epoch
        print(f"Resuming {run.dir} from its backup after epoch {epochs_done} of {config.epochs}")
    print(f"Training the {recipes.network_name(asdict(config))} ({model.name}) on {data.dataset}: "
          f"{len(data.y_train):,} training and {len(data.y_val):,} "
          f"validation images, {config.epochs} epochs, batch {config.batch_size}, {model.dtype_policy.name}. "
          f"Run directory: {run.dir}")
    try:
        if epochs_done < config.epochs:  # (all done where a run was stopped while saving its model)
            # shuffle=False: the dataset already reshuffles itself every epoch.
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, shuffle=False,
                      steps_per_epoch=pipeline.steps_per_epoch(len(data.y_train), config.batch_size),
                      initial_epoch=epochs_done, verbose=1 if sys.stdout.isatty() else 2)
    except BaseException as exc:
        # Ctrl-C raised inside TensorFlow's C++ code can come out as another error (a TypeError, a SystemError)
        if not (isinstance(exc, KeyboardInterrupt) or cli.interrupted()):
            raise
        recorder.write_summary("interrupted")
        raise KeyboardInterrupt(f"interrupted after {len(recorder.rows)} completed epoch(s) of {run.dir}") from None
    if recorder.diverged:  # TerminateOnNaN stopped it
        recorder.write_summary("diverged")
        raise UserError(f"training diverged (the loss became NaN in epoch {len(recorder.rows) + 1}); "
                        f"try a lower learning rate. The best weights so far are in {run.path('best.weights.h5')}")
    if config.select == "best_val":  # the model is the epoch with the best validation accuracy, not the last
        model.load_weights(run.path("best.weights.h5"))
    extra = {}
    if resplit:  # the restarts of this process (a resumed run's earlier ones are in its log)
        extra["resplits"] = [{"after_epoch": epoch, "class": c} for epoch, c in resplit.resplits]
    if config.test_time_views:
        model = models.with_test_time_views(model, config.augment, config.test_time_views)
        extra["val_accuracy_with_views"] = validation_accuracy(model, data)
        print(f"Predicting from the image and {config.test_time_views} distorted copies: validation accuracy "
              f"{extra['val_accuracy_with_views']:.4f}")
    save_model_atomic(model, run.path("model.keras"))
    backup.pause_for_tests("final-save")
    recorder.write_summary("complete", finished_at=now(), model_keras_holds=config.select, **extra)
    shutil.rmtree(run.backup_dir, ignore_errors=True)  # only now: a run stopped before this resumes from it
    best = recorder.best_row()
    print(f"Done: best validation accuracy {best['val_accuracy']:.4f} at epoch {best['epoch']}; "
          f"saved to {run.dir}")
    return recorder.rows


def resplit_callback(data: TrainVal, config: TrainConfig, sample: int = 10_000) -> subunits.ResplitIdleSubunits:
    """The case-aware head's restart of collapsed classes, judged on a fixed, stratified sample of the training
    images (all of them, where there are fewer)."""
    keep = (np.arange(len(data.y_train)) if len(data.y_train) <= sample
            else stratified_split(data.y_train, sample, config.seed)[1])
    return subunits.ResplitIdleSubunits(data.x_train[keep], data.y_train[keep], config.subunits,
                                        config.resplit_idle_units, seed=config.seed,
                                        class_names=data.class_names)


def validation_accuracy(model: keras.Model, data: TrainVal) -> float:
    return float((pipeline.predict(model, data.x_val).argmax(axis=1) == data.y_val).mean())


def compile_model(model: keras.Model, config: TrainConfig, training_images: int | None = None) -> keras.Model:
    """Compile with the config's optimizer (and schedule, which needs the number of training images), loss
    and label smoothing."""
    total_steps = pipeline.steps_per_epoch(training_images or 0, config.batch_size) * config.epochs
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
            if config.label_smoothing else config.loss)
    model.compile(optimizer=build_optimizer(config.optimizer, config.schedule, total_steps), loss=loss,
                  metrics=["accuracy"])
    return model


def load_dataset(config: TrainConfig, expand: bool = True) -> TrainVal:
    """Training and validation data as the config describes (never the test set). `expand=False` skips the
    shifted copies of the training images, for code that wants the validation set alone."""
    dataset = data.load_train_val(config.dataset, val_fraction=config.val_fraction, seed=config.seed,
                                  data_dir=config.data_dir, limit=config.limit_images, validation=config.validation)
    if config.expand_shifts and expand:
        dataset.x_train, dataset.y_train = data.expand_with_shifts(dataset.x_train, dataset.y_train)
    return dataset


def train(config: TrainConfig, dataset: TrainVal | None = None, **build_options) -> keras.Model:
    """The whole of an ordinary training run: check the run directory, load the data, build, compile, fit.

    Returns the trained model (with the best-validation weights when config.select says so). A run that --resume
    finds complete is loaded, not retrained. `build_options` go to the model builder beside config.model_options.
    """
    run = Run(config)
    if not run.needs_training():  # checked before loading anything: never clobbers an existing run
        return models.load(run.path("model.keras"))
    dataset = dataset or load_dataset(config)
    keras.utils.set_random_seed(config.seed)  # same seed: same initial weights, dropout masks and batch order
    with precision.policy(config.precision), distribute.scope(config):
        model = models.build(config.model, dataset.num_classes, **config.model_options, **build_options)
        compile_model(model, distribute.per_step(config), len(dataset.y_train))
        distribute.make_optimizer_variables(model, config)
    if config.summary:
        model.summary()
    fit(model, dataset, distribute.per_step(config), run)
    return model


def train_ensemble(config: TrainConfig, dataset: TrainVal, **build_options) -> keras.Model:
    """Train config.ensemble members (seeds from runs.member_seed) under runs/<name>/members/, then save one model
    that combines them (config.ensemble_combine: Nielsen's majority "vote", or the "average" of probabilities).
    Member i also takes the settings of config.ensemble_variants[i % len], where there are any.

    A finished member is kept and an interrupted one resumes, so a stopped ensemble picks up where it was.
    With config.test_time_views, the combined model predicts from the image and that many distorted copies.
    """
    run = Run(config)
    try:
        return train_ensemble_locked(run, dataset, **build_options)
    finally:
        run.release()


def train_ensemble_locked(run: Run, dataset: TrainVal, **build_options) -> keras.Model:
    config = run.config
    run.create(dataset.source)  # locks the run (until train_ensemble releases it)
    members = []
    for i in range(config.ensemble):
        variant = config.ensemble_variants[i % len(config.ensemble_variants)] if config.ensemble_variants else {}
        member_config = replace(config, **variant, run_name=f"member{i + 1}", seed=member_seed(config.seed, i),
                                ensemble=1, summary=config.summary and i == 0, ensemble_variants=[],
                                test_time_views=0, runs_dir=str(run.dir / "members"),
                                logs_dir=str(run.logs_dir / "members"), overwrite=False, resume=True)
        print(f"Ensemble member {i + 1} of {config.ensemble} (seed {member_config.seed}"
              + "".join(f", {key} {value}" for key, value in variant.items()) + ")")
        member = train(member_config, dataset, **build_options)
        member.name = member_config.run_name  # the combined model needs distinct names
        members.append(member)
    combine = models.majority_vote if config.ensemble_combine == "vote" else models.average_ensemble
    ensemble = combine(members, name=config.run_name)
    if config.test_time_views:
        ensemble = models.with_test_time_views(ensemble, config.augment, config.test_time_views)
    val_accuracy = validation_accuracy(ensemble, dataset)
    save_model_atomic(ensemble, run.path("model.keras"))
    member_summaries = [read_json(run.dir / "members" / m.name / "summary.json") for m in members]
    write_json_atomic(run.path("summary.json"), {
        "status": "complete", "members": config.ensemble, "combine": config.ensemble_combine,
        "test_time_views": config.test_time_views,
        "params": ensemble.count_params(), "best_val_accuracy": val_accuracy, "final_val_accuracy": val_accuracy,
        "val_images": len(dataset.y_val),
        "member_best_val_accuracy": [s["best_val_accuracy"] for s in member_summaries],
        "train_seconds": round(sum(s["train_seconds"] for s in member_summaries), 2),
        "seconds_per_epoch": round(sum(s["seconds_per_epoch"] for s in member_summaries) / config.ensemble, 2),
        "finished_at": now(),
    })
    hparams.record_ensemble(run, read_json(run.path("summary.json")))
    views = f", from the image and {config.test_time_views} distorted copies" if config.test_time_views else ""
    print(f"Ensemble of {config.ensemble} ({config.ensemble_combine}{views}): validation accuracy {val_accuracy:.4f}; "
          f"saved to {run.dir}")
    return ensemble
