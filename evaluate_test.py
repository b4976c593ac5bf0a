"""Judge finished runs on the test set: the only script that reads one.

For every complete run under runs/ (or those named) it evaluates the run's model.keras on its own dataset's test
set, once: predictions are cached under results/cache/ by the model file's checksum, so running this again is
instant and a retrained model is evaluated anew. It writes
    results/test_results.csv   one row per run: test accuracy with its 95% Wilson interval, errors, and an
                               exact McNemar test against the dataset's baseline run (mnist_cnn, emnist_cnn)
    results/RESULTS.md         the tables, per-class accuracy on EMNIST Letters, and the comparisons the study
                               asks for (CNN on letters vs digits, CNN vs MLP, each run vs the baseline, test vs
                               validation)
    results/test_accuracy.png  test accuracy of every run with its interval

    python evaluate_test.py --data-dir ../shared/data
    python evaluate_test.py runs/mnist_cnn runs/mnist_mlp
"""

import argparse
from pathlib import Path

from emnist_study import cli, data, evaluation, report
from emnist_study.errors import UserError
from emnist_study.runs import find_complete_runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run directories or names (default: every complete run)")
    parser.add_argument("--runs-dir", default="runs", help="where the runs are (default: %(default)s)")
    parser.add_argument("--data-dir", help="directory holding the dataset files (as for the training scripts)")
    parser.add_argument("--out-dir", default="results", help="where the report goes (default: %(default)s)")
    args = parser.parse_args(argv)

    run_dirs = find_complete_runs(args.runs_dir, args.runs)
    if not run_dirs:
        raise UserError(f"no complete runs under {args.runs_dir}: train something first")
    out_dir = Path(args.out_dir)
    test_sets, by_dataset = {}, {}
    for run_dir in run_dirs:
        about = evaluation.describe_run(run_dir)
        dataset = about["dataset"]
        if dataset not in test_sets:
            test_sets[dataset] = data.load_test_set(dataset, args.data_dir)
        test = test_sets[dataset]
        print(f"Evaluating {run_dir} on the {dataset} test set ({len(test.labels):,} images)")
        probabilities = evaluation.cached_probabilities(run_dir / "model.keras", test.images, test.labels,
                                                        out_dir / "cache")
        by_dataset.setdefault(dataset, []).append(
            evaluation.RunResult(run=run_dir.name, predicted=probabilities.argmax(axis=1), true=test.labels, **about))

    figure_links = sorted(str(p.relative_to(out_dir)) for p in out_dir.glob("*.png") if p.name != "test_accuracy.png")
    path = report.write_report(by_dataset, out_dir, figure_links)
    for results in by_dataset.values():
        for r in results:
            low, high = r.interval
            print(f"  {r.run:<32} test accuracy {r.test_accuracy:.2%} [{low:.2%}, {high:.2%}], {r.errors} errors")
    print(f"Report: {path}")


if __name__ == "__main__":
    cli.run_main(main)
