"""The figures show what they claim, checked on inputs whose right picture is known: the confusion matrix counts
the given predictions, the mistakes grid labels each image with its own true and predicted class, and the sub-unit
figure puts each unit's chosen images in that unit's block of the class's row."""

import numpy as np

from emnist_study import figures, subunits


def test_confusion_matrix_counts_the_predictions():
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 1, 0])
    fig = figures.plot_confusion(true, predicted, ["a", "b", "c"], "t")
    drawn = np.asarray(fig.axes[0].images[0].get_array())
    assert drawn.tolist() == [[1, 2, 0], [0, 2, 0], [1, 0, 0]]  # rows: true class, columns: predicted
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c"]
    # every non-zero cell is labelled with its count; the zeros stay blank; a colour bar gives the scale
    written = sorted(t.get_text() for t in fig.axes[0].texts if t.get_text())
    assert written == ["1", "1", "2", "2"] and len(fig.axes) == 2


def drawn_extents(fig):
    """Each artist's place once drawn, in pixels: (renderer, figure bounding box)."""
    fig.canvas.draw()
    return fig.canvas.get_renderer(), fig.bbox


def overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_confusion_matrix_title_clears_its_colour_bar_whose_ticks_are_whole_counts():
    """A title longer than the matrix is wide (the report's are) must not run into the colour bar, and a scale
    of 0 to 3 images is ticked 0, 1, 2, 3, not 0.5, 1.0, 1.5."""
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 0, 1, 1, 0])
    title = "mnist_cnn-quick (the Keras CNN): 40 of 60 validation images wrong (33.33% right), a long title"
    fig = figures.plot_confusion(true, predicted, ["a", "b", "c"], title)
    renderer, figure_box = drawn_extents(fig)
    matrix, colour_bar = fig.axes
    (title_text,) = [t for t in [fig._suptitle, matrix.title] if t is not None and t.get_text() == title]
    title_box = title_text.get_window_extent(renderer)
    assert not overlap(title_box, colour_bar.get_tightbbox(renderer))  # the bar and its tick labels
    assert not overlap(title_box, matrix.get_window_extent(renderer))
    low, high = colour_bar.get_ylim()
    ticks = [t for t in colour_bar.get_yticks() if low <= t <= high]
    assert ticks == [0, 1, 2, 3]


def test_a_one_epoch_history_ticks_whole_epochs_and_its_legend_hides_no_point():
    """The issue's case: two 1-epoch runs whose points (train 0.20, validation 0.27 ...) sat under the legend."""
    histories = {"emnist_cnn-quick": [{"epoch": 1, "loss": 3.2, "accuracy": 0.20, "val_loss": 3.0,
                                       "val_accuracy": 0.27}],
                 "emnist_mlp-quick": [{"epoch": 1, "loss": 3.0, "accuracy": 0.15, "val_loss": 2.9,
                                       "val_accuracy": 0.22}]}
    fig = figures.plot_histories(histories)
    renderer, figure_box = drawn_extents(fig)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert [t for t in ax.get_xticks() if low <= t <= high] == [1]  # whole epochs only, not 0.5, 0.6, ...
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert not overlap(box, ax.get_window_extent(renderer))  # beside the plots, over no point
            assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1 + 1  # and on the figure, not cut off
    # one convention: epochs from 1, as history.csv counts; TensorBoard's steps, from 0, are named as such
    assert all(ax.get_xlabel() == "epoch, from 1 as in history.csv (TensorBoard's step 0 is epoch 1)"
               for ax in fig.axes if ax.lines)
    many = [{"epoch": e, "loss": 1 / e, "accuracy": 1 - 1 / e, "val_loss": 1 / e, "val_accuracy": 1 - 1 / e}
            for e in range(1, 13)]
    for ax in figures.plot_histories({"run": many}).axes:
        ticks = ax.get_xticks()
        assert all(float(t).is_integer() for t in ticks) and len(ticks) >= 3


def test_a_one_epoch_history_still_shows_its_points():
    rows = [{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85}]
    fig = figures.plot_histories({"run": rows})
    for ax in fig.axes:
        lines = [line for line in ax.get_lines() if line.get_label().startswith("run ") and "best" not in
                 line.get_label()]
        assert len(lines) == 2 and all(line.get_marker() == "o" for line in lines)  # a lone point, drawn
        low, high = ax.get_xlim()
        assert low < 1 < high and high - low >= 1  # the axis spans a whole epoch, not 0.945-1.050


def test_mistakes_grid_labels_each_image_with_its_own_classes():
    images = np.stack([np.full((28, 28), v, dtype=np.uint8) for v in (10, 200)])
    fig = figures.plot_mistakes(images, np.array([0, 2]), np.array([1, 0]), np.array([0.9, 0.55]),
                                ["a", "b", "c"], "t", columns=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["a → b\n90% sure", "c → a\n55% sure"]
    assert "true class → predicted class" in fig.get_suptitle()  # the arrow read, where it is shown
    assert [int(np.asarray(ax.images[0].get_array())[0, 0]) for ax in shown] == [10, 200]


def test_subunit_figure_puts_each_units_images_in_its_own_block():
    # Two classes, two sub-units each; image i is filled with the value i, so the drawn pixel names the image.
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    images = np.stack([np.full((28, 28), i, dtype=np.uint8) for i in range(8)])
    unit_probs = np.zeros((8, 4))
    unit_probs[[0, 1, 2, 3], [0, 1, 0, 1]] = [0.9, 0.8, 0.7, 0.6]  # class 0: images 0, 2 on unit 1; 1, 3 on unit 2
    unit_probs[[4, 5, 6, 7], [3, 3, 2, 2]] = [0.9, 0.8, 0.7, 0.6]  # class 1: images 6, 7 on unit 1; 4, 5 on unit 2
    chosen = subunits.most_confident_images(unit_probs, labels, subunits=2, per_unit=2)
    fig = figures.plot_subunits(images, chosen, ["a", "b"], subunits=2, per_unit=2, title="t")
    assert len(fig.axes) == 2  # a block per sub-unit: a row per class, the unit's images side by side
    step = 28 + figures.TILE_GAP

    def drawn(ax):  # the value of each tile, row by row: the index of the image drawn there
        canvas = np.asarray(ax.images[0].get_array())
        return [[int(canvas[r * step, k * step]) for k in range(2)] for r in range(2)]

    assert drawn(fig.axes[0]) == [[0, 2], [6, 7]] and drawn(fig.axes[1]) == [[1, 3], [4, 5]]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]


def test_subunit_figure_has_no_empty_columns_when_a_class_has_few_images():
    """A quick run holds out two or three validation images of a letter: the blocks are as wide as the images
    there are (not 8 slots, 6 of them blank), and the blocks sit a tile or less apart."""
    labels = np.repeat(np.arange(26), 2)
    images = np.stack([np.full((28, 28), 1 + i, dtype=np.uint8) for i in range(len(labels))])
    unit_probs = np.zeros((len(labels), 52))
    unit_probs[np.arange(len(labels)), 2 * labels] = 1.0  # collapsed: unit 1 takes every image of every class
    chosen = subunits.most_confident_images(unit_probs, labels, subunits=2, per_unit=8)
    title = "exp_case_aware_resplit-quick: the validation images each sub-unit is most sure of"
    fig = figures.plot_subunits(images, chosen, [chr(65 + c) for c in range(26)], subunits=2, per_unit=8, title=title)
    renderer, _ = drawn_extents(fig)
    step = 28 + figures.TILE_GAP
    blocks = []
    for ax in fig.axes:
        canvas = np.asarray(ax.images[0].get_array(), dtype=float)
        assert canvas.shape[1] == 2 * step - figures.TILE_GAP  # two tiles wide: the images there are
        tiles = [canvas[:, k * step:k * step + 28] for k in range(2)]
        assert all(not np.isnan(tile).all() for tile in tiles)  # no column of tiles left blank
        blocks.append(ax.get_window_extent(renderer))
    tile_width = blocks[0].width / 2
    assert blocks[1].x0 - blocks[0].x1 < tile_width  # no wide gap between the sub-units' blocks


def unfinished_run(runs_dir, name: str, script: str, data_dir, histories: dict | None = None, **settings):
    """A run folder as training leaves it before its first epoch ends (config.json, no history.csv); with
    `histories`, an ensemble's members under members/, each with its history.csv rows."""
    import json
    from dataclasses import asdict

    from emnist_study.config import TrainConfig

    run = runs_dir / name
    run.mkdir(parents=True)
    config = TrainConfig(script=script, run_name=name, dataset="emnist-letters", model="m", epochs=1, batch_size=32,
                         data_dir=[str(data_dir)], runs_dir=str(runs_dir), **settings)
    (run / "config.json").write_text(json.dumps({"config": asdict(config)}))
    for member, rows in (histories or {}).items():
        (run / "members" / member).mkdir(parents=True)
        lines = ["epoch,loss,accuracy,val_loss,val_accuracy"] + [f"{e},1.0,0.5,1.0,0.5" for e in range(1, rows + 1)]
        (run / "members" / member / "history.csv").write_text("\n".join(lines) + "\n")
    return run


def test_plot_history_says_what_a_run_without_epochs_is_and_the_command_that_continues_it(tmp_path):
    """A run stopped before its first epoch ended is not an ensemble: it has no epoch yet, and the study's own
    command with --resume continues it; an ensemble's histories are its members', which can be plotted."""
    import plot_history
    from helpers import run_script_capturing

    runs, data = tmp_path / "runs", tmp_path / "letters data"
    unfinished_run(runs, "emnist_cnn-quick", "emnist_baseline.py", data, quick=True)
    unfinished_run(runs, "exp_case_aware_resplit-quick", "emnist_experiments.py", data, quick=True)
    unfinished_run(runs, "mine", "emnist_experiments.py", data)
    unfinished_run(runs, "exp_ensemble_tta-quick", "emnist_experiments.py", data, {"member1": 2, "member2": 0},
                   quick=True, ensemble=2)
    unfinished_run(runs, "exp_ensemble_tta", "emnist_experiments.py", data, {"member1": 0}, ensemble=5)

    def message(name):
        code, err = run_script_capturing(plot_history, name, "--runs-dir", str(runs), "--no-show",
                                         "--results-dir", str(tmp_path / "results"))
        assert code == 1 and err.count("\n") == 1, err
        return err

    where = f"--data-dir '{data}' --runs-dir {runs}"
    cnn = message("emnist_cnn-quick")
    assert "has no finished epoch yet" in cnn and "ensemble" not in cnn and "member" not in cnn
    assert f"python emnist_baseline.py --model cnn --quick {where} --resume\n" in cnn
    # the study trains the case-aware recipe for 3 epochs, a quick run for one: the command must not ask for 3
    assert (f"python emnist_experiments.py --exp case_aware_resplit --quick {where} --resume\n"
            in message("exp_case_aware_resplit-quick"))
    assert f"python emnist_experiments.py --run-name mine {where} --resume (with the other flags" in message("mine")
    ensemble = message("exp_ensemble_tta-quick")
    assert "is an ensemble" in ensemble and "--resume" not in ensemble
    assert f"python plot_history.py {runs / 'exp_ensemble_tta-quick' / 'members' / 'member1'}\n" in ensemble
    waiting = message("exp_ensemble_tta")
    assert "none of whose members has finished an epoch" in waiting
    assert f"python emnist_experiments.py --exp ensemble_tta {where} --resume\n" in waiting
    member = message(str(runs / "exp_ensemble_tta" / "members" / "member1"))
    assert "no finished epoch yet" in member and "python emnist_experiments.py --exp ensemble_tta" in member

    code, err = run_script_capturing(plot_history, "--all", "--runs-dir", str(runs), "--no-show")
    assert code == 1 and "no run under" in err and "--resume" in err and "members" in err


def test_a_run_name_that_is_no_run_is_answered_with_the_runs_nearest_it(tmp_path):
    """A typo, or a name without the "-quick" that --quick gives, names the runs nearest it, in every script that
    reads runs; where none is near, a few of the runs there are."""
    import plot_history
    import show_misclassified
    from helpers import run_script_capturing

    runs = tmp_path / "runs"
    for name in ("mnist_cnn-quick", "mnist_mlp-quick", "emnist_cnn-quick"):
        (runs / name).mkdir(parents=True)
    code, err = run_script_capturing(plot_history, "mnist_cnn-quik", "--runs-dir", str(runs), "--no-show")
    assert code == 1 and f"no run {runs / 'mnist_cnn-quik'}: did you mean mnist_cnn-quick" in err, err
    code, err = run_script_capturing(show_misclassified, "mnist_cnn", "--runs-dir", str(runs), "--no-show")
    assert code == 1 and "did you mean mnist_cnn-quick" in err and err.count("\n") == 1, err
    code, err = run_script_capturing(plot_history, "nielsen", "--runs-dir", str(runs), "--no-show")
    assert code == 1 and f"the runs under {runs} are emnist_cnn-quick, mnist_cnn-quick, mnist_mlp-quick" in err, err


def test_show_misclassified_puts_the_subunit_figure_in_tensorboards_images(tmp_path, capsys):
    """A finished case-aware run: its sub-unit figure goes to the run's Images tab beside the other two."""
    import json
    from dataclasses import asdict

    import keras
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import show_misclassified
    import synthetic
    from emnist_study.config import TrainConfig
    from helpers import run_script

    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=6, per_class_test=2)
    inputs = keras.Input((28, 28, 1))
    head = keras.layers.Dense(10, activation="softmax", name=subunits.SUBUNITS_LAYER)
    model = keras.Model(inputs, subunits.SumSubunits(2)(head(keras.layers.Flatten()(inputs))))
    name = "merged_exp_case_aware"
    run = synthetic.write_finished_run(tmp_path / "runs", name, "mnist-merged", model, "emnist_experiments.py")
    config = TrainConfig(script="emnist_experiments.py", run_name=name, dataset="mnist-merged:0-5,1-6,2-7,3-8,4-9",
                         model="m", epochs=1, batch_size=32, val_fraction=0.5, data_dir=[str(tmp_path / "data")],
                         model_options={"subunits": 2}, runs_dir=str(tmp_path / "runs"),
                         logs_dir=str(tmp_path / "logs"))
    (run / "config.json").write_text(json.dumps({"config": asdict(config)}))
    (tmp_path / "logs" / name).mkdir(parents=True)
    assert run_script(show_misclassified, name, "--runs-dir", str(tmp_path / "runs"), "--no-show",
                      "--results-dir", str(tmp_path / "results")) == 0
    assert "All three are in TensorBoard too" in capsys.readouterr().out
    events = EventAccumulator(str(tmp_path / "logs" / name), size_guidance={"tensors": 0})
    events.Reload()
    assert {"validation/misclassified", "validation/confusion", "validation/subunits"} <= set(events.Tags()["tensors"])
    assert events.SummaryMetadata("validation/subunits").plugin_data.plugin_name == "images"


def test_plot_history_on_a_hand_edited_history_says_what_is_wrong_in_one_line(tmp_path, capsys):
    """A missing column is named (not a KeyError traceback); a header-only history is not called missing; a
    byte-order mark is no matter; a repeated row is one epoch, not an extra one."""
    import json

    import plot_history
    from helpers import run_script_capturing

    runs = tmp_path / "runs"
    run = unfinished_run(runs, "edited", "emnist_baseline.py", tmp_path / "data")
    (run / "summary.json").write_text(json.dumps({"status": "complete"}))
    header, rows = "epoch,loss,accuracy,val_loss,val_accuracy", ["1,1.0,0.5,1.1,0.4", "2,0.8,0.6,0.9,0.7"]

    def plot(text: bytes):
        (run / "history.csv").write_bytes(text)
        capsys.readouterr()
        code, err = run_script_capturing(plot_history, "edited", "--runs-dir", str(runs), "--no-show",
                                         "--results-dir", str(tmp_path / "results"))
        return code, err, capsys.readouterr().out

    code, err, _ = plot("\n".join([header.replace(",val_loss", "")] + [r.rsplit(",", 2)[0] + ",0.4" for r in rows])
                        .encode())
    assert code == 1 and err.count("\n") == 1 and "no val_loss column" in err and "put back the run's own copy" in err
    code, err, _ = plot((header + "\n").encode())
    assert code == 1 and "its history.csv holds no epoch" in err and "has no history.csv" not in err
    code, err, out = plot(("\ufeff" + "\n".join([header, rows[0], rows[1], rows[1]]) + "\n").encode())
    assert code == 0 and "edited: 2 epochs, best validation accuracy 0.7000 at epoch 2" in out, err
