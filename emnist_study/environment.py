"""The environment variables the project reads, each checked before it is used: a value the project cannot take
is refused in one line instead of being ignored (a yes/no switch) or aborting the process inside TensorFlow's C++
code (its threading variables)."""

import os

from .errors import UserError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")
# TensorFlow reads these when it starts; a negative or non-numeric value stops the process with a C++ "Check failed"
# (exit 134), no line of Python on the way. 0 means TensorFlow's own choice.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def switch(name: str) -> bool:
    """Whether the yes/no variable `name` is on: 1, true, yes or on (any case) is on; 0, false, no, off, empty or
    unset is off; anything else is refused."""
    value = os.environ.get(name)
    if value is None:
        return False
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise UserError(f"{name}={value!r} is neither on nor off: set it to 1 (or true, yes, on) or 0 (false, no, off), "
                    f"or unset it")


def thread_settings_problem() -> str | None:
    """What is wrong with TensorFlow's threading variables, in one line, or None where they can be used."""
    for name in THREAD_VARIABLES:
        value = os.environ.get(name)
        if value is None:
            continue
        if not value.strip().isdigit():
            return (f"{name}={value!r} is not a number of threads TensorFlow can use: set it to a whole number "
                    f"(1 or more, or 0 for TensorFlow's own choice), or unset it")
    return None
