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
