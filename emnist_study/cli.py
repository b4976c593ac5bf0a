"""The flags every training script shares, and `run_main`, which turns a UserError into one line on stderr and
Ctrl-C into a prompt stop (exit 130) that says which command continues."""

import argparse
import os
import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path

from . import precision
from .data import DATA_DIR_ENV, resolve_data_dirs
from .errors import UserError
from .runs import TrainConfig

QUICK_IMAGES = 600  # --quick: a stratified subset this size (training + validation), for smoke runs in seconds
QUICK_EPOCHS = 1


def int_at_least(minimum: int):
    """An argparse type: a whole number no smaller than `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), not {value:g}")
    return value


def training_parser(description: str, defaults: TrainConfig, per_experiment: bool = False) -> argparse.ArgumentParser:
    """A parser with the shared flags; defaults shown in --help are the script's own (or, with `per_experiment`,
    each experiment's own, as emnist_experiments.py sets them)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument

    def default(value) -> str:
        return "the experiment's own" if per_experiment else value

    add_data_dir(parser)
    add("--runs-dir", default=defaults.runs_dir, help="where run directories go (default: %(default)s)")
    add("--logs-dir", default=defaults.logs_dir, help="where TensorBoard logs go (default: %(default)s)")
    run_name = "<dataset prefix>_<experiment>" if per_experiment else defaults.run_name
    add("--run-name", help=f"name of this run's directory (default: {run_name}, or {run_name}-quick with --quick)")
    add("--epochs", type=positive_int, help=f"training epochs (default: {default(defaults.epochs)}, "
                                            f"or {QUICK_EPOCHS} with --quick)")
    add("--batch-size", type=positive_int, help=f"mini-batch size (default: {default(defaults.batch_size)})")
    add("--precision", choices=precision.CHOICES,
        help=f"arithmetic: float32, or mixed bfloat16/float16 (faster where the hardware has it); auto picks "
             f"mixed_bfloat16 on CPUs and GPUs with native bfloat16 (default: {default(defaults.precision)})")
    add("--seed", type=non_negative_int, default=defaults.seed, help="random seed (default: %(default)s)")
    how = "the last images, in file order" if defaults.validation == "last" else "stratified by class"
    add("--val-fraction", type=fraction, default=defaults.val_fraction,
        help=f"fraction of the training images held out for validation, {how} (default: %(default).4g)")
    add("--quick", action="store_true",
        help=f"smoke run: {QUICK_IMAGES} images and {QUICK_EPOCHS} epoch unless --epochs says otherwise")
    add("--summary", action="store_true", help="print the network's layer table (always shown without --quick)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing run of the same name")
    mode.add_argument("--resume", action="store_true",
                      help="continue an interrupted run from its last completed epoch")
    return parser


def add_data_dir(parser: argparse.ArgumentParser, default: str = "") -> None:
    parser.add_argument("--data-dir", action="append", metavar="DIR",
                        help=f"a folder holding dataset files; give it once per folder to look in several "
                             f"(default: {default}${DATA_DIR_ENV}, ':'-separated, then the usual caches "
                             f"~/.keras/datasets and ~/.cache/emnist, then a download)")


def config_from_args(args: argparse.Namespace, defaults: TrainConfig) -> TrainConfig:
    """The script's default config with the shared flags applied."""
    return replace(
        defaults,
        run_name=args.run_name if args.run_name is not None else (
            f"{defaults.run_name}-quick" if args.quick else defaults.run_name),
        epochs=args.epochs or (QUICK_EPOCHS if args.quick else defaults.epochs),
        batch_size=args.batch_size or defaults.batch_size,
        # "auto" is settled here, so the saved config says what the run trained with and --resume compares alike.
        precision=precision.resolve(args.precision or defaults.precision),
        seed=args.seed,
        val_fraction=args.val_fraction,
        quick=args.quick,
        limit_images=QUICK_IMAGES if args.quick else defaults.limit_images,
        # absolute, so show_misclassified.py and evaluate_test.py find the data from any folder
        data_dir=[str(path) for path in resolve_data_dirs(args.data_dir)] or None,
        summary=args.summary or not args.quick,
        runs_dir=args.runs_dir,
        logs_dir=args.logs_dir,
        overwrite=args.overwrite,
        resume=args.resume,
    )


def parse_config(description: str, defaults: TrainConfig, argv=None) -> TrainConfig:
    """Parse the shared flags of a training script into its config."""
    return config_from_args(training_parser(description, defaults).parse_args(argv), defaults)


# Ctrl-C. Python may swallow the KeyboardInterrupt that a Ctrl-C raises (inside a weakref callback, it prints
# "Exception ignored in ..." and carries on), so the handler also sets a flag that training checks after every
# batch (pipeline.StopWhenInterrupted).
_interrupted = False
# Set by run_all.py around its steps: a step interrupted there is continued by run_all's own command.
CONTINUE_ENV = "EMNIST_STUDY_CONTINUE_WITH"


def interrupted() -> bool:
    return _interrupted


def _on_sigint(signum, frame):
    global _interrupted
    _interrupted = True
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
    return shlex.join(["python", Path(sys.argv[0]).name, *args])


def run_main(main, argv=None, resumable: bool | str = True) -> None:
    """Call main(argv); a UserError becomes a one-line message and exit 1, Ctrl-C a line naming the command that
    continues (see continue_command) and exit 130, not a traceback."""
    global _interrupted
    prog = sys.argv[0].rsplit("/", 1)[-1]
    _interrupted = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        main(argv)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # the output was piped into a program that stopped reading (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt as exc:
        command = continue_command(resumable)
        print(f"{prog}: {exc or 'interrupted'}" + (f"; to continue, run: {command}" if command else ""),
              file=sys.stderr)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGINT, previous)
