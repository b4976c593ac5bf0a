"""The run folder, as one object: a step script creates it, hands its callbacks to `model.fit`, and saves through it.

    run = Run(config)
    if run.needs_training():                 # refuses to touch an existing run unless --resume or --overwrite
        with run.scope():                    # mixed precision and tf.distribute, where the flags ask for them
            model = build(...); model.compile(...)
        with run.training(model, data):      # locks the run, writes config.json, restores the backup on --resume
            model.fit(run.train_batches, validation_data=run.val_batches, epochs=config.epochs,
                      steps_per_epoch=run.steps_per_epoch, initial_epoch=run.epochs_done,
                      callbacks=[keras.callbacks.TensorBoard(log_dir=run.logs_dir), *run.callbacks()])
            model = run.save(model)          # model.keras, the summary marked complete, the backup removed

After every epoch the callbacks commit the training state to the run's backup (backup.py: what --resume continues
from, exactly, after any kill), then write history.csv, summary.json and the best-validation weights from it.
What the script built is recorded too: config.json holds the network's layers and the compiled optimizer's
settings, so a layer or a learning rate changed in a script is in the run, and --resume refuses a changed one.
"""

import errno
import fcntl
import math
import os
import re
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
import numpy as np

from . import backup, distribute, hparams, interrupts, pipeline, precision, recipes
from .config import TrainConfig
from .data import TrainVal, stratified_split
from .errors import UserError
from .records import (BACKUP_STATE_GLOB, atomic_write, library_versions, lock_path, nearest_existing, now,
                      read_json, read_run_config, run_writer, remove_partial_files, write_csv_atomic, write_json_atomic)
from .words import plural

RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_RUN_NAME = 100
# A run holds up to this many copies of its training state at once: the backup's two latest states and the one
# being written, up to three best-epoch weight files (the best, the one before it, the epoch just measured), and
# best.weights.h5 with its new copy being written. (A weights file of a compiled model holds its optimizer's
# variables too, so it is as big as a state: measured, the warm-up MLP's peak was 8 states, 41 MiB.)
STATE_COPIES = 8
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

    def __init__(self, run: "Run", val_images: int, history: list[dict] = ()):
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


def save_weights_atomic(model: keras.Model, path) -> None:
    with atomic_write(path) as tmp:
        model.save_weights(tmp)


def save_model_atomic(model: keras.Model, path) -> None:
    with atomic_write(path) as tmp:
        model.save(tmp)


class Run:
    """One run's folder: the rules for creating, replacing and resuming it, its lock, and what it records."""

    def __init__(self, config: TrainConfig):
        name = config.run_name
        if not RUN_NAME_PATTERN.match(name) or len(name) > MAX_RUN_NAME:
            raise UserError(f"run name {name!r} must be 1 to {MAX_RUN_NAME} letters, digits, '.', '_' "
                            f"or '-', starting with a letter or digit")
        self.config = config
        self.dir = Path(config.runs_dir) / name
        self.logs_dir = Path(config.logs_dir) / name
        self.backup_dir = self.dir / "backup"
        # Beside the run's folder, not in it: --overwrite deletes the folder, and the lock must outlive that.
        self.lock_path = lock_path(self.dir)
        self._lock_file = None
        self.recorder = None
        self.epochs_done = 0

    def path(self, name: str) -> Path:
        return self.dir / name

    # --- before any slow work -----------------------------------------------------------------------------------

    def needs_training(self, network=None) -> bool:
        """Call before any slow work. Refuses to touch an existing run unless asked to; with --resume, says a
        complete run is complete and returns False, after comparing it with `network`, where given:
        `network(num_classes, training_images)` builds (and compiles) the network the script trains now, for the
        numbers the run recorded (see refuse_changed_network)."""
        runs_dir = Path(self.config.runs_dir)
        if runs_dir.exists() and not runs_dir.is_dir():
            raise UserError(f"--runs-dir {runs_dir} is a file, not a folder; name a folder")
        writable = nearest_existing(runs_dir)  # a runs_dir that is a file was refused above
        if not os.access(writable, os.W_OK):
            raise UserError(f"cannot write in {writable}: choose a --runs-dir you can write to")
        self.refuse_if_written()
        if not self.exists():
            return True
        if self.config.resume:
            if not self.path("config.json").is_file():
                raise UserError(f"{self.dir} has no config.json, so it cannot be resumed; use --overwrite")
            self.refuse_changed_settings(read_run_config(self.dir), self.config)
            if self.resumable_status() == "complete":
                if network is not None:
                    self.refuse_changed_network(network)
                print(f"{self.dir} is already complete; nothing to resume (use --overwrite to train it again)")
                return False
        elif not self.config.overwrite:
            raise UserError(f"{self.dir} already exists: pass --resume to continue it, --overwrite to replace it, "
                            f"or --run-name to train under another name")
        return True

    def refuse_changed_settings(self, saved: dict, config: TrainConfig) -> None:
        """A run continues only as the run it was: the same settings (an optimizer a script has not compiled yet,
        {}, is compared once it has: see training)."""
        current = config.defining_fields()
        if not current["optimizer"]:
            current["optimizer"] = saved.get("optimizer")
        changed = {k: (saved.get(k, "(not recorded)"), v) for k, v in current.items() if saved.get(k) != v}
        if changed:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise UserError(f"cannot resume {self.dir} with different settings ({what}); "
                            f"use the same flags, or --overwrite to start again")

    def refuse_changed_network(self, network) -> None:
        """A complete run stands for the network it trained, so a layer or a compile setting edited in the script
        since must not be taken for it: the network built now is compared with the layers and optimizer settings
        config.json records. (Runs recorded before config.json held the number of classes are not compared.)"""
        saved = read_json(self.path("config.json"))
        if not saved.get("network"):  # an ensemble: its members trained the network
            member = self.dir / "members" / "member1" / "config.json"
            saved = read_json(member) if member.is_file() else {}
        recorded = saved.get("network") or {}
        if not recorded.get("layers") or not recorded.get("classes"):
            return
        with self.scope():
            model = network(recorded["classes"], recorded.get("training_images", 0))
        before, now_ = recorded["layers"], network_layers(model)
        changes = [f"layer {i + 1} {old} -> {new}" for i, (old, new) in enumerate(zip(before, now_)) if old != new]
        if len(before) != len(now_):
            changes.append(f"{len(before)} layers -> {len(now_)}")
        if not self.config.optimizer and model.optimizer is not None:  # the script compiles: its settings count
            old, new = saved.get("config", {}).get("optimizer"), optimizer_settings(model.optimizer)
            if old != new:
                changes.append(f"optimizer {old} -> {new}")
        if changes:
            raise UserError(f"{self.dir} is complete, but the network {self.config.script} builds now differs from "
                            f"the one it trained ({'; '.join(changes)}): train it again with --overwrite, or under "
                            f"another --run-name")

    def exists(self) -> bool:
        return self.dir.is_dir() and any(self.dir.iterdir())

    def resumable_status(self) -> str | None:
        """The status summary.json records (None before it exists). An unreadable summary.json of a run with a
        backup is no obstacle: the backup holds everything the summary says, and resuming rewrites it."""
        summary = self.path("summary.json")
        try:
            return read_json(summary).get("status") if summary.is_file() else None
        except UserError:
            if not any(self.backup_dir.glob(BACKUP_STATE_GLOB)):
                raise
            print(f"{summary} cannot be read; continuing from the backup, which rewrites it")
            return None

    # --- the lock -------------------------------------------------------------------------------------------------

    def writer(self) -> str | None:
        """The process ID of another process writing this run now (its lock held), or None."""
        return run_writer(self.dir)

    def refuse_if_written(self) -> None:
        holder = self.writer()
        if holder:
            raise UserError(f"{self.dir} is being written by another process (PID {holder}); wait for it to "
                            f"finish or stop it, or train under another --run-name")

    def lock(self) -> None:
        """Hold the run's lock (an flock on its lock file) until release(), or until this process ends however
        it ends (the system drops the lock of a killed process): a second writer refuses at once."""
        if self._lock_file:
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.lock_path, "a+b")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                self.refuse_if_written()
                continue  # let go just now: try again
            try:  # the holder before us removes the file as it lets go: then lock the new one
                if os.stat(self.lock_path).st_ino == os.fstat(f.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            f.close()
        f.truncate(0)
        f.write(f"{os.getpid()}\n".encode())
        f.flush()
        self._lock_file = f

    def release(self) -> None:
        if self._lock_file:
            self.lock_path.unlink(missing_ok=True)  # while still held: see lock()
            self._lock_file.close()
            self._lock_file = None

    # --- creating the folder --------------------------------------------------------------------------------------

    def create(self, data_source: dict, model: keras.Model | None = None, data: TrainVal | None = None) -> None:
        """Lock the run (see lock), create (or, with --overwrite, replace) its directory and write config.json:
        the settings, the network's layers (where a model is given, with the number of classes and training
        images it was built for), the data and the library versions."""
        self.lock()
        config = self.config
        if config.resume and not self.path("config.json").is_file():
            print(f"Nothing to resume at {self.dir}: starting a new run")
        record = {"config": asdict(config), "data": data_source, "versions": library_versions(),
                  "started_at": now()}
        if model is not None:
            record["network"] = {"name": model.name, "params": model.count_params(), "layers": network_layers(model)}
            if data is not None:
                record["network"].update(classes=data.num_classes, training_images=len(data.y_train))
        if config.resume and self.path("config.json").is_file():
            saved = read_json(self.path("config.json"))
            self.refuse_changed_settings(saved.get("config", {}), config)
            self.refuse_other_data(saved.get("data") or {}, data_source)
            if "network" in record and saved.get("network", {}).get("layers") != record["network"]["layers"]:
                raise UserError(f"cannot resume {self.dir}: its network has changed since it was saved (config.json "
                                f"records its layers); undo the change, or --overwrite to start again")
            record["started_at"] = saved.get("started_at", record["started_at"])
            record["resumed_at"] = now()
        if config.overwrite and not config.resume:
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(self.logs_dir, ignore_errors=True)
        for directory in (self.dir, self.logs_dir):
            if directory.is_symlink() and not directory.exists():
                raise UserError(f"{directory} is a link to {os.readlink(directory)}, which does not exist: create "
                                f"that folder (a disk not mounted?), or remove the link")
            directory.mkdir(parents=True, exist_ok=True)
        for directory in (self.dir, self.backup_dir):
            remove_partial_files(directory)
        write_json_atomic(self.path("config.json"), record)

    def refuse_other_data(self, recorded: dict, found: dict) -> None:
        """A run resumed on other data would be trained on one file for its first epochs and on another for the
        rest, with nothing to show it: refused, naming both, unless the files hold the same bytes (a data folder
        moved elsewhere is the same data)."""
        before, now_ = recorded.get("files") or {}, found.get("files") or {}
        if sorted(before.values()) == sorted(now_.values()):
            return

        def named(files: dict) -> str:
            return ", ".join(f"{path} (sha256 {digest[:12]}...)" for path, digest in files.items()) or "none"

        raise UserError(f"cannot resume {self.dir} on other data: it was trained on {named(before)}, and the data "
                        f"found now is {named(now_)}; point --data-dir at the data it was trained on, or start "
                        f"again with --overwrite")

    def refuse_if_no_room(self, model: keras.Model) -> None:
        """A one-line refusal, before anything is written, when the run's disk has too little space for its files
        (a resumed run's files already there count as written). Catching it here rather than at the epoch that
        fills the disk saves the user an evening's wait."""
        state_bytes = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in backup.state_variables(model))
        written = sum(f.stat().st_size for f in self.dir.rglob("*") if f.is_file()) if self.dir.is_dir() else 0
        need = STATE_COPIES * state_bytes - written
        folder = nearest_existing(self.dir)
        free = shutil.disk_usage(folder).free
        if free < need:
            raise UserError(f"training {self.dir.name} needs about {need / 2**20:,.0f} MB of disk for its weights "
                            f"and backups, but only {free / 2**20:,.0f} MB are free in {folder}: free some space "
                            f"there, or choose another --runs-dir")

    # --- training -------------------------------------------------------------------------------------------------

    @contextmanager
    def scope(self):
        """Where to build and compile the network: under the run's arithmetic (--precision) and, with
        --distribute, inside the strategy's scope, so that its variables are mirrored."""
        with precision.policy(self.config.precision), distribute.scope(self.config):
            yield

    @contextmanager
    def training(self, model: keras.Model, data: TrainVal):
        """Everything `model.fit` needs from the run, while the run is locked: config.json written (with the
        compiled optimizer's settings, where the config left them to the script), the training state restored
        from the backup on --resume, the training and validation batches. An interruption (Ctrl-C, SIGTERM,
        SIGHUP) inside marks the run "interrupted" and ends it as a KeyboardInterrupt naming the epochs done."""
        if not self.config.optimizer:
            self.config = replace(self.config, optimizer=optimizer_settings(model.optimizer))
        config = self.config
        with self.scope():  # under a strategy, the optimizer's variables are made in its scope, like the model's
            distribute.make_optimizer_variables(model, config)
        self.refuse_if_no_room(model)
        try:
            recorded = self.path("config.json").is_file()  # without it, create says there is nothing to resume
            self.create(data.source, model, data)
            resumed = backup.restore(model, self) if config.resume else None
            self.epochs_done = resumed["epoch"] if resumed else 0
            if config.resume and recorded and not resumed:
                print(f"{self.dir} was stopped before its first epoch ended, so nothing of it is kept: training it "
                      f"from epoch 1")
            self.data = data
            batch_size = distribute.global_batch_size(config)
            self.train_batches = pipeline.make_dataset(
                data.x_train, data.y_train, data.num_classes, batch_size, shuffle=True, seed=config.seed,
                augment=config.augment, repeat=True, paired_copies=config.paired_copies, start_epoch=self.epochs_done)
            self.val_batches = pipeline.make_dataset(data.x_val, data.y_val, data.num_classes, batch_size,
                                                     shuffle=False)
            self.steps_per_epoch = pipeline.steps_per_epoch(len(data.y_train), batch_size)
            self.recorder = RunRecorder(self, len(data.y_val), resumed["history"] if resumed else ())
            self.recorder.set_model(model)
            self.resplit = resplit_callback(data, config) if config.resplit_idle_units and config.subunits > 1 \
                else None
            if self.recorder.rows:
                self.recorder.write_files("running")  # from the backup, which they may lag by an epoch
                print(f"Resuming {self.dir} from its backup after epoch {self.epochs_done} of {config.epochs}")
            if config.summary:
                model.summary()
            network = recipes.network_name(asdict(config))
            the = "" if "'s " in network else "the "  # "Training Nielsen's CNN", not "the Nielsen's"
            print(f"Training {the}{network} ({model.name}) on {data.dataset}: "
                  f"{len(data.y_train):,} training and {len(data.y_val):,} validation images, "
                  f"{plural(config.epochs, 'epoch')}, batch {batch_size}" + (f" ({config.batch_size} on each of {config.replicas} replicas)"
                                                    if batch_size != config.batch_size else "")
                  + f", {model.dtype_policy.name}. Run directory: {self.dir}")
            yield self
        except BaseException as exc:
            full = as_disk_full(exc, self.logs_dir)
            if full:  # TensorBoard's writers: the epochs committed so far are kept, and --resume goes on
                if self.recorder:
                    self.recorder.write_summary("interrupted")
                raise full from None
            # Ctrl-C raised inside TensorFlow's C++ code can come out as another error (a TypeError, a SystemError)
            if not (isinstance(exc, KeyboardInterrupt) or interrupts.interrupted()):
                raise
            if self.recorder:
                self.recorder.write_summary("interrupted")
            done = len(self.recorder.rows) if self.recorder else 0
            raise KeyboardInterrupt(f"interrupted after {plural(done, 'completed epoch')} of {self.dir}") from None
        finally:
            self.release()

    @property
    def verbose(self) -> int:
        """fit's progress: a bar at a terminal, one line per epoch in a log file."""
        return 1 if sys.stdout.isatty() else 2

    def callbacks(self) -> list:
        """The run's callbacks for `model.fit`: stop at once on an interruption or a NaN loss, commit every epoch
        to the backup and write history.csv, summary.json and best.weights.h5 from it, and record the run in
        TensorBoard's HPARAMS tab."""
        callbacks = [pipeline.StopWhenInterrupted(), keras.callbacks.TerminateOnNaN(), self.recorder]
        if self.resplit:
            # after the recorder, so best.weights.h5 holds the weights its validation accuracy was measured on;
            # before the commit, so a resumed run continues from the new split
            callbacks.append(self.resplit)
        return callbacks + [CommitEpoch(self.recorder), hparams.HParamsRecorder(self.recorder)]

    def save(self, model: keras.Model) -> keras.Model:
        """After `fit`: save model.keras (the best validation epoch's weights where config.select says so, and
        predicting from distorted copies where config.test_time_views says so), mark the summary complete and
        remove the backup. Returns the model saved."""
        config, recorder = self.config, self.recorder
        if recorder.diverged:  # TerminateOnNaN stopped it
            recorder.write_summary("diverged")
            best = self.path("best.weights.h5")
            kept = (f"the best weights so far are in {best}" if best.is_file()
                    else "no epoch finished, so no weights were kept")
            where = ("the recipe's learning rate in emnist_study/recipes.py" if config.script == recipes.BASE.script
                     else f"the learning rate in {config.script}'s model.compile")
            raise UserError(f"training diverged (the loss became NaN in epoch {len(recorder.rows) + 1}); {kept}. "
                            f"Lower {where}, then train again with --overwrite")
        if config.select == "best_val":  # the model is the epoch with the best validation accuracy, not the last
            model.load_weights(self.path("best.weights.h5"))
        # The training is over; what follows can take a while (the views: a prediction of every validation image
        # and its copies; the model's file, written and synced to disk), so the wait is not silent.
        print(f"Training done; saving {self.path('model.keras')}"
              + (f" after predicting the validation images from {config.test_time_views + 1} views each"
                 if config.test_time_views else ""), flush=True)
        extra = {}
        if self.resplit:  # the restarts of this process (a resumed run's earlier ones are in its log)
            extra["resplits"] = [{"after_epoch": epoch, "class": c} for epoch, c in self.resplit.resplits]
        if config.test_time_views:
            from . import models

            model = models.with_test_time_views(model, config.augment, config.test_time_views)
            extra["val_accuracy_with_views"] = validation_accuracy(model, self.data)
            print(f"Predicting from the image and {config.test_time_views} distorted copies: validation accuracy "
                  f"{extra['val_accuracy_with_views']:.4f}")
        save_model_atomic(model, self.path("model.keras"))
        recorder.write_summary("complete", finished_at=now(), model_keras_holds=config.select, **extra)
        shutil.rmtree(self.backup_dir, ignore_errors=True)  # only now: a run stopped before this resumes from it
        best = recorder.best_row()
        print(f"Done: best validation accuracy {best['val_accuracy']:.4f} at epoch {best['epoch']}; "
              f"saved to {self.dir}")
        return model


def as_disk_full(exc: BaseException, where: Path) -> OSError | None:
    """TensorFlow's own writers (TensorBoard's event files) report a full disk as a ResourceExhaustedError, or an
    error whose message says so: that, as the OSError Python's own writes raise, naming `where`; else None."""
    import tensorflow as tf

    if isinstance(exc, tf.errors.ResourceExhaustedError) or (
            isinstance(exc, tf.errors.OpError) and "No space left on device" in str(exc)):
        return OSError(errno.ENOSPC, "No space left on device", str(where))
    return None


def resplit_callback(data: TrainVal, config: TrainConfig, sample: int = 10_000):
    """The case-aware head's restart of collapsed classes, judged on a fixed, stratified sample of the training
    images (all of them, where there are fewer)."""
    from . import subunits

    keep = (np.arange(len(data.y_train)) if len(data.y_train) <= sample
            else stratified_split(data.y_train, sample, config.seed)[1])
    return subunits.ResplitIdleSubunits(data.x_train[keep], data.y_train[keep], config.subunits,
                                        config.resplit_idle_units, seed=config.seed,
                                        class_names=data.class_names)


def validation_accuracy(model: keras.Model, data: TrainVal) -> float:
    return float((pipeline.predict(model, data.x_val).argmax(axis=1) == data.y_val).mean())
