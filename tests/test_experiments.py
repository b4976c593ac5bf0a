"""emnist_experiments.py and the pieces it is built from: the case-aware head, mnist-merged, augmentation, the
cosine schedule, label smoothing, averaging ensembles, and the sub-unit scores."""

import csv
import json

import keras
import numpy as np
import pytest

import emnist_experiments
import nielsen_cnn
import show_misclassified
import synthetic
import warmup_mnist_cnn
import warmup_mnist_mlp
from emnist_study import data, distortions, ensembles, evaluation, models, pipeline, recipes, subunits, training
from emnist_study.config import TrainConfig, member_seed
from emnist_study.errors import UserError
from emnist_study.run import Run
from emnist_study.subunits import resplit_callback
from helpers import ROOT, run_script

# Every network there is, by the name a recipe gives it: the step scripts' and the experiments'.
NETWORKS = {"mnist_mlp": warmup_mnist_mlp.build_mlp, "mnist_cnn": warmup_mnist_cnn.build_cnn,
            "keras2015_cnn": warmup_mnist_cnn.build_cnn_2015, "nielsen_dropout": nielsen_cnn.build_nielsen,
            "nielsen_dense100": lambda classes: nielsen_cnn.build_nielsen_dense100(classes, 0.1, 250_000),
            **models.NETWORKS}


def case_aware_cnn(num_classes: int):
    return subunits.with_case_aware_head(warmup_mnist_cnn.build_cnn(num_classes), 2)


def test_list_names_every_experiment(capsys):
    assert run_script(emnist_experiments, "--list") == 0
    out = capsys.readouterr().out
    # the steps the study promises, at least, and every one registered
    assert {"baseline", "vgg_bn", "augment", "plain_head", "label_smoothing", "case_aware", "ensemble"} <= set(
        recipes.EXPERIMENTS)
    for name in recipes.EXPERIMENTS:
        assert name in out
    # and where each network the recipes use is defined, a file that defines it
    assert set(emnist_experiments.NETWORK_DEFINED) == set(emnist_experiments.networks())
    for function, where in (text.split(" in ") for text in emnist_experiments.NETWORK_DEFINED.values()):
        assert f"\ndef {function}(" in (ROOT / where).read_text() and f"{function} in {where}" in out
    assert "my_experiment.py is one whole recipe" in out


def test_my_experiment_trains_its_recipe_as_a_run_named_after_the_script_and_joins_the_leaderboard(tmp_path):
    """The recipe written out in Keras: a copy of the script trains a run of its own, named after it, whose
    config.json records the layers on screen, and the experiments' leaderboard ranks it."""
    import runpy
    import shutil

    synthetic.write_emnist_files(tmp_path / "data", per_class_train=24, per_class_test=4)
    shutil.copy(ROOT / "my_experiment.py", tmp_path / "my_wider.py")
    argv = ["my_wider.py", "--quick", "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
            "--logs-dir", str(tmp_path / "logs"), "--results-dir", str(tmp_path / "results")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.argv", argv)
        with pytest.raises(SystemExit) as exit_:  # interrupts.run_main ends the script
            runpy.run_path(str(tmp_path / "my_wider.py"), run_name="__main__")
            raise SystemExit(0)
    assert not exit_.value.code
    run = tmp_path / "runs" / "my_wider-quick"
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["script"] == "my_wider.py" and record["network"]["layers"][0].startswith(
        "Conv2D(filters=32, kernel_size=(3, 3)")
    assert record["config"]["optimizer"]["name"] == "adamw"
    assert json.loads((run / "summary.json").read_text())["status"] == "complete"
    board = list(csv.DictReader(open(tmp_path / "results" / "leaderboard.csv")))
    assert [r["run"] for r in board] == ["my_wider-quick"]


def test_case_aware_quick_on_merged_digits(tmp_path, capsys):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=60)
    argv = ["--quick", "--dataset", "mnist-merged", "--merge", "0-9,1-8,2-7,3-6,4-5", "--exp", "plain_head",
            "case_aware", "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
            "--logs-dir", str(tmp_path / "logs"), "--results-dir", str(tmp_path / "results")]
    assert run_script(emnist_experiments, *argv) == 0
    run = tmp_path / "runs" / "merged_exp_case_aware-quick"
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["dataset"] == "mnist-merged:0-9,1-8,2-7,3-6,4-5" and config["model_options"] == {"subunits": 2}
    scores = json.loads((run / "subunits.json").read_text())
    assert 0 <= scores["purity"] <= 1 and 0 <= scores["nmi"] <= 1 and scores["images"] == 60
    assert (tmp_path / "results" / "merged_exp_case_aware-quick_subunits.png").stat().st_size > 5000
    board = list(csv.DictReader(open(tmp_path / "results" / "leaderboard.csv")))
    assert {r["run"] for r in board} == {"merged_exp_plain_head-quick", "merged_exp_case_aware-quick"}
    assert "val acc" in capsys.readouterr().out

    # show_misclassified redraws the sub-unit figure of a finished case-aware run, and only for such a run
    (tmp_path / "results" / "merged_exp_case_aware-quick_subunits.png").unlink()
    for name in ("merged_exp_case_aware-quick", "merged_exp_plain_head-quick"):
        assert run_script(show_misclassified, name, "--runs-dir", str(tmp_path / "runs"), "--no-show",
                          "--results-dir", str(tmp_path / "figures")) == 0
    assert [f.name for f in (tmp_path / "figures").glob("*_subunits.png")] == ["merged_exp_case_aware-quick_subunits.png"]


def test_bad_merge_is_a_one_line_error(capsys):
    assert run_script(emnist_experiments, "--exp", "baseline", "--dataset", "mnist-merged", "--merge", "0-1,2-3") == 1
    assert "must name each digit 0..9 exactly once" in capsys.readouterr().err


def test_one_run_name_for_several_experiments_is_refused(capsys):
    assert run_script(emnist_experiments, "--exp", "fast", "baseline", "--run-name", "mine", "--quick") == 1
    assert "--run-name names one run" in capsys.readouterr().err


def test_mnist_merged_keeps_the_hidden_digits(tmp_path):
    synthetic.write_mnist_npz(tmp_path, per_class_train=3)
    merged = data.load_split("mnist-merged:0-5,1-6,2-7,3-8,4-9", "train", tmp_path)
    assert merged.class_names == ("0/5", "1/6", "2/7", "3/8", "4/9")
    assert np.array_equal(merged.labels, merged.fine_labels % 5)
    split = data.load_train_val("mnist-merged", val_fraction=0.2, seed=1, data_dir=tmp_path)
    assert split.fine_val is not None and np.array_equal(split.fine_val % 5, split.y_val)


def test_case_aware_head_sums_its_subunits():
    layer = subunits.SumSubunits(2)
    probs = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)  # class 0: units 0, 1; class 1: units 2, 3
    assert np.allclose(np.asarray(layer(probs)), [[0.3, 0.7]])
    model = case_aware_cnn(5)
    assert model.get_layer(subunits.SUBUNITS_LAYER).units == 10 and model.output_shape == (None, 5)


def test_class_probabilities_from_the_subunits_are_the_models_own():
    model = case_aware_cnn(5)
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    from_units = subunits.class_probabilities(subunits.subunit_probabilities(model, images), 2)
    assert np.allclose(from_units, pipeline.predict(model, images), atol=1e-6)


def test_subunit_scores_on_known_assignments():
    hidden = np.array([0, 0, 5, 5, 1, 6])
    perfect = np.eye(4)[[0, 0, 1, 1, 2, 3]]  # each unit sees one digit
    assert subunits.recovery(perfect, hidden) == {"purity": 1.0, "nmi": 1.0, "units_used": 4, "images": 6}
    lumped = np.eye(4)[[0, 0, 0, 0, 2, 2]]  # the sub-units did not split the pairs
    assert subunits.recovery(lumped, hidden)["purity"] == pytest.approx(0.5)


def test_averaging_ensemble():
    a = np.array([[0.6, 0.4]], np.float32)
    b = np.array([[0.0, 1.0]], np.float32)
    assert np.allclose(np.asarray(ensembles.MeanProbabilities()([a, b])), [[0.3, 0.7]])


def test_cosine_schedule_warms_up_then_decays():
    optimizer = training.build_optimizer({"name": "adamw", "learning_rate": 0.01}, {"name": "cosine",
                                                                                   "warmup_fraction": 0.1}, 100)
    schedule = optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(0.0) and float(schedule(10)) == pytest.approx(0.01)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-6) and float(schedule(55)) == pytest.approx(0.005, abs=1e-4)


def test_label_smoothing_reaches_the_loss():
    config = TrainConfig(script="t", run_name="t", dataset="mnist", model="mnist_mlp", epochs=1, batch_size=8,
                         optimizer={"name": "adam", "learning_rate": 1e-3}, label_smoothing=0.1)
    model = training.compile_model(warmup_mnist_mlp.build_mlp(10), config, training_images=80)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)


def test_augmentation_keeps_shape_and_range_and_changes_images():
    images = np.zeros((16, 28, 28), np.uint8)
    images[:, 8:20, 12:16] = 255
    ds = pipeline.make_dataset(images, np.zeros(16, np.int64), 10, 16, shuffle=False, seed=1,
                               augment=recipes.HANDWRITING)
    batch, _ = next(iter(ds))
    batch = batch.numpy()
    assert batch.shape == (16, 28, 28, 1) and batch.min() >= 0 and batch.max() <= 1.0 + 1e-6
    assert not np.allclose(batch[..., 0], images / 255.0)


def distorted_batches(seed: int = 1, start_epoch: int = 0, count: int = 6) -> list:
    """The first `count` batches of a reshuffled, endlessly repeated pipeline with every distortion (3 per epoch)."""
    images = np.random.default_rng(0).integers(0, 256, (40, 28, 28)).astype(np.uint8)
    augment = {**recipes.HANDWRITING, "elastic": {"alpha": 34, "sigma": 4}}
    ds = pipeline.make_dataset(images, np.arange(40) % 10, 10, 16, shuffle=True, seed=seed, augment=augment,
                               repeat=True, start_epoch=start_epoch)
    return [batch[0].numpy() for batch in ds.take(count)]


def test_distortions_are_fixed_by_the_seed_and_a_resumed_pipeline_continues_them():
    first, again = distorted_batches(), distorted_batches()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(np.array_equal(a, b) for a, b in zip(first[3:], distorted_batches(start_epoch=1, count=3)))
    assert not np.array_equal(first[0], distorted_batches(seed=2, count=1)[0])


def test_each_distortion_draws_its_own_random_numbers():
    """Keras layers built with one seed draw the same numbers: each image's rotation would be its zoom."""
    rotation, _, zoom, _ = pipeline.augmenter(recipes.HANDWRITING)
    seeds, images = pipeline.BatchSeeds(1, 0), np.zeros((256, 28, 28, 1), np.float32)
    angles = np.ravel(rotation.get_random_transformation(images, seed=seeds)["angle"])
    zooms = np.ravel(zoom.get_random_transformation(images, seed=seeds)["height_zoom"])
    assert abs(np.corrcoef(angles, zooms)[0, 1]) < 0.3


def test_unknown_dataset():
    with pytest.raises(UserError, match="unknown dataset"):
        data.load_split("cifar", "train")


def test_an_experiments_own_batch_size_survives_unless_overridden():
    parser = emnist_experiments.build_parser()
    assert emnist_experiments.experiment_config("fast", parser.parse_args([])).batch_size == 256
    assert emnist_experiments.experiment_config("baseline", parser.parse_args([])).batch_size == 128
    assert emnist_experiments.experiment_config("fast", parser.parse_args(["--batch-size", "64"])).batch_size == 64


def test_subunits_switches_the_case_aware_head_on_or_off_for_any_experiment():
    parser = emnist_experiments.build_parser()

    def config(name, *argv):
        return emnist_experiments.experiment_config(name, parser.parse_args(["--dataset", "mnist", *argv]))

    assert config("fast").model_options.get("subunits", 1) == 1
    on = config("fast", "--subunits", "3")
    assert on.run_name == "mnist_exp_fast-subunits3" and on.model_options == {"width": 16, "bn_momentum": 0.9,
                                                                              "subunits": 3}
    assert config("case_aware", "--subunits", "2").run_name == "mnist_exp_case_aware"  # its own K: its own name
    off = config("case_aware", "--subunits", "1")
    assert off.run_name == "mnist_exp_case_aware-subunits1" and off.model_options == {"subunits": 1}
    assert config("fast", "--subunits", "3", "--quick").run_name == "mnist_exp_fast-subunits3-quick"
    assert config("fast", "--subunits", "3", "--run-name", "mine").run_name == "mine"


def test_within_class_information_is_log_k_for_a_clean_split_and_zero_when_one_unit_takes_all():
    # Two classes of two sub-units. Clean: each class's images go half to one unit, half to the other.
    clean = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], np.float32).reshape(-1, 2, 2)
    assert float(subunits.within_class_information(clean, clean.sum(-1))) == pytest.approx(np.log(2), abs=1e-4)
    # Class 0's images split every image 50/50, class 1's go all to one unit: no information in either.
    dead = np.array([[.5, .5, 0, 0], [.5, .5, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]], np.float32).reshape(-1, 2, 2)
    assert float(subunits.within_class_information(dead, dead.sum(-1))) == pytest.approx(0.0, abs=1e-4)


def test_the_diversity_loss_is_added_only_while_training():
    model = case_aware_cnn(5)
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")
    model(x, training=False)
    assert not model.losses
    model(x, training=True)
    assert len(model.losses) == 1 and float(model.losses[0]) <= 0.0


def test_precision_auto_follows_the_hardware(monkeypatch):
    from emnist_study import precision

    assert precision.resolve("float32") == "float32" and precision.resolve("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.resolve("auto") == "mixed_bfloat16"  # no GPU on the test machines: the CPU decides
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert precision.resolve("auto") == "float32"


def test_the_precision_policy_is_restored_after_building():
    import keras
    from emnist_study import precision

    with precision.policy("mixed_bfloat16"):
        model = models.vgg_bn(10, width=8)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert model.layers[0].compute_dtype == "bfloat16" and model.layers[-1].compute_dtype == "float32"


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_model_outputs_float32_probabilities_under_mixed_precision(name):
    from emnist_study import precision

    with precision.policy("mixed_bfloat16"):
        model = NETWORKS[name](10)
    probabilities = model(np.zeros((2, 28, 28, 1), "float32"), training=False)
    assert probabilities.dtype == "float32"
    np.testing.assert_allclose(np.asarray(probabilities).sum(axis=1), 1.0, rtol=1e-5)


def test_vgg_bn_batch_norm_momentum_is_an_option():
    import keras

    norms = [layer for layer in models.vgg_bn(10, width=8, bn_momentum=0.9).layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 7 and all(layer.momentum == 0.9 for layer in norms)


def test_a_repeated_dataset_reshuffles_each_pass():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1).repeat(28, 1).repeat(28, 2)
    ds = pipeline.make_dataset(images, np.arange(10) % 10, 10, 4, shuffle=True, seed=1, repeat=True)
    steps = pipeline.steps_per_epoch(10, 4)
    assert steps == 3
    batches = [b[0].numpy()[:, 0, 0, 0] for b in ds.take(2 * steps)]
    passes = [np.concatenate(batches[:steps]), np.concatenate(batches[steps:])]
    assert [len(p) for p in passes] == [10, 10]  # a short last batch keeps the passes aligned with epochs
    assert all(sorted(np.round(p * 255).astype(int)) == list(range(10)) for p in passes)
    assert not np.array_equal(passes[0], passes[1])


def test_bilinear_sample_moves_images_by_the_field():
    images = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    zero = np.zeros_like(images)
    assert np.allclose(distortions.bilinear_sample(images, zero, zero), images)
    down = np.asarray(distortions.bilinear_sample(images, zero + 1, zero))  # each pixel reads the one below it
    assert np.allclose(down[:, :-1], images[:, 1:]) and np.all(down[:, -1] == 0)  # blank from outside
    half_right = np.asarray(distortions.bilinear_sample(images, zero, zero + 0.5))
    assert np.allclose(half_right[:, :, :-1], (images[:, :, :-1] + images[:, :, 1:]) / 2)


def test_elastic_distortion_is_smooth_and_keeps_the_stroke():
    images = np.zeros((4, 28, 28, 1), np.float32)
    images[:, 6:22, 12:16] = 1.0
    noise = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 2)).astype(np.float32)
    assert np.allclose(distortions.elastic_distort(images, np.zeros_like(noise), 34, 4), images)  # no field
    distorted = np.asarray(distortions.elastic_distort(images, noise, 34, 4))
    assert distorted.shape == images.shape and distorted.min() >= 0 and distorted.max() <= 1 + 1e-6
    assert not np.allclose(distorted, images)
    # a smooth field bends the stroke, it does not scatter it: about as much ink, still in one place
    assert distorted.sum() == pytest.approx(images.sum(), rel=0.15)
    assert np.abs(distorted - images).mean() < 0.1


def test_pipeline_applies_the_elastic_distortion():
    images = np.zeros((16, 28, 28), np.uint8)
    images[:, 8:20, 12:16] = 255
    elastic_only = {"elastic": {"alpha": 34, "sigma": 4}}
    ds = pipeline.make_dataset(images, np.zeros(16, np.int64), 10, 16, shuffle=False, seed=1, augment=elastic_only)
    batch = next(iter(ds))[0].numpy()
    assert batch.shape == (16, 28, 28, 1) and not np.allclose(batch[..., 0], images / 255.0)
    assert not np.allclose(batch[0], batch[1])  # a field of its own for every image


def test_ensemble_members_take_their_variants(tmp_path):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=10)
    sgd = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}
    config = TrainConfig(script="t", run_name="mixed", dataset="mnist", model="mnist_mlp", epochs=1, batch_size=16,
                         optimizer={"name": "adam", "learning_rate": 1e-3}, val_fraction=0.2, ensemble=3,
                         ensemble_combine="average",
                         ensemble_variants=[{}, {"optimizer": sgd}], data_dir=[str(tmp_path / "data")],
                         runs_dir=str(tmp_path / "runs"), logs_dir=str(tmp_path / "logs"))
    training.train_ensemble(config, data.load_training_data(config),
                            lambda run, data: training.train(run, data, warmup_mnist_mlp.build_mlp))
    members = [json.loads((tmp_path / "runs" / "mixed" / "members" / f"member{i}" / "config.json").read_text())
               ["config"] for i in (1, 2, 3)]
    assert [m["optimizer"]["name"] for m in members] == ["adam", "sgd", "adam"]  # the variants, in turn
    assert [m["seed"] for m in members] == [1, 2, 3] and all(m["ensemble_variants"] == [] for m in members)


def test_random_affine_is_reproducible_and_distorts_each_image_its_own_way():
    images = np.zeros((4, 28, 28, 1), np.float32)
    images[:, 6:22, 12:16] = 1.0
    assert np.allclose(distortions.random_affine(images, {}, seed=1), images)  # no ranges: no distortion
    first = np.asarray(distortions.random_affine(images, recipes.HANDWRITING, seed=1))
    assert np.array_equal(first, np.asarray(distortions.random_affine(images, recipes.HANDWRITING, seed=1)))
    assert not np.allclose(first, np.asarray(distortions.random_affine(images, recipes.HANDWRITING, seed=2)))
    assert not np.allclose(first[0], first[1])  # the same image, distorted differently in each place of the batch
    assert first.min() >= 0 and first.max() <= 1 + 1e-6
    assert first.sum() == pytest.approx(images.sum(), rel=0.25)  # moved and softened, not lost
    # a pure shift by a fraction of the width moves the stroke sideways, at most that far
    shifted = np.asarray(distortions.random_affine(images, {"shift": 0.1}, seed=3))
    columns = np.flatnonzero(shifted[0, 14, :, 0] > 0.5)
    assert columns.size and abs(columns.mean() - 13.5) <= 0.1 * 28 + 0.5


def test_test_time_views_average_the_image_and_its_distorted_copies(tmp_path):
    keras_model = warmup_mnist_mlp.build_mlp(10)
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28)).astype(np.uint8)
    plain = pipeline.predict(keras_model, images)
    assert np.allclose(pipeline.predict(models.with_test_time_views(keras_model, recipes.HANDWRITING, 0), images),
                       plain, atol=1e-6)
    viewed = models.with_test_time_views(keras_model, recipes.HANDWRITING, 3)
    scaled = np.asarray(pipeline.scale_images(images))
    copies = [scaled] + [distortions.random_affine(scaled, recipes.HANDWRITING, seed=view) for view in (1, 2, 3)]
    expected = np.mean([keras_model.predict(copy, verbose=0) for copy in copies], axis=0)
    predicted = pipeline.predict(viewed, images)
    assert np.allclose(predicted, expected, atol=1e-5) and not np.allclose(predicted, plain, atol=1e-3)
    viewed.save(tmp_path / "viewed.keras")  # and the same predictions once saved and loaded
    assert np.allclose(pipeline.predict(models.load(tmp_path / "viewed.keras"), images), predicted, atol=1e-6)


def test_the_ensembles_of_seeds_1_2_and_3_share_no_member_seed():
    members = {seed: [member_seed(seed, i) for i in range(5)] for seed in (0, 1, 2, 3)}
    assert members[1] == [1, 2, 3, 4, 5]  # seed 1's members as they always were
    assert not set(members[1]) & set(members[2]) and not set(members[2]) & set(members[3])
    assert members[2] == [1002, 1003, 1004, 1005, 1006] and min(members[0]) == 0


@pytest.mark.parametrize("ensemble", [1, 2])
def test_a_run_with_test_time_views_saves_the_viewing_model_and_its_validation_accuracy(tmp_path, ensemble):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=10)
    config = TrainConfig(script="t", run_name="views", dataset="mnist", model="mnist_mlp", epochs=1, batch_size=16,
                         optimizer={"name": "adam", "learning_rate": 1e-3}, val_fraction=0.2, ensemble=ensemble,
                         ensemble_combine="average", augment={"rotation_degrees": 10, "shift": 0.08},
                         test_time_views=2, data_dir=[str(tmp_path / "data")], runs_dir=str(tmp_path / "runs"),
                         logs_dir=str(tmp_path / "logs"))
    dataset = data.load_training_data(config)
    if ensemble == 1:
        training.train(Run(config), dataset, warmup_mnist_mlp.build_mlp)
    else:
        training.train_ensemble(config, dataset,
                                lambda run, data: training.train(run, data, warmup_mnist_mlp.build_mlp))
    run = tmp_path / "runs" / "views"
    saved = models.load(run / "model.keras")
    assert sum(isinstance(layer, models.DistortedView) for layer in saved.layers) == 2
    summary = json.loads((run / "summary.json").read_text())
    accuracy = float((pipeline.predict(saved, dataset.x_val).argmax(axis=1) == dataset.y_val).mean())
    key = "val_accuracy_with_views" if ensemble == 1 else "final_val_accuracy"
    assert summary[key] == pytest.approx(accuracy)
    assert evaluation.run_facts(run)["val_accuracy"] == pytest.approx(accuracy)  # what the test report shows
    if ensemble > 1:  # the members themselves predict from the image alone; the views are the ensemble's
        member = json.loads((run / "members" / "member1" / "config.json").read_text())["config"]
        assert member["test_time_views"] == 0


def test_paired_copy_information_is_log_k_when_copies_agree_and_zero_when_they_do_not():
    one_hot = np.eye(2, dtype=np.float32)[[0, 0, 1, 1]]  # four images, split evenly between the two units
    first = one_hot[:, None, :]  # (image, class, unit): one class, its probability 1
    agreeing = np.concatenate([first, first])  # the second copies pick the same units
    class_probabilities = np.ones((8, 1), np.float32)
    assert float(subunits.paired_copy_information(agreeing, class_probabilities)) == pytest.approx(np.log(2), abs=1e-4)
    undecided = np.concatenate([first, np.full_like(first, 0.5)])  # the second copies pick no unit
    assert float(subunits.paired_copy_information(undecided, class_probabilities)) == pytest.approx(0.0, abs=1e-4)
    swapped = np.concatenate([first, first[::-1]])  # the copies disagree: as informative, but not the same unit
    assert float(subunits.paired_copy_information(swapped, class_probabilities)) == pytest.approx(np.log(2), abs=1e-4)


def test_the_pipeline_pairs_two_differently_distorted_copies_of_each_image():
    images = np.zeros((8, 28, 28), np.uint8)
    images[:, 8:20, 12:16] = 255
    labels = np.arange(8) % 3
    ds = pipeline.make_dataset(images, labels, 3, 8, shuffle=False, seed=1, augment=recipes.HANDWRITING,
                               paired_copies=True)
    batch, one_hot = (t.numpy() for t in next(iter(ds)))
    assert batch.shape == (16, 28, 28, 1)
    assert np.array_equal(one_hot.argmax(axis=1), np.concatenate([labels, labels]))  # copy i pairs with 8 + i
    assert not np.allclose(batch[:8], batch[8:])  # each copy distorted on its own
    with pytest.raises(ValueError, match="need distortions"):
        pipeline.make_dataset(images, labels, 3, 8, shuffle=False, paired_copies=True)


def test_with_paired_copies_the_head_adds_their_agreement_to_the_diversity_loss():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), size=8).astype(np.float32)  # 5 classes x 2
    grouped = probabilities.reshape(8, 5, 2)
    class_probabilities = grouped.sum(axis=-1)
    layer = subunits.SumSubunits(2, paired_copies=True)
    layer(probabilities, training=True)
    expected = -(float(subunits.within_class_information(grouped, class_probabilities))
                 + float(subunits.paired_copy_information(grouped, class_probabilities)))
    assert float(layer.losses[0]) == pytest.approx(expected, rel=1e-5)
    assert subunits.SumSubunits.from_config(layer.get_config()).paired_copies  # survives saving
    config = recipes.recipe("case_aware_paired", "t", "mnist")
    assert config.paired_copies and config.augment  # the recipe pairs its batches, and distorts the copies


def test_nearest_centroid_units_split_a_class_by_its_clusters_and_keep_its_probability():
    rng = np.random.default_rng(0)
    centres = np.array([[3.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    hidden = rng.integers(0, 2, 200)
    features = (centres[hidden] + rng.normal(0, 0.2, (200, 3))).astype(np.float32)
    weights, bias = np.array([0.5, 0.5, 1.0], np.float32), 0.3
    kernel, biases = subunits.nearest_centroid_units(features, features, weights, bias, 2, margin=4.0, seed=0)
    logits = features @ kernel + biases
    units = logits.argmax(axis=1)
    assert subunits.purity(units, hidden) == 1.0 and len(np.unique(units)) == 2
    at_centres = centres @ kernel + biases  # each centre picks its own unit, by about the margin at most
    # (the margin is set at the centroids k-means finds, a little off the true centres)
    gaps = np.abs(at_centres[:, 0] - at_centres[:, 1])
    assert np.all(gaps <= 4.0 * 1.01) and np.all(gaps > 1.0)
    # the class's total logit (log of the summed probabilities) moves by less than the margin
    total = np.log(np.exp(logits).sum(axis=1))
    assert np.all(np.abs(total - (features @ weights + bias)) < 4.0)


def half_images(count: int, top: bool, left: bool) -> np.ndarray:
    """A bright top (class 0) or bottom (class 1) half, its left or right side brighter still (the hidden shape)."""
    images = np.zeros((count, 28, 28), np.uint8)
    rows = slice(0, 14) if top else slice(14, 28)
    images[:, rows] = 120
    images[:, rows, slice(0, 14) if left else slice(14, 28)] = 255
    return images


def collapsed_head_model() -> keras.Model:
    """Pixels -> case-aware head over two classes (bright top, bright bottom). Class 1's units split its images by
    side, but class 0's second unit can never win: class 0 has collapsed into its first."""
    inputs = keras.Input((28, 28, 1))
    head = keras.layers.Dense(4, activation="softmax", name=subunits.SUBUNITS_LAYER)
    model = keras.Model(inputs, subunits.SumSubunits(2)(head(keras.layers.Flatten()(inputs))))
    region = np.zeros((4, 28, 28), np.float32)
    region[0:2, :14] = 1 / 392  # class 0's units: the top half's mean brightness
    region[2, 14:, :14] = region[3, 14:, 14:] = 1 / 196  # class 1's: each its own side of the bottom half
    head.set_weights([20 * region.reshape(4, -1).T, np.array([0, -20, 0, 0], np.float32)])
    return model


def test_a_collapsed_class_is_split_afresh_between_epochs_and_keeps_its_accuracy():
    images = np.concatenate([half_images(20, top, left) for top in (True, False) for left in (True, False)])
    labels, hidden = np.repeat([0, 1], 40), np.repeat([0, 1, 2, 3], 20)
    model = collapsed_head_model()
    before = subunits.subunit_probabilities(model, images)
    assert [s.tolist() for s in subunits.unit_shares(before, labels, 2)] == [[1.0, 0.0], [0.5, 0.5]]
    callback = subunits.ResplitIdleSubunits(images, labels, subunits=2, below=0.05, class_names=["top", "bottom"])
    callback.set_model(model)
    callback.params = {"epochs": 3}
    callback.on_epoch_end(2)  # after the last epoch nothing would train a new split: left alone
    assert callback.resplits == []
    callback.on_epoch_end(0)
    assert callback.resplits == [(1, 0)]  # class 0 only
    after = subunits.subunit_probabilities(model, images)
    assert (subunits.class_probabilities(after, 2).argmax(axis=1) == labels).all()
    assert subunits.purity(after.argmax(axis=1), hidden) == 1.0  # each hidden shape now has a unit of its own
    assert np.allclose(after[40:], before[40:], atol=1e-6)  # class 1's images: as before


def test_an_inaccurate_network_is_not_split():
    images = half_images(20, top=False, left=True)  # every image looks like class 1, yet half are labelled 0
    callback = subunits.ResplitIdleSubunits(images, np.repeat([0, 1], 10), subunits=2, below=0.05)
    callback.set_model(collapsed_head_model())
    callback.params = {"epochs": 3}
    callback.on_epoch_end(0)
    assert callback.resplits == []


def test_the_resplit_recipe_records_its_restarts(tmp_path, monkeypatch):
    """A run that restarts classes records each restart in its summary: here every class is taken for collapsed
    (a threshold of 100%, and no accuracy asked of the network first), so after epoch 1 of 2 every class is split
    afresh, and the summary must say so."""
    config = recipes.recipe("case_aware_resplit", "t", "mnist")
    assert config.paired_copies and config.resplit_idle_units > 0
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=10)
    config = TrainConfig(script="t", run_name="resplit", dataset="mnist", model="mnist_cnn", epochs=2, batch_size=16,
                         optimizer={"name": "adam", "learning_rate": 1e-3}, val_fraction=0.2,
                         model_options={"subunits": 2}, resplit_idle_units=1.0, data_dir=[str(tmp_path / "data")],
                         runs_dir=str(tmp_path / "runs"), logs_dir=str(tmp_path / "logs"))
    dataset = data.load_training_data(config)
    callback = resplit_callback(dataset, config, sample=30)
    assert len(callback.labels) == 30 and np.bincount(callback.labels).min() == 3  # stratified
    resplit = subunits.ResplitIdleSubunits
    monkeypatch.setattr(subunits, "ResplitIdleSubunits", lambda *a, **kw: resplit(*a, **kw, min_accuracy=0.0))
    training.train(Run(config), dataset, warmup_mnist_cnn.build_cnn)
    summary = json.loads((tmp_path / "runs" / "resplit" / "summary.json").read_text())
    assert summary["resplits"] == [{"after_epoch": 1, "class": c} for c in range(10)]
