"""run_all.py --quick: the whole study end to end on generated data, and its up-front data check."""

import csv
import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

import run_all
import synthetic
from emnist_study import recipes
from emnist_study.runs import TrainConfig
from test_training_runs import run_script


def study_args(root, *extra):
    return ["--quick", "--data-dir", str(root / "data"), "--runs-dir", str(root / "runs"),
            "--logs-dir", str(root / "logs"), "--results-dir", str(root / "results"), *extra]


def test_quick_study_runs_end_to_end(tmp_path, capsys):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=60, per_class_test=10)
    synthetic.write_emnist_files(tmp_path / "data", per_class_train=24, per_class_test=6)
    assert run_script(run_all, *study_args(tmp_path)) == 0
    results = tmp_path / "results"
    rows = {r["run"] for r in csv.DictReader(open(results / "test_results.csv"))}
    experiments = list(recipes.EXPERIMENTS)  # every registered experiment, on MNIST and on letters
    assert rows == {"mnist_mlp-quick", "mnist_cnn-quick", "mnist_cnn-seed2-quick", "mnist_cnn-seed3-quick",
                    "nielsen_dropout-quick", "nielsen_dropout-ensemble5-quick", "emnist_cnn-quick",
                    "emnist_mlp-quick", "merged_exp_plain_head-quick", "merged_exp_case_aware-quick",
                    "merged_exp_case_aware_paired-quick", "merged_exp_case_aware_resplit-quick",
                    *[f"mnist_exp_{e}-quick" for e in experiments], *[f"exp_{e}-quick" for e in experiments]}
    assert (results / "leaderboard.csv").is_file() and (results / "merged_exp_case_aware-quick_subunits.png").is_file()
    for png in ("history_mnist_mlp-quick_vs_mnist_cnn-quick.png", "mnist_cnn-quick_validation_misclassified.png",
                "emnist_cnn-quick_validation_confusion.png", "test_accuracy.png"):
        assert (results / png).stat().st_size > 5000
    assert "## emnist-letters" in (results / "RESULTS.md").read_text()
    out = capsys.readouterr().out
    assert "[11/11]" in out and "Report:" in out

    # Again: every run is complete, so nothing trains.
    assert run_script(run_all, *study_args(tmp_path)) == 0
    assert capsys.readouterr().out.count("is already complete") == 8 + 2 * len(experiments) + 4  # 4 merged runs


def test_missing_emnist_stops_before_any_training(tmp_path, capsys):
    synthetic.write_mnist_npz(tmp_path / "data")
    assert run_script(run_all, *study_args(tmp_path)) == 1
    assert "EMNIST Letters was not found" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_only_mnist_needs_no_emnist(tmp_path):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=60, per_class_test=10)
    assert run_script(run_all, *study_args(tmp_path, "--only", "mnist")) == 0
    assert not list((tmp_path / "runs").glob("emnist*"))


@pytest.mark.parametrize("argv, expected", [
    (["--seed", "2", "--run-name", "mnist_cnn-seed2"], ["--seed", "2", "--run-name", "mnist_cnn-seed2-quick"]),
    (["--model", "mlp"], ["--model", "mlp"]),
])
def test_quick_run_names(argv, expected):
    assert run_all.quick_run_names(argv) == expected


def test_skip_training_reports_the_runs_there_are(tmp_path, capsys):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=60, per_class_test=10)
    run = synthetic.write_finished_run(tmp_path / "runs", "mnist_cnn-quick", "mnist", synthetic.template_model(10))
    config = TrainConfig(script="warmup_mnist_cnn.py", run_name="mnist_cnn-quick", dataset="mnist", model="template",
                         epochs=1, batch_size=128, quick=True, limit_images=600)
    (run / "config.json").write_text(json.dumps({"config": asdict(config)}))  # all show_misclassified reads
    assert run_script(run_all, *study_args(tmp_path, "--only", "mnist", "--skip-training")) == 0
    out = capsys.readouterr().out
    assert "=== python warmup" not in out and "=== python nielsen" not in out  # nothing trained
    assert "Skipping plot_history mnist_mlp-quick mnist_cnn-quick: not complete yet (mnist_mlp-quick)" in out
    rows = list(csv.DictReader(open(tmp_path / "results" / "test_results.csv")))
    assert [(r["run"], r["test_errors"]) for r in rows] == [("mnist_cnn-quick", "0")]


def test_the_readme_lists_the_commands_run_all_runs(capsys):
    """The README's list of what the MNIST study runs is what run_all runs: a step changed in one place only (as
    the merged step's epochs once were) fails here."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    dry_run = "python run_all.py --only mnist --data-dir ../shared/data --dry-run"
    listed = re.search(re.escape(dry_run) + r"`.*?```bash\n(.*?)```", readme, re.S).group(1)
    assert run_script(run_all, "--only", "mnist", "--data-dir", "../shared/data", "--dry-run") == 0
    assert capsys.readouterr().out == listed
