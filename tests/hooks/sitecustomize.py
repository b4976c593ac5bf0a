"""Loaded at start-up by every Python process whose PYTHONPATH names this folder: the tests start scripts that way
(helpers.paused_env) when they need a script to wait at a chosen instant, to be killed there or interrupted, and
the product carries no code for it. Once emnist_study.run is imported, this patches it:

    EMNIST_TEST_PAUSE_AT=backup-write:N   epoch N's backup state written to its temporary file, not yet renamed
    EMNIST_TEST_PAUSE_AT=epoch-end:N      epoch N committed (backup, history.csv, summary.json written)
    EMNIST_TEST_PAUSE_AT=final-save       model.keras written, the summary not yet marked complete
    EMNIST_TEST_SLOW_BATCHES=SECONDS      a pause after every training batch, so that a run is still training
                                          when a test interrupts it

At a pause point the process prints "paused at <point>" and sleeps."""

import importlib.abc
import importlib.util
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

PAUSE_AT = os.environ.get("EMNIST_TEST_PAUSE_AT")
SLOW_BATCHES = os.environ.get("EMNIST_TEST_SLOW_BATCHES")


def pause(point: str) -> None:
    if point == PAUSE_AT:
        print(f"paused at {point}", flush=True)
        time.sleep(600)


def patch(run_module) -> None:
    import keras
    from emnist_study import backup

    real_atomic_write = backup.atomic_write

    @contextmanager
    def atomic_write(path):
        with real_atomic_write(path) as tmp:
            yield tmp
            name = Path(path).name
            if name.startswith("epoch-") and name.endswith(".npz"):
                pause(f"backup-write:{backup.epoch_of(Path(path))}")

    backup.atomic_write = atomic_write

    real_commit = run_module.CommitEpoch.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        real_commit(self, epoch, logs)
        pause(f"epoch-end:{epoch + 1}")

    run_module.CommitEpoch.on_epoch_end = on_epoch_end

    real_save_model = run_module.save_model_atomic

    def save_model_atomic(model, path):
        real_save_model(model, path)
        pause("final-save")

    run_module.save_model_atomic = save_model_atomic

    if SLOW_BATCHES:
        class SlowBatches(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                time.sleep(float(SLOW_BATCHES))

        real_callbacks = run_module.Run.callbacks
        run_module.Run.callbacks = lambda self: real_callbacks(self) + [SlowBatches()]


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds emnist_study.run as usual, and patches the module once it has run."""

    def find_spec(self, name, path, target=None):
        if name != "emnist_study.run":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


if PAUSE_AT or SLOW_BATCHES:
    sys.meta_path.insert(0, PatchOnImport())
