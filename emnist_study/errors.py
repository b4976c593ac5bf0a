"""The one exception type the scripts turn into a one-line message (see `interrupts.run_main`)."""


class UserError(Exception):
    """Something the user can fix: missing or corrupt data, a bad flag value, a run that already exists.

    The message must say what is wrong and, where possible, what to do about it, in one line.
    """
