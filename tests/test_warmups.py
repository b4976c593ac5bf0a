"""The warm-up scripts' --quick runs on generated MNIST, Nielsen's protocol pieces, and the minimal evaluation."""

import csv
import json

import numpy as np
import pytest

import evaluate_test
import nielsen_cnn
import warmup_mnist_cnn
import warmup_mnist_mlp
from emnist_study import data, ensembles, evaluation, models
import keras

from helpers import quick_args, run_script, run_script_capturing


def read_config(run_dir):
    return json.loads((run_dir / "config.json").read_text())["config"]


def test_mlp_quick(tmp_path, mnist_dir):
    assert run_script(warmup_mnist_mlp, *quick_args(tmp_path, mnist_dir)) == 0
    run = tmp_path / "runs" / "mnist_mlp-quick"
    config = read_config(run)
    assert config["model"] == "mnist_mlp" and config["batch_size"] == 128
    assert config["optimizer"] == {"name": "rmsprop", "learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-07}
    assert json.loads((run / "summary.json").read_text())["status"] == "complete"


def test_the_2015_keras_cnn_is_the_network_the_claim_was_written_for(tmp_path, mnist_dir):
    assert run_script(warmup_mnist_cnn, *quick_args(tmp_path, mnist_dir, "--variant", "keras2015")) == 0
    config = read_config(tmp_path / "runs" / "mnist_cnn_keras2015-quick")
    assert config["model"] == "keras2015_cnn" and config["optimizer"]["epsilon"] == 1e-6
    assert config["optimizer"]["learning_rate"] == 1.0 and config["optimizer"]["rho"] == 0.95
    model = warmup_mnist_cnn.build_cnn_2015(10)
    convs = [layer for layer in model.layers if layer.name.startswith("conv2d")]
    assert [c.output.shape[1:] for c in convs] == [(30, 30, 32), (28, 28, 32)]  # 'full' padding first, 32/32
    assert model.count_params() == 813_802
    # 2015's Glorot: U(+-sqrt(2 / (fan_in + fan_out))), a convolution's fan_out counting filters alone
    for layer, fan_in, fan_out in ((convs[0], 9, 32), (convs[1], 288, 32), (model.layers[-3], 6272, 128)):
        kernel = layer.get_weights()[0]
        limit = (2 / (fan_in + fan_out)) ** 0.5
        assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
        assert not layer.get_weights()[1].any()  # biases zero


def test_adadelta_epsilon_alone_can_change(tmp_path, mnist_dir, capsys, monkeypatch):
    args = quick_args(tmp_path, mnist_dir, "--epsilon", "1e-6", "--run-name", "e")
    assert run_script(warmup_mnist_cnn, *args) == 0
    config = read_config(tmp_path / "runs" / "e")
    assert config["model"] == "mnist_cnn" and config["optimizer"]["epsilon"] == 1e-6
    # The complete run is compared with the network the script builds now, as run_all.py's --resume asks: the same
    # network is complete; Dense(128) edited to Dense(64), or another learning rate in compile, is refused in one
    # line, and the trained run is left as it was.
    capsys.readouterr()
    assert run_script(warmup_mnist_cnn, *args, "--resume") == 0
    assert "already complete" in capsys.readouterr().out
    summary = (tmp_path / "runs" / "e" / "summary.json").read_text()
    original = warmup_mnist_cnn.build_cnn

    def edited_cnn(num_classes):  # the script with Dense(128) changed to Dense(64)
        config = original(num_classes).get_config()
        for layer in config["layers"]:
            layer.pop("build_config", None)  # the shapes the old layers were built for
            if layer["config"].get("units") == 128:
                layer["config"]["units"] = 64
        return keras.Sequential.from_config(config)

    monkeypatch.setattr(warmup_mnist_cnn, "build_cnn", edited_cnn)
    code, err = run_script_capturing(warmup_mnist_cnn, *args, "--resume")
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "differs from the one it trained" in err and "units=128" in err and "units=64" in err
    assert "--overwrite" in err and "--run-name" in err
    monkeypatch.setattr(warmup_mnist_cnn, "build_cnn", original)
    compile_cnn = warmup_mnist_cnn.compile_cnn

    def faster_adadelta(model, epsilon):
        compile_cnn(model, epsilon)
        model.optimizer.learning_rate = 0.5
        return model

    monkeypatch.setattr(warmup_mnist_cnn, "compile_cnn", faster_adadelta)
    code, err = run_script_capturing(warmup_mnist_cnn, *args, "--resume")
    assert code != 0 and "optimizer" in err and "'learning_rate': 0.5" in err
    assert (tmp_path / "runs" / "e" / "summary.json").read_text() == summary


def test_nielsen_quick_follows_the_protocol(tmp_path, mnist_dir, capsys):
    assert run_script(nielsen_cnn, *quick_args(tmp_path, mnist_dir, "--batch-size", "50", "--epochs", "2")) == 0
    out = capsys.readouterr().out
    assert "Training Nielsen's CNN (" in out  # no "the Nielsen's"
    # the wait after the last epoch says what it is
    assert out.index("Training done; saving ") < out.index("Done: best validation accuracy")
    run = tmp_path / "runs" / "nielsen_dropout-quick"
    config = read_config(run)
    assert config["optimizer"] == {"name": "sgd", "learning_rate": pytest.approx(0.15)}  # 0.03 * 50 / 10
    assert config["validation"] == "last" and config["expand_shifts"] and config["select"] == "best_val"
    assert config["val_fraction"] == pytest.approx(1 / 6)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model_keras_holds"] == "best_val"
    # model.keras holds the best-validation weights, not the last epoch's
    best = nielsen_cnn.build_nielsen(10)
    best.load_weights(run / "best.weights.h5")
    saved = models.load(run / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(best.get_weights(), saved.get_weights()))


def test_nielsen_dense100_variant_has_l2(tmp_path, mnist_dir):
    assert run_script(nielsen_cnn, *quick_args(tmp_path, mnist_dir, "--variant", "dense100")) == 0
    config = read_config(tmp_path / "runs" / "nielsen_dense100-quick")
    assert config["model"] == "nielsen_dense100" and config["model_options"] == {"l2_lambda": 0.1}
    model = nielsen_cnn.build_nielsen_dense100(10, l2_lambda=0.1, training_images=250_000)
    assert model.layers[-1].kernel_regularizer.l2 == pytest.approx(0.5 * 0.1 * 10 / 250_000)


def test_nielsen_ensemble_saves_one_voting_run(tmp_path, mnist_dir, capsys):
    assert run_script(nielsen_cnn, *quick_args(tmp_path, mnist_dir, "--ensemble", "2", "--batch-size", "50")) == 0
    run = tmp_path / "runs" / "nielsen_dropout-ensemble2-quick"
    assert read_config(run / "members" / "member2")["seed"] == 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["members"] == 2
    vote = models.load(run / "model.keras")
    shares = vote.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0)
    assert shares.shape == (3, 10) and np.allclose(shares.sum(axis=1), 1, atol=1e-5)
    capsys.readouterr()
    assert run_script(nielsen_cnn, *quick_args(tmp_path, mnist_dir, "--ensemble", "2", "--batch-size", "50",
                                               "--resume")) == 0
    assert "already complete" in capsys.readouterr().out


def test_majority_vote_counts_votes_and_breaks_ties_by_confidence():
    a = np.array([[0.6, 0.4, 0.0], [0.9, 0.1, 0.0]], np.float32)
    b = np.array([[0.2, 0.8, 0.0], [0.4, 0.6, 0.0]], np.float32)
    c = np.array([[0.1, 0.9, 0.0], [0.0, 0.0, 1.0]], np.float32)
    three = np.asarray(ensembles.MajorityVote()([a, b, c]))
    assert three.argmax(axis=1).tolist() == [1, 0]  # row 2: one vote each, class 0 has the highest mean prob
    two = np.asarray(ensembles.MajorityVote()([a, b]))
    assert two.argmax(axis=1).tolist() == [1, 0]  # row 1 tie 0-vs-1: mean prob 0.6 beats 0.4


def test_shift_expansion_moves_one_pixel_each_way_without_wrapping():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 5, 7] = 200
    image[0, 0, 27] = 100  # on the edge: shifting up or right must drop it, not wrap it round
    expanded, labels = data.expand_with_shifts(image, np.array([3]))
    assert expanded.shape == (5, 28, 28) and labels.tolist() == [3] * 5
    positions = [tuple(np.argwhere(e == 200)[0]) for e in expanded]
    assert positions == [(5, 7), (4, 7), (6, 7), (5, 6), (5, 8)]
    assert [int((e == 100).sum()) for e in expanded] == [1, 0, 1, 1, 0]


def test_nielsen_validation_is_the_last_ten_thousand():
    keep, held_out = data.last_split(60_000, 10_000 / 60_000)
    assert keep[-1] == 49_999 and held_out[0] == 50_000 and len(held_out) == 10_000


def test_evaluate_test_scores_runs_on_their_test_set(tmp_path, mnist_dir, monkeypatch):
    run_script(warmup_mnist_mlp, *quick_args(tmp_path, mnist_dir))
    out = tmp_path / "results"
    args = ["--runs-dir", str(tmp_path / "runs"), "--data-dir", str(mnist_dir), "--results-dir", str(out)]
    assert run_script(evaluate_test, *args) == 0
    rows = list(csv.DictReader(open(out / "test_results.csv")))
    assert [r["run"] for r in rows] == ["mnist_mlp-quick"]
    test = data.load_test_set("mnist", mnist_dir)
    model = models.load(tmp_path / "runs" / "mnist_mlp-quick" / "model.keras")
    predicted = model.predict(test.images[..., None] / 255.0, verbose=0).argmax(axis=1)
    assert int(rows[0]["test_errors"]) == int((predicted != test.labels).sum())
    assert float(rows[0]["test_accuracy"]) == pytest.approx((predicted == test.labels).mean(), abs=1e-4)
    assert (out / "RESULTS.md").is_file() and (out / "test_accuracy.png").is_file()

    # Again: the cached predictions answer, the model is not even loaded.
    monkeypatch.setattr(evaluation.models, "load", lambda path: pytest.fail("evaluated twice"))
    assert run_script(evaluate_test, *args) == 0
    assert list(csv.DictReader(open(out / "test_results.csv"))) == rows

    # A retrained model is a new file: it is evaluated anew.
    monkeypatch.undo()
    run_script(warmup_mnist_mlp, *quick_args(tmp_path, mnist_dir, "--overwrite", "--seed", "5"))
    loaded = []
    real_load = models.load
    monkeypatch.setattr(evaluation.models, "load", lambda path: loaded.append(path) or real_load(path))
    assert run_script(evaluate_test, *args) == 0
    assert len(loaded) == 1


def test_evaluate_test_with_no_runs(tmp_path, capsys):
    assert run_script(evaluate_test, "--runs-dir", str(tmp_path / "none")) == 1
    assert "train something first" in capsys.readouterr().err


def test_the_warm_up_recipes_are_written_once_and_the_experiments_baseline_names_the_same_settings():
    """The letters baseline compiles with the warm-ups' own functions, and what warmup_mnist_cnn.py compiles is
    recipes.KERAS2_ADADELTA, the experiments' `baseline` recipe, setting for setting."""
    import emnist_baseline
    from emnist_study import recipes
    from emnist_study.recording import optimizer_settings

    assert emnist_baseline.compile_cnn is warmup_mnist_cnn.compile_cnn
    assert emnist_baseline.compile_mlp is warmup_mnist_mlp.compile_mlp
    compiled = warmup_mnist_cnn.compile_cnn(warmup_mnist_cnn.build_cnn(10))
    assert optimizer_settings(compiled.optimizer) == recipes.KERAS2_ADADELTA == recipes.BASE.optimizer
    letters = emnist_baseline.build_and_compile("cnn", 26)
    assert optimizer_settings(letters.optimizer) == recipes.KERAS2_ADADELTA
    mlp = emnist_baseline.build_and_compile("mlp", 26)
    assert optimizer_settings(mlp.optimizer) == {"name": "rmsprop", "learning_rate": 0.001, "rho": 0.9,
                                                 "epsilon": 1e-7}
