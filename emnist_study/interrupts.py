"""Ctrl-C, SIGTERM and SIGHUP, and how a script ends: `run_main` turns a UserError or an OSError (a full disk, a
folder it may not write) into one line on stderr, and an interruption into a prompt stop that says which command
continues.

A scheduler's or `docker stop`'s SIGTERM and a closed terminal's SIGHUP are taken as Ctrl-C is: the run being
trained is marked "interrupted", its lock let go, and the process exits with 128 + the signal's number, as a shell
reports a process the signal ended.
"""

import errno
import os
import signal
import sys
import time
from pathlib import Path

from . import commands, environment
from .errors import UserError

# Python may swallow the KeyboardInterrupt that a Ctrl-C raises (inside a weakref callback, it prints "Exception
# ignored in ..." and carries on), so the handler also records the signal, which training checks after every batch
# (pipeline.StopWhenInterrupted).
_signal_received = None
_signal_time = 0.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A Ctrl-C at a terminal reaches run_all.py's steps at once, and run_all.py passes it on to them as well: a second
# signal this soon after the first is the same request, and must not cut short the stopping (the run's record of
# it) that the first began. One later stops anew, as a second Ctrl-C does.
REPEAT_SECONDS = 2.0
# Set by run_all.py around its steps: a step interrupted there is continued by run_all's own command.
CONTINUE_ENV = "EMNIST_STUDY_CONTINUE_WITH"
# Set to 1 for the traceback behind a one-line error.
DEBUG_ENV = "EMNIST_STUDY_DEBUG"
DEBUG_HELP = f"Errors are one line; {DEBUG_ENV}=1 in the environment shows the traceback behind them."


def interrupted() -> bool:
    return _signal_received is not None


def _on_stop_signal(signum, frame):
    global _signal_received, _signal_time
    if _signal_received is not None and time.monotonic() - _signal_time < REPEAT_SECONDS:
        return
    _signal_received, _signal_time = signum, time.monotonic()
    raise KeyboardInterrupt


def continue_command(resumable: bool | str) -> str | None:
    """The command that continues this one after an interruption: for a training script (`resumable` True), the
    same with --resume instead of --overwrite; "same": the same command; None where there is nothing to continue."""
    if os.environ.get(CONTINUE_ENV):
        return os.environ[CONTINUE_ENV]
    if not resumable:
        return None
    args = sys.argv[1:]
    if resumable is True:
        args = [a for a in args if a != "--overwrite"]
        args += [] if "--resume" in args else ["--resume"]
    return commands.command_line(Path(sys.argv[0]).absolute(), *args)


def os_error_line(exc: OSError, resumable: bool | str) -> str:
    """What went wrong with a file or folder, and what to do, in one line."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        command = continue_command(resumable)
        return (f"no space left on the device{where}; what was being written was dropped, what was written before "
                f"is intact. Free some space, then run " + (command or "the same command again"))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{exc.strerror}{where}: check the folder's permissions, or choose another folder"
    return f"{exc.strerror or exc}{where} ({DEBUG_ENV}=1 shows where it happened)"


def run_main(main, argv=None, resumable: bool | str = True):
    """Call main(argv) and return what it returns; a UserError or OSError becomes a one-line message and exit 1;
    Ctrl-C, SIGTERM or SIGHUP a line naming the command that continues (see continue_command) and exit 128 + the
    signal's number (130 for Ctrl-C), not a traceback (unless DEBUG_ENV is set)."""
    global _signal_received
    prog = sys.argv[0].rsplit("/", 1)[-1]
    try:
        debug = environment.switch(DEBUG_ENV)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    _signal_received = None
    previous = {signum: signal.signal(signum, _on_stop_signal) for signum in STOP_SIGNALS}
    try:
        try:
            return main(argv)
        except Exception:
            if interrupted():  # a signal inside TensorFlow's C++ code can come out as another error (a TypeError)
                raise KeyboardInterrupt from None
            raise
    except UserError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # the output was piped into a program that stopped reading (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except OSError as exc:
        if debug:
            raise
        print(f"{prog}: error: {os_error_line(exc, resumable)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:
        signum = _signal_received or signal.SIGINT
        command = continue_command(resumable)
        how = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
        print(f"{prog}: {str(exc) or 'interrupted'}{how}" + (f"; to continue, run: {command}" if command else ""),
              file=sys.stderr)
        sys.exit(128 + signum)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
