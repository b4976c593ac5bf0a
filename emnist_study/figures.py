"""The figures: training curves of runs, misclassified images, and confusion matrices. Each returns the
matplotlib Figure it drew, and `save` writes it as a PNG (and shows it when a screen is available)."""

from pathlib import Path

import matplotlib
import matplotlib.ticker
import matplotlib.pyplot as plt  # with no screen, matplotlib picks its file-only Agg backend by itself
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay

from .run_folder import atomic_write


def save(fig: plt.Figure, path, show: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:  # a full disk leaves the figure before, not half a new one
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    if show and matplotlib.get_backend().lower() != "agg":  # a screen is available
        plt.show()
    plt.close(fig)
    return path


# Epochs count from 1 here as in history.csv; TensorBoard's keras.callbacks.TensorBoard counts Keras's way, from 0.
EPOCH_AXIS = "epoch, from 1 as in history.csv (TensorBoard's step 0 is epoch 1)"


def plot_histories(histories: dict[str, list[dict]]) -> plt.Figure:
    """Loss and accuracy per epoch for each run: training dashed, validation solid, one colour per run, and a
    star on each run's best validation epoch. Epochs are marked with dots where there are few, so that a run of
    one or two epochs still shows its points; the x axis spans and ticks whole epochs only, and the legend sits
    beside the plots, where it can hide no point."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    last_epoch = max(r["epoch"] for rows in histories.values() for r in rows)
    dots = dict(marker="o", markersize=4) if last_epoch <= 30 else {}
    for i, (name, rows) in enumerate(histories.items()):
        colour = colours[i % len(colours)]
        epochs = [r["epoch"] for r in rows]
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(epochs, [r[metric] for r in rows], "--", color=colour, alpha=0.7, label=f"{name} train", **dots)
            ax.plot(epochs, [r[f"val_{metric}"] for r in rows], "-", color=colour, label=f"{name} validation",
                    **dots)
        best = max(rows, key=lambda r: r["val_accuracy"])
        ax_acc.plot(best["epoch"], best["val_accuracy"], "*", color=colour, markersize=14,
                    markeredgecolor="black", label=f"{name} best: {best['val_accuracy']:.4f} @ {best['epoch']}")
        ax_loss.plot(best["epoch"], best["val_loss"], "*", color=colour, markersize=14, markeredgecolor="black")
    for ax, title in ((ax_loss, "Loss"), (ax_acc, "Accuracy")):
        ax.set_title(title)
        ax.set_xlabel(EPOCH_AXIS)
        ax.set_xlim(0.5, last_epoch + 0.5)
        # min_n_ticks=1: without it, a 1-epoch axis falls back to ticks at 0.5, 0.6, ...
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    return fig


def plot_mistakes(images: np.ndarray, true: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
                  class_names, title: str, columns: int = 8) -> plt.Figure:
    """A grid of misclassified images, shown as given (the loaders give them upright), most confident first, each
    titled "true → predicted", as the figure's title says."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, t, p, c in zip(axes.flat, images, true, predicted, confidence):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"{class_names[t]} → {class_names[p]}\n{c:.0%} sure", fontsize=8)
    fig.suptitle(f"{title}\n(each image: true class → predicted class, and how sure)", fontsize=10)
    return fig


def plot_confusion(true: np.ndarray, predicted: np.ndarray, class_names, title: str) -> plt.Figure:
    """Rows: the true class; columns: the predicted one. Every non-zero cell carries its count (the diagonal's
    hundreds would otherwise drown a handful of mistakes in pale blue), with a colour bar for the scale, ticked in
    whole images. The title is the figure's, above matrix and colour bar both, so it cannot run into either."""
    size = 4 + 0.32 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
    display = ConfusionMatrixDisplay.from_predictions(true, predicted, labels=range(len(class_names)),
                                                      display_labels=class_names, ax=ax, colorbar=True,
                                                      cmap="Blues", text_kw={"fontsize": 7})
    for text in display.text_.flat:
        if text.get_text() == "0":
            text.set_text("")
    display.im_.colorbar.locator = matplotlib.ticker.MaxNLocator(integer=True)  # counts: 0, 1, 2, never 0.5
    display.im_.colorbar.set_label("images")
    ax.tick_params(axis="x", labelrotation=90)
    fig.suptitle(title, fontsize=10, wrap=True)
    return fig


TILE_GAP = 2  # blank pixels between the images of a mosaic


def mosaic(images: np.ndarray, rows: list, per_row: int) -> np.ndarray:
    """The images of each row side by side, rows stacked, TILE_GAP blank (NaN) pixels apart: one array to draw
    with a single imshow, where hundreds of small axes would take seconds."""
    step = 28 + TILE_GAP
    canvas = np.full((len(rows) * step - TILE_GAP, per_row * step - TILE_GAP), np.nan)
    for r, indices in enumerate(rows):
        for k, index in enumerate(indices[:per_row]):
            canvas[r * step:r * step + 28, k * step:k * step + 28] = images[index]
    return canvas


def plot_subunits(images: np.ndarray, chosen: dict, class_names, subunits: int, per_unit: int,
                  title: str) -> plt.Figure:
    """One row per class; for each sub-unit of the class, a block of the images it is most sure of. If the head
    split `A` from `a`, one block of a row shows capitals and the other small letters. A block is as wide as its
    fullest row (at most `per_unit` images): a quick run's few validation images per class leave no empty columns."""
    num_classes = len(class_names)
    columns = max(1, min(per_unit, max((len(v) for v in chosen.values()), default=1)))
    fig, axes = plt.subplots(1, subunits, figsize=(subunits * columns * 0.55 + 1.2, num_classes * 0.55 + 0.8),
                             squeeze=False)
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    step = 28 + TILE_GAP
    for j, ax in enumerate(axes[0]):
        rows = [chosen.get((c, j), []) for c in range(num_classes)]
        ax.imshow(mosaic(images, rows, columns), cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"sub-unit {j + 1}", fontsize=9, loc="left")
        ax.set_xticks([])
        ax.set_yticks([c * step + 14 for c in range(num_classes)], class_names if j == 0 else [], fontsize=9)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(title, fontsize=10, wrap=True)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return fig


def plot_readings(readings: list, title: str) -> plt.Figure:
    """One row per image read: the image as given (greyscale) beside the 28x28 images the network saw, light on
    black as EMNIST stores them, each titled with what the network read and how sure it was. `readings`:
    [(name, page, letter images, [(class name, probability), ...])]."""
    columns = 1 + max(len(images) for _, _, images, _ in readings)
    fig, axes = plt.subplots(len(readings), columns, figsize=(2.6 + 1.3 * (columns - 1), 2.0 * len(readings) + 0.5),
                             squeeze=False, gridspec_kw={"width_ratios": [2] + [1] * (columns - 1)})
    for ax in axes.flat:
        ax.axis("off")
    for row, (name, page, images, read) in zip(axes, readings):
        row[0].imshow(page, cmap="gray", vmin=0, vmax=1)
        row[0].set_title(name, fontsize=8, wrap=True)
        for ax, image, (letter, probability) in zip(row[1:], images, read):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{letter}\n{probability:.0%} sure", fontsize=8)
    fig.suptitle(title, fontsize=10, wrap=True)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
