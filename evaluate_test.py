"""Judge finished runs on the test set: the only script that reads one.

For every complete run under runs/ (or those named), load its model.keras, evaluate it on its dataset's test
split, and print a table: test accuracy, test errors, parameters, epochs and seconds per epoch. The table is also
saved as results/test_results.csv.

    python evaluate_test.py --data-dir ../shared/data
    python evaluate_test.py runs/mnist_cnn runs/mnist_mlp --data-dir ../shared/data
"""

import argparse
import csv
from pathlib import Path

from emnist_study import cli, data, models, pipeline
from emnist_study.runs import find_complete_runs, read_json


def evaluate_run(run_dir: Path, test: data.LabelledImages) -> dict:
    config = read_json(run_dir / "config.json")["config"]
    summary = read_json(run_dir / "summary.json")
    model = models.load(run_dir / "model.keras")
    predicted = pipeline.predict(model, test.images).argmax(axis=1)
    errors = int((predicted != test.labels).sum())
    return {
        "run": run_dir.name,
        "dataset": config["dataset"],
        "model": config["model"] + (f" x{config['ensemble']} vote" if config.get("ensemble", 1) > 1 else ""),
        "params": model.count_params(),
        "epochs": config["epochs"],
        "batch": config["batch_size"],
        "seed": config["seed"],
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "best_val_accuracy": round(summary["best_val_accuracy"], 4),
        "test_accuracy": round(1 - errors / len(test.labels), 4),
        "test_errors": errors,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run directories or names (default: every complete run)")
    parser.add_argument("--runs-dir", default="runs", help="where the runs are (default: %(default)s)")
    parser.add_argument("--data-dir", help="directory holding the dataset files (as for the training scripts)")
    parser.add_argument("--out", default="results/test_results.csv", help="CSV to write (default: %(default)s)")
    args = parser.parse_args(argv)

    run_dirs = find_complete_runs(args.runs_dir, args.runs)
    test_sets, rows = {}, []
    for run_dir in run_dirs:
        dataset = read_json(run_dir / "config.json")["config"]["dataset"]
        if dataset not in test_sets:
            test_sets[dataset] = data.load_test_set(dataset, args.data_dir)
        print(f"Evaluating {run_dir} on the {dataset} test set ({len(test_sets[dataset].labels):,} images)")
        rows.append(evaluate_run(run_dir, test_sets[dataset]))
    if not rows:
        print(f"No complete runs under {args.runs_dir}.")
        return
    columns = list(rows[0])
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nSaved {out}")


if __name__ == "__main__":
    cli.run_main(main)
