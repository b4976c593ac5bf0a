"""Plot the training curves of one or more runs: loss and accuracy per epoch, training (dashed) against
validation (solid), one colour per run, with a star on each run's best validation epoch.

The curves come from each run's history.csv: fit's History (`history = model.fit(...)` in the step scripts;
`history.history` holds the same columns, loss, accuracy, val_loss and val_accuracy) for every epoch of the run,
across resumes, where one fit's History holds only that fit's epochs. Overlaying runs is how experiments get
compared. The figure is saved as a PNG and shown when a screen is there.

    python plot_history.py runs/mnist_cnn
    python plot_history.py emnist_cnn emnist_mlp --out cnn_vs_mlp.png    # results/cnn_vs_mlp.png
    python plot_history.py --all
"""

import argparse
from pathlib import Path

from emnist_study import interrupts, run_folder
from emnist_study.commands import command_line
from emnist_study.errors import UserError
from emnist_study.run_folder import (all_run_dirs, named_run_dirs, read_history, read_json, read_run_config,
                                  run_writer)

QUICK = "-quick"  # the suffix --quick gives a run's name


def resume_command(run_dir: Path) -> str:
    """The command that continues the unfinished run at `run_dir`: the study's own step for a run the study trains
    (as run_all.py runs it, with --quick for a quick run), else the run's script under its name."""
    from emnist_study import study_plan

    if run_folder.is_member(run_dir):  # an ensemble's member: the ensemble continues it
        return resume_command(run_dir.parent.parent)
    config = read_run_config(run_dir) if run_folder.has_config(run_dir) else {}
    name, quick = run_dir.name, bool(config.get("quick"))
    base = name[: -len(QUICK)] if quick and name.endswith(QUICK) else name
    steps = [step for step in study_plan.STUDY + [study_plan.renamed_if_shortened(s) for s in study_plan.FULL_EXTRA]
             if base in step.run_names]
    where = [arg for folder in config.get("data_dir") or [] for arg in ("--data-dir", folder)]
    if run_dir.parent.resolve() != Path("runs").resolve():
        where += ["--runs-dir", str(run_dir.parent)]
    if steps:
        args = list(steps[0].args)
        if quick:  # as run_all.py --quick runs a step: one epoch, an explicit name with the suffix
            args = [a for i, a in enumerate(args) if a != "--epochs" and (i == 0 or args[i - 1] != "--epochs")]
            args = [f"{a}{QUICK}" if i and args[i - 1] == "--run-name" else a for i, a in enumerate(args)]
            args.append("--quick")
        return command_line(f"{steps[0].script}.py", *args, *where, "--resume")
    script = config.get("script")
    return (command_line(script, "--run-name", name, *(["--quick"] if quick else []), *where, "--resume")
            + " (with the other flags it was started with)")


def no_history(run_dir: Path) -> str:
    """Why a named run has no epochs to plot, and what to do: an ensemble's histories are its members', and a run
    whose first epoch has not finished has none yet (--resume continues it)."""
    members = run_folder.members_dir(run_dir)
    config = read_run_config(run_dir) if run_folder.has_config(run_dir) else {}
    if members.is_dir() or config.get("ensemble", 1) > 1:
        plotted = sorted(p for p in members.glob("*") if read_history(p)) if members.is_dir() else []
        if plotted:
            return (f"{run_dir} is an ensemble: each member has a history of its own, under {members}/; plot them "
                    f"with: {command_line('plot_history.py', *plotted)}")
        return (f"{run_dir} is an ensemble none of whose members has finished an epoch yet, so there is nothing to "
                f"plot; continue it with: {resume_command(run_dir)}")
    summary = read_json(run_folder.summary_path(run_dir)) if run_folder.has_summary(run_dir) else {}
    writer = run_writer(run_dir)
    if writer and summary.get("status") != "complete":
        return (f"{run_dir} is training (process {writer}) and has not finished its first epoch yet: plot it once "
                f"history.csv has a row (each epoch adds one as it ends)")
    if summary.get("status") == "complete":
        if run_folder.history_path(run_dir).is_file():
            return (f"{run_dir} is complete but its history.csv holds no epoch, only the row of column names: put "
                    f"back the run's own copy, or train it again with --overwrite")
        return f"{run_dir} is complete but has no history.csv (it was not trained by this project's scripts)"
    return (f"{run_dir} has no finished epoch yet, so there is nothing to plot (history.csv gains a row as each "
            f"epoch ends); continue it with: {resume_command(run_dir)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run directories (or names under --runs-dir)")
    parser.add_argument("--all", action="store_true", help="every run under --runs-dir that has a history")
    parser.add_argument("--runs-dir", default="runs", help="where the runs are (default: %(default)s)")
    parser.add_argument("--results-dir", default="results", help="where the PNG goes (default: %(default)s)")
    parser.add_argument("--out", metavar="NAME", help="the PNG's file name under --results-dir (default: "
                                                      "history_<run>_vs_<run>.png, or history_all.png with --all)")
    parser.add_argument("--no-show", action="store_true", help="only save the PNG, even with a screen")
    args = parser.parse_args(argv)
    if not args.runs and not args.all:
        parser.error("name one or more runs, or pass --all")

    if args.all:
        histories = {run_dir.name: read_history(run_dir) for run_dir in all_run_dirs(args.runs_dir)}
        histories = {name: rows for name, rows in histories.items() if rows}
        if not histories:
            raise UserError(f"no run under {args.runs_dir} has a finished epoch to plot: an unfinished run continues "
                            f"with --resume, and an ensemble's histories are its members' (python plot_history.py "
                            f"{Path(args.runs_dir) / '<run>' / 'members' / 'member1'})")
    else:
        run_dirs = named_run_dirs(args.runs_dir, args.runs)
        histories = {run_dir.name: read_history(run_dir) for run_dir in run_dirs}
        for run_dir in run_dirs:
            if not histories[run_dir.name]:
                raise UserError(no_history(run_dir))
    from emnist_study import figures  # matplotlib loads here, after the checks: --help and mistakes answer at once

    default_name = "all" if args.all else "_vs_".join(histories)
    out = Path(args.results_dir) / (args.out or f"history_{default_name}.png")
    figures.save(figures.plot_histories(histories), out, show=not args.no_show)
    for name, rows in histories.items():
        best = max(rows, key=lambda r: r["val_accuracy"])
        epochs = f"{len(rows)} epoch{'s' if len(rows) != 1 else ''}"
        print(f"{name}: {epochs}, best validation accuracy {best['val_accuracy']:.4f} at epoch {best['epoch']}")
    print(f"Saved {out}")


if __name__ == "__main__":
    interrupts.run_main(main, resumable=False)
