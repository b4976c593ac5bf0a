"""Ctrl-C: a real SIGINT to run_all.py stops the study at once, with exit 130 and the command that continues.
(A file of its own, so that pytest-xdist runs it beside test_run_all.py's quick study rather than after it.)"""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import ROOT
from test_run_all import study_args, write_data


def test_ctrl_c_stops_the_study_at_once_and_names_the_command_that_continues(tmp_path):
    """A real Ctrl-C (SIGINT) to run_all.py while a step trains: it stops within seconds with exit 130, the step's
    run is marked interrupted, and the message names run_all's own command."""
    write_data(tmp_path)
    argv = [sys.executable, str(ROOT / "run_all.py"), *study_args("--only", "mnist")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMNIST_STUDY_TEST_SLOW_BATCHES": "1"}
    child = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in child.stdout:  # wait until the first step is training
            if line.startswith("Training "):
                break
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = child.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert stopped_after < 20
    assert "Traceback" not in err
    assert "to continue, run: python run_all.py --quick --data-dir mnist_data --data-dir letters_data --only mnist" in err
    summary = json.loads((tmp_path / "runs" / "mnist_mlp-quick" / "summary.json").read_text())
    assert summary["status"] == "interrupted"
