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

import os
import re
import shutil
import sys
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras

from . import backup, disk, distribute, hparams, interrupts, pipeline, precision, recipes, run_folder
from .config import TrainConfig
from .data import TrainVal
from .errors import UserError
from .subunits import resplit_callback
from .recording import CommitEpoch, RunRecorder, network_layers, optimizer_settings, save_model_atomic
from .run_folder import (BACKUP_STATE_GLOB, library_versions, nearest_existing, now, read_json, read_run_config,
                         remove_partial_files)
from .plurals import plural

RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_RUN_NAME = 100
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
        self.backup_dir = run_folder.backup_dir(self.dir)
        self._lock = run_folder.RunLock(self.dir)
        self.recorder = None
        self.epochs_done = 0

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
            if not run_folder.has_config(self.dir):
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
        saved = run_folder.read_record(self.dir)
        if not saved.get("network"):  # an ensemble: its members trained the network
            member = run_folder.members_dir(self.dir) / "member1"
            saved = run_folder.read_record(member) if run_folder.has_config(member) else {}
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
        summary = run_folder.summary_path(self.dir)
        try:
            return run_folder.check_schema(read_json(summary), summary).get("status") if summary.is_file() else None
        except UserError:
            if not any(self.backup_dir.glob(BACKUP_STATE_GLOB)):
                raise
            print(f"{summary} cannot be read; continuing from the backup, which rewrites it")
            return None

    # --- the lock -------------------------------------------------------------------------------------------------

    def refuse_if_written(self) -> None:
        self._lock.refuse_if_held()

    def lock(self) -> None:
        """Hold the run's lock until release(), or until this process ends (run_folder.RunLock)."""
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    # --- creating the folder --------------------------------------------------------------------------------------

    def create(self, data_source: dict, model: keras.Model | None = None, data: TrainVal | None = None) -> None:
        """Lock the run (see lock), create (or, with --overwrite, replace) its directory and write config.json:
        the settings, the network's layers (where a model is given, with the number of classes and training
        images it was built for), the data and the library versions."""
        self.lock()
        config = self.config
        if config.resume and not run_folder.has_config(self.dir):
            print(f"Nothing to resume at {self.dir}: starting a new run")
        record = {"config": asdict(config), "data": data_source, "versions": library_versions(),
                  "started_at": now()}
        if model is not None:
            record["network"] = {"name": model.name, "params": model.count_params(), "layers": network_layers(model)}
            if data is not None:
                record["network"].update(classes=data.num_classes, training_images=len(data.y_train))
        if config.resume and run_folder.has_config(self.dir):
            saved = run_folder.read_record(self.dir)
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
        run_folder.write_record(self.dir, record)

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
        disk.refuse_if_no_room(self.dir, model)
        try:
            recorded = run_folder.has_config(self.dir)  # without it, create says there is nothing to resume
            self.create(data.source, model, data)
            resumed = backup.restore(model, self) if config.resume else None
            self.epochs_done = resumed["epoch"] if resumed else 0
            if config.resume and recorded and not resumed:
                print(f"{self.dir} was stopped before its first epoch ended, so nothing of it is kept: training it "
                      f"from epoch 1")
            self.data = data
            batch_size = distribute.global_batch_size(config)
            self.train_batches, self.val_batches, self.steps_per_epoch = pipeline.training_batches(
                data, batch_size, config, start_epoch=self.epochs_done)
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
            full = disk.as_disk_full(exc, self.logs_dir)
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
            best = run_folder.best_weights_path(self.dir)
            kept = (f"the best weights so far are in {best}" if best.is_file()
                    else "no epoch finished, so no weights were kept")
            where = ("the recipe's learning rate in emnist_study/recipes.py" if config.script == recipes.BASE.script
                     else f"the learning rate in {config.script}'s model.compile")
            raise UserError(f"training diverged (the loss became NaN in epoch {len(recorder.rows) + 1}); {kept}. "
                            f"Lower {where}, then train again with --overwrite")
        if config.select == "best_val":  # the model is the epoch with the best validation accuracy, not the last
            model.load_weights(run_folder.best_weights_path(self.dir))
        # The training is over; what follows can take a while (the views: a prediction of every validation image
        # and its copies; the model's file, written and synced to disk), so the wait is not silent.
        print(f"Training done; saving {run_folder.model_path(self.dir)}"
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
        save_model_atomic(model, run_folder.model_path(self.dir))
        recorder.write_summary("complete", finished_at=now(), model_keras_holds=config.select, **extra)
        shutil.rmtree(self.backup_dir, ignore_errors=True)  # only now: a run stopped before this resumes from it
        best = recorder.best_row()
        print(f"Done: best validation accuracy {best['val_accuracy']:.4f} at epoch {best['epoch']}; "
              f"saved to {self.dir}")
        return model


def validation_accuracy(model: keras.Model, data: TrainVal) -> float:
    return float((pipeline.predict(model, data.x_val).argmax(axis=1) == data.y_val).mean())
