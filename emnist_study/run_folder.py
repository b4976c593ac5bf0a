"""The run folder: the one module that knows the files a run leaves behind, their names and schemas, its lock and
its atomic writes. Everything else asks it. A crash never leaves half a file, a damaged or newer file is read back
as a one-line error, and the runs under a runs folder are found here.

    runs/<run-name>/
        config.json        every setting, the network's layers, the data source and its checksums, library versions
        history.csv        fit's History, one row per completed epoch across resumes: loss, accuracy, val_loss,
                           val_accuracy, lr, seconds
        summary.json       status (running, complete, interrupted, diverged), best epoch, timing
        best.weights.h5    the weights of the epoch with the best validation accuracy
        model.keras        the trained model (the last epoch's, or the best epoch's where the run says so)
        backup/            the training state while a run is unfinished (backup.py: what --resume continues from)
        members/           an ensemble's members, each a run folder of its own
    runs/.<run-name>.lock  held by the process writing the run
    logs/<run-name>/       TensorBoard logs

config.json and summary.json carry a "schema_version": a file written by a newer version of the project is refused
in one line rather than misread. No TensorFlow here: the scripts that only read runs answer at once.
"""

import csv
import difflib
import errno
import fcntl
import io
import json
import os
import platform
import re
import sys
from contextlib import contextmanager
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from pathlib import Path

from .commands import command_line
from .config import TrainConfig
from .errors import UserError
from .plurals import plural

CONFIG = "config.json"
SUMMARY = "summary.json"
HISTORY = "history.csv"
MODEL = "model.keras"
BEST_WEIGHTS = "best.weights.h5"
BACKUP = "backup"
MEMBERS = "members"
SUBUNITS = "subunits.json"  # the case-aware head's sub-units (subunits.py)
CASE_CHECK = "case_check.json"  # the case-aware head against the true case (case_check.py)
# The per-epoch training states in a run's backup/ folder (written and read by backup.py, which loads Keras).
BACKUP_STATE_GLOB = "epoch-*.npz"
# The version of config.json's and summary.json's layout; a file without one is of version 1.
SCHEMA_VERSION = 1


def config_path(run_dir) -> Path:
    return Path(run_dir) / CONFIG


def summary_path(run_dir) -> Path:
    return Path(run_dir) / SUMMARY


def history_path(run_dir) -> Path:
    return Path(run_dir) / HISTORY


def model_path(run_dir) -> Path:
    return Path(run_dir) / MODEL


def best_weights_path(run_dir) -> Path:
    return Path(run_dir) / BEST_WEIGHTS


def backup_dir(run_dir) -> Path:
    return Path(run_dir) / BACKUP


def members_dir(run_dir) -> Path:
    return Path(run_dir) / MEMBERS


def is_member(run_dir) -> bool:
    """Whether `run_dir` is an ensemble's member (runs/<ensemble>/members/<member>)."""
    return Path(run_dir).parent.name == MEMBERS


def has_config(run_dir) -> bool:
    return config_path(run_dir).is_file()


def has_summary(run_dir) -> bool:
    return summary_path(run_dir).is_file()


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its nearest existing parent folder (the current folder at worst)."""
    return next((p for p in (path, *path.parents) if p.exists()), Path("."))


def partial_path(path: Path) -> Path:
    """The temporary name this process writes `path` under: beside it, hidden, marked partial, and named for the
    process, so two writers never share one; it keeps the suffixes Keras and NumPy insist on."""
    path = Path(path)
    stem, dot, suffixes = path.name.partition(".")
    return path.with_name(f".{stem}.partial-{os.getpid()}{dot}{suffixes}")


@contextmanager
def atomic_write(path: Path):
    """Yields the temporary path to write `path`'s content to. When the block ends, the file is flushed to disk
    and renamed onto `path`: readers, and a process killed at any instant, see the old file or the new, never
    half. On an error (a full disk) the temporary file is removed and the error names `path`."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        if re.search(r"\d+ requested and \d+ written", str(exc)):  # NumPy's word for a full disk, with no errno
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_partial_files(directory: Path) -> None:
    """Remove what writers killed mid-write left behind (call while holding the run's lock: no writer is live)."""
    for path in Path(directory).glob("*.partial*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_write(path) as tmp:
        # open() makes the file as readable as the umask allows (tempfile's are owner-only): on a lab's shared
        # machine, others may read the run
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


REDO_RUN = "delete that run's folder, or train it again with --overwrite"


def read_json(path: Path, fix: str = REDO_RUN) -> dict:
    """A JSON object from a file this project wrote; a corrupt or empty one is a UserError naming it and `fix`."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        value = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is corrupt ({'empty' if not raw.strip() else exc}); {fix}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is corrupt (not a JSON object); {fix}")
    return value


def check_types(record: dict, types: dict, path: Path, required=()) -> dict:
    """`record` as read from `path`, each key of `types` that it holds checked against its type (a type, or a
    tuple of them; None allows null; a float allows a whole number), and the `required` keys present; a record
    that parses but holds the wrong kind of value is a UserError naming the file, the key and the value."""
    for key in required:
        if key not in record:
            raise UserError(f"{path} is corrupt (it has no {key!r}); {REDO_RUN}")
    for key, expected in types.items():
        if key not in record:
            continue
        value = record[key]
        allowed = expected if isinstance(expected, tuple) else (expected,)
        fits = any(value is None if kind is None
                   else isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
                   else isinstance(value, int) and not isinstance(value, bool) if kind is int
                   else isinstance(value, kind) for kind in allowed)
        if not fits:
            names = " or ".join("null" if kind is None else kind.__name__ for kind in allowed)
            raise UserError(f"{path} is corrupt ({key!r} is {value!r}, not {names}); {REDO_RUN}")
    return record


# Each setting of config.json's "config" and the type it must have: TrainConfig's fields (int | None -> (int, None)).
CONFIG_TYPES = {f.name: tuple(None if t is type(None) else t for t in getattr(f.type, "__args__", (f.type,)))
                for f in fields(TrainConfig)}
CONFIG_REQUIRED = tuple(f.name for f in fields(TrainConfig) if f.default is MISSING and f.default_factory is MISSING)
# What summary.json holds, for a single network's run and for an ensemble's.
SUMMARY_TYPES = {"schema_version": int, "status": str, "epochs_completed": int, "epochs_planned": int, "params": int,
                 "best_epoch": (int, None), "best_val_accuracy": (float, None), "final_val_accuracy": (float, None),
                 "train_seconds": float, "seconds_per_epoch": (float, None), "val_images": int,
                 "val_accuracy_with_views": float, "model_keras_holds": str, "resplits": list, "members": int,
                 "combine": str, "test_time_views": int, "member_best_val_accuracy": list}


def check_schema(record: dict, path: Path) -> dict:
    """`record` as read from `path`, refused in one line where a newer version of the project wrote it."""
    version = record.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UserError(f"{path} is corrupt (\"schema_version\" is {version!r}); {REDO_RUN}")
    if version > SCHEMA_VERSION:
        raise UserError(f"{path} was written by a newer version of this project (schema_version {version}; this one "
                        f"reads up to {SCHEMA_VERSION}): update the project (git pull), or train the run again with "
                        f"--overwrite")
    return record


def read_record(run_dir) -> dict:
    """A run's whole config.json: "config" (the settings), "data", "network", "versions", the times."""
    path = config_path(run_dir)
    return check_schema(read_json(path), path)


def write_record(run_dir, record: dict) -> None:
    write_json_atomic(config_path(run_dir), {"schema_version": SCHEMA_VERSION, **record})


def read_run_config(run_dir: Path) -> dict:
    """The "config" of a run's config.json (every setting it was trained with), each of the right type."""
    path = config_path(run_dir)
    config = read_record(run_dir).get("config")
    if not isinstance(config, dict):
        raise UserError(f"{path} is corrupt (it holds no \"config\"); {REDO_RUN}")
    return check_types(config, CONFIG_TYPES, path, CONFIG_REQUIRED)


def read_data_record(run_dir) -> dict:
    """What config.json records of the data the run trained on (its files and their sha256; {} where none)."""
    return read_record(run_dir).get("data") or {}


def read_summary(run_dir: Path) -> dict:
    """A run's summary.json, each value of the right type."""
    path = summary_path(run_dir)
    return check_types(check_schema(read_json(path), path), SUMMARY_TYPES, path, required=("status",))


def write_summary(run_dir, status: str, **fields_) -> None:
    """Write a run's summary.json: its status, what the caller measured (SUMMARY_TYPES names the fields), and when."""
    write_json_atomic(summary_path(run_dir), {"schema_version": SCHEMA_VERSION, "status": status, **fields_,
                                              "updated_at": now()})


def write_history(run_dir, rows: list[dict]) -> None:
    write_csv_atomic(history_path(run_dir), rows)


def write_csv_atomic(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")  # what every run's history holds


def read_history(run_dir: Path, required: tuple = HISTORY_COLUMNS) -> list[dict]:
    """The per-epoch history of a run, numbers as floats (epoch as int), one row per epoch in order: a row repeated
    by hand (or by an older copy) counts once, its last copy standing. A byte-order mark (a spreadsheet program
    saved it) is no matter; a missing column of `required` is refused, naming it."""
    path = history_path(run_dir)
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in reader]
            if not reader.fieldnames:
                raise ValueError("empty, or no header row")
            missing = [column for column in required if column not in reader.fieldnames]
            if missing:
                raise ValueError(f"no {' or '.join(missing)} column")
    except (csv.Error, ValueError, TypeError, UnicodeDecodeError) as exc:  # TypeError: a row cut short
        raise UserError(f"{path} is corrupt ({exc}): put back the run's own copy, or {REDO_RUN}") from None
    return sorted({row["epoch"]: row for row in rows}.values(), key=lambda row: row["epoch"])


def library_versions() -> dict:
    """The libraries a run trained with, whether TensorFlow ran its oneDNN kernels (quiet_tensorflow), and its
    threads per operation where they were set (run_all.py's steps side by side; None: one per core)."""
    from . import quiet_tensorflow  # noqa: F401  (TensorFlow starts as everywhere in the package)
    import keras
    import numpy
    import sklearn
    import tensorflow

    try:  # TensorFlow's own test of its oneDNN switch, in a private module: unknown (None) should it move
        from tensorflow.python.util._pywrap_util_port import IsMklEnabled as onednn_enabled
    except ImportError:
        onednn_enabled = lambda: None  # noqa: E731
    return {"python": sys.version.split()[0], "tensorflow": tensorflow.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__, "platform": platform.platform(),
            "tensorflow_onednn": onednn_enabled(), "tensorflow_threads": os.environ.get("TF_NUM_INTRAOP_THREADS")}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


SHOWN_RUNS = 5  # runs a mistaken name lists where none is close to it


def named_run_dirs(runs_dir, names) -> list[Path]:
    """Each name as a directory, or as a run under `runs_dir`; it must exist. A name that is no run is refused
    naming the runs under `runs_dir` whose names are nearest it (a typo, or the "-quick" that --quick adds), else
    a few of the runs there are."""
    found = [Path(n) if Path(n).is_dir() else Path(runs_dir) / n for n in names]
    for path in found:
        if not path.is_dir():
            raise UserError(f"no run {path}: {other_runs(runs_dir, path.name)}")
    return found


def other_runs(runs_dir, name: str) -> str:
    """What to name instead of the run `name`: the runs under `runs_dir` nearest it, or a few of those there are."""
    runs_dir = Path(runs_dir)
    there = sorted(p.name for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    if not there:
        return (f"there are no runs under {runs_dir} yet; name a run directory, or train one first "
                f"(e.g. {command_line('warmup_mnist_cnn.py')})")
    # "mnist_cnn" is nearest "mnist_cnn-quick" by its beginning: a name that begins another is taken as near it
    near = [n for n in there if n.startswith(name)] + difflib.get_close_matches(name, there, n=SHOWN_RUNS, cutoff=0.6)
    near = list(dict.fromkeys(near))[:SHOWN_RUNS]
    if near:
        return f"did you mean {' or '.join(near)}? (runs under {runs_dir}; --runs-dir names another folder)"
    shown = ", ".join(there[:SHOWN_RUNS]) + (f" and {len(there) - SHOWN_RUNS} more" if len(there) > SHOWN_RUNS else "")
    return f"the runs under {runs_dir} are {shown}; name one of them, a run directory, or another --runs-dir"


def all_run_dirs(runs_dir) -> list[Path]:
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir} does not exist: train something first (e.g. python warmup_mnist_cnn.py)")
    return sorted(p for p in runs_dir.iterdir() if has_config(p))


def lock_path(run_dir: Path) -> Path:
    """The file whose flock a run's writer holds: beside the run's folder, so that removing the folder (--overwrite)
    leaves it in place."""
    return Path(run_dir).parent / f".{Path(run_dir).name}.lock"


class RunLock:
    """The lock of the run at `run_dir`: an flock on its lock file, held from acquire() until release(), or until
    the process ends however it ends (the system drops the lock of a killed process). A second writer is refused
    at once, in one line naming the holder."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        # Beside the run's folder, not in it: --overwrite deletes the folder, and the lock must outlive that.
        self.path = lock_path(self.run_dir)
        self._file = None

    def refuse_if_held(self) -> None:
        holder = run_writer(self.run_dir)
        if holder:
            raise UserError(f"{self.run_dir} is being written by another process (PID {holder}); wait for it to "
                            f"finish or stop it, or train under another --run-name")

    def acquire(self) -> None:
        if self._file:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.path, "a+b")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                self.refuse_if_held()
                continue  # let go just now: try again
            try:  # the holder before us removes the file as it lets go: then lock the new one
                if os.stat(self.path).st_ino == os.fstat(f.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            f.close()
        f.truncate(0)
        f.write(f"{os.getpid()}\n".encode())
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file:
            self.path.unlink(missing_ok=True)  # while still held: see acquire()
            self._file.close()
            self._file = None


def run_writer(run_dir: Path) -> str | None:
    """The process ID of a process writing the run at `run_dir` now (its lock held), or None."""
    try:
        with open(lock_path(run_dir), "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return f.read(20).decode(errors="replace").strip() or "unknown"
            fcntl.flock(f, fcntl.LOCK_UN)
    except FileNotFoundError:
        pass
    return None


def require_complete(run_dir: Path) -> None:
    """A UserError, saying what to do, unless the run at `run_dir` is complete: an unfinished one (interrupted,
    killed, still training) continues with --resume; a diverged one trains again with a lower learning rate."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir) if has_summary(run_dir) else {"status": "not started"}
    status = summary["status"]
    if status == "complete":
        return
    config = read_run_config(run_dir) if has_config(run_dir) else {}
    script = config.get("script")
    if status == "diverged":
        raise UserError(f"{run_dir} diverged (its loss became NaN): lower the learning rate, then train it again "
                        f"with {command_line(script, '--run-name', run_dir.name, '--overwrite')}")
    done = summary.get("epochs_completed")
    epochs = f" after {done} of {plural(summary.get('epochs_planned') or 0, 'epoch')}" if done is not None else ""
    writer = run_writer(run_dir)
    if writer:
        raise UserError(f"{run_dir} is still training (process {writer}{epochs and ','}{epochs}): wait for it to "
                        f"finish, then run this again")
    raise UserError(f"{run_dir} has not finished ({status}{epochs}): continue it with "
                    f"{command_line(script, '--run-name', run_dir.name, '--resume')} (and the flags it was started "
                    f"with), then run this again")


def find_complete_runs(runs_dir, names=None, broken: list | None = None) -> list[Path]:
    """Run directories under `runs_dir` whose summary says complete (an ensemble's members are inside its own
    directory, not listed separately), or exactly the named ones, which must be complete. Given a list `broken`,
    a listed run whose summary.json cannot be read goes there as (directory, message) instead of stopping all."""
    if names:
        found = named_run_dirs(runs_dir, names)
        for path in list(found):
            if broken is not None and has_summary(path):
                try:
                    read_summary(path)
                except UserError as exc:  # a damaged record: named beside the runs that are judged
                    broken.append((path, str(exc)))
                    found.remove(path)
                    continue
            require_complete(path)
        return found
    complete = []
    for path in all_run_dirs(runs_dir):
        if not has_summary(path):
            continue
        try:
            if read_summary(path)["status"] == "complete":
                complete.append(path)
        except UserError as exc:
            if broken is None:
                raise
            broken.append((path, str(exc)))
    return complete

