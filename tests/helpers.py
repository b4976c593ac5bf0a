"""What the tests share: running a script's main() as its __main__ does, the flags of a quick run, TensorBoard's
logged steps, the quick study's data and flags, and the environment that makes a script pause (hooks/)."""

import contextlib
import io
import os
from pathlib import Path

import synthetic
from emnist_study import interrupts

ROOT = Path(__file__).resolve().parents[1]
HOOKS = Path(__file__).resolve().parent / "hooks"


def run_script(module, *argv) -> int:
    """Run a script's main() the way its __main__ does (interrupts.run_main); returns its exit code."""
    try:
        interrupts.run_main(module.main, list(argv))
    except SystemExit as exc:
        return exc.code
    return 0


def run_script_capturing(module, *argv) -> tuple[int, str]:
    """run_script, with what the script wrote to stderr: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_script(module, *argv)
    return code, err.getvalue()


def quick_args(tmp_path, data_dir, *extra) -> list:
    return ["--quick", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs"),
            "--logs-dir", str(tmp_path / "logs"), *extra]


def event_steps(log_dir) -> dict:
    """Every scalar TensorBoard holds for the run, as {"train/epoch_loss": [steps...], ...}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    steps = {}
    for sub in ("train", "validation"):
        acc = EventAccumulator(str(Path(log_dir) / sub), size_guidance={"tensors": 0})
        acc.Reload()
        steps.update({f"{sub}/{t}": [e.step for e in acc.Tensors(t)] for t in acc.Tags()["tensors"]})
    return steps


def write_study_data(root: Path) -> None:
    """Generated MNIST and EMNIST Letters in the folders study_args names, for run_all.py's quick study."""
    synthetic.write_mnist_npz(root / "mnist_data", per_class_train=60, per_class_test=60)
    synthetic.write_emnist_files(root / "letters_data", per_class_train=24, per_class_test=24)


def study_args(*extra) -> list:
    """Relative folders, as a user types them: runs must record where the data really is."""
    return ["--quick", "--data-dir", "mnist_data", "--data-dir", "letters_data", *extra]


def paused_env(pause_at: str | None = None, slow_batches: float | None = None) -> dict:
    """The environment of a script started as a process of its own that pauses where hooks/sitecustomize.py says:
    at `pause_at` ("epoch-end:1", "backup-write:2", "final-save"), or for `slow_batches` seconds after every
    training batch."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMNIST_STUDY_NO_DOWNLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    if pause_at:
        env["EMNIST_TEST_PAUSE_AT"] = pause_at
    if slow_batches:
        env["EMNIST_TEST_SLOW_BATCHES"] = str(slow_batches)
    return env


def python_on_path(monkeypatch, tmp_path) -> None:
    """The Python running taken to be the one `python` finds (an activated environment), and the project's folder
    the current one: printed commands read `python warmup_mnist_cnn.py ...`, as the README and the notebook write
    them."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    (bin_dir / "python").write_text("")
    (bin_dir / "python").chmod(0o755)
    monkeypatch.setattr("sys.executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(ROOT)


def python_not_activated(monkeypatch, tmp_path) -> None:
    """The Python running is the project's .venv/bin/python, its environment not activated (no `python` on PATH),
    and the project's folder the current one: as the README's Quickstart leaves a student."""
    (tmp_path / "no-python").mkdir()
    monkeypatch.setattr("sys.executable", str(ROOT / ".venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-python"))
    monkeypatch.chdir(ROOT)
