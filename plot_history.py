"""Plot the training curves of one or more runs: loss and accuracy per epoch, training (dashed) against
validation (solid), one colour per run, with a star on each run's best validation epoch.

Overlaying runs is how experiments get compared. The figure is saved as a PNG and shown when a screen is there.

    python plot_history.py runs/mnist_cnn
    python plot_history.py emnist_cnn emnist_mlp --out cnn_vs_mlp.png    # results/cnn_vs_mlp.png
    python plot_history.py --all
"""

import argparse
from pathlib import Path

from emnist_study import cli, interrupts
from emnist_study.errors import UserError
from emnist_study.records import find_runs_with_history, read_history


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

    from emnist_study import figures  # matplotlib loads here, after the flags: --help answers at once

    run_dirs = find_runs_with_history(args.runs_dir, None if args.all else args.runs)
    histories = {run_dir.name: read_history(run_dir) for run_dir in run_dirs}
    if not histories:
        raise UserError(f"no run under {args.runs_dir} has a history.csv yet")
    default_name = "all" if args.all else "_vs_".join(histories)
    out = Path(args.results_dir) / (args.out or f"history_{default_name}.png")
    figures.save(figures.plot_histories(histories), out, show=not args.no_show)
    for name, rows in histories.items():
        best = max(rows, key=lambda r: r["val_accuracy"])
        print(f"{name}: {len(rows)} epochs, best validation accuracy {best['val_accuracy']:.4f} "
              f"at epoch {best['epoch']}")
    print(f"Saved {out}")


if __name__ == "__main__":
    interrupts.run_main(main, resumable=False)
