"""warmup_mnist_cnn.py end to end on generated MNIST: the run directory, TensorBoard logs, overwrite and resume."""

import json
import os
import platform
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import synthetic
import warmup_mnist_cnn
from emnist_study import cli, interrupts, recipes
from emnist_study.recording import CommitEpoch, RunRecorder
from helpers import ROOT, event_steps, quick_args, run_script


def test_quick_run_writes_a_complete_run_directory(tmp_path, mnist_dir):
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--epochs", "2")) == 0
    run = tmp_path / "runs" / "mnist_cnn-quick"
    assert sorted(p.name for p in run.iterdir()) == [
        "best.weights.h5", "config.json", "history.csv", "model.keras", "summary.json"]
    record = json.loads((run / "config.json").read_text())
    config = record["config"]
    assert config["optimizer"] == {"name": "adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-07}
    assert config["epochs"] == 2 and config["batch_size"] == 128 and config["seed"] == 1 and config["quick"]
    assert record["versions"]["tensorflow"].startswith("2.21") and record["versions"]["keras"].startswith("3.")
    assert list(record["data"]["files"].values())[0] == synthetic_sha(mnist_dir / "mnist.npz")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["epochs_completed"] == 2
    assert summary["train_seconds"] > 0 and summary["best_epoch"] in (1, 2)
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(header)
    assert not list(run.glob("*.partial*"))
    logged = event_steps(tmp_path / "logs" / "mnist_cnn-quick")
    for tag in ("train/epoch_loss", "train/epoch_accuracy", "validation/epoch_loss", "validation/epoch_accuracy"):
        assert logged[tag] == [0, 1]  # keras.callbacks.TensorBoard counts epochs from 0, as Keras does
    network = record["network"]
    assert network["name"] == "mnist_cnn" and network["params"] == 1_199_882
    assert network["layers"][0].startswith("Conv2D(filters=32, kernel_size=(3, 3)")


def synthetic_sha(path):
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_saved_model_reloads_and_predicts(tmp_path, mnist_dir):
    import keras
    run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir))
    model = keras.models.load_model(tmp_path / "runs" / "mnist_cnn-quick" / "model.keras")
    probabilities = model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    assert probabilities.shape == (2, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_same_seed_same_result(tmp_path, mnist_dir):
    for name in ("a", "b"):
        run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--run-name", name))
    history = [(tmp_path / "runs" / name / "history.csv").read_text().splitlines()[1].split(",")[:5]
               for name in ("a", "b")]
    assert history[0] == history[1]


def test_existing_run_is_not_overwritten_without_asking(tmp_path, mnist_dir, capsys):
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir)) == 0
    before = (tmp_path / "runs" / "mnist_cnn-quick" / "history.csv").read_text()
    capsys.readouterr()
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--overwrite" in err[0]
    assert (tmp_path / "runs" / "mnist_cnn-quick" / "history.csv").read_text() == before
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--overwrite", "--epochs", "2")) == 0
    assert json.loads((tmp_path / "runs" / "mnist_cnn-quick" / "summary.json").read_text())["epochs_completed"] == 2


def test_resume_continues_an_interrupted_run(tmp_path, mnist_dir, monkeypatch, capsys):
    """Ctrl-C after epoch 2 finished but before its backup was written: resume redoes epoch 2 and goes on."""
    original = RunRecorder.on_epoch_end
    epochs_begun = []

    def interrupt_in_epoch_2(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunRecorder, "on_epoch_end", interrupt_in_epoch_2)
    args = quick_args(tmp_path, mnist_dir, "--epochs", "3")
    assert run_script(warmup_mnist_cnn, *args) == 130  # the shell's code for Ctrl-C
    err = capsys.readouterr().err
    assert "interrupted after" in err and "to continue, run:" in err and "--resume" in err
    run = tmp_path / "runs" / "mnist_cnn-quick"
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    assert (run / "backup").is_dir()

    assert run_script(warmup_mnist_cnn, *args) == 1  # no flag: refuses to touch it
    monkeypatch.setattr(RunRecorder, "on_epoch_end", original)
    original_begin = RunRecorder.on_epoch_begin

    def record_begin(self, epoch, logs=None):
        epochs_begun.append(epoch)
        original_begin(self, epoch, logs)

    monkeypatch.setattr(RunRecorder, "on_epoch_begin", record_begin)
    assert run_script(warmup_mnist_cnn, *args, "--resume") == 0
    assert epochs_begun == [1, 2]  # zero-based: epochs 2 and 3 ran again, epoch 1 did not
    lines = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]
    assert json.loads((run / "summary.json").read_text())["status"] == "complete"
    assert (run / "model.keras").is_file() and not (run / "backup").exists()


def test_ctrl_c_that_tensorflow_turns_into_another_error_still_stops_as_ctrl_c(tmp_path, mnist_dir, monkeypatch,
                                                                             capsys):
    """A SIGINT that lands inside TensorFlow's C++ code can come out as a TypeError (seen once in
    test_interrupts' real Ctrl-C of run_all.py, on a busy machine): it is still an interruption, with exit 130, the
    run marked interrupted and no traceback."""
    def interrupt_inside_tensorflow(self, epoch, logs=None):
        try:
            signal.raise_signal(signal.SIGINT)  # interrupts.run_main's handler raises KeyboardInterrupt ...
        except KeyboardInterrupt:  # ... which TensorFlow's C++ code replaced with one of its own errors
            raise TypeError("No common supertype of TensorSpec(shape=(), dtype=tf.int32, name=None)") from None

    monkeypatch.setattr(RunRecorder, "on_epoch_end", interrupt_inside_tensorflow)
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--epochs", "1")) == 130
    err = capsys.readouterr().err
    assert "interrupted after" in err and "--resume" in err and "Traceback" not in err
    summary = json.loads((tmp_path / "runs" / "mnist_cnn-quick" / "summary.json").read_text())
    assert summary["status"] == "interrupted"


def test_ctrl_c_turned_into_another_error_outside_training_is_still_ctrl_c(capsys):
    def main(argv):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise SystemError("<built-in function __import__> returned a result with an exception set") from None

    with pytest.raises(SystemExit) as exit_:
        interrupts.run_main(main, [])
    assert exit_.value.code == 130 and "interrupted; to continue, run:" in capsys.readouterr().err


def test_resume_refuses_different_settings(tmp_path, mnist_dir, capsys):
    run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir))
    capsys.readouterr()
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--resume", "--batch-size", "64")) == 1
    assert "batch_size 128 -> 64" in capsys.readouterr().err


def test_resume_of_a_complete_run_says_so(tmp_path, mnist_dir, capsys):
    run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir))
    capsys.readouterr()
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--resume")) == 0
    assert "already complete" in capsys.readouterr().out


def test_diverging_run_stops_with_a_clear_message(tmp_path, mnist_dir, monkeypatch, capsys):
    """A learning rate far too high: the loss becomes NaN, the run is marked diverged, and the one line says where
    the learning rate is set, and that no weights were kept when no epoch finished."""
    import keras
    monkeypatch.setattr(keras.optimizers, "Adadelta", lambda **settings: keras.optimizers.SGD(learning_rate=1e12))
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir)) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "warmup_mnist_cnn.py's model.compile" in err and "--overwrite" in err
    assert "no epoch finished, so no weights were kept" in err
    run_dir = tmp_path / "runs" / "mnist_cnn-quick"
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "diverged"
    assert not (run_dir / "model.keras").exists() and not (run_dir / "best.weights.h5").exists()


# --- bad input from the command line: one line, non-zero exit, nothing written ---------------------------

@pytest.mark.parametrize("flags, message", [
    (["--epochs", "-1"], "argument --epochs: must be at least 1, not -1"),
    (["--val-fraction", "1.5"], "argument --val-fraction: must be between 0 and 1"),
    (["--batch-size", "zero"], "argument --batch-size: 'zero' is not a whole number"),
    (["--run-name", "../escape"], "run name '../escape' must be 1 to 100 letters"),
])
def test_nonsense_flags(tmp_path, mnist_dir, capsys, flags, message):
    code = run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, *flags))
    assert code in (1, 2)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_missing_data_dir_from_the_shell(tmp_path):
    """A real subprocess: exit code 1, one line on stderr, no traceback, no run directory."""
    result = subprocess.run(
        [sys.executable, "warmup_mnist_cnn.py", "--quick", "--data-dir", str(tmp_path / "missing"),
         "--runs-dir", str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"warmup_mnist_cnn.py: error: --data-dir {tmp_path / 'missing'} does not exist "
                     f"or is not a directory"]
    assert not (tmp_path / "runs").exists()


def test_a_script_trains_with_the_onednn_kernels_and_records_it(tmp_path):
    """TensorFlow starts through quiet_tensorflow wherever the package starts it (here first by `--precision
    auto`), so every script trains with oneDNN's kernels on x86-64 Linux, as docs/speed.md measured."""
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=10)
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}  # as a user's shell has it
    result = subprocess.run([sys.executable, "emnist_experiments.py", "--exp", "fast", "--dataset", "mnist",
                             "--epochs", "1", *quick_args(tmp_path, tmp_path / "data")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    versions = json.loads((tmp_path / "runs" / "mnist_exp_fast-quick" / "config.json").read_text())["versions"]
    assert versions["tensorflow_onednn"] is (sys.platform == "linux" and platform.machine() == "x86_64")


def test_no_data_and_no_network(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, tmp_path / "empty")) == 1
    err = capsys.readouterr().err.strip()
    assert "MNIST was not found" in err and "--data-dir" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_help_lists_the_shared_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.training_parser(warmup_mnist_cnn.__doc__, recipes.MNIST_CNN).parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data-dir", "--runs-dir", "--logs-dir", "--run-name", "--epochs", "--batch-size", "--seed",
                 "--val-fraction", "--quick", "--overwrite", "--resume"):
        assert flag in out


SCRIPTS = ("warmup_mnist_mlp", "warmup_mnist_cnn", "nielsen_cnn", "emnist_baseline", "emnist_experiments",
           "plot_history", "show_misclassified", "evaluate_test", "run_all", "benchmark", "predict", "predict_fidelity")
HELP_WITHOUT_TENSORFLOW = """
import runpy, sys
for script in sys.argv[1:]:
    sys.argv = [script + ".py", "--help"]
    try:
        runpy.run_path(script + ".py", run_name="__main__")
    except SystemExit as exc:
        assert exc.code == 0, (script, exc.code)
    heavy = [m for m in ("tensorflow", "keras", "matplotlib", "sklearn") if m in sys.modules]
    print(script, *heavy, file=sys.stderr)
"""


def test_help_answers_without_loading_tensorflow():
    """--help must answer at once: no script may start TensorFlow (or matplotlib, or scikit-learn) to print it."""
    done = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TENSORFLOW, *SCRIPTS], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.split("\n")[:-1] == list(SCRIPTS)  # each script's name alone: nothing heavy was loaded
    for flag in ("--data-dir", "--runs-dir", "--results-dir"):
        assert flag in done.stdout


MISTAKE_WITHOUT_TENSORFLOW = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    print("exit", exc.code, *[m for m in ("tensorflow", "keras", "matplotlib") if m in sys.modules])
"""


@pytest.mark.parametrize("argv", [["show_misclassified.py", "no_such_run"], ["evaluate_test.py", "no_such_run"],
                                  ["warmup_mnist_cnn.py", "--epsilon", "-1"]])
def test_a_mistake_that_needs_no_tensorflow_answers_before_it_loads(tmp_path, argv):
    done = subprocess.run([sys.executable, "-c", MISTAKE_WITHOUT_TENSORFLOW, *argv, "--runs-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() in (["exit", "1"], ["exit", "2"]), done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or argv[1] == "--epsilon", done.stderr
    assert ("no run" in done.stderr) if argv[1] == "no_such_run" else "must be above 0, not -1" in done.stderr


def test_an_unfinished_run_is_named_with_the_command_that_continues_it(tmp_path, mnist_dir, monkeypatch, capsys):
    """show_misclassified.py (and evaluate_test.py, given its name) on a run stopped after one of its epochs: the
    answer is --resume, which keeps that epoch, not --overwrite, which would throw it away."""
    import evaluate_test
    import show_misclassified

    real_commit = CommitEpoch.on_epoch_end

    def interrupt_after_epoch_1(self, epoch, logs=None):
        real_commit(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(CommitEpoch, "on_epoch_end", interrupt_after_epoch_1)
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--epochs", "2")) == 130
    capsys.readouterr()
    for script in (show_misclassified, evaluate_test):
        assert run_script(script, "mnist_cnn-quick", "--runs-dir", str(tmp_path / "runs")) == 1
        err = capsys.readouterr().err
        assert "has not finished (interrupted after 1 of 2 epochs)" in err, err
        assert "python warmup_mnist_cnn.py --run-name mnist_cnn-quick --resume" in err and "--overwrite" not in err


def test_a_run_whose_config_lacks_a_setting_is_not_resumed_as_another(tmp_path, mnist_dir, capsys):
    """A config.json without a setting (written by hand, or by another version of the project) does not say what
    the run trained with: resuming it is refused, naming the setting, rather than guessed."""
    run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir))
    config_path = tmp_path / "runs" / "mnist_cnn-quick" / "config.json"
    record = json.loads(config_path.read_text())
    del record["config"]["precision"]
    config_path.write_text(json.dumps(record))
    capsys.readouterr()
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--resume")) == 1
    assert "precision '(not recorded)' -> 'float32'" in capsys.readouterr().err


def test_a_changed_layer_or_learning_rate_is_recorded_and_not_resumed_as_the_old_run(tmp_path, mnist_dir, capsys,
                                                                                     monkeypatch):
    """A student edits the script: the run records the network and the optimizer as compiled, and --resume of a
    run trained before the edit is refused rather than continued as a different network."""
    import keras
    args = quick_args(tmp_path, mnist_dir, "--epochs", "2")
    real_commit = CommitEpoch.on_epoch_end

    def interrupt_after_epoch_1(self, epoch, logs=None):
        real_commit(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(CommitEpoch, "on_epoch_end", interrupt_after_epoch_1)
    assert run_script(warmup_mnist_cnn, *args) == 130
    monkeypatch.undo()
    real_conv = keras.layers.Conv2D
    monkeypatch.setattr(keras.layers, "Conv2D", lambda filters, **kw: real_conv(filters * 2, **kw))
    capsys.readouterr()
    assert run_script(warmup_mnist_cnn, *args, "--resume") == 1
    assert "its network has changed" in capsys.readouterr().err
    monkeypatch.undo()
    real_adadelta = keras.optimizers.Adadelta
    monkeypatch.setattr(keras.optimizers, "Adadelta", lambda **kw: real_adadelta(**{**kw, "learning_rate": 0.5}))
    assert run_script(warmup_mnist_cnn, *args, "--resume") == 1
    assert "optimizer {'name': 'adadelta', 'learning_rate': 1.0" in capsys.readouterr().err
    monkeypatch.undo()
    assert run_script(warmup_mnist_cnn, *args, "--resume") == 0
    record = json.loads((tmp_path / "runs" / "mnist_cnn-quick" / "config.json").read_text())
    assert record["config"]["optimizer"]["learning_rate"] == 1.0 and "resumed_at" in record


def test_mixed_bfloat16_run_trains_and_keeps_float32_probabilities(tmp_path, mnist_dir):
    import keras

    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--precision", "mixed_bfloat16")) == 0
    run = tmp_path / "runs" / "mnist_cnn-quick"
    assert json.loads((run / "config.json").read_text())["config"]["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # the run's policy did not leak out
    model = keras.models.load_model(run / "model.keras")
    assert model.layers[0].dtype_policy.name == "mixed_bfloat16"
    probabilities = model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_auto_precision_is_settled_before_the_run_is_saved(tmp_path, mnist_dir):
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--precision", "auto")) == 0
    config = json.loads((tmp_path / "runs" / "mnist_cnn-quick" / "config.json").read_text())["config"]
    assert config["precision"] in ("float32", "mixed_bfloat16", "mixed_float16")


def test_run_files_are_readable_as_the_umask_allows(tmp_path):
    import os
    import stat

    from emnist_study import run_folder
    old = os.umask(0o022)
    try:
        run_folder.write_json_atomic(tmp_path / "x.json", {"a": 1})
        assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644
    finally:
        os.umask(old)


@pytest.mark.parametrize("flags, message", [
    (["--run-name", ""], "run name '' must be 1 to 100 letters"),
    (["--run-name", "x" * 256], "must be 1 to 100 letters"),
])
def test_impossible_run_names_are_refused_before_any_data_is_read(tmp_path, capsys, flags, message):
    # No data in the folder: were it read first, the error would be that MNIST is missing.
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, tmp_path, *flags)) == 1
    assert message in capsys.readouterr().err


def test_a_runs_dir_that_is_a_file_is_refused(tmp_path, mnist_dir, capsys):
    (tmp_path / "runs").write_text("not a folder")
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir)) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_resume_with_nothing_to_resume_says_so(tmp_path, mnist_dir, capsys):
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--resume")) == 0
    assert "Nothing to resume at" in capsys.readouterr().out


def test_resuming_a_run_stopped_before_its_first_epoch_ended_says_it_starts_over(tmp_path, mnist_dir, capsys):
    """Its config.json written, no epoch kept (Ctrl-C during the first epoch): --resume trains it from epoch 1,
    and says so."""
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir)) == 0
    run = tmp_path / "runs" / "mnist_cnn-quick"
    for path in run.iterdir():
        if path.name != "config.json":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    capsys.readouterr()
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--resume")) == 0
    out = capsys.readouterr().out
    assert f"{run} was stopped before its first epoch ended, so nothing of it is kept: training it from epoch 1" in out
    assert json.loads((run / "summary.json").read_text())["status"] == "complete"
