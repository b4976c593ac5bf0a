"""Ctrl-C: a real SIGINT to run_all.py stops the study at once, with exit 130 and the command that continues.
(A file of its own, so that pytest-xdist can run it on the other worker from test_run_all.py's quick study.)"""

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from emnist_study import parallel_steps
from emnist_study.errors import UserError
from helpers import ROOT, paused_env, study_args, write_study_data


@pytest.mark.parametrize("signum, jobs", [(signal.SIGINT, "1"), (signal.SIGINT, "2"), (signal.SIGTERM, "2")])
def test_ctrl_c_stops_the_study_at_once_and_names_the_command_that_continues(tmp_path, signum, jobs):
    """A real Ctrl-C (SIGINT), or a scheduler's SIGTERM, to run_all.py alone while a step trains (in run_all's own
    process, or with two steps side by side, each in its own): run_all passes it on to its steps at once, waits
    for each to record its run as interrupted (no training outlives it), and exits with 128 + the signal's
    number, naming its own command as the one that continues."""
    write_study_data(tmp_path)
    argv = [sys.executable, str(ROOT / "run_all.py"), *study_args("--only", "mnist", "--jobs", jobs)]
    (tmp_path / "bin").mkdir()  # no `python` on PATH: the command that continues names the Python that ran it
    child = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**paused_env(slow_batches=1), "PATH": str(tmp_path / "bin")})
    try:
        training = 0
        for line in child.stdout:  # wait until every lane is training
            training += "Training " in line
            if training == int(jobs):
                break
        time.sleep(1.0)
        child.send_signal(signum)
        sent = time.monotonic()
        rest, err = child.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        child.kill()
    assert child.returncode == 128 + signum, err
    assert stopped_after < 20  # stopped by the signal passed on, not by a kill after parallel_steps.STOP_SECONDS
    assert "Traceback" not in rest + err
    # one line from run_all: what stopped, then the command that continues, from the folder it ran in
    command = shlex.join([sys.executable, str(ROOT / "run_all.py")])
    assert re.search(rf"^run_all\.py: \w[^;]*; to continue, run: {re.escape(command)} --quick --data-dir mnist_data "
                     rf"--data-dir letters_data --only mnist --jobs {jobs}$", err, re.M), err
    for run in ["mnist_mlp-quick", "mnist_cnn-quick"][:int(jobs)]:
        summary = json.loads((tmp_path / "runs" / run / "summary.json").read_text())
        assert summary["status"] == "interrupted"


@pytest.fixture
def sigint_handled():
    """SIGINT handled in this process, as run_all.py's (interrupts.run_main) always is: its steps then start with SIGINT's
    default action. Where pytest itself was started in the background, SIGINT is ignored and the steps would
    inherit that: a step sent Ctrl-C would run on until it is killed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def step(tmp_path, number: int, code: str) -> parallel_steps.Command:
    """A step that marks its start and end in tmp_path, and between them runs `code` (lines; `folder` is a Path)."""
    program = "\n".join(["import os, sys, time", "from pathlib import Path", f"folder = Path({str(tmp_path)!r})",
                          f"(folder / '{number}-started').touch()", code, f"(folder / '{number}-done').touch()"])
    return parallel_steps.Command(f"[{number}/3]", [sys.executable, "-c", program], f"step {number}")


def test_steps_side_by_side_run_two_at_a_time_with_their_threads_and_each_line_marked(tmp_path, capsys):
    both_started = "\n".join([
        "deadline = time.monotonic() + 30",
        "while not all((folder / f'{i}-started').exists() for i in (1, 2)) and time.monotonic() < deadline:",
        "    time.sleep(0.05)",
        "print('together', all((folder / f'{i}-started').exists() for i in (1, 2)))",
        "print('threads', os.environ['TF_NUM_INTRAOP_THREADS'], os.environ['TF_NUM_INTEROP_THREADS'])"])
    until_third = "\nwhile not (folder / '3-started').exists() and time.monotonic() < deadline:\n    time.sleep(0.05)"
    third = "print('after', sorted(p.name for p in folder.glob('*-done')))"
    parallel_steps.run([step(tmp_path, 1, both_started), step(tmp_path, 2, both_started + until_third),
                      replace(step(tmp_path, 3, third), minutes=2.0)],
                     2, {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"})
    out = capsys.readouterr().out
    assert "[1/3] together True" in out and "[2/3] together True" in out
    assert "[1/3] threads 1 1" in out and "[2/3] threads 1 1" in out
    assert "[3/3] after ['1-done']" in out  # started as soon as a lane came free, beside step 2
    # each start says when it came and the step's estimate, where it has one; each end, the minutes it took
    assert re.search(r"^\[1/3\] 0 min elapsed$", out, re.M) and "[3/3] 0 min elapsed; about 2 min from scratch" in out
    assert "=== [3/3] step 3" in out
    assert re.search(r"^=== \[3/3\] done in 0\.\d min \(about 2 from scratch\)$", out, re.M)


def test_a_failing_step_stops_the_one_beside_it_and_starts_no_other(tmp_path, capsys, sigint_handled):
    working = "print('working', flush=True)\ntime.sleep(120)"
    failing = "\n".join(["while not (folder / '1-started').exists():", "    time.sleep(0.05)",
                         "print('something is wrong', file=sys.stderr)", "sys.exit(1)"])
    with pytest.raises(UserError, match=r"\[2/3\] step 2 failed \(exit 1; its message is above\); stopped \[1/3\]"):
        parallel_steps.run([step(tmp_path, 1, working), step(tmp_path, 2, failing), step(tmp_path, 3, "pass")], 2, {})
    out = capsys.readouterr().out
    assert "[2/3] something is wrong" in out
    # run returns once the step beside has ended: interrupted in its two minutes' sleep, neither left to finish
    # them nor killed after parallel_steps.STOP_SECONDS
    assert (tmp_path / "1-started").exists() and not (tmp_path / "1-done").exists()
    assert "[1/3] KeyboardInterrupt" in out
    assert not (tmp_path / "3-started").exists()
