"""Judge finished runs on the test set: the only script that reads one.

For every complete run under runs/ (or those named) it evaluates the run's model.keras on its own dataset's test
set, once: predictions are cached under results/cache/ by the model file's checksum, so running this again is
instant and a retrained model is evaluated anew. It writes
    results/test_results.csv   one row per run: test accuracy with its 95% Wilson interval, errors, and an
                               exact McNemar test against the dataset's baseline (the warm-up CNN's run)
    results/RESULTS.md         the assignment's questions answered from the runs present, a table per dataset,
                               and the baselines' per-class accuracy
    results/test_accuracy.png  test accuracy of every run with its interval
and, for a case-aware run on letters not yet measured against EMNIST ByClass's case labels where ByClass is in
the data folders, that measurement (as `show_misclassified.py RUN` makes it: <run>/case_check.json and
results/<run>_case_check.png).

    python evaluate_test.py
    python evaluate_test.py mnist_cnn mnist_mlp --data-dir path/to/mnist
    python evaluate_test.py --quick            # on a stratified subset of each test set: seconds
"""

import argparse
import sys
from pathlib import Path

from emnist_study import cli, data, interrupts
from emnist_study.errors import UserError
from emnist_study import run_folder
from emnist_study.run_folder import REDO_RUN, find_complete_runs

QUICK_TEST_IMAGES = 520  # --quick: 20 images of each letter, 52 of each digit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run directories or names (default: every complete run)")
    parser.add_argument("--runs-dir", default="runs", help="where the runs are (default: %(default)s)")
    cli.add_data_dir(parser)
    parser.add_argument("--results-dir", default="results", help="where the report goes (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"judge on a stratified subset of {QUICK_TEST_IMAGES} images of each test set (for "
                             f"smoke runs; the report says so)")
    parser.add_argument(data.CHANGED_DATA_FLAG, action="store_true",
                        help="judge runs even where the data files they trained on changed after they trained "
                             "(the report says so)")
    args = parser.parse_args(argv)
    broken = []  # (run directory, what is wrong): reported, while the other runs are judged
    run_dirs = find_complete_runs(args.runs_dir, args.runs, broken)
    if not run_dirs and not broken:
        raise UserError(f"no complete runs under {args.runs_dir}: train something first")
    # TensorFlow loads here, once the runs are found: --help and a mistaken run name answer at once
    from emnist_study import case_check, evaluation, report

    out_dir = Path(args.results_dir)
    test_sets, by_dataset = {}, {}
    for run_dir in run_dirs:
        try:
            case_check.check_if_missing(run_dir, args.data_dir, out_dir)  # for the report's sixth answer
            about = evaluation.run_facts(run_dir)
        except (UserError, KeyError) as exc:
            broken.append((run_dir, str(exc) if isinstance(exc, UserError) else
                           f"its config.json or summary.json has no {exc}; {REDO_RUN}"))
            continue
        dataset = about["dataset"]
        if dataset not in test_sets:
            # the folders given, else those the run was trained from (recorded absolute)
            test_sets[dataset] = data.load_test_set(dataset, args.data_dir or about["config"].get("data_dir"))
            if args.quick:
                test_sets[dataset] = data.stratified_subset(test_sets[dataset], QUICK_TEST_IMAGES)
        test = test_sets[dataset]
        trained_on = run_folder.read_data_record(run_dir)
        try:
            changed = data.refuse_changed_data(run_dir, trained_on, args.accept_changed_data, test=True)
        except UserError as exc:
            broken.append((run_dir, str(exc)))
            continue
        if not data.same_copy(trained_on, test.source):
            broken.append((run_dir, f"it was trained on {data.source_line(trained_on)}, but the test set found is "
                                    f"{data.source_line(test.source)}: training and test must come from one copy; "
                                    f"point --data-dir at the copy it was trained from"))
            continue
        print(f"Evaluating {run_dir} on the {dataset} test set ({len(test.labels):,} images)")
        try:
            probabilities = evaluation.cached_probabilities(run_folder.model_path(run_dir), test.images, test.labels,
                                                            out_dir / "cache")
        except UserError as exc:
            broken.append((run_dir, str(exc)))
            continue
        if probabilities.shape[1] != len(test.class_names):
            broken.append((run_dir, f"{run_folder.model_path(run_dir)} answers in {probabilities.shape[1]} classes, "
                                    f"but {dataset} has {len(test.class_names)}: it is not the network this run trained; "
                                    f"train the run again with --overwrite"))
            continue
        letters = evaluation.letters_of_cased(probabilities) if dataset == data.BYCLASS_LETTERS else None
        by_dataset.setdefault(dataset, []).append(
            evaluation.RunResult(run=run_dir.name, predicted=probabilities.argmax(axis=1), true=test.labels,
                                 test_source=test.source, letters_predicted=letters, data_changed=changed,
                                 **about))

    for run_dir, problem in broken:
        print(f"evaluate_test.py: not judged: {run_dir}: {problem}", file=sys.stderr)
    if not by_dataset:
        raise UserError(f"no run could be judged ({len(broken)} broken, named above)")
    figure_links = sorted(str(p.relative_to(out_dir)) for p in out_dir.glob("*.png") if p.name != "test_accuracy.png")
    path = report.write_report(by_dataset, out_dir, figure_links, subset=args.quick)
    for results in by_dataset.values():
        for r in results:
            low, high = r.interval
            print(f"  {r.run:<32} test accuracy {r.test_accuracy:.2%} [{low:.2%}, {high:.2%}], {r.errors} errors")
    print(f"Report: {path}")


if __name__ == "__main__":
    interrupts.run_main(main, resumable=False)
