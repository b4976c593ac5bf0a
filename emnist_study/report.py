"""results/RESULTS.md, results/test_results.csv and the accuracy chart, from judged runs (evaluation.RunResult)."""

import csv
from pathlib import Path

import matplotlib.pyplot as plt

from . import figures
from .data import LETTERS
from .evaluation import BASELINE_RUNS, RunResult, mcnemar_exact, per_class_accuracy
from .runs import write_text_atomic

SIGNIFICANCE = 0.05


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def p_text(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def baseline_of(results: list[RunResult]) -> RunResult | None:
    by_name = {r.run: r for r in results}
    return by_name.get(BASELINE_RUNS.get(results[0].dataset)) if results else None


def vs_baseline(result: RunResult, baseline: RunResult | None) -> dict:
    """McNemar of `result` against the baseline: counts of images only one gets right, and the p-value."""
    if baseline is None or baseline is result:
        return {"only_this_right": "", "only_baseline_right": "", "mcnemar_p": ""}
    this_only, base_only, p = mcnemar_exact(result.right, baseline.right)
    return {"only_this_right": this_only, "only_baseline_right": base_only, "mcnemar_p": round(p, 6)}


def csv_rows(by_dataset: dict[str, list[RunResult]]) -> list[dict]:
    rows = []
    for results in by_dataset.values():
        baseline = baseline_of(results)
        for r in results:
            low, high = r.interval
            rows.append({"dataset": r.dataset, "run": r.run, "model": r.model, "params": r.params,
                         "epochs": r.epochs, "train_seconds": r.train_seconds,
                         "val_accuracy": round(r.val_accuracy, 4),
                         "test_accuracy": round(r.test_accuracy, 4), "ci95_low": round(low, 4),
                         "ci95_high": round(high, 4), "test_errors": r.errors, "test_images": len(r.true),
                         "baseline": baseline.run if baseline else "", **vs_baseline(r, baseline)})
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| run | model | params | epochs | train time | val accuracy | test accuracy [95% CI] | errors "
             "| vs baseline (McNemar) |", "|---|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        minutes = f"{r['train_seconds'] / 60:.1f} min" if r["train_seconds"] else ""
        if r["mcnemar_p"] == "":
            versus = "baseline" if r["run"] == r["baseline"] else ""
        else:
            versus = (f"{r['only_this_right']} vs {r['only_baseline_right']} images, {p_text(r['mcnemar_p'])}"
                      + (" (real)" if r["mcnemar_p"] < SIGNIFICANCE else " (could be chance)"))
        lines.append(f"| {r['run']} | {r['model']} | {r['params']:,} | {r['epochs']} | {minutes} "
                     f"| {pct(r['val_accuracy'])} | {pct(r['test_accuracy'])} [{pct(r['ci95_low'])}, "
                     f"{pct(r['ci95_high'])}] | {r['test_errors']} | {versus} |")
    return "\n".join(lines)


def comparison(a: RunResult, b: RunResult) -> str:
    """A sentence comparing two runs on the same test set."""
    a_only, b_only, p = mcnemar_exact(a.right, b.right)
    verdict = "a real difference" if p < SIGNIFICANCE else "a difference that could be chance"
    return (f"`{a.run}` {pct(a.test_accuracy)} vs `{b.run}` {pct(b.test_accuracy)}: of the images only one of "
            f"them gets right, {a_only} go to `{a.run}` and {b_only} to `{b.run}` (exact McNemar, {p_text(p)}: "
            f"{verdict}).")


def comparisons(by_dataset: dict[str, list[RunResult]]) -> list[str]:
    runs = {r.run: r for results in by_dataset.values() for r in results}
    out = []
    if "emnist_cnn" in runs and "mnist_cnn" in runs:
        e, m = runs["emnist_cnn"], runs["mnist_cnn"]
        out.append(f"**The same CNN on letters and on digits.** `mnist_cnn` reaches {pct(m.test_accuracy)} on MNIST "
                   f"(10 classes), `emnist_cnn` {pct(e.test_accuracy)} on EMNIST Letters (26 classes, upper and "
                   f"lower case merged): {pct(m.test_accuracy - e.test_accuracy)} lower. Different test sets, so "
                   f"no paired test; the confidence intervals in the tables say how firm each figure is.")
    for cnn, mlp in (("emnist_cnn", "emnist_mlp"), ("mnist_cnn", "mnist_mlp")):
        if cnn in runs and mlp in runs:
            out.append(f"**CNN vs MLP on {runs[cnn].dataset}.** " + comparison(runs[cnn], runs[mlp]))
    for results in by_dataset.values():
        baseline = baseline_of(results)
        for r in results:
            if baseline is not None and r is not baseline and r.run not in ("emnist_mlp", "mnist_mlp"):
                out.append(f"**{r.run} vs the baseline.** " + comparison(r, baseline))
    gaps = []
    for results in by_dataset.values():
        for r in results:
            low, high = r.interval
            if r.val_accuracy > high:
                gaps.append(f"`{r.run}` (validation {pct(r.val_accuracy)}, test {pct(r.test_accuracy)})")
    out.append("**Test vs validation.** " + (
        "Validation accuracy lies above the test accuracy's 95% interval for " + ", ".join(gaps)
        + ": the validation set may have been used too often to choose among runs, or the test set is harder."
        if gaps else "Every run's validation accuracy lies within or below its test accuracy's 95% interval: "
                     "no sign that choosing by validation accuracy has overfitted the validation set."))
    return out


def per_class_table(result: RunResult) -> str:
    accuracy = per_class_accuracy(result.true, result.predicted, len(LETTERS))
    order = accuracy.argsort()
    cells = [f"{LETTERS[i]} {pct(accuracy[i])}" for i in order]
    return (f"Per-class test accuracy of `{result.run}`, worst first:\n\n"
            + "\n".join(f"- {' · '.join(cells[i:i + 6])}" for i in range(0, len(cells), 6)))


def accuracy_chart(by_dataset: dict[str, list[RunResult]]) -> plt.Figure:
    """Test accuracy of every run with its 95% Wilson interval, one panel per dataset, stacked, each as tall as
    its number of runs (datasets differ in difficulty, so each panel has its own scale)."""
    sizes = [len(results) for results in by_dataset.values()]
    fig, axes = plt.subplots(len(by_dataset), 1, figsize=(9, 0.4 * sum(sizes) + 1.1 * len(sizes)), squeeze=False,
                             gridspec_kw={"height_ratios": [n + 1.5 for n in sizes]})
    for ax, (dataset, results) in zip(axes[:, 0], by_dataset.items()):
        names = [r.run for r in results]
        accs = [100 * r.test_accuracy for r in results]
        lows = [100 * (r.test_accuracy - r.interval[0]) for r in results]
        highs = [100 * (r.interval[1] - r.test_accuracy) for r in results]
        ax.errorbar(accs, range(len(results)), xerr=[lows, highs], fmt="o", capsize=4)
        ax.set_yticks(range(len(results)), names)
        ax.invert_yaxis()
        ax.set_xlabel("test accuracy, % (95% Wilson interval)")
        ax.set_title(dataset)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def write_report(by_dataset: dict[str, list[RunResult]], out_dir: Path, figure_links: list[str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = csv_rows(by_dataset)
    write_csv(rows, out_dir / "test_results.csv")
    figures.save(accuracy_chart(by_dataset), out_dir / "test_accuracy.png")
    parts = ["# Test results", "",
             "Written by `evaluate_test.py`: each run judged once on its own dataset's test set. The interval is "
             "the 95% Wilson score interval; \"vs baseline\" counts the test images only one of the two models "
             "gets right and gives the exact McNemar p-value (below 0.05: a real difference).", "",
             "![test accuracy with 95% intervals](test_accuracy.png)", ""]
    for dataset, results in by_dataset.items():
        parts += [f"## {dataset}", "", markdown_table([r for r in rows if r["dataset"] == dataset]), ""]
        if dataset == "emnist-letters":
            parts += [per_class_table(r) + "\n" for r in results if r.run == BASELINE_RUNS[dataset]]
    parts += ["## Comparisons", ""] + [c + "\n" for c in comparisons(by_dataset)]
    if figure_links:
        parts += ["## Figures", ""] + [f"- [{Path(f).name}]({f})" for f in figure_links] + [""]
    path = out_dir / "RESULTS.md"
    write_text_atomic(path, "\n".join(parts))
    return path
