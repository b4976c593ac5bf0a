"""A run's disk: whether there is room for its files before training starts, and TensorFlow's word for a full disk
as the OSError Python's own writes raise (interrupts.py turns either into one line)."""

import errno
import math
import shutil
from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
import numpy as np

from . import backup
from .errors import UserError
from .run_folder import nearest_existing

# A run holds up to this many copies of its training state at once: the backup's two latest states and the one
# being written, up to three best-epoch weight files (the best, the one before it, the epoch just measured), and
# best.weights.h5 with its new copy being written. (A weights file of a compiled model holds its optimizer's
# variables too, so it is as big as a state: measured, the warm-up MLP's peak was 8 states, 41 MiB.)
STATE_COPIES = 8


def refuse_if_no_room(run_dir: Path, model: keras.Model) -> None:
    """A one-line refusal, before anything is written, when the run's disk has too little space for its files
    (a resumed run's files already there count as written). Catching it here rather than at the epoch that
    fills the disk saves the user an evening's wait."""
    state_bytes = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in backup.state_variables(model))
    written = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file()) if run_dir.is_dir() else 0
    need = STATE_COPIES * state_bytes - written
    folder = nearest_existing(run_dir)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise UserError(f"training {run_dir.name} needs about {need / 2**20:,.0f} MB of disk for its weights "
                        f"and backups, but only {free / 2**20:,.0f} MB are free in {folder}: free some space "
                        f"there, or choose another --runs-dir")



def as_disk_full(exc: BaseException, where: Path) -> OSError | None:
    """TensorFlow's own writers (TensorBoard's event files) report a full disk as a ResourceExhaustedError, or an
    error whose message says so: that, as the OSError Python's own writes raise, naming `where`; else None."""
    import tensorflow as tf

    if isinstance(exc, tf.errors.ResourceExhaustedError) or (
            isinstance(exc, tf.errors.OpError) and "No space left on device" in str(exc)):
        return OSError(errno.ENOSPC, "No space left on device", str(where))
    return None
