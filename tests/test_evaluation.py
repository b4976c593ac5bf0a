"""The statistics and the report, on predictions whose right answers are known."""

import numpy as np
import pytest

from emnist_study import evaluation, report


def test_wilson_interval_matches_the_formula():
    low, high = evaluation.wilson_interval(9912, 10000)
    z, n, p = 1.959963985, 10000, 0.9912
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert evaluation.wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_mcnemar_counts_only_disagreements():
    right_a = np.array([True] * 90 + [True] * 8 + [False] * 2)
    right_b = np.array([True] * 90 + [False] * 8 + [True] * 2)
    a_only, b_only, p = evaluation.mcnemar_exact(right_a, right_b)
    assert (a_only, b_only) == (8, 2)
    assert p == pytest.approx(2 * sum(__import__("math").comb(10, k) for k in range(0, 3)) / 2 ** 10)  # 0.109375
    assert evaluation.mcnemar_exact(right_a, right_a)[2] == 1.0


def test_per_class_accuracy():
    true = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0, 2])
    assert evaluation.per_class_accuracy(true, pred, 4)[:3].tolist() == [0.5, pytest.approx(2 / 3), 1.0]
    assert np.isnan(evaluation.per_class_accuracy(true, pred, 4)[3])


ROLES = {"mnist_cnn": {"script": "warmup_mnist_cnn.py", "model": "mnist_cnn",
                       "optimizer": {"name": "adadelta", "epsilon": 1e-7}},
         "mnist_mlp": {"script": "warmup_mnist_mlp.py", "model": "mnist_mlp"},
         "emnist_cnn": {"script": "emnist_baseline.py", "model": "mnist_cnn"},
         "emnist_mlp": {"script": "emnist_baseline.py", "model": "mnist_mlp"}}


def result(run, dataset, predicted, true, val, val_images=6000, config=None):
    config = config or ROLES.get(run, {"script": "emnist_experiments.py", "model": "vgg_bn"})
    return evaluation.RunResult(run=run, dataset=dataset, network="m", params=10, epochs=1, train_seconds=60.0,
                                val_accuracy=val, predicted=np.array(predicted), true=np.array(true),
                                val_images=val_images, config={"dataset": dataset, **config})


def test_report_on_known_predictions(tmp_path):
    """Models on test sets whose answers are known: the table, the answers and the per-class accuracy follow."""
    true = [i % 10 for i in range(100)]
    perfect = list(true)
    ten_wrong = [(t + 1) % 10 if i < 10 else t for i, t in enumerate(true)]
    letters_true = [i % 26 for i in range(52)]
    by_dataset = {
        "mnist": [result("mnist_cnn", "mnist", perfect, true, 0.99), result("mnist_mlp", "mnist", ten_wrong, true, 0.999)],
        "emnist-letters": [result("emnist_cnn", "emnist-letters", letters_true, letters_true, 0.9)],
    }
    path = report.write_report(by_dataset, tmp_path, [])
    text = path.read_text()
    rows = {r["run"]: r for r in report.csv_rows(by_dataset)}
    assert rows["mnist_cnn"]["test_errors"] == 0 and rows["mnist_mlp"]["test_errors"] == 10
    assert rows["mnist_mlp"]["only_baseline_right"] == 10 and rows["mnist_mlp"]["only_this_right"] == 0
    assert rows["mnist_mlp"]["mcnemar_p"] == pytest.approx(2 / 2 ** 10, abs=1e-4)
    assert "| mnist_mlp | m | 10 | 1 | 1.0 min | 99.90% | 90.00% [" in text and "p = 0.00195 (real)" in text
    assert "reaches 100.00% on EMNIST Letters (`emnist_cnn`) against 100.00% on MNIST (`mnist_cnn`)" in text
    assert "The MLP warm-up: 90.00%" in text
    assert "validation 99.90% of 6,000, test 90.00% of 100" in text  # the overuse warning, for mnist_mlp alone
    assert "Per-class test accuracy of `emnist_cnn`" in text and "A/a 100.00%" in text
    assert "python emnist_baseline.py --model mlp" in text  # question 4 names the command that answers it
    assert (tmp_path / "test_results.csv").is_file() and (tmp_path / "test_accuracy.png").stat().st_size > 5000


def test_the_overuse_warning_weighs_the_validation_sets_size():
    """93% on 60 validation images against 90% on 10,000 test images could be chance (4 errors of 60 against
    an expected 6); on 6,000 it cannot. (Both lie above the test accuracy's own interval, 89.4-90.6%.)"""
    true = [0] * 10_000
    predicted = [0] * 9_000 + [1] * 1_000
    small = result("small", "mnist", predicted, true, 0.93, val_images=60)
    large = result("large", "mnist", predicted, true, 0.93, val_images=6_000)
    assert report.overuse_gap(small) < 1.96 < report.overuse_gap(large)
    assert "`large`" in report.answer_overuse({"mnist": [small, large]})
    assert "`small`" not in report.answer_overuse({"mnist": [small, large]})


def test_the_best_experiment_is_chosen_on_validation_and_read_against_the_published_figures():
    true = list(range(26)) * 4
    experiments = [result("exp_a", "emnist-letters", true, true, 0.95),  # right on every test letter
                   result("exp_b", "emnist-letters", [0] * len(true), true, 0.97,
                          config={"script": "emnist_experiments.py", "model": "vgg_bn", "ensemble": 5})]
    text = report.answer_best_experiment(experiments)
    assert "`exp_b` (validation 97.00%)" in text  # chosen by validation, though worse on test
    assert "does not reach the assignment's 90.00%" in text and "an ensemble of 5 networks" in text
    assert "above 0 of the 6 published" in text


def test_choices_by_validation_compare_only_runs_validated_on_the_same_images():
    """Another seed holds out other validation images: its higher validation accuracy may be a luckier draw of
    images, so it takes no part in choosing, and the report says it was left out."""
    true = [i % 10 for i in range(100)]

    def wrong(n):  # predictions with the first n wrong
        return [(t + 1) % 10 if i < n else t for i, t in enumerate(true)]

    experiment = {"script": "emnist_experiments.py", "model": "vgg_bn", "validation": "stratified",
                  "val_fraction": 0.1}
    runs = [result("mnist_cnn", "mnist", wrong(5), true, 0.95, config={**ROLES["mnist_cnn"], "validation": "stratified",
                                                                      "val_fraction": 0.1}),
            result("exp_a", "mnist", wrong(1), true, 0.99, config={**experiment, "seed": 1}),
            result("exp_b", "mnist", wrong(2), true, 0.98, config={**experiment, "seed": 1}),
            result("exp_c", "mnist", wrong(3), true, 0.97, config={**experiment, "seed": 1}),
            result("exp_a-seed2", "mnist", wrong(4), true, 0.999, config={**experiment, "seed": 2})]
    text = report.answer_overuse({"mnist": runs})
    assert "the experiment validation chose (`exp_a`) ranks 1 of 3 on test" in text
    assert "of the 3 experiments ahead of the warm-up CNN (`mnist_cnn`) on validation, 3 stay ahead" in text
    assert "(1 experiment run of other seeds or splits validated on other images, so is left out" in text
    letters = [result(r.run, "emnist-letters", r.predicted, r.true, r.val_accuracy, config=r.config) for r in runs[1:]]
    best = report.answer_best_experiment(letters)
    assert "among 3 experiment runs: `exp_a`" in best and "1 experiment run of other seeds" in best


def test_a_claim_is_judged_by_the_mean_and_what_the_test_sets_sampling_error_allows():
    true = [0] * 10_000

    def run(errors, seed=1):
        return result(f"r{seed}", "mnist", [1] * errors + [0] * (10_000 - errors), true, 0.99, config={"seed": seed})
    assert report.against_claim([run(60)], 0.9940) == "reached"
    assert report.against_claim([run(49)], 0.9960).startswith("not reached, though the claim lies inside")  # 99.51%
    assert report.against_claim([run(90)], 0.9960) == "not reached"  # 99.10%: its interval ends near 99.27%
    seeds = [run(93, 1), run(96, 2), run(74, 3)]  # the 2015 Keras network's three seeds: 99.07%, 99.04%, 99.26%
    assert report.against_claim(seeds, 0.9925) == "not reached on average; 1 of the 3 seeds reaches it"
    assert report.against_claim(seeds[:2], 0.9925) == "not reached by any seed"


def test_a_baseline_is_found_by_its_role_whatever_its_name():
    true = [0, 1, 2]
    runs = [result("x", "mnist", true, true, 0.9), result("mnist_cnn-seed2-quick", "mnist", true, true, 0.9,
                                                           config={**ROLES["mnist_cnn"], "seed": 2}),
            result("mnist_cnn-quick", "mnist", true, true, 0.9, config={**ROLES["mnist_cnn"], "seed": 1})]
    assert report.baseline_of(runs).run == "mnist_cnn-quick"


def test_evaluate_test_on_models_whose_answers_are_known(tmp_path):
    """A model right on every generated test image, and one that calls every 0 a 1: evaluate_test must report
    exactly 100% and 100% minus the 0s, and McNemar must count just those images."""
    import csv

    import evaluate_test
    import synthetic
    from helpers import run_script

    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=2, per_class_test=7)
    runs = tmp_path / "runs"
    synthetic.write_finished_run(runs, "mnist_cnn", "mnist", synthetic.template_model(10), "warmup_mnist_cnn.py")
    synthetic.write_finished_run(runs, "zero_as_one", "mnist", synthetic.template_model(10, answer_for={0: 1}))
    assert run_script(evaluate_test, "--runs-dir", str(runs), "--data-dir", str(tmp_path / "data"),
                      "--results-dir", str(tmp_path / "results")) == 0
    rows = {r["run"]: r for r in csv.DictReader(open(tmp_path / "results" / "test_results.csv"))}
    assert rows["mnist_cnn"]["test_accuracy"] == "1.0" and rows["mnist_cnn"]["test_errors"] == "0"
    assert rows["zero_as_one"]["test_errors"] == "7" and float(rows["zero_as_one"]["test_accuracy"]) == 0.9
    assert (rows["zero_as_one"]["only_this_right"], rows["zero_as_one"]["only_baseline_right"]) == ("0", "7")
    assert float(rows["zero_as_one"]["mcnemar_p"]) == pytest.approx(2 / 2 ** 7, abs=1e-4)
    low, high = evaluation.wilson_interval(63, 70)
    assert float(rows["zero_as_one"]["ci95_low"]) == pytest.approx(low, abs=1e-4)


def test_accuracy_chart_draws_each_run_at_its_accuracy_one_panel_per_dataset():
    true = [i % 10 for i in range(100)]
    ten_wrong = [(t + 1) % 10 if i < 10 else t for i, t in enumerate(true)]
    by_dataset = {"mnist": [result("a", "mnist", true, true, 0.9), result("b", "mnist", ten_wrong, true, 0.9)],
                  "mnist-merged:0-5,1-6,2-7,3-8,4-9": [result("c", "merged", ten_wrong, true, 0.9)]}
    axes = report.accuracy_chart(by_dataset).axes
    assert [ax.get_title() for ax in axes] == list(by_dataset)
    points = axes[0].lines[0].get_xydata()  # errorbar's markers: (accuracy %, row)
    assert points.tolist() == [[100.0, 0.0], [90.0, 1.0]]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["a", "b"]
    assert axes[1].lines[0].get_xydata().tolist() == [[90.0, 0.0]]


def test_runs_are_named_by_the_network_they_trained():
    """The warm-up CNN on letters is the warm-up CNN, not "mnist_cnn"; an ensemble says how it combines."""
    from dataclasses import asdict

    from emnist_study import recipes

    assert recipes.network_name(asdict(recipes.LETTERS_BASELINES["cnn"])) == "warm-up CNN"
    ensemble = asdict(recipes.recipe("ensemble_tta", "exp_ensemble_tta", "emnist-letters"))
    assert recipes.network_name(ensemble) == "half-width VGG-style CNN x5 averaged + 8 views"
    case_aware = asdict(recipes.recipe("case_aware_resplit", "exp_case_aware_resplit", "emnist-letters"))
    assert recipes.network_name(case_aware) == "VGG-style CNN, case-aware head (2 sub-units)"


def letters_runs(cnn_wrong: int, mlp_wrong: int, experiments_wrong: dict, quick: bool = False) -> list:
    """The letters baselines and experiments on 520 test letters, each with its first n answers wrong."""
    true = [i % 26 for i in range(520)]

    def wrong(n):
        return [(t + 1) % 26 if i < n else t for i, t in enumerate(true)]

    extra = {"quick": True, "limit_images": 600, "val_fraction": 0.1} if quick else {}
    runs = [result(name, "emnist-letters", wrong(n), true, 0.9, config={**ROLES[name], **extra})
            for name, n in (("emnist_cnn", cnn_wrong), ("emnist_mlp", mlp_wrong))]
    return runs + [result(name, "emnist-letters", wrong(n), true, 0.95 - n / 1000,
                          config={"script": "emnist_experiments.py", "model": "vgg_bn", **extra})
                   for name, n in experiments_wrong.items()]


def test_the_answers_say_in_words_who_did_better_in_percentage_points():
    cnn_ahead = report.answer_cnn_vs_mlp(letters_runs(20, 120, {}))
    assert cnn_ahead.startswith("The CNN did better than the MLP: ") and "19.23 percentage points apart" in cnn_ahead
    assert "the difference is real" in cnn_ahead and "Convolution shares its weights" in cnn_ahead
    mlp_ahead = report.answer_cnn_vs_mlp(letters_runs(25, 20, {}))
    assert mlp_ahead.startswith("The MLP did better than the CNN: ") and "could well be chance" in mlp_ahead
    assert "Convolution" not in mlp_ahead
    # Q3: 100% against 90%: 10 percentage points, not "10.00%" (which would read as a relative difference)
    digits_true = [i % 10 for i in range(100)]
    mnist = [result("mnist_cnn", "mnist", digits_true, digits_true, 0.99)]
    letters = letters_runs(52, 52, {})
    text = report.answer_letters_vs_digits(mnist, letters)
    assert "against 100.00% on MNIST (`mnist_cnn`): 10.00 percentage points lower." in text


def test_the_best_experiment_is_read_against_the_baselines_and_every_published_figure_it_lists():
    # the case: both baselines beat every experiment
    text = report.answer_best_experiment(letters_runs(100, 200, {"exp_a": 300, "exp_b": 250}))
    assert "None of the experiments beat the baselines: the warm-up CNN (`emnist_cnn`, 80.77%) and the MLP " in text
    only_cnn = report.answer_best_experiment(letters_runs(100, 400, {"exp_a": 300, "exp_b": 250}))
    assert "None of the experiments beat the baseline: the warm-up CNN (`emnist_cnn`, 80.77%)" in only_cnn
    ahead = report.answer_best_experiment(letters_runs(100, 200, {"exp_a": 50, "exp_b": 60}))
    assert "None of the experiments" not in ahead
    assert "`exp_a` is 9.62 percentage points above the baseline, the warm-up CNN (`emnist_cnn`, 80.77%)" in ahead
    # the count it states is the count of the figures it lists
    import re
    count, listed = re.search(r"above \d+ of the (\d+) published single-network figures listed here \((.+?)\)\.",
                              ahead).groups()
    figures_listed = re.findall(r"\d+\.\d\d%", listed)
    assert int(count) == len(figures_listed) == len(report.PUBLISHED)
    assert figures_listed == [report.pct(acc) for _, acc in report.PUBLISHED]
    assert {"55.78%", "85.15%", "95.39%", "95.88%", "95.93%", "95.96%"} == set(figures_listed)  # REFERENCE.md's


def case_aware_result(shares: list, classes_split: int, epochs: int = 1, resplit: float = 0.05):
    true = list(range(26)) * 2
    units = {"split": "validation", "split_share": 0.1, "classes_split": classes_split, "classes": 26,
             "unit_shares": {f"{chr(65 + c)}/{chr(97 + c)}": shares for c in range(26)}}
    config = {"script": "emnist_experiments.py", "model": "vgg_bn", "resplit_idle_units": resplit,
              "model_options": {"subunits": 2, "paired_copies": True}}
    run = result("exp_case_aware_resplit", "emnist-letters", true, true, 0.9, config=config)
    run.epochs, run.subunits = epochs, units
    return run


def test_a_collapsed_case_aware_head_is_called_collapsed_with_what_to_try(monkeypatch, tmp_path):
    from helpers import python_not_activated

    python_not_activated(monkeypatch, tmp_path)  # the report's commands name the Python that wrote it
    text = report.answer_case_aware({"emnist-letters": [case_aware_result([1.0, 0.0], 0)]})
    assert "the head collapsed: one sub-unit took every validation image of every class" in text
    assert "shows what each unit took" not in text
    assert "a run of one epoch never gets the chance" in text
    assert ("`.venv/bin/python emnist_experiments.py --exp case_aware_resplit --run-name exp_case_aware_resplit-full`"
            in text)
    plain = report.answer_case_aware({"emnist-letters": [case_aware_result([0.97, 0.03], 0, epochs=20, resplit=0)]})
    assert "the head collapsed: in every class one sub-unit took more than 90%" in plain
    assert "try the case_aware_resplit recipe" in plain
    split = report.answer_case_aware({"emnist-letters": [case_aware_result([0.6, 0.4], 26, epochs=3)]})
    assert "collapsed" not in split and "26 of 26 classes divide their validation images" in split


def test_the_report_explains_its_words_once_and_a_quick_run_is_said_to_mean_nothing(tmp_path):
    by_dataset = {"emnist-letters": letters_runs(20, 120, {"exp_a": 300})}
    text = report.write_report(by_dataset, tmp_path, []).read_text()
    guide = text[text.index("## Answers"):text.index("1. **")]
    for word in ("Wilson score interval", "given in percentage points", "exact McNemar test", "case-aware head",
                 "sub-units"):
        assert guide.count(word) == 1, word  # explained once, before the answers that use it
    assert "like tosses of a fair coin" in guide and "Below 0.05 the difference is called real" in guide
    assert "quick run" not in text and "--quick" not in text

    quick = {"emnist-letters": letters_runs(20, 120, {"exp_a": 300}, quick=True)}
    text = report.write_report(quick, tmp_path, [], subset=True).read_text()
    q4 = next(line for line in text.splitlines() if line.startswith("4. "))
    assert "the difference is real" in q4 and "Convolution" not in q4  # no lesson drawn from a smoke test
    assert ("But these are quick runs (`--quick`): 1 epoch on 540 training images, a smoke test that the code works. "
            "Their accuracies, and any difference between networks trained so, \"real\" or not, say nothing about "
            "what the fully trained networks do") in q4
    q5 = next(line for line in text.splitlines() if line.startswith("5. "))
    assert "But this is a quick run (`--quick`)" in q5
