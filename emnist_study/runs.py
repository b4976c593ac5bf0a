"""The run directory: what a training run leaves behind, written so that a crash never leaves half a file.

    runs/<run-name>/
        config.json        every hyperparameter, the data source and its checksums, library versions
        history.csv        one row per completed epoch: loss, accuracy, val_loss, val_accuracy, lr, seconds
        summary.json       status (running, complete, interrupted, diverged), best epoch, timing
        best.weights.h5    the weights of the epoch with the best validation accuracy
        model.keras        the trained model after the last epoch
        backup/            Keras BackupAndRestore state while a run is unfinished (what --resume continues from)
    logs/<run-name>/       TensorBoard logs
"""

import csv
import fcntl
import io
import json
import os
import platform
import re
import shutil
import sys
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from .errors import UserError

RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Flags that say how to run, not what to train: they may differ when a run is resumed.
OPERATIONAL_FIELDS = ("data_dir", "runs_dir", "logs_dir", "overwrite", "resume", "summary")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Saved as config.json with the run."""

    script: str
    run_name: str
    dataset: str
    model: str
    epochs: int
    batch_size: int
    seed: int = 1
    val_fraction: float = 0.1
    optimizer: dict = field(default_factory=dict)  # {"name": "adadelta", "learning_rate": 1.0, ...}
    loss: str = "categorical_crossentropy"
    model_options: dict = field(default_factory=dict)  # keyword arguments of the model builder
    validation: str = "stratified"  # how validation images are held out: "stratified" or "last" (Nielsen)
    expand_shifts: bool = False  # add one-pixel shifts up, down, left and right of every training image (x5)
    select: str = "last_epoch"  # what model.keras holds: the "last_epoch", or the "best_val" epoch's weights
    ensemble: int = 1  # members trained with seeds runs.member_seed(seed, i); the run predicts by combining them
    ensemble_combine: str = "vote"  # "vote" (Nielsen's majority) or "average" (mean of the probabilities)
    # Settings that differ between members: member i trains with ensemble_variants[i % len] applied to this config,
    # e.g. [{}, {"optimizer": {...}}] alternates two optimizers. Empty: every member differs by its seed alone.
    ensemble_variants: list = field(default_factory=list)
    schedule: dict = field(default_factory=dict)  # {} (constant), or {"name": "cosine", "warmup_fraction": 0.05}
    augment: dict = field(default_factory=dict)  # {"rotation_degrees": 10, "shift": 0.1, "zoom": 0.1, ...}
    label_smoothing: float = 0.0
    # Test-time augmentation: model.keras predicts from the average over the image and this many copies distorted
    # as `augment` distorts the training images (0: from the image alone). Training itself is unchanged.
    test_time_views: int = 0
    # With the case-aware head: at the end of each epoch but the last, a class whose least-used sub-unit is the
    # choice of under this share of its training images is split afresh by k-means (subunits.ResplitIdleSubunits).
    # 0: never.
    resplit_idle_units: float = 0.0
    precision: str = "float32"  # or "mixed_bfloat16" / "mixed_float16" (see precision.py); "auto" is resolved before
    # tf.distribute (distribute.py): "none", "mirrored" (this machine's devices) or "multiworker" (TF_CONFIG's
    # machines); each of the `replicas` takes batch_size images a step, global_batch_size in all (None: not
    # distributed, a step takes batch_size).
    distribute: str = "none"
    replicas: int = 1
    global_batch_size: int | None = None
    quick: bool = False
    limit_images: int | None = None  # a stratified subset of the training split (the --quick profile)
    data_dir: list | None = None  # the folders searched for the data, absolute (None: the environment, the caches)
    runs_dir: str = "runs"
    logs_dir: str = "logs"
    overwrite: bool = False
    resume: bool = False
    summary: bool = True  # print the network's layer table before training

    @property
    def subunits(self) -> int:
        """Sub-units per class of the network's head: 1 is a plain softmax, K > 1 the case-aware head."""
        return self.model_options.get("subunits", 1)

    @property
    def paired_copies(self) -> bool:
        """Whether each training batch holds two distorted copies of every image (for the case-aware head's
        agreement term: model_options {"paired_copies": True})."""
        return bool(self.model_options.get("paired_copies"))

    def defining_fields(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in OPERATIONAL_FIELDS}


# What a field holds when a config saved before it existed is read back (dict fields included).
FIELD_DEFAULTS = {f.name: f.default if f.default is not MISSING else f.default_factory()
                  for f in fields(TrainConfig) if f.default is not MISSING or f.default_factory is not MISSING}


MAX_RUN_NAME = 100

# The per-epoch training states in a run's backup/ folder (written and read by backup.py, which loads Keras).
BACKUP_STATE_GLOB = "epoch-*.npz"


def member_seed(seed: int, member: int) -> int:
    """The seed of an ensemble's member number `member` (from 0). Seed 1's members take seeds 1, 2, 3, ...; another
    seed's start 1,000 x (seed - 1) further on, so that the ensembles of seeds 1, 2 and 3 share no member's
    initial weights or batch order (with seed + member, seed 2's members would be seed 1's, shifted by one)."""
    return 1000 * max(seed - 1, 0) + seed + member


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


def read_run_config(run_dir: Path) -> dict:
    """The "config" of a run's config.json (every setting it was trained with)."""
    path = Path(run_dir) / "config.json"
    config = read_json(path).get("config")
    if not isinstance(config, dict):
        raise UserError(f"{path} is corrupt (it holds no \"config\"); {REDO_RUN}")
    return config


def write_csv_atomic(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def read_history(run_dir: Path) -> list[dict]:
    """The per-epoch history of a run, numbers as floats (epoch as int)."""
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in reader]
            if not reader.fieldnames or "epoch" not in reader.fieldnames:
                raise ValueError("empty, or no header row" if not reader.fieldnames else "no epoch column")
    except (csv.Error, ValueError, TypeError, UnicodeDecodeError) as exc:  # TypeError: a row cut short
        raise UserError(f"{path} is corrupt ({exc}); {REDO_RUN}") from None
    return rows


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


class Run:
    """One run's directories, and the rules for creating, replacing and resuming them."""

    def __init__(self, config: TrainConfig):
        if not RUN_NAME_PATTERN.match(config.run_name) or len(config.run_name) > MAX_RUN_NAME:
            raise UserError(f"run name {config.run_name!r} must be 1 to {MAX_RUN_NAME} letters, digits, '.', '_' "
                            f"or '-', starting with a letter or digit")
        self.config = config
        self.dir = Path(config.runs_dir) / config.run_name
        self.logs_dir = Path(config.logs_dir) / config.run_name
        self.backup_dir = self.dir / "backup"
        # Beside the run's folder, not in it: --overwrite deletes the folder, and the lock must outlive that.
        self.lock_path = self.dir.parent / f".{config.run_name}.lock"
        self._lock_file = None

    def path(self, name: str) -> Path:
        return self.dir / name

    def writer(self) -> str | None:
        """The process ID of another process writing this run now (its lock held), or None."""
        try:
            with open(self.lock_path, "rb") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return f.read(20).decode(errors="replace").strip() or "unknown"
                fcntl.flock(f, fcntl.LOCK_UN)
        except FileNotFoundError:
            pass
        return None

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

    def needs_training(self) -> bool:
        """Call before any slow work. Refuses to touch an existing run unless asked to; with --resume, says a
        complete run is complete and returns False."""
        runs_dir = Path(self.config.runs_dir)
        if runs_dir.exists() and not runs_dir.is_dir():
            raise UserError(f"--runs-dir {runs_dir} is a file, not a folder; name a folder")
        writable = nearest_existing(runs_dir)  # a runs_dir that is a file was refused above
        if not os.access(writable, os.W_OK):
            raise UserError(f"cannot write in {writable}: choose a --runs-dir you can write to")
        self.refuse_if_written()
        if not self.exists():
            return True
        config = self.config
        if config.resume:
            saved_path = self.path("config.json")
            if not saved_path.is_file():
                raise UserError(f"{self.dir} has no config.json, so it cannot be resumed; use --overwrite")
            saved = read_run_config(self.dir)
            # A setting added after the run was saved counts as its default (what the run trained with).
            saved = {**FIELD_DEFAULTS, **saved}
            changed = {k: (saved.get(k), v) for k, v in config.defining_fields().items() if saved.get(k) != v}
            if changed:
                what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
                raise UserError(f"cannot resume {self.dir} with different settings ({what}); "
                                f"use the same flags, or --overwrite to start again")
            if self.resumable_status() == "complete":
                print(f"{self.dir} is already complete; nothing to resume (use --overwrite to train it again)")
                return False
        elif not config.overwrite:
            raise UserError(f"{self.dir} already exists: pass --resume to continue it, --overwrite to replace it, "
                            f"or --run-name to train under another name")
        return True

    def create(self, data_source: dict) -> None:
        """Lock the run (see lock), create (or, with --overwrite, replace) its directory and write config.json."""
        self.lock()
        if self.config.resume and not self.path("config.json").is_file():
            print(f"Nothing to resume at {self.dir}: starting a new run")
        if self.config.overwrite and not self.config.resume:
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(self.logs_dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.dir, self.backup_dir):
            remove_partial_files(directory)
        record = {"config": asdict(self.config), "data": data_source, "versions": library_versions(),
                  "started_at": now()}
        if self.config.resume and self.path("config.json").is_file():
            record["started_at"] = read_json(self.path("config.json")).get("started_at", record["started_at"])
            record["resumed_at"] = now()
        write_json_atomic(self.path("config.json"), record)


def named_run_dirs(runs_dir, names) -> list[Path]:
    """Each name as a directory, or as a run under `runs_dir`; it must exist."""
    found = [Path(n) if Path(n).is_dir() else Path(runs_dir) / n for n in names]
    for path in found:
        if not path.is_dir():
            raise UserError(f"no run {path}: name a run directory, or a run under --runs-dir")
    return found


def all_run_dirs(runs_dir) -> list[Path]:
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir} does not exist: train something first (e.g. python warmup_mnist_cnn.py)")
    return sorted(p for p in runs_dir.iterdir() if (p / "config.json").is_file())


def find_complete_runs(runs_dir, names=None, broken: list | None = None) -> list[Path]:
    """Run directories under `runs_dir` whose summary says complete (an ensemble's members are inside its own
    directory, not listed separately), or exactly the named ones, which must be complete. Given a list `broken`,
    a listed run whose summary.json cannot be read goes there as (directory, message) instead of stopping all."""
    if names:
        found = named_run_dirs(runs_dir, names)
        for path in list(found):
            summary = path / "summary.json"
            try:
                complete = summary.is_file() and read_json(summary).get("status") == "complete"
            except UserError as exc:
                if broken is None:
                    raise
                broken.append((path, str(exc)))
                found.remove(path)
                continue
            if not complete:
                raise UserError(f"{path} is not a complete run (its summary.json does not say complete)")
        return found
    complete = []
    for path in all_run_dirs(runs_dir):
        if not (path / "summary.json").is_file():
            continue
        try:
            if read_json(path / "summary.json").get("status") == "complete":
                complete.append(path)
        except UserError as exc:
            if broken is None:
                raise
            broken.append((path, str(exc)))
    return complete


def find_runs_with_history(runs_dir, names=None) -> list[Path]:
    """The named runs (each must have a history.csv), or every run under `runs_dir` that has one."""
    if names:
        found = named_run_dirs(runs_dir, names)
        for path in found:
            if not (path / "history.csv").is_file():
                raise UserError(f"{path} has no history.csv (an ensemble's histories are in its members/)")
        return found
    return [p for p in all_run_dirs(runs_dir) if (p / "history.csv").is_file()]
