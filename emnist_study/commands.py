"""A command printed for the reader to run, as it will work from where they stand: the Python running now (unless
it is the one their shell finds as `python`), and the script by a path that works from the current folder.

A student who never activated the virtual environment and ran `.venv/bin/python run_all.py` is told to run
`.venv/bin/python warmup_mnist_cnn.py --resume`, not `python ...`, which would start another Python without the
project's libraries; one who ran it from another folder gets the script's full path.
"""

import os
import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the folder of the step scripts


def same_python(found: Path, running: Path) -> bool:
    """Whether the `python` on PATH is the interpreter running: the same file by its path (not by following links:
    a virtual environment's python is a link to the system's, yet finds other libraries), or another name for it
    in the same virtual environment's bin folder (python, python3, python3.11)."""
    found, running = found.absolute(), running.absolute()
    return found == running or (found.parent == running.parent and (found.parent.parent / "pyvenv.cfg").is_file())


def from_here(path: Path) -> str:
    """`path` as typed from the current folder: relative where it is under it, else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def interpreter() -> str:
    """How to start the Python running now: `python` where that finds it, else its path."""
    found = shutil.which("python")
    if found and same_python(Path(found), Path(sys.executable)):
        return "python"
    path = from_here(Path(sys.executable))
    return path if os.sep in path else f".{os.sep}{path}"  # a bare name would be looked up on PATH


UNKNOWN_SCRIPT = "<the script that trained it>"  # where a run does not record its script


def command_line(script, *args) -> str:
    """The command that runs `script` (a step script's name, "warmup_mnist_cnn.py", or a path; None where it is
    not known) with `args`, for the reader to type: see interpreter and from_here."""
    if script is None:
        return " ".join([shlex.quote(interpreter()), UNKNOWN_SCRIPT, *map(shlex.quote, map(str, args))])
    script = Path(script)
    path = script if script.is_absolute() else ROOT / script
    return shlex.join([interpreter(), from_here(path), *map(str, args)])
