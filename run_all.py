"""The whole study, in order, with one command: warm-ups, Nielsen, the EMNIST baselines, the figures, and the
judgement on the test sets.

Before any training it checks that every dataset the chosen steps need can be loaded (or downloaded), so a missing
EMNIST stops it at once rather than after an hour of MNIST. Every training step runs with --resume: a finished run
is skipped, an interrupted one continues from its last completed epoch, so running this again after Ctrl-C or a
crash picks up where it stopped. It ends by printing where the report is.

    python run_all.py                              # everything (hours on a CPU; EMNIST is downloaded once)
    python run_all.py --only mnist --data-dir ../shared/data
    python run_all.py --quick                      # the whole study on a few hundred images, in minutes
    python run_all.py --only mnist --skip-training # figures and report from the runs already complete
    python run_all.py --only mnist --dry-run       # the commands it would run, one per line; runs nothing
"""

import argparse
import importlib
import time

from emnist_study import cli, data
from emnist_study.runs import find_complete_runs

CNN_SEEDS = (1, 2, 3)  # one seed cannot show whether 99.25% holds
NIELSEN_BATCH = 50  # Nielsen's 10 with the learning rate scaled to match (0.15): 5x fewer steps for a CPU

# (script, arguments, dataset it trains on, rough minutes on 2 CPU cores for the full run: measured for the
# warm-ups, estimated from their speed for the rest)
TRAINING_STEPS = [
    ("warmup_mnist_mlp", [], "mnist", 2),
    *[("warmup_mnist_cnn", ["--seed", str(s)] + (["--run-name", f"mnist_cnn-seed{s}"] if s > 1 else []), "mnist", 8)
      for s in CNN_SEEDS],  # --quick adds "-quick" to these names too (see quick_run_names)
    ("nielsen_cnn", ["--batch-size", str(NIELSEN_BATCH)], "mnist", 45),  # 40 epochs of 65 s
    ("nielsen_cnn", ["--batch-size", str(NIELSEN_BATCH), "--ensemble", "5"], "mnist", 225),
    ("emnist_baseline", ["--model", "cnn"], "emnist-letters", 20),
    ("emnist_baseline", ["--model", "mlp"], "emnist-letters", 4),
    ("emnist_experiments", ["--all", "--dataset", "mnist"], "mnist", 490),
    # 5 epochs are enough for the sub-units to split the merged digits (the README's purity figures are from these)
    ("emnist_experiments", ["--exp", "plain_head", "case_aware", "case_aware_paired", "case_aware_resplit",
                            "--dataset", "mnist-merged", "--epochs", "5"], "mnist", 32),
    ("emnist_experiments", ["--all"], "emnist-letters", 1095),
]
# (script, arguments, dataset whose runs it reads); run names get "-quick" under --quick, as the scripts name them
FIGURE_STEPS = [
    ("plot_history", ["mnist_mlp", "mnist_cnn"], "mnist"),
    ("plot_history", ["nielsen_dropout"], "mnist"),
    ("show_misclassified", ["mnist_cnn"], "mnist"),
    ("plot_history", ["emnist_cnn", "emnist_mlp"], "emnist-letters"),
    ("show_misclassified", ["emnist_cnn"], "emnist-letters"),
]


def check_data(datasets: list[str], data_dir) -> None:
    """Load (or download) every split the study will need, now, before hours of training."""
    for dataset in datasets:
        for split in data.SPLITS:
            loaded = data.load_split(dataset, split, data_dir)
            print(f"  {dataset} {split}: {len(loaded.labels):,} images from {loaded.source['description']}")


def quick_run_names(argv: list[str]) -> list[str]:
    """Under --quick, an explicit --run-name gets the "-quick" suffix the scripts give their default names."""
    return [f"{arg}-quick" if i and argv[i - 1] == "--run-name" else arg for i, arg in enumerate(argv)]


def command(script: str, argv: list[str]) -> str:
    return f"python {script}.py {' '.join(argv)}"


def run_step(script: str, argv: list[str]) -> None:
    print(f"\n=== {command(script, argv)}", flush=True)
    importlib.import_module(script).main(argv)


def unless_default(flag: str, value: str | None, default: str | None = None) -> list[str]:
    """[flag, value], or nothing where the value is the scripts' own default (None: the flag was not given), so
    the commands stay the README's."""
    return [] if value == default else [flag, value]


def training_steps(args, datasets: list[str]) -> list[tuple[str, list[str], int]]:
    """(script, arguments, minutes from scratch on 2 CPU cores) of each training run the chosen datasets need."""
    shared = ["--resume"] + unless_default("--data-dir", args.data_dir)
    shared += unless_default("--runs-dir", args.runs_dir, "runs") + unless_default("--logs-dir", args.logs_dir, "logs")
    shared += ["--quick"] if args.quick else []
    return [(script, (quick_run_names(step_args) if args.quick else step_args) + shared
             + (unless_default("--results-dir", args.results_dir, "results") if script == "emnist_experiments" else []),
             step_minutes)
            for script, step_args, dataset, step_minutes in TRAINING_STEPS if dataset in datasets]


def figure_steps(args, datasets: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """(script, arguments, runs it reads) of each figure the chosen datasets get."""
    suffix = "-quick" if args.quick else ""
    where = unless_default("--runs-dir", args.runs_dir, "runs")
    steps = []
    for script, names, dataset in FIGURE_STEPS:
        if dataset not in datasets:
            continue
        runs = [f"{name}{suffix}" for name in names]
        if script == "plot_history":
            argv = runs + where + ["--out", f"{args.results_dir}/history_{'_vs_'.join(runs)}.png", "--no-show"]
        else:
            argv = runs + where + unless_default("--out-dir", args.results_dir, "results") + ["--no-show"]
            argv += unless_default("--data-dir", args.data_dir)
        steps.append((script, argv, runs))
    return steps


def evaluation_argv(args) -> list[str]:
    return (unless_default("--runs-dir", args.runs_dir, "runs") + unless_default("--out-dir", args.results_dir, "results")
            + unless_default("--data-dir", args.data_dir))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=data.DATASETS, help="run only the steps of one dataset")
    parser.add_argument("--quick", action="store_true", help="every step on a few hundred images: minutes")
    parser.add_argument("--data-dir", help="directory holding the dataset files (default: caches, then download)")
    parser.add_argument("--skip-training", action="store_true",
                        help="train nothing: draw the figures and write the report from the runs already complete")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the command of every step, one per line, and run nothing")
    parser.add_argument("--runs-dir", default="runs", help="where run directories go (default: %(default)s)")
    parser.add_argument("--logs-dir", default="logs", help="where TensorBoard logs go (default: %(default)s)")
    parser.add_argument("--results-dir", default="results", help="where figures and the report go "
                                                                 "(default: %(default)s)")
    args = parser.parse_args(argv)
    datasets = [args.only] if args.only else list(data.DATASETS)
    steps = [] if args.skip_training else training_steps(args, datasets)
    figures = figure_steps(args, datasets)
    if args.dry_run:
        for script, step_argv, *_ in steps + figures + [("evaluate_test", evaluation_argv(args))]:
            print(command(script, step_argv))
        return

    started = time.perf_counter()
    print("Checking the data every step needs:")
    check_data(datasets, args.data_dir)
    total_minutes = sum(step_minutes for *_, step_minutes in steps)
    if steps:
        print(f"\n{len(steps)} training runs. Full runs take about {total_minutes / 60:.1f} hours on 2 CPU cores "
              f"(minutes on a GPU; seconds each with --quick); finished runs are skipped.")
    for i, (script, step_argv, step_minutes) in enumerate(steps, 1):
        print(f"\n[{i}/{len(steps)}] {(time.perf_counter() - started) / 60:.0f} min elapsed; this step takes about "
              f"{step_minutes} min on 2 CPU cores from scratch{' (seconds with --quick)' if args.quick else ''}",
              end="")
        run_step(script, step_argv)

    complete = {path.name for path in find_complete_runs(args.runs_dir)}
    for script, step_argv, runs in figures:
        missing = [run for run in runs if run not in complete]
        if missing:  # only possible with --skip-training: a training step would have made them
            print(f"\nSkipping {script} {' '.join(runs)}: not complete yet ({', '.join(missing)})")
            continue
        run_step(script, step_argv)

    run_step("evaluate_test", evaluation_argv(args))
    print(f"\nThe study is done ({(time.perf_counter() - started) / 60:.1f} min). "
          f"Report: {args.results_dir}/RESULTS.md; curves: tensorboard --logdir {args.logs_dir}")


if __name__ == "__main__":
    cli.run_main(main)
