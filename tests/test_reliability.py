"""Nothing lost: runs killed (kill -9) at chosen instants resume to the history of an uninterrupted run; a second
writer is refused; a full disk, corrupt files and wrong data types each get one line. FAULTS counts the faults
and bad inputs these tests exercise (the README states the number)."""

import contextlib
import csv
import dataclasses
import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

import evaluate_test
import synthetic
import warmup_mnist_mlp
from emnist_study import backup, data, interrupts, recipes, run_folder, training
from emnist_study.config import TrainConfig
from emnist_study.errors import UserError
from emnist_study.run import Run
from helpers import ROOT, paused_env, quick_args, run_script_capturing

SCRIPT = "warmup_mnist_mlp.py"
RUN = "mnist_mlp-quick"
KILL_POINTS = ("epoch-end:1", "backup-write:2", "final-save")
FULL_DISK_FILES = ("epoch-0002.npz", "history.csv")  # the backup's state, then a file written from it
BROKEN_FILES = ("model.keras truncated", "model.keras empty", "model.keras with a Lambda layer", "summary.json",
                "summary.json of an unfinished run", "config.json", "prediction cache", "history.csv",
                "backup state", "backup best weights", "backup state of wrong types", "config.json of wrong types",
                "summary.json of wrong types", "model.keras of another dataset's classes")
BAD_INPUTS = ("int32 pixels over 255", "float pixels 0..255", "NaN pixels", "float labels", "labels out of range",
              "a symlink loop as --data-dir")
OTHER_FAULTS = ("a second writer", "a second writer with --overwrite", "a permission error",
                "a disk too small for the run", "a real filesystem too small for the run's peak",
                "a full logs folder", "a full results folder", "resuming on other data",
                "SIGTERM during training", "SIGHUP during training")
FAULTS = len(KILL_POINTS) + len(FULL_DISK_FILES) + len(BROKEN_FILES) + len(BAD_INPUTS) + len(OTHER_FAULTS)


def history(run_dir) -> list[dict]:
    """history.csv without the timings, which differ between runs."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in run_folder.read_history(run_dir)]


def state_epochs(run_dir) -> list[int]:
    return sorted(backup.epoch_of(p) for p in (run_dir / "backup").glob("epoch-*.npz"))


def partial_files(root) -> list:
    return sorted(p.name for p in root.rglob("*.partial*"))


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@contextlib.contextmanager
def disk_fills_while_writing(file: str, time: int = 1):
    """The disk fills the `time`-th time `file` is written: os.fsync, which every write goes through, fails with
    ENOSPC on its temporary copy."""
    real_fsync, seen = os.fsync, []

    def fsync(fd):
        if f".{file.split('.')[0]}.partial" in os.readlink(f"/proc/self/fd/{fd}"):
            seen.append(fd)
            if len(seen) == time:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    os.fsync = fsync
    try:
        yield
    finally:
        os.fsync = real_fsync


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Generated MNIST, and the history of an uninterrupted 3-epoch run to compare the resumed ones with."""
    root = tmp_path_factory.mktemp("reliability")
    synthetic.write_mnist_npz(root / "data", per_class_train=30, per_class_test=5)

    def args(name, *extra):
        return ["--quick", "--epochs", "3", "--data-dir", str(root / "data"), "--runs-dir", str(root / name),
                "--logs-dir", str(root / "logs" / name), *extra]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMNIST_STUDY_NO_DOWNLOAD", "1")
        assert run_script_capturing(warmup_mnist_mlp, *args("reference"))[0] == 0
    return root, args, history(root / "reference" / RUN)


def start_paused(argv: list, point: str) -> tuple[subprocess.Popen, str]:
    """Start the script in a process of its own, and return once it waits at `point` (helpers.paused_env)."""
    child = subprocess.Popen([sys.executable, SCRIPT, *argv], cwd=ROOT, env=paused_env(point), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watchdog = threading.Timer(180, child.kill)
    watchdog.start()
    output = []
    for line in child.stdout:
        output.append(line)
        if line.strip() == f"paused at {point}":
            watchdog.cancel()
            return child, "".join(output)
    watchdog.cancel()
    raise AssertionError(f"never reached {point}:\n" + "".join(output[-40:]))


def kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


@pytest.fixture(scope="module")
def killed_thrice(study):
    """One run killed with SIGKILL three times, each time resumed: after epoch 1 was committed (between epochs),
    while epoch 2's state was half written, and once model.keras was saved but not yet marked complete. What each
    kill left, and what two other writers were told meanwhile."""
    root, args, reference = study
    run = root / "killed" / RUN
    left, refusals = {}, {}
    for point in KILL_POINTS:
        resume = [] if point == KILL_POINTS[0] else ["--resume"]
        child, output = start_paused(args("killed", *resume), point)
        if point == "backup-write:2":  # the run is locked by a live writer: the two ways of touching it refuse
            for flag in ("--resume", "--overwrite"):
                refusals[flag] = (child.pid, run_script_capturing(warmup_mnist_mlp, *args("killed", flag)))
        kill(child)
        summary = json.loads((run / "summary.json").read_text())
        left[point] = {"output": output, "history": [r["epoch"] for r in run_folder.read_history(run)],
                       "summary": (summary["status"], summary["epochs_completed"], summary["best_epoch"]),
                       "states": state_epochs(run), "partial": partial_files(run),
                       "model": (run / "model.keras").is_file()}
    code, err = run_script_capturing(warmup_mnist_mlp, *args("killed", "--resume"))
    return run, left, refusals, (code, err), reference


def test_a_kill_between_epochs_leaves_files_that_agree(killed_thrice):
    _, left, _, _, _ = killed_thrice
    after = left["epoch-end:1"]
    assert after["history"] == [1] and after["summary"] == ("running", 1, 1) and after["states"] == [1]
    assert after["partial"] == []


def test_a_kill_while_the_backup_is_written_loses_only_that_epoch(killed_thrice):
    _, left, _, _, _ = killed_thrice
    after = left["backup-write:2"]
    assert "Resuming" in after["output"] and "after epoch 1 of 3" in after["output"]
    assert after["history"] == [1] and after["summary"][:2] == ("running", 1) and after["states"] == [1]
    assert len(after["partial"]) == 1 and after["partial"][0].startswith(".epoch-0002.partial-")  # half written


def test_a_kill_during_the_final_save_keeps_the_backup(killed_thrice):
    _, left, _, _, _ = killed_thrice
    after = left["final-save"]
    assert after["model"] and after["summary"][:2] == ("running", 3)
    assert after["history"] == [1, 2, 3] and after["states"] == [2, 3]  # the latest and its fallback
    assert after["partial"] == []  # the previous process's half-written state was cleared


def test_after_three_kills_resume_gives_the_uninterrupted_history(killed_thrice):
    run, _, _, (code, err), reference = killed_thrice
    assert code == 0, err
    assert history(run) == reference  # every number, not just the epoch count
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["epochs_completed"] == 3
    assert not (run / "backup").exists() and partial_files(run.parent) == []
    assert not (run.parent / f".{RUN}.lock").exists()


def test_a_second_writer_is_refused_with_the_pid_of_the_first(killed_thrice):
    _, _, refusals, _, _ = killed_thrice
    for flag in ("--resume", "--overwrite"):
        pid, (code, err) = refusals[flag]
        assert code == 1 and f"being written by another process (PID {pid})" in one_line(err)


@pytest.mark.parametrize("failing", FULL_DISK_FILES)
def test_a_full_disk_gets_one_line_and_resume_finishes_the_run(study, failing):
    """The disk fills while one file is written (os.fsync, which every write goes through, fails with ENOSPC):
    one line naming the file and the command that continues, nothing half-written left, and --resume then ends
    with the uninterrupted history."""
    root, args, reference = study
    name = f"full-{failing.split('.')[0]}"
    with disk_fills_while_writing(failing, time=2 if failing == "history.csv" else 1):  # history: in epoch 2
        code, err = run_script_capturing(warmup_mnist_mlp, *args(name))
    line = one_line(err)
    assert code == 1 and "no space left on the device" in line and failing in line and "--resume" in line
    assert partial_files(root / name) == []
    assert json.loads((root / name / RUN / "summary.json").read_text())["status"] == "running"
    assert run_script_capturing(warmup_mnist_mlp, *args(name, "--resume"))[0] == 0
    assert history(root / name / RUN) == reference


def test_a_resumed_run_with_random_distortions_ends_as_an_uninterrupted_one(study, monkeypatch):
    """The distortions are drawn from the run's seed and the batch's number, so the epochs after --resume see
    the very distortions an uninterrupted run would (here the disk fills as epoch 2's history is written)."""
    root, _, _ = study
    config = TrainConfig(script="t", run_name="distorted", dataset="mnist", model="mnist_mlp", epochs=3,
                         batch_size=32, optimizer={"name": "adam", "learning_rate": 1e-3},
                         augment=recipes.HANDWRITING, data_dir=[str(root / "data")],
                         runs_dir=str(root / "distorted"), logs_dir=str(root / "logs" / "distorted"))
    monkeypatch.setenv("EMNIST_STUDY_NO_DOWNLOAD", "1")

    def train(config):
        run = Run(config)
        assert run.needs_training()
        training.train(run, data.load_training_data(config), warmup_mnist_mlp.build_mlp)

    train(config)
    interrupted = dataclasses.replace(config, runs_dir=str(root / "resumed"), logs_dir=str(root / "logs" / "resumed"))
    with disk_fills_while_writing("history.csv", time=2), pytest.raises(OSError):
        train(interrupted)
    train(dataclasses.replace(interrupted, resume=True))
    assert history(root / "resumed" / "distorted") == history(root / "distorted" / "distorted")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_during_training_is_taken_as_ctrl_c(study, signum):
    """A scheduler's or `docker stop`'s SIGTERM, a closed terminal's SIGHUP, sent while a run trains: the run is
    marked interrupted, its lock let go, the command that continues is printed, the exit code is 128 + the
    signal's; --resume then ends as an uninterrupted run."""
    root, args, reference = study
    name = f"signal-{signum}"
    child = subprocess.Popen([sys.executable, SCRIPT, *args(name)], cwd=ROOT, env=paused_env(slow_batches=0.2),
                             text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in child.stdout:
            if line.startswith("Training "):
                break
        child.send_signal(signum)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 128 + signum, err
    line = one_line(err)
    assert "interrupted after" in line and signal.Signals(signum).name in line and "--resume" in line, line
    run = root / name / RUN
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    assert not list((root / name).glob(".*.lock"))
    assert run_script_capturing(warmup_mnist_mlp, *args(name, "--resume"))[0] == 0
    assert history(run) == reference


def test_a_disk_too_small_for_the_run_is_refused_before_anything_is_written(study, monkeypatch):
    root, args, reference = study
    monkeypatch.setattr("emnist_study.disk.shutil.disk_usage", lambda path: types.SimpleNamespace(free=2**16))
    code, err = run_script_capturing(warmup_mnist_mlp, *args("small-disk"))
    line = one_line(err)
    assert code == 1 and "MB of disk" in line and "only 0 MB are free" in line and "--runs-dir" in line, line
    assert not (root / "small-disk" / RUN).exists()


def test_a_real_filesystem_too_small_for_the_runs_peak_is_refused_and_one_big_enough_holds_it(study,
                                                                                              small_filesystem):
    """The warm-up MLP's training state is 5.1 MiB, and its run holds up to 8 such copies at once (41 MiB
    measured): a 38 MiB runs folder, which a count of 7 let start and then filled, is refused before anything is
    written; a 44 MiB one holds the run to its end."""
    root, args, reference = study
    small = small_filesystem("38m")
    code, err = run_script_capturing(warmup_mnist_mlp, *args("x", "--runs-dir", str(small)))
    assert code == 1 and "MB of disk" in one_line(err) and not list(small.iterdir())
    enough = small_filesystem("44m")
    code, err = run_script_capturing(warmup_mnist_mlp, *args("x", "--runs-dir", str(enough)))
    assert code == 0, err
    assert history(enough / RUN) == reference


def test_a_full_logs_folder_is_one_line_and_the_run_resumes(study, small_filesystem):
    """TensorBoard's writers fill an 8 KiB logs folder: one line naming it, the run marked interrupted with every
    epoch it committed, and --resume (with room for the logs) ends as an uninterrupted run."""
    root, args, reference = study
    logs = small_filesystem("8k")
    code, err = run_script_capturing(warmup_mnist_mlp, *args("full-logs", "--logs-dir", str(logs)))
    line = one_line(err)
    assert code == 1 and "no space left on the device" in line and str(logs) in line and "--resume" in line, line
    run = root / "full-logs" / RUN
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    assert run_script_capturing(warmup_mnist_mlp, *args("full-logs", "--resume"))[0] == 0
    assert history(run) == reference


def test_a_full_results_folder_is_one_line_naming_the_file(study, small_filesystem):
    root, args, _ = study
    results = small_filesystem("24k")
    code, err = run_script_capturing(evaluate_test, "--runs-dir", str(root / "reference"), "--data-dir",
                                     str(root / "data"), "--results-dir", str(results))
    line = one_line(err)
    assert code == 1 and "no space left on the device" in line and str(results) in line, line


def test_resuming_on_other_data_is_refused_naming_both_files(study, tmp_path):
    """Epochs 1-2 on one file and epoch 3 on another would end "complete" with the mix hidden: refused."""
    root, args, _ = study
    with disk_fills_while_writing("history.csv", time=2):  # stopped after epoch 1
        assert run_script_capturing(warmup_mnist_mlp, *args("other-data"))[0] == 1
    other = tmp_path / "other"
    synthetic.write_mnist_npz(other, per_class_train=30, per_class_test=5)
    arrays = dict(np.load(other / "mnist.npz"))
    np.savez(other / "mnist.npz", **{**arrays, "y_train": (arrays["y_train"] + 1) % 10})  # same shapes, labels moved
    resume_on_other = [other if a == str(root / "data") else a for a in args("other-data", "--resume")]
    code, err = run_script_capturing(warmup_mnist_mlp, *map(str, resume_on_other))
    line = one_line(err)
    assert code == 1 and "on other data" in line and str(root / "data" / "mnist.npz") in line, line
    assert str(other / "mnist.npz") in line and "--overwrite" in line
    assert json.loads((root / "other-data" / RUN / "summary.json").read_text())["epochs_completed"] == 1


def test_a_corrupt_summary_of_an_unfinished_run_is_rewritten_by_resume(study):
    """A run stopped after epoch 1 (its disk filled as epoch 2's history was written) whose summary.json was then
    damaged: the backup holds all the summary said, so --resume continues from it, rewrites the summary and ends
    with the uninterrupted history."""
    root, args, reference = study
    with disk_fills_while_writing("history.csv", time=2):
        assert run_script_capturing(warmup_mnist_mlp, *args("bad-summary"))[0] == 1
    run = root / "bad-summary" / RUN
    (run / "summary.json").write_text('{"status": "runn')
    code, err = run_script_capturing(warmup_mnist_mlp, *args("bad-summary", "--resume"))
    assert code == 0, err
    assert history(run) == reference
    assert json.loads((run / "summary.json").read_text())["status"] == "complete"


def test_the_debug_variable_shows_the_traceback(monkeypatch):
    def main(argv):
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere/runs")

    code, err = run_script_capturing(types.SimpleNamespace(main=main))
    assert code == 1 and "Permission denied (/somewhere/runs): check the folder's permissions" in one_line(err)
    monkeypatch.setenv(interrupts.DEBUG_ENV, "1")
    with pytest.raises(PermissionError):
        interrupts.run_main(main, [])


def test_evaluate_test_reports_broken_runs_and_judges_the_rest(tmp_path, capsys):
    """Runs whose model.keras is cut short, empty or holds a Lambda layer, and runs whose summary.json or
    config.json is garbage: each named on a line of its own; the healthy run is judged. Then a cut-short cache
    file is computed again."""
    import keras

    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=2, per_class_test=5)
    runs_dir = tmp_path / "runs"
    for name in ("healthy", "cut_model", "empty_model", "lambda_model", "bad_summary", "bad_config",
                 "config_of_wrong_type", "summary_of_wrong_type", "letters_model"):
        synthetic.write_finished_run(runs_dir, name, "mnist", synthetic.template_model(10))
    for name, file, key, value in (("config_of_wrong_type", "config.json", "dataset", 5),
                                   ("summary_of_wrong_type", "summary.json", "train_seconds", "x")):
        record = json.loads((runs_dir / name / file).read_text())
        (record["config"] if file == "config.json" else record)[key] = value
        (runs_dir / name / file).write_text(json.dumps(record))
    synthetic.template_model(26).save(runs_dir / "letters_model" / "model.keras")  # valid, but not for digits
    model = (runs_dir / "cut_model" / "model.keras")
    model.write_bytes(model.read_bytes()[:2000])
    (runs_dir / "empty_model" / "model.keras").write_bytes(b"")
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Lambda(lambda x: x[:, :10])]
                     ).save(runs_dir / "lambda_model" / "model.keras")
    (runs_dir / "bad_summary" / "summary.json").write_text('{"status": "compl')
    (runs_dir / "bad_config" / "config.json").write_text("")
    argv = ["--runs-dir", str(runs_dir), "--data-dir", str(tmp_path / "data"),
            "--results-dir", str(tmp_path / "r")]

    code, err = run_script_capturing(evaluate_test, *argv)
    assert code == 0, err
    problems = {line.split(": ")[2].split("/")[-1]: line for line in err.splitlines() if "not judged" in line}
    assert sorted(problems) == ["bad_config", "bad_summary", "config_of_wrong_type", "cut_model", "empty_model",
                                "lambda_model", "letters_model", "summary_of_wrong_type"]
    assert "config.json is corrupt ('dataset' is 5, not str)" in problems["config_of_wrong_type"]
    assert "summary.json is corrupt ('train_seconds' is 'x', not float)" in problems["summary_of_wrong_type"]
    assert "answers in 26 classes, but mnist has 10" in problems["letters_model"]
    assert "config.json is corrupt (empty); delete that run's folder, or train it again with --overwrite" in (
        problems["bad_config"])
    assert "summary.json is corrupt" in problems["bad_summary"]
    for name in ("cut_model", "empty_model"):
        assert "model.keras is damaged (empty, truncated, or not a .keras file)" in problems[name]
    assert "model.keras cannot be loaded" in problems["lambda_model"] and "Lambda" in problems["lambda_model"]
    assert all("--overwrite" in problems[name] for name in ("cut_model", "empty_model", "lambda_model"))
    results = list(csv.DictReader(open(tmp_path / "r" / "test_results.csv")))
    assert [r["run"] for r in results] == ["healthy"] and results[0]["test_accuracy"] == "1.0"

    def probabilities(path):
        with np.load(path) as cached:
            return cached["probabilities"]

    [cache] = [p for p in (tmp_path / "r" / "cache").glob("*.npz") if probabilities(p).shape == (50, 10)]  # healthy's
    healthy = cache.read_bytes()
    cache.write_bytes(healthy[:100])
    capsys.readouterr()
    assert run_script_capturing(evaluate_test, *argv, "healthy")[0] == 0
    assert "unreadable" in capsys.readouterr().out and probabilities(cache).shape == (50, 10)


def test_a_prediction_cache_damaged_or_replaced_is_computed_again_saying_so(tmp_path, capsys):
    """A cache of the wrong number of classes is not blamed on the model, and one of the right shape but other
    values (another run's, or edited) is not taken as it is: its checksums say so, and it is predicted again."""
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=2, per_class_test=5)
    runs_dir = tmp_path / "runs"
    synthetic.write_finished_run(runs_dir, "healthy", "mnist", synthetic.template_model(10))
    argv = ["--runs-dir", str(runs_dir), "--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "r")]
    assert run_script_capturing(evaluate_test, *argv)[0] == 0
    [cache] = (tmp_path / "r" / "cache").glob("*.npz")
    with np.load(cache) as saved:
        right, record = saved["probabilities"], saved["record"]
    first = (tmp_path / "r" / "test_results.csv").read_text()
    for probabilities, why in ((np.full((50, 26), 1 / 26), "were damaged"),
                               (np.roll(right, 1, axis=1), "were damaged")):
        np.savez(cache, probabilities=probabilities, record=record)
        capsys.readouterr()
        code, err = run_script_capturing(evaluate_test, *argv)
        assert code == 0 and "not judged" not in err, err
        assert f"{why} (their checksum differs); predicting again" in capsys.readouterr().out
        assert (tmp_path / "r" / "test_results.csv").read_text() == first
    with np.load(cache) as saved:
        np.testing.assert_array_equal(saved["probabilities"], right)


def test_corrupt_history_summary_and_config_stop_with_one_line_naming_the_file(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    for text, why in (("", "empty, or no header row"), ("epoch,loss\n1,0.5\n2\n", "float() argument"),
                      ("epoch,loss\n1,zero\n", "could not convert")):
        (run_dir / "history.csv").write_text(text)
        with pytest.raises(UserError, match=re.escape(f"{run_dir / 'history.csv'} is corrupt (") + re.escape(why)):
            run_folder.read_history(run_dir)
    (run_dir / "config.json").write_text("[1, 2]")
    with pytest.raises(UserError, match=r"config.json is corrupt \(not a JSON object\)"):
        run_folder.read_run_config(run_dir)


def test_a_run_folder_written_by_a_newer_version_is_refused_in_one_line_and_an_older_one_is_read(study):
    """config.json and summary.json carry their schema version: a run records it; a newer one is refused by every
    reader in one line saying what to do; a file without one (written before versions were recorded) is read."""
    import shutil

    root, args, _ = study
    run = root / "newer" / RUN
    shutil.copytree(root / "reference" / RUN, run)
    for name in ("config.json", "summary.json"):
        assert json.loads((run / name).read_text())["schema_version"] == run_folder.SCHEMA_VERSION
    for name in ("config.json", "summary.json"):
        record = json.loads((run / name).read_text())
        del record["schema_version"]
        (run / name).write_text(json.dumps(record))
    assert run_folder.read_run_config(run)["run_name"] == RUN and run_folder.read_summary(run)["status"] == "complete"
    for name in ("config.json", "summary.json"):
        saved = (run / name).read_text()
        (run / name).write_text(json.dumps({**json.loads(saved), "schema_version": run_folder.SCHEMA_VERSION + 1}))
        reader = run_folder.read_run_config if name == "config.json" else run_folder.read_summary
        with pytest.raises(UserError, match=re.escape(f"{run / name} was written by a newer version of this "
                                                      f"project")):
            reader(run)
        code, err = run_script_capturing(warmup_mnist_mlp, *args("newer", "--resume"))
        line = one_line(err)
        assert code == 1 and f"{run / name} was written by a newer version of this project" in line
        assert "update the project" in line and "--overwrite" in line
        (run / name).write_text(saved)


def compiled_mlp():
    """The warm-up MLP, compiled: a model with an optimizer's state, as a backup holds it."""
    import keras

    model = warmup_mnist_mlp.build_mlp(10)
    model.compile(optimizer=keras.optimizers.RMSprop(), loss="categorical_crossentropy")
    return model


def test_an_unreadable_backup_falls_back_to_the_one_before_and_none_refuses(tmp_path, capsys):
    """Two committed epochs, the newer one cut short: resume takes the older. Both unreadable: it refuses,
    rather than start again while history.csv says epochs were done."""
    run = Run(TrainConfig(script=SCRIPT, run_name="r", dataset="mnist", model="mnist_mlp", epochs=3,
                          batch_size=32, runs_dir=str(tmp_path)))
    trained = compiled_mlp()
    rows = [{"epoch": e, "loss": 1.0 / e, "val_accuracy": 0.5} for e in (1, 2)]
    for epoch in (1, 2):
        backup.save_state(trained, run.backup_dir, epoch, rows[:epoch], 1)
    trained.save_weights(backup.best_weights_path(run.backup_dir, 1))
    run_folder.write_csv_atomic(run_folder.history_path(run.dir), rows)
    newest = backup.state_path(run.backup_dir, 2)
    newest.write_bytes(newest.read_bytes()[:5000])
    restored = compiled_mlp()
    assert backup.restore(restored, run)["epoch"] == 1
    assert "cannot be read" in capsys.readouterr().out
    for restored_weights, trained_weights in zip(restored.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(restored_weights, trained_weights)
    backup.state_path(run.backup_dir, 1).write_bytes(b"")
    with pytest.raises(UserError, match="cannot resume .* exactly: 2 epoch"):
        backup.restore(compiled_mlp(), run)


def test_a_damaged_best_weights_file_is_never_promoted_and_a_state_of_wrong_types_is_passed_over(tmp_path, capsys):
    """Epoch 2 was the best, but its weights file in the backup was cut short: --resume continues from epoch 1,
    whose best weights are whole, and best.weights.h5 is never the damaged file. A state whose history holds no
    epochs' records (a list of numbers) is passed over in the same way, not a TypeError."""
    run = Run(TrainConfig(script=SCRIPT, run_name="r", dataset="mnist", model="mnist_mlp", epochs=3,
                          batch_size=32, runs_dir=str(tmp_path)))
    trained = compiled_mlp()
    rows = [{"epoch": e, "loss": 1.0 / e, "val_accuracy": 0.5 * e} for e in (1, 2)]
    for epoch in (1, 2):
        backup.save_state(trained, run.backup_dir, epoch, rows[:epoch], epoch)
        trained.save_weights(backup.best_weights_path(run.backup_dir, epoch))
    damaged = backup.best_weights_path(run.backup_dir, 2)
    damaged.write_bytes(damaged.read_bytes()[:2000])
    assert backup.restore(compiled_mlp(), run)["epoch"] == 1
    assert "best-epoch-0002.weights.h5, are missing or damaged" in capsys.readouterr().out
    assert run_folder.best_weights_path(run.dir).read_bytes() == backup.best_weights_path(run.backup_dir, 1).read_bytes()

    backup.save_state(trained, run.backup_dir, 3, [1, 2, 3], 1)
    assert backup.restore(compiled_mlp(), run)["epoch"] == 1
    assert "epoch-0003.npz cannot be read (ValueError: its epoch, history or best epoch" in capsys.readouterr().out


def npz_with(tmp_path, images=None, labels=None):
    path = synthetic.write_mnist_npz(tmp_path / "data", per_class_train=2, per_class_test=1)
    arrays = dict(np.load(path))
    if images is not None:
        arrays["x_train"] = images(arrays["x_train"])
    if labels is not None:
        arrays["y_train"] = labels(arrays["y_train"])
    np.savez(path, **arrays)
    return tmp_path / "data"


@pytest.mark.parametrize("images, labels, message", [
    (lambda x: x.astype(np.int32) + 1, None, "images in .* are int32 from 1 to 256; expected pixels 0..255"),
    (lambda x: x.astype(np.float32), None, "are float32 from 0.0 to 255.0"),
    (lambda x: np.where(x > 100, np.nan, x / 255).astype(np.float32), None, "from nan to nan"),
    (None, lambda y: y.astype(np.float64), "labels in .* are float64, not whole numbers"),
    (None, lambda y: y.astype(np.int64) + 1, "labels in .* run 1..10, expected 0..9"),
])
def test_wrong_data_types_are_refused_with_one_line(tmp_path, images, labels, message):
    with pytest.raises(UserError, match=message):
        data.load_mnist(split="train", data_dir=[npz_with(tmp_path, images, labels)])


def test_float_images_scaled_to_one_are_converted_and_whole_numbers_kept(tmp_path):
    original = data.load_mnist(split="train", data_dir=[npz_with(tmp_path)]).images
    scaled = data.load_mnist(split="train", data_dir=[npz_with(tmp_path, lambda x: x / np.float32(255))]).images
    np.testing.assert_array_equal(scaled, original)
    wide = data.load_mnist(split="train", data_dir=[npz_with(tmp_path, lambda x: x.astype(np.int64))]).images
    assert wide.dtype == np.uint8 and np.array_equal(wide, original)


def test_a_symlink_loop_as_data_dir_is_one_line(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    code, err = run_script_capturing(warmup_mnist_mlp, "--quick", "--data-dir", str(tmp_path / "loop"))
    assert code == 1 and one_line(err).endswith(f"error: --data-dir {tmp_path / 'loop'} is a symbolic link that "
                                                f"leads back to itself (a loop); give the folder that holds the data")


def test_the_readme_states_the_count():
    assert f"{FAULTS} faults and bad inputs" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("Yes", True), ("ON", True), ("0", False),
                                       ("false", False), ("No", False), ("off", False), ("", False)])
def test_the_yes_no_variables_take_the_usual_spellings(monkeypatch, value, on):
    from emnist_study import download, environment
    monkeypatch.setenv(download.NO_DOWNLOAD_ENV, value)
    assert environment.switch(download.NO_DOWNLOAD_ENV) is on


def test_downloads_disabled_by_true_start_no_download_and_a_misspelt_switch_is_refused(tmp_path, monkeypatch):
    from emnist_study import download

    def no_network(*args, **kwargs):
        raise AssertionError("a download started")

    monkeypatch.setattr(download.urllib.request, "urlopen", no_network)
    monkeypatch.setenv(download.NO_DOWNLOAD_ENV, "true")
    with pytest.raises(UserError, match=r"downloads are disabled \(EMNIST_STUDY_NO_DOWNLOAD=true\)\. get it by hand"):
        download.download("https://example.org/x.zip", tmp_path / "x.zip", "sha256", "0" * 64, "get it by hand")
    monkeypatch.setenv(download.NO_DOWNLOAD_ENV, "maybe")
    with pytest.raises(UserError, match=r"EMNIST_STUDY_NO_DOWNLOAD='maybe' is neither on nor off: set it to 1"):
        download.download("https://example.org/x.zip", tmp_path / "x.zip", "sha256", "0" * 64, "get it by hand")


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_the_debug_variable_set_off_keeps_errors_to_one_line(monkeypatch, value):
    def main(argv):
        raise UserError("something the user can fix")

    monkeypatch.setenv(interrupts.DEBUG_ENV, value)
    code, err = run_script_capturing(types.SimpleNamespace(main=main))
    assert code == 1 and one_line(err).endswith("error: something the user can fix")


def test_a_misspelt_debug_variable_is_refused_in_one_line(monkeypatch):
    def main(argv):
        raise AssertionError("main ran")

    monkeypatch.setenv(interrupts.DEBUG_ENV, "verbose")
    code, err = run_script_capturing(types.SimpleNamespace(main=main))
    assert code == 1 and "EMNIST_STUDY_DEBUG='verbose' is neither on nor off" in one_line(err)


@pytest.mark.parametrize("name, value", [("TF_NUM_INTRAOP_THREADS", "-1"), ("TF_NUM_INTEROP_THREADS", "two")])
def test_threading_variables_tensorflow_cannot_take_are_refused_before_it_starts(tmp_path, name, value):
    """TensorFlow itself aborts on TF_NUM_INTRAOP_THREADS=-1 (a C++ "Check failed", exit 134)."""
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=2, per_class_test=2)
    env = {**os.environ, name: value}
    result = subprocess.run([sys.executable, "warmup_mnist_mlp.py", "--quick", "--data-dir", str(tmp_path / "data"),
                             "--runs-dir", str(tmp_path / "runs"), "--logs-dir", str(tmp_path / "logs")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert f"warmup_mnist_mlp.py: error: {name}={value!r} is not a number of threads" in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_a_run_still_training_is_not_called_unfinished(tmp_path):
    """While the run's process holds its lock, "continue it with --resume" would start a second writer: the
    scripts that need a finished run say it is training and to wait."""
    import fcntl

    import plot_history
    import show_misclassified

    run = tmp_path / "runs" / "emnist_cnn"
    run.mkdir(parents=True)
    config = TrainConfig(script="emnist_baseline.py", run_name="emnist_cnn", dataset="emnist-letters",
                         model="mnist_cnn", epochs=12, batch_size=128)
    (run / "config.json").write_text(json.dumps({"config": dataclasses.asdict(config)}))
    (run / "summary.json").write_text(json.dumps({"status": "running", "epochs_completed": 0, "epochs_planned": 12}))
    with open(run_folder.lock_path(run), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(b"4242\n")
        lock.flush()
        for script in (show_misclassified, plot_history):
            code, err = run_script_capturing(script, "emnist_cnn", "--runs-dir", str(tmp_path / "runs"),
                                             "--no-show", "--results-dir", str(tmp_path / "results"))
            line = one_line(err)
            assert code == 1 and "process 4242" in line and "--resume" not in line, line
    code, err = run_script_capturing(show_misclassified, "emnist_cnn", "--runs-dir", str(tmp_path / "runs"))
    assert code == 1 and "has not finished (running after 0 of 12 epochs): continue it with" in one_line(err)


def test_a_run_folder_linked_to_a_folder_that_is_gone_is_one_line_naming_it(tmp_path):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=60, per_class_test=2)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mnist_mlp-quick").symlink_to(tmp_path / "unmounted" / "runs" / "mnist_mlp-quick")
    code, err = run_script_capturing(warmup_mnist_mlp, *quick_args(tmp_path, tmp_path / "data"), "--overwrite")
    assert code == 1 and (f"mnist_mlp-quick is a link to {tmp_path / 'unmounted'}" in one_line(err)
                          and "which does not exist: create that folder" in err), err


def test_a_damaged_backup_copy_of_the_best_weights_is_replaced_by_its_intact_twin(tmp_path, capsys):
    """Killed right after epoch 1 with the backup's copy of its best weights cut short: best.weights.h5 holds the
    same weights (the state records their checksum), so --resume continues from epoch 1 instead of refusing. A
    twin whose checksum differs stands in for nothing."""
    run = Run(TrainConfig(script=SCRIPT, run_name="r", dataset="mnist", model="mnist_mlp", epochs=3,
                          batch_size=32, runs_dir=str(tmp_path)))
    trained = compiled_mlp()
    rows = [{"epoch": 1, "loss": 1.0, "val_accuracy": 0.5}]
    best = backup.best_weights_path(run.backup_dir, 1)
    run.backup_dir.mkdir(parents=True)
    trained.save_weights(best)
    backup.save_state(trained, run.backup_dir, 1, rows, 1)
    backup.copy_atomic(best, run_folder.best_weights_path(run.dir))
    run_folder.write_csv_atomic(run_folder.history_path(run.dir), rows)
    intact = best.read_bytes()
    best.write_bytes(intact[:2000])
    restored = compiled_mlp()
    assert backup.restore(restored, run)["epoch"] == 1
    assert "is damaged; " in capsys.readouterr().out and best.read_bytes() == intact
    for restored_weights, trained_weights in zip(restored.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(restored_weights, trained_weights)

    best.write_bytes(intact[:2000])
    compiled_mlp().save_weights(run_folder.best_weights_path(run.dir))  # other weights: not the twin
    with pytest.raises(UserError, match="cannot resume .* exactly: 1 epoch recorded"):
        backup.restore(compiled_mlp(), run)


def test_data_changed_after_training_is_refused_unless_accepted_and_then_said(tmp_path, capsys):
    """The labels of the run's data rewritten after it trained: the rebuilt validation set and the test set are no
    longer the run's. show_misclassified.py refuses, and evaluate_test.py judges the other runs, naming the file;
    with --accept-changed-data both go on and say so."""
    import show_misclassified
    from emnist_study.download import file_digest

    npz = synthetic.write_mnist_npz(tmp_path / "data", per_class_train=20, per_class_test=5)
    runs = tmp_path / "runs"
    run = synthetic.write_finished_run(runs, "mnist_cnn", "mnist", synthetic.template_model(10), "warmup_mnist_cnn.py")
    record = json.loads((run / "config.json").read_text())
    record["config"]["data_dir"] = [str(tmp_path / "data")]
    record["data"] = {"files": {str(npz): file_digest(npz)}}
    (run / "config.json").write_text(json.dumps(record))
    shown = ["mnist_cnn", "--runs-dir", str(runs), "--no-show", "--results-dir", str(tmp_path / "results")]
    judged = ["--runs-dir", str(runs), "--results-dir", str(tmp_path / "results")]
    assert run_script_capturing(show_misclassified, *shown)[0] == 0
    arrays = dict(np.load(npz))
    np.savez(npz, **{**arrays, "y_train": (arrays["y_train"] + 1) % 10, "y_test": (arrays["y_test"] + 1) % 10})

    code, err = run_script_capturing(show_misclassified, *shown)
    line = one_line(err)
    assert code == 1
    assert f"trained on data that has changed since (the sha256 in its config.json differs): {npz}" in line
    assert "--accept-changed-data" in line and "--overwrite" in line
    code, err = run_script_capturing(evaluate_test, *judged)
    assert code == 1 and "not judged" in err and "has changed since" in err
    capsys.readouterr()
    code, err = run_script_capturing(show_misclassified, *shown, "--accept-changed-data")
    assert code == 0, err
    assert f"Not the run's own data (--accept-changed-data): {npz} changed" in capsys.readouterr().out
    code, err = run_script_capturing(evaluate_test, *judged, "--accept-changed-data")
    assert code == 0, err
    assert "**Judged on changed data**" in (tmp_path / "results" / "RESULTS.md").read_text()


def test_a_test_file_edited_after_training_is_seen_when_the_run_is_judged(tmp_path):
    """The test split lies in files of its own (IDX): training records their sha256 without reading an image, and
    evaluate_test.py refuses a run whose test file was rewritten since, naming it; show_misclassified.py, which
    never reads the test set, is not stopped by it."""
    import show_misclassified
    from emnist_study import data

    synthetic.write_mnist_idx(tmp_path / "data", compress=False, per_class=10)
    trained = data.load_train_val("mnist", val_fraction=0.2, seed=1, data_dir=tmp_path / "data")
    test_labels = tmp_path / "data" / "t10k-labels-idx1-ubyte"
    assert str(test_labels.resolve()) in trained.source["test_files"]
    assert not any("t10k" in path for path in trained.source["files"])

    runs = tmp_path / "runs"
    run = synthetic.write_finished_run(runs, "mnist_cnn", "mnist", synthetic.template_model(10), "warmup_mnist_cnn.py")
    record = json.loads((run / "config.json").read_text())
    record["config"]["data_dir"] = [str(tmp_path / "data")]
    record["data"] = trained.source
    (run / "config.json").write_text(json.dumps(record))
    raw = bytearray(test_labels.read_bytes())
    raw[8:] = bytes((label + 1) % 10 for label in raw[8:])  # every test label after the 8-byte header
    test_labels.write_bytes(bytes(raw))

    code, err = run_script_capturing(evaluate_test, "--runs-dir", str(runs), "--results-dir", str(tmp_path / "res"))
    assert code == 1 and "not judged" in err and f"has changed since (the sha256 in its config.json differs): " \
                                                 f"{test_labels.resolve()}" in err
    assert run_script_capturing(show_misclassified, "mnist_cnn", "--runs-dir", str(runs), "--no-show",
                                "--results-dir", str(tmp_path / "res"))[0] == 0
