"""The EMNIST path end to end on generated data in the official layout (images stored transposed, labels
1..26): the baseline CNN and MLP, their curves, their mistakes, and their TensorBoard logs."""

import json

import numpy as np
import pytest
from PIL import Image

import emnist_baseline
import plot_history
import show_misclassified
import synthetic
from emnist_study import data, figures
from helpers import event_steps, quick_args, run_script


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Both baseline models trained --quick once, shared by the tests below (they only read the runs)."""
    root = tmp_path_factory.mktemp("emnist")
    synthetic.write_emnist_files(root / "data", per_class_train=24, per_class_test=6)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root))
        mp.setenv("EMNIST_STUDY_NO_DOWNLOAD", "1")
        for model in ("cnn", "mlp"):
            assert run_script(emnist_baseline, *quick_args(root, root / "data", "--model", model)) == 0
    return root


def png_size(path):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_baseline_trains_both_models_on_letters(trained):
    for run, model in (("emnist_cnn-quick", "mnist_cnn"), ("emnist_mlp-quick", "mnist_mlp")):
        record = json.loads((trained / "runs" / run / "config.json").read_text())
        assert record["config"]["dataset"] == "emnist-letters" and record["config"]["model"] == model
        assert json.loads((trained / "runs" / run / "summary.json").read_text())["status"] == "complete"
        assert {"train/epoch_loss", "train/epoch_accuracy", "validation/epoch_loss",
                "validation/epoch_accuracy"} <= set(event_steps(trained / "logs" / run))
    cnn = json.loads((trained / "runs" / "emnist_cnn-quick" / "config.json").read_text())["config"]
    assert cnn["optimizer"]["learning_rate"] == 1.0 and cnn["epochs"] == 1


def test_plot_history_overlays_runs(trained, capsys):
    out = trained / "figs" / "history.png"
    assert run_script(plot_history, "--all", "--runs-dir", str(trained / "runs"), "--results-dir", str(out.parent),
                      "--out", out.name, "--no-show") == 0
    width, height = png_size(out)
    assert width >= 800 and height >= 300
    printed = capsys.readouterr().out
    assert "emnist_cnn-quick" in printed and "emnist_mlp-quick" in printed


def test_plot_history_figure_marks_best_epochs():
    rows = [{"epoch": e, "loss": 1 / e, "val_loss": 1 / e, "accuracy": a, "val_accuracy": a}
            for e, a in ((1, 0.5), (2, 0.9), (3, 0.8))]
    fig = figures.plot_histories({"a": rows, "b": rows})
    stars = [line for line in fig.axes[1].lines if line.get_marker() == "*"]
    assert len(stars) == 2 and all(star.get_xdata()[0] == 2 for star in stars)
    assert len(fig.axes[0].lines) == 2 * 2 + 2  # train + validation per run, and a star per run


def test_show_misclassified_saves_grid_and_confusion(trained, capsys):
    out_dir = trained / "figs"
    assert run_script(show_misclassified, "emnist_mlp-quick", "--runs-dir", str(trained / "runs"),
                      "--results-dir", str(out_dir), "--no-show") == 0
    for suffix, min_size in (("misclassified", 300), ("confusion", 500)):
        width, height = png_size(out_dir / f"emnist_mlp-quick_validation_{suffix}.png")
        assert width >= min_size and height >= 100
    printed = capsys.readouterr().out
    assert "validation images wrong" in printed and "Most confused pairs" in printed


def test_show_misclassified_on_the_test_split_only_when_asked(trained):
    out_dir = trained / "figs-test"
    assert run_script(show_misclassified, "emnist_cnn-quick", "--runs-dir", str(trained / "runs"),
                      "--split", "test", "--results-dir", str(out_dir), "--no-show") == 0
    assert (out_dir / "emnist_cnn-quick_test_confusion.png").is_file()


def test_letters_are_drawn_upright(tmp_path):
    """The glyph the official files store transposed reaches the mistakes grid upright, with letter names."""
    synthetic.write_emnist_files(tmp_path, per_class_train=2)
    train = data.load_emnist_letters(split="train", data_dir=tmp_path)
    fig = figures.plot_mistakes(train.images[:1], np.array([train.labels[0]]), np.array([(train.labels[0] + 1) % 26]),
                                np.array([0.9]), train.class_names, "t")
    drawn = np.asarray(fig.axes[0].images[0].get_array())
    assert np.array_equal(drawn, synthetic.glyph_L())
    assert "→" in fig.axes[0].get_title() and "/" in fig.axes[0].get_title()


def test_most_confused_pairs_counts_both_directions():
    true = np.array([0, 0, 0, 1, 1, 2, 2])
    pred = np.array([1, 1, 0, 0, 1, 2, 0])
    pairs = show_misclassified.most_confused_pairs(true, pred, 3, top=5)
    assert pairs[0][:5] == (3, 0, 1, 2, 1) and pairs[1][:3] == (1, 0, 2)
