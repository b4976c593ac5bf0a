"""Look at a trained run's mistakes: which images it gets wrong, and which classes it confuses.

Predicts on the run's own validation set (rebuilt from its config: same split, same seed), or on the test set
with `--split test` (only when asked: the test set is for the final judgement). Saves, under --results-dir:
    <run>_<split>_misclassified.png   the misclassified images, upright, most confident mistakes first,
                                      each titled "true → predicted" and the model's confidence
    <run>_<split>_confusion.png       the confusion matrix with class names
    <run>_subunits.png                for a case-aware head (validation only): the images each sub-unit is
                                      most sure of, class by class, scored against the hidden digit on merged MNIST
    <run>_case_check.png              for a case-aware head on letters, where EMNIST ByClass is in the data
                                      folders (NIST's gzip.zip holds it): on ByClass's test letters, what each
                                      sub-unit took against the true case, per letter (also <run>/case_check.json)
and prints the most confused pairs of classes with counts. Works for MNIST runs (digits) and EMNIST (letters).

    python show_misclassified.py runs/emnist_cnn
    python show_misclassified.py mnist_cnn --count 48
"""

import argparse
from pathlib import Path

import numpy as np

from emnist_study import cli, data, interrupts, recipes, run_folder
from emnist_study.config import TrainConfig
from emnist_study.run_folder import named_run_dirs, read_run_config, require_complete


def most_confused_pairs(true: np.ndarray, predicted: np.ndarray, num_classes: int, top: int):
    """[(count, a, b, a_as_b, b_as_a)] for the unordered class pairs with the most mistakes between them."""
    from sklearn.metrics import confusion_matrix  # here, so that --help loads no scikit-learn

    matrix = confusion_matrix(true, predicted, labels=range(num_classes))
    pairs = [(matrix[a, b] + matrix[b, a], a, b, matrix[a, b], matrix[b, a])
             for a in range(num_classes) for b in range(a + 1, num_classes)]
    return [p for p in sorted(pairs, key=lambda p: -p[0])[:top] if p[0] > 0]


def load_images(config: TrainConfig, split: str) -> tuple[np.ndarray, np.ndarray, tuple, data.TrainVal | None]:
    """Images, labels and class names of the split; and for validation the whole train/validation set too."""
    if split == "test":
        test = data.load_test_set(config.dataset, config.data_dir)
        return test.images, test.labels, test.class_names, None
    dataset = data.load_training_data(config, expand=False)
    return dataset.x_val, dataset.y_val, dataset.class_names, dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run directory (or a name under --runs-dir)")
    parser.add_argument("--runs-dir", default="runs", help="where the runs are (default: %(default)s)")
    parser.add_argument("--split", choices=["validation", "test"], default="validation",
                        help="which images to predict (default: %(default)s)")
    cli.add_data_dir(parser, default="the folders the run was trained from, then ")
    parser.add_argument("--count", type=cli.positive_int, default=40, help="mistakes to show (default: 40)")
    parser.add_argument("--top-pairs", type=cli.positive_int, default=10,
                        help="confused pairs to list (default: 10)")
    parser.add_argument("--results-dir", default="results", help="where the PNGs go (default: %(default)s)")
    parser.add_argument("--no-show", action="store_true", help="only save the PNGs, even with a screen")
    parser.add_argument(data.CHANGED_DATA_FLAG, action="store_true",
                        help="use the run's data files even where they changed after it trained (its validation "
                             "images are then not the run's; the output says so)")
    args = parser.parse_args(argv)
    (run_dir,) = named_run_dirs(args.runs_dir, [args.run])
    require_complete(run_dir)  # an unfinished run is named, with the command that continues it
    saved = read_run_config(run_dir)
    trained_on = run_folder.read_data_record(run_dir)
    changed = data.refuse_changed_data(run_dir, trained_on, args.accept_changed_data)
    from emnist_study import figures, models, pipeline, subunits  # TensorFlow loads here: mistakes answer at once

    config = TrainConfig(**{**saved, "data_dir": args.data_dir or saved.get("data_dir")})
    images, true, class_names, dataset = load_images(config, args.split)
    model = models.load(run_folder.model_path(run_dir))
    # A case-aware head is asked once for its sub-units; their sums are the class probabilities.
    describe_subunits = config.subunits > 1 and dataset is not None
    if describe_subunits:
        unit_probabilities = subunits.subunit_probabilities(model, images)
        probabilities = subunits.class_probabilities(unit_probabilities, config.subunits)
    else:
        probabilities = pipeline.predict(model, images)
    predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)

    wrong = np.flatnonzero(predicted != true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]  # the most confident mistakes first
    name = f"{run_dir.name}_{args.split}"
    accuracy = 1 - len(wrong) / len(true)
    from emnist_study.evaluation import balanced_accuracy, classes_unequal

    # where classes are unequal (ByClass's letters), the mean over classes too: rare letters count as much
    balanced = f"; balanced {balanced_accuracy(true, predicted):.2%}" if classes_unequal(true) else ""
    title = (f"{run_dir.name} ({recipes.network_name(saved)}): {len(wrong)} of {len(true):,} {args.split} images "
             f"wrong ({accuracy:.2%} right{balanced})" + (", on data changed since it trained" if changed else ""))
    shown = wrong[: args.count]
    out_dir = Path(args.results_dir)
    grid = figures.save(figures.plot_mistakes(images[shown], true[shown], predicted[shown], confidence[shown],
                                              class_names, title), out_dir / f"{name}_misclassified.png",
                        show=not args.no_show)
    matrix = figures.save(figures.plot_confusion(true, predicted, class_names, title),
                          out_dir / f"{name}_confusion.png", show=not args.no_show)

    print(title)
    print(f"Trained on {data.source_line(trained_on)}")
    if changed:
        print(f"Not the run's own data ({data.CHANGED_DATA_FLAG}): {', '.join(changed)} changed after it trained")
    if balanced:
        from emnist_study.evaluation import per_class_accuracy

        per_class = per_class_accuracy(true, predicted, len(class_names))
        counts = np.bincount(true, minlength=len(class_names))
        print("Per class, worst first: " + ", ".join(f"{class_names[c]} {per_class[c]:.1%} (of {counts[c]:,})"
                                                     for c in np.argsort(per_class) if counts[c]))
    print("Most confused pairs:")
    for count, a, b, a_as_b, b_as_a in most_confused_pairs(true, predicted, len(class_names), args.top_pairs):
        print(f"  {class_names[a]:>4} <-> {class_names[b]:<4} {count:4d}   "
              f"({class_names[a]} taken for {class_names[b]}: {a_as_b}, {class_names[b]} for {class_names[a]}: {b_as_a})")
    print(f"Saved {grid} and {matrix}")
    pngs = {f"{args.split}/misclassified": grid, f"{args.split}/confusion": matrix}
    if describe_subunits:
        figure = subunits.record_subunits(unit_probabilities, dataset, run_dir, config.subunits, out_dir, show=not args.no_show)
        print(f"Saved {figure}")
        pngs[f"{args.split}/subunits"] = figure
    from emnist_study import hparams

    logs_dir = hparams.add_figures(run_dir, saved, pngs)
    if logs_dir:
        print(f"{'Both are' if len(pngs) == 2 else 'All three are'} in TensorBoard too, in the Images tab of "
              f"{logs_dir}")
    from emnist_study import case_check

    if case_check.applies(saved):  # a case-aware head on letters: did its sub-units find the case?
        figure = case_check.check_run(run_dir, config.data_dir, out_dir, show=not args.no_show)
        if figure:
            print(f"Saved {figure} and {run_dir / case_check.RECORD_FILE}")


if __name__ == "__main__":
    interrupts.run_main(main, resumable=False)
