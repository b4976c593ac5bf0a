"""The flags every training script shares, and the config they make. (How a script ends, on an error or a signal,
is interrupts.run_main.)"""

import argparse
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from . import distribute, precision
from .sources import DATA_DIR_ENV, resolve_data_dirs
from .config import TrainConfig
from .interrupts import DEBUG_HELP

QUICK_IMAGES = 600  # --quick: a stratified subset this size (training + validation), for smoke runs in seconds
QUICK_EPOCHS = 1
QUICK_MEMBERS = 2  # --quick trains an ensemble's first two members: the same code path, in half the time or less


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


def positive_float(text: str) -> float:
    """An argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value:g}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), not {value:g}")
    return value


def training_parser(description: str, defaults: TrainConfig, per_experiment: bool = False,
                    variants: dict | None = None) -> argparse.ArgumentParser:
    """A parser with the shared flags; defaults shown in --help are the script's own (or, with `per_experiment`,
    each experiment's own, as emnist_experiments.py sets them). A script that trains one of several `variants`
    ({name: TrainConfig}, chosen by a flag of its own) shows each variant's default where they differ."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=DEBUG_HELP)
    add = parser.add_argument

    def default(setting: str) -> str:
        if per_experiment:
            return "the experiment's own"
        values = {name: getattr(config, setting) for name, config in (variants or {}).items()}
        if len(set(values.values())) > 1:
            return ", ".join(f"{value} for {name}" for name, value in values.items())
        return str(getattr(defaults, setting))

    add_data_dir(parser)
    add("--runs-dir", default=defaults.runs_dir, help="where run directories go (default: %(default)s)")
    add("--logs-dir", default=defaults.logs_dir, help="where TensorBoard logs go (default: %(default)s)")
    run_name = "<dataset prefix>_<experiment>" if per_experiment else default("run_name")
    add("--run-name", help=f"name of this run's directory (default: {run_name}; with --quick, -quick added)")
    add("--epochs", type=positive_int, help=f"training epochs (default: {default('epochs')}, "
                                            f"or {QUICK_EPOCHS} with --quick)")
    add("--batch-size", type=positive_int, help=f"mini-batch size (default: {default('batch_size')})")
    add("--precision", choices=precision.CHOICES,
        help=f"arithmetic: float32, or mixed bfloat16/float16 (faster where the hardware has it); auto picks "
             f"mixed_bfloat16 on CPUs with native bfloat16 and GPUs of compute capability 8.0 on, mixed_float16 "
             f"(with loss scaling) on 7.x GPUs (default: {default('precision')})")
    add("--distribute", choices=distribute.CHOICES, default="none",
        help="train on every GPU of this machine (mirrored) or on the machines TF_CONFIG names (multiworker); "
             "each replica takes --batch-size images a step (default: %(default)s; see docs/distribute.md)")
    add("--seed", type=non_negative_int, default=defaults.seed, help="random seed (default: %(default)s)")
    how = "the last images, in file order" if defaults.validation == "last" else "stratified by class"
    # Nielsen's 10,000 of 60,000 reads better as 1/6 than as 0.1667
    shown = f"{defaults.val_fraction:g}" if len(f"{defaults.val_fraction:g}") <= 5 else str(
        Fraction(defaults.val_fraction).limit_denominator(100))
    add("--val-fraction", type=fraction, default=defaults.val_fraction,
        help=f"fraction of the training images held out for validation, {how} (default: {shown})")
    add("--quick", action="store_true",
        help=f"smoke run: {QUICK_IMAGES} images, {QUICK_EPOCHS} epoch unless --epochs says otherwise, and at most "
             f"{QUICK_MEMBERS} members of an ensemble")
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
    distribute.strategy(args.distribute)  # first: a multi-worker strategy must exist before TensorFlow starts
    config = replace(
        defaults,
        run_name=args.run_name if args.run_name is not None else (
            f"{defaults.run_name}-quick" if args.quick else defaults.run_name),
        epochs=args.epochs or (QUICK_EPOCHS if args.quick else defaults.epochs),
        ensemble=min(defaults.ensemble, QUICK_MEMBERS) if args.quick else defaults.ensemble,
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
        logs_dir=str(Path(args.logs_dir).absolute()),  # so show_misclassified.py finds the logs from anywhere
        overwrite=args.overwrite,
        resume=args.resume,
    )
    return distribute.configure(config, args.distribute)

