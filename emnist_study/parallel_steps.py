"""run_all.py's training steps side by side: each step in a Python process of its own, TensorFlow's threads shared
out among them (study_plan.side_by_side_env), every line it prints marked with its step. On a CPU of 2 cores two
one-thread trainings get through more images than one two-thread training (docs/speed.md).

Ctrl-C stops every step (each continues from its last finished epoch with --resume), and so does a step that
fails: the study stops at the first error, as it does one step at a time.
"""

import os
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass

from . import interrupts
from .errors import UserError

POLL_SECONDS = 0.2
STOPPED_BY_SIGNAL = {128 + signum for signum in interrupts.STOP_SIGNALS}  # the exit codes of interrupts.run_main
STOP_SECONDS = 60.0  # after Ctrl-C, a step that has not stopped is killed: it loses at most the epoch in progress

_print_lock = threading.Lock()


def print_line(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


@dataclass
class Command:
    mark: str  # what marks its lines, e.g. "[5/8]"
    argv: list  # the process to start
    shown: str  # the command as the user would type it
    minutes: float | None = None  # its estimate from scratch, side by side, where one is known


class Running:
    """One step's process, its output relayed line by line with its mark."""

    def __init__(self, command: Command, env: dict):
        self.command = command
        self.started = time.monotonic()
        self.process = subprocess.Popen(command.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=env, bufsize=1)
        self.relay = threading.Thread(target=self._relay, daemon=True)
        self.relay.start()

    def _relay(self) -> None:
        for line in self.process.stdout:
            print_line(f"{self.command.mark} {line.rstrip()}" if line.strip() else "")

    def finished(self) -> bool:
        if self.process.poll() is None:
            return False
        self.relay.join()
        return True


def run(commands: list[Command], jobs: int, env: dict, started: float | None = None) -> None:
    """Run the commands in order, `jobs` at a time, each started as soon as a lane is free; each start says the
    minutes since `started` (a time.monotonic(); default: now) and the step's estimate, each end its minutes. A
    step's failure stops the others and raises UserError; Ctrl-C (or a step interrupted on its own) stops them all
    and raises KeyboardInterrupt."""
    waiting, running = deque(commands), []
    env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic() if started is None else started
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                command = waiting.popleft()
                estimate = f"; about {command.minutes:.0f} min from scratch" if command.minutes else ""
                print_line(f"\n{command.mark} {(time.monotonic() - started) / 60:.0f} min elapsed{estimate}")
                print_line(f"=== {command.mark} {command.shown}")
                running.append(Running(command, env))
            time.sleep(POLL_SECONDS)
            for step in [step for step in running if step.finished()]:
                running.remove(step)
                code, mark = step.process.returncode, step.command.mark
                if code in STOPPED_BY_SIGNAL:  # Ctrl-C, SIGTERM or SIGHUP reached the step itself
                    raise KeyboardInterrupt(f"{mark} was interrupted")
                if code:
                    beside = [s.command.mark for s in running]
                    stop(running)
                    raise UserError(f"{mark} {step.command.shown} failed (exit {code}; its message is above)"
                                    + (f"; stopped {', '.join(beside)} beside it" if beside else "")
                                    + ". Once it is put right, the same command continues the study")
                estimate = f" (about {step.command.minutes:.0f} from scratch)" if step.command.minutes else ""
                print_line(f"=== {mark} done in {(time.monotonic() - step.started) / 60:.1f} min{estimate}")
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM or SIGHUP to run_all.py (interrupts.run_main)
        stop(running)
        raise


def stop(running: list[Running]) -> None:
    """Interrupt every step still running, at once (a step that a terminal's Ctrl-C reached already takes this
    one for the same: interrupts.REPEAT_SECONDS), wait for each to record its run as interrupted, and kill any
    that has not stopped STOP_SECONDS later."""
    deadline = time.monotonic() + STOP_SECONDS
    for step in running:
        if step.process.poll() is None:
            step.process.send_signal(signal.SIGINT)
    for step in running:
        try:
            step.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            step.process.kill()
            step.process.wait()
        step.relay.join()
