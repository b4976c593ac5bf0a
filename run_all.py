"""The study, in order, with one command: the MNIST warm-ups, the same networks on EMNIST Letters, the committed
letters recipes and the case-aware head, Nielsen's network, the figures, and the judgement on the test sets.

On a CPU it trains two steps side by side (--jobs), each in a process of its own with its share of the cores, which
gets through more images in all than one step with every core (docs/speed.md). Before anything is loaded it prints
every step with its estimated minutes on 2 CPU cores (from measured seconds per epoch) and when it ends, then checks
that every dataset the steps need is there (or downloads it), naming all that are missing at once. Every training
step runs with --resume: a finished run is skipped and an interrupted one continues from its last completed epoch,
so after Ctrl-C or a crash the same command picks up where it stopped.

    python run_all.py                              # the study: 3 to 4 hours on 2 CPU cores, minutes on a GPU
    python run_all.py --dry-run                    # the steps, their commands and estimates; needs no data
    python run_all.py --quick                      # the whole study on a few hundred images, in minutes
    python run_all.py --only mnist --data-dir DIR  # the MNIST steps alone, from a folder holding mnist.npz
    python run_all.py --full                       # everything: seeds, Nielsen's vote, every experiment (days)
    python run_all.py --skip-training              # figures and report from the runs already complete
"""

import argparse
import os
import runpy
import sys
import time
from pathlib import Path

from emnist_study import cli, data, interrupts, study_plan
from emnist_study.commands import command_line
from emnist_study.data import DATASETS

ROOT = Path(__file__).resolve().parent
EVENING_MINUTES = 4 * 60  # what the study is meant to fit; beyond it, the plan says how to split it
# (script, arguments, dataset whose runs it reads, its runs); run names get "-quick" under --quick
# The steps that read runs and train nothing: interrupted, they have nothing to continue
READING_SCRIPTS = {"plot_history", "show_misclassified", "evaluate_test"}
FIGURE_STEPS = [
    ("plot_history", ["mnist_mlp", "mnist_cnn"], "mnist"),
    ("show_misclassified", ["mnist_cnn"], "mnist"),
    ("plot_history", ["emnist_cnn", "emnist_mlp"], "emnist-letters"),
    ("show_misclassified", ["emnist_cnn"], "emnist-letters"),
    # the case-aware run: its sub-units, and where EMNIST ByClass is found, them against the true case (case_check.py)
    ("show_misclassified", [f"exp_{study_plan.STUDY_CASE_AWARE}"], "emnist-letters"),
    ("plot_history", ["nielsen_dropout"], "mnist"),
]


def quick_run_names(argv: list[str]) -> list[str]:
    """A step's arguments under --quick: an explicit --run-name gets the "-quick" suffix the scripts give their
    default names, and an explicit --epochs goes (a quick run trains one epoch)."""
    quick = []
    for i, arg in enumerate(argv):
        if arg == "--epochs" or (i and argv[i - 1] == "--epochs"):
            continue
        quick.append(f"{arg}-quick" if i and argv[i - 1] == "--run-name" else arg)
    return quick


def command(script: str, argv: list[str]) -> str:
    """The step's command as the reader can run it from here (this Python, the script's path from here)."""
    return command_line(f"{script}.py", *argv)


def unless_default(flag: str, value, default=None) -> list[str]:
    """[flag, value], or nothing where the value is the scripts' own default, so the commands stay short."""
    return [] if value == default else [flag, value]


def data_dir_args(args) -> list[str]:
    return [arg for directory in args.data_dir or [] for arg in ("--data-dir", directory)]


def place_args(args) -> list[str]:
    return unless_default("--runs-dir", args.runs_dir, "runs") + unless_default("--logs-dir", args.logs_dir, "logs")


def training_commands(args, datasets) -> list[tuple[str, list[str], float | None]]:
    """(script, arguments, estimated minutes as one of args.jobs side by side) of every training step."""
    measured = study_plan.load_epoch_seconds()
    shared = (["--resume"] + data_dir_args(args) + place_args(args) + (["--quick"] if args.quick else [])
              + unless_default("--distribute", args.distribute, "none"))
    commands = []
    for step in study_plan.training_steps(args.full, datasets, split_images(args)):
        argv = (quick_run_names(step.args) if args.quick else list(step.args)) + shared
        if step.script == "emnist_experiments":
            argv += unless_default("--results-dir", args.results_dir, "results")
        commands.append((step.script, argv, study_plan.step_minutes(step, measured, jobs_of(args))))
    return commands


def figure_commands(args, datasets) -> list[tuple[str, list[str], list[str]]]:
    """(script, arguments, runs it reads) of each figure the chosen datasets get."""
    suffix = "-quick" if args.quick else ""
    commands = []
    for script, names, dataset in FIGURE_STEPS:
        if dataset in datasets:
            runs = [f"{name}{suffix}" for name in names]
            argv = runs + unless_default("--runs-dir", args.runs_dir, "runs")
            argv += unless_default("--results-dir", args.results_dir, "results") + ["--no-show"]
            if script == "show_misclassified":
                argv += data_dir_args(args)
            commands.append((script, argv, runs))
    return commands


def evaluation_argv(args) -> list[str]:
    return (unless_default("--runs-dir", args.runs_dir, "runs") + unless_default("--results-dir", args.results_dir,
                                                                                 "results")
            + data_dir_args(args) + (["--quick"] if args.quick else []))


def print_plan(steps, args) -> None:
    """Every training step with its estimate on this machine (or the first measured) and when it ends, as
    args.jobs lanes run them, and the total on each machine measured, before anything is loaded."""
    measured = study_plan.load_epoch_seconds()
    minutes = [m for *_, m in steps]
    ends = study_plan.schedule(minutes, args.jobs)
    total = study_plan.plan_minutes(minutes, args.jobs)
    side = (f", {args.jobs} side by side" if args.jobs > 1 else "")
    if args.quick:  # the measured minutes are for the full-size steps
        print(f"{len(steps)} training steps{side}, each 1 epoch on a few hundred images: seconds each, a few minutes "
              f"in all with the figures and the evaluation")
        for script, step_argv, _ in steps:
            print(f"  {command(script, step_argv)}")
        return
    why = f", one at a time: {args.one_at_a_time}" if args.one_at_a_time else ""
    print(f"{len(steps)} training steps{side}{why}; minutes from scratch on 2 CPU cores ("
          f"{study_plan.machine_line(measured)}{side_by_side_line(measured, args.jobs)}):")
    print(split_images_line(args), end="")
    for (script, step_argv, length), (_, end) in zip(steps, ends):
        when = f"{length:6.0f} min, done by {end / 60:4.1f} h" if length is not None else "   not measured      "
        print(f"  {when}  {command(script, step_argv)}")
    unknown = minutes.count(None)
    print(f"Total: about {total / 60:.1f} hours of training" + (f", plus {steps_not_measured(unknown)}"
                                                                 if unknown else "")
          + " (then a few minutes of figures and evaluation); minutes on a GPU. Finished runs are skipped.")
    if args.jobs > 1 and not unknown:
        alone = sum(study_plan.step_minutes(step, measured) for step in steps_of(args))
        print(f"One step at a time (--jobs 1): about {alone / 60:.1f} hours.")
    if total > EVENING_MINUTES:
        print("More than an evening here: Ctrl-C stops the study at any point, and the same command continues it.")
    for other in study_plan.all_epoch_seconds()[1:]:
        lengths = [study_plan.step_minutes(step, other, args.jobs) for step in steps_of(args)]
        hours = study_plan.plan_minutes(lengths, args.jobs) / 60
        print(f"On {study_plan.machine_line(other)}{side_by_side_line(other, args.jobs)}: about {hours:.1f} hours"
              + (f", plus {steps_not_measured(lengths.count(None))}" if None in lengths else ""))


def split_images(args) -> dict:
    """{dataset: images in its training split} for each dataset whose copy found in the data folders holds other
    than the full split (EMNIST ByClass's letters, say): the estimates scale with it. Counted from the labels
    alone; nothing is downloaded, and a dataset not found here is planned at its full size."""
    counts = {dataset: data.training_split_size(dataset, args.data_dir) for dataset in datasets_of(args)}
    return {dataset: n for dataset, n in counts.items() if n and n != study_plan.TRAIN_SPLIT_IMAGES[dataset]}


def steps_of(args) -> list:
    return study_plan.training_steps(args.full, datasets_of(args), split_images(args))


def split_images_line(args) -> str:
    """What the estimates were scaled to, where a copy found is not the full split; nothing otherwise."""
    sizes = split_images(args)
    return "".join(f"Scaled to the {n:,} training images of the {dataset} copy found here (the full split holds "
                   f"{study_plan.TRAIN_SPLIT_IMAGES[dataset]:,}).\n" for dataset, n in sizes.items())


def steps_not_measured(count: int) -> str:
    return f"{count} step{'s' if count != 1 else ''} not measured"


def side_by_side_line(measured: dict, jobs: int) -> str:
    """Where a machine's side-by-side figures come from (nothing for one step at a time)."""
    if jobs == 1:
        return ""
    if study_plan.side_by_side_measured(measured, jobs):
        side_by_side = measured[study_plan.SIDE_BY_SIDE]
        return f"; side by side: {side_by_side['command']}, {side_by_side['finished_at'][:10]}"
    return f"; {jobs} side by side unmeasured, taken as no faster than one at a time"


def jobs_of(args) -> int:
    """Training steps side by side: as asked, else one where --distribute trains on GPUs, else the default (two on
    a CPU of two cores or more) unless these steps end sooner one at a time by the measured speeds."""
    if args.jobs or args.distribute != "none":
        return args.jobs or 1
    jobs = study_plan.default_jobs()
    if jobs > 1:
        measured = study_plan.load_epoch_seconds()
        steps = steps_of(args)

        def hours(lanes: int) -> float:
            return study_plan.plan_minutes([study_plan.step_minutes(step, measured, lanes) for step in steps], lanes)

        if 0 < hours(1) < hours(jobs):
            return 1
    return jobs


def one_at_a_time(args) -> str:
    """Why the steps run one at a time where the default would run them side by side (jobs_of), naming the CPU and
    the command that measures it; empty otherwise."""
    if args.jobs or args.distribute != "none" or study_plan.default_jobs() == 1 or jobs_of(args) > 1:
        return ""
    jobs, measured = study_plan.default_jobs(), study_plan.load_epoch_seconds()
    cpu = study_plan.machine_name(study_plan.this_machine())
    if study_plan.side_by_side_measured(measured, jobs):
        return f"{jobs} side by side were measured slower than one at a time on {cpu}"
    return (f"{jobs} side by side are not measured on {cpu}, and are taken as no faster, so one at a time ends "
            f"sooner ({command_line('benchmark.py', '--epoch-seconds', '--jobs', jobs)} measures them; "
            f"--jobs {jobs} runs them so anyway)")


def datasets_of(args) -> list[str]:
    return [args.only] if args.only else list(DATASETS)


def run_step(script: str, argv: list[str]):
    """Run one step's script as its own command would (in this process: TensorFlow starts once for the whole
    study), and return what its main returned: a training step's fit History (None where nothing trained; the
    notebook plots it). A step that fails stops the study with its own one-line message; Ctrl-C stops it at once."""
    print(f"\n=== {command(script, argv)}", flush=True)
    saved_argv = sys.argv
    sys.argv = [f"{script}.py", *argv]
    try:
        # The script's definitions, read from its file afresh (an edit since the last step counts), without its
        # `if __name__ == "__main__"` line: its main is called here, as that line calls it, and its result kept.
        script_main = runpy.run_path(str(ROOT / f"{script}.py"), run_name=f"{script}_step")["main"]
        return interrupts.run_main(script_main, argv, resumable=script not in READING_SCRIPTS)
    except SystemExit as exc:
        if exc.code == 130:
            raise KeyboardInterrupt(f"interrupted in {script}.py") from None
        if exc.code:
            raise SystemExit(exc.code) from None
    finally:
        sys.argv = saved_argv
        release_memory()


def release_memory() -> None:
    """Drop the finished step's models and graphs before the next (keras is loaded by then, if at all)."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=DATASETS, help="run only the steps of one dataset")
    parser.add_argument("--full", action="store_true",
                        help="everything there is: the study, then more seeds, the 2015 Keras network, Nielsen's "
                             "vote of five, every experiment on MNIST, merged MNIST and letters")
    parser.add_argument("--quick", action="store_true",
                        help="every step on a few hundred images, the report on a small test subset: minutes")
    cli.add_data_dir(parser)
    parser.add_argument("--skip-training", action="store_true",
                        help="train nothing: draw the figures and write the report from the runs already complete")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the steps, their commands and estimates, and run nothing (needs no data)")
    parser.add_argument("--resume", action="store_true",
                        help="accepted and implied: every step continues its interrupted runs and skips finished ones")
    parser.add_argument("--jobs", type=cli.positive_int, metavar="N",
                        help="training steps run side by side, the CPU's cores shared out among them (default: 2 "
                             "on a CPU of 2 cores or more, unless one at a time ends sooner by the CPU's measured "
                             "speeds, which the plan's first line then says; 1 where a GPU trains or with "
                             "--distribute)")
    parser.add_argument("--runs-dir", default="runs", help="where run directories go (default: %(default)s)")
    parser.add_argument("--logs-dir", default="logs", help="where TensorBoard logs go (default: %(default)s)")
    parser.add_argument("--results-dir", default="results",
                        help="where figures and the report go (default: %(default)s)")
    # Several machines (multiworker) start every step's own command on each, so run_all stays on one machine.
    parser.add_argument("--distribute", choices=("none", "mirrored"), default="none",
                        help="train every step on all the GPUs of this machine; each takes a step's batch size of "
                             "images (default: %(default)s; see docs/distribute.md)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jobs and args.jobs > 1 and args.distribute != "none":
        parser.error("--distribute trains each step on all the GPUs: use it with --jobs 1")
    args.one_at_a_time = one_at_a_time(args)
    args.jobs = jobs_of(args)
    datasets = datasets_of(args)
    steps = [] if args.skip_training else training_commands(args, datasets)
    figures = figure_commands(args, datasets)
    if steps:
        print_plan(steps, args)
    if args.dry_run:
        print("\nCommands, in order:")
        for script, step_argv, *_ in steps + figures + [("evaluate_test", evaluation_argv(args))]:
            print(command(script, step_argv))
        return

    from emnist_study import data  # finding the data needs no TensorFlow either

    started = time.monotonic()
    print("\nChecking the data every step needs:")
    # one line per dataset: where it is, or why it is missing (a failed download's reason) and what to do
    data.ensure_available(datasets, args.data_dir, show=lambda line: print(f"  {line}", flush=True))
    if "emnist-letters" in datasets:
        from emnist_study import byclass

        print(f"  {byclass.BYCLASS}: {byclass.where_found(args.data_dir)}")
    # A step interrupted inside run_all is continued by run_all's own command, which resumes every step.
    os.environ[interrupts.CONTINUE_ENV] = command_line("run_all.py", *(sys.argv[1:] if argv is None else argv))
    try:
        run_steps(args, steps, figures, started)
    finally:
        del os.environ[interrupts.CONTINUE_ENV]


def run_steps(args, steps, figures, started: float) -> None:
    """The training steps (args.jobs at a time), then the figures of the runs that are complete, then the
    evaluation."""
    if args.jobs > 1:  # each step in a process of its own, with its share of the cores
        from emnist_study import parallel_steps

        commands = [parallel_steps.Command(f"[{i}/{len(steps)}]", [sys.executable, str(ROOT / f"{script}.py"), *argv],
                                         command(script, argv), None if args.quick else minutes)
                    for i, (script, argv, minutes) in enumerate(steps, 1)]
        parallel_steps.run(commands, args.jobs, study_plan.side_by_side_env(args.jobs), started)
    else:
        for i, (script, step_argv, minutes) in enumerate(steps, 1):
            estimate = f"; about {minutes:.0f} min on 2 CPU cores from scratch" if minutes and not args.quick else ""
            print(f"\n[{i}/{len(steps)}] {(time.monotonic() - started) / 60:.0f} min elapsed{estimate}", end="")
            run_step(script, step_argv)

    from emnist_study.run_folder import find_complete_runs

    complete = {path.name for path in find_complete_runs(args.runs_dir)} if Path(args.runs_dir).is_dir() else set()
    for script, step_argv, runs in figures:
        missing = [run for run in runs if run not in complete]
        if missing:  # only possible with --skip-training: a training step would have made them
            print(f"\nSkipping {script} {' '.join(runs)}: not complete yet ({', '.join(missing)})")
            continue
        run_step(script, step_argv)

    run_step("evaluate_test", evaluation_argv(args))
    print(f"\nThe study is done ({(time.monotonic() - started) / 60:.1f} min). "
          f"Report: {args.results_dir}/RESULTS.md; curves: tensorboard --logdir {args.logs_dir}")


if __name__ == "__main__":
    interrupts.run_main(main, resumable="same")
