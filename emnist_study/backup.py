"""The training state that --resume continues from, in runs/<name>/backup/, written so that a process killed at
any instant (kill -9 included), or stopped by a full disk, leaves a state to continue from exactly.

    backup/epoch-0003.npz               after epoch 3: every variable of the model (its weights, and the state of
                                        its dropout layers' random numbers) and of its optimizer (step count,
                                        moments), with the run's history up to that epoch and its best epoch
    backup/best-epoch-0002.weights.h5   the weights of the best epoch so far, as best.weights.h5 holds them

A state file is written under a temporary name and renamed (run_folder.atomic_write), so it is there whole or not at
all, and that rename is the moment an epoch counts as done: history.csv, summary.json and best.weights.h5 are
written from it afterwards, and written from it again on --resume, so that all of them agree on the epochs done.
The state before the latest stays as a fallback, should the latest prove unreadable. The training script removes
the backup only once model.keras and a complete summary.json are written.
"""

import json
import shutil
import zipfile
from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
import numpy as np

from .download import file_digest
from .errors import UserError
from . import run_folder
from .run_folder import BACKUP_STATE_GLOB, atomic_write, read_history
from .plurals import plural


def state_path(backup_dir: Path, epoch: int) -> Path:
    return Path(backup_dir) / f"epoch-{epoch:04d}.npz"


def best_weights_path(backup_dir: Path, epoch: int) -> Path:
    return Path(backup_dir) / f"best-epoch-{epoch:04d}.weights.h5"


def epoch_of(path: Path) -> int:
    return int(path.name.split(".")[0].rsplit("-", 1)[1])


def state_variables(model: keras.Model) -> list:
    """What training changes: the model's variables (seed states included) and, once built, the optimizer's."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return list(model.variables) + (list(model.optimizer.variables) if model.optimizer is not None else [])


def save_state(model: keras.Model, backup_dir: Path, epoch: int, history: list[dict], best_epoch: int | None):
    """Commit epoch `epoch`: the training state after it, with the history so far."""
    best = best_weights_path(backup_dir, best_epoch) if best_epoch else None
    # The best weights' checksum: should this copy be damaged later, best.weights.h5 (its twin) can stand in for it.
    meta = {"epoch": epoch, "history": history, "best_epoch": best_epoch,
            "best_sha256": file_digest(best) if best and best.is_file() else None}
    arrays = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(state_variables(model))}
    Path(backup_dir).mkdir(parents=True, exist_ok=True)
    with atomic_write(state_path(backup_dir, epoch)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


class UnreadableState(Exception):
    pass


def load_state(model: keras.Model, path: Path) -> dict:
    """Set the model and optimizer to the state in `path`; returns its meta (epoch, history, best_epoch)."""
    variables = state_variables(model)
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = [npz[f"v{i}"] for i in range(len(variables))]
            extra = len(npz.files) - 1 - len(variables)
        if not isinstance(meta, dict):
            raise ValueError("it holds no record of its epoch")
        history = meta.get("history")
        if not (isinstance(meta.get("epoch"), int) and isinstance(history, list)
                and all(isinstance(row, dict) and isinstance(row.get("epoch"), int) for row in history)
                and (meta.get("best_epoch") is None or isinstance(meta["best_epoch"], int))):
            raise ValueError("its epoch, history or best epoch is missing or not of the right type")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise UnreadableState(f"{type(exc).__name__}: {exc}") from None
    mismatched = [v.path for v, a in zip(variables, arrays) if tuple(v.shape) != a.shape]
    if extra or mismatched:
        raise UserError(f"the backup {path} does not fit this model ({extra:+d} variables, mismatched: "
                        f"{', '.join(mismatched[:3]) or 'none'}), so the run cannot continue exactly; "
                        f"use --overwrite to start again")
    for variable, array in zip(variables, arrays):
        variable.assign(array)
    return meta


def restore(model: keras.Model, run) -> dict | None:
    """Continue `run` where its newest readable state left it: set the model and optimizer to it, and
    best.weights.h5 to its best epoch's weights. Returns its meta (epoch, history, best_epoch), or None for a run
    with nothing recorded. A run with epochs recorded and no state to continue them from exactly is refused."""
    states = sorted(Path(run.backup_dir).glob(BACKUP_STATE_GLOB), key=epoch_of, reverse=True)
    for path in states:
        try:
            meta = load_state(model, path)
            best = best_weights_path(run.backup_dir, meta["best_epoch"]) if meta["best_epoch"] else None
            if best and not weights_readable(best):
                twin = run_folder.best_weights_path(run.dir)
                if not (meta.get("best_sha256") and twin.is_file() and file_digest(twin) == meta["best_sha256"]):
                    raise UnreadableState(f"the weights of its best epoch, {best.name}, are missing or damaged")
                print(f"{best} is damaged; {twin}, the same weights (their checksum recorded), stands in for it")
                copy_atomic(twin, best)
        except UnreadableState as exc:
            print(f"{path} cannot be read ({exc}); continuing from the state before it")
            continue
        if best:
            copy_atomic(best, run_folder.best_weights_path(run.dir))
        return meta
    recorded = read_history(run.dir, required=("epoch",))  # only counted
    if recorded or states:
        raise UserError(f"cannot resume {run.dir} exactly: {plural(len(recorded), 'epoch')} recorded, but no backup "
                        f"of them in {run.backup_dir} can be read; use --overwrite to start again")
    return None


def weights_readable(path: Path) -> bool:
    """Whether `path` is a whole Keras weights file (HDF5 that opens and holds layers), not one cut short."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return len(f.keys()) > 0
    except (OSError, ValueError):
        return False


def copy_atomic(source: Path, target: Path) -> None:
    with atomic_write(target) as tmp:
        shutil.copyfile(source, tmp)


def prune(backup_dir: Path, keep_best: set) -> None:
    """Keep the two newest states (the latest and its fallback) and the best weights they name."""
    for path in sorted(Path(backup_dir).glob(BACKUP_STATE_GLOB), key=epoch_of)[:-2]:
        path.unlink(missing_ok=True)
    for path in Path(backup_dir).glob("best-epoch-*.weights.h5"):
        if epoch_of(path) not in keep_best:
            path.unlink(missing_ok=True)
