"""results/RESULTS.md, results/test_results.csv and the accuracy chart, from judged runs (evaluation.RunResult).

The report opens with the assignment's questions answered in words from the runs present; a question whose runs
are missing names the command that would answer it. Then a table per dataset (each run against the dataset's
baseline, by the exact McNemar test), and the baselines' per-class accuracy.
"""

import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from . import case_check, figures, recipes
from .commands import command_line
from .data import BYCLASS_LETTERS, LETTERS, class_names_of, is_from_byclass, is_official, source_line
from .evaluation import BASELINE_ROLES, RunResult, classes_unequal, mcnemar_exact, per_class_accuracy
from .run_folder import write_csv_atomic, write_text_atomic
from .plurals import plural

SIGNIFICANCE = 0.05
KERAS_CNN_CLAIM, KERAS_MLP_CLAIM = 0.9925, 0.9840
NIELSEN_CLAIM, NIELSEN_VOTE_CLAIM = 0.9960, 0.9967
LETTERS_TARGET = 0.90  # the assignment's
# Published EMNIST Letters test accuracies: single networks, no extra data, no test-time augmentation.
PUBLISHED = [("linear classifier (Cohen et al. 2017)", 0.5578), ("OPIUM (Cohen et al. 2017)", 0.8515),
             ("TextCaps (2019)", 0.9539), ("VGG-5 with SpinalNet head (2020)", 0.9588),
             ("MIN-ENT loss with VGG-5 (2025)", 0.9593), ("WaveMix-Lite (2022)", 0.9596)]


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def p_text(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def points(difference: float) -> str:
    """A difference between two accuracies, in percentage points: 99% against 97% is 2 percentage points (and
    2.04% in relative terms, which is not what is meant)."""
    return f"{100 * abs(difference):.2f} percentage points"


def training_images(r: RunResult) -> int | None:
    """How many images a run trained on, where its config limits them (--quick): the limit less validation."""
    limit = r.config.get("limit_images")
    return round(limit * (1 - r.config.get("val_fraction", 0.1))) if limit else None


def quick_caveat(runs: list[RunResult]) -> str:
    """For quick runs (trained with --quick), what their comparisons are worth: nothing about the full study."""
    quick = [r for r in runs if r.config.get("quick")]
    if not quick:
        return ""
    images = [n for n in map(training_images, quick) if n]
    on = f"{max(images):,} training images" if images else "a few hundred images"
    return (f" But {'these are quick runs' if len(quick) > 1 else 'this is a quick run'} (`--quick`): "
            f"{plural(max(r.epochs for r in quick), 'epoch')} on {on}, a smoke test that the code works. "
            f"{'Their' if len(quick) > 1 else 'Its'} accuracies, and any difference between networks trained so, "
            f"\"real\" or not, say nothing about what the fully trained networks do: for that, run the study without "
            f"--quick.")


def with_role(results: list[RunResult], role: str) -> list[RunResult]:
    return [r for r in results if r.role == role]


def first_seed(runs: list[RunResult]) -> RunResult:
    """The run with the lowest seed (by name among equals): the one a study without --full has."""
    return min(runs, key=lambda r: (r.config.get("seed", 1), r.run))


def baseline_of(results: list[RunResult]) -> RunResult | None:
    """The dataset's baseline run: the warm-up CNN with its first seed (any run name, quick ones included)."""
    if not results:
        return None
    candidates = with_role(results, BASELINE_ROLES.get(results[0].dataset, ""))
    return first_seed(candidates) if candidates else None


def validation_images(r: RunResult) -> tuple:
    """Which images a run validated on: runs alike here held out the same images. Another seed holds out other
    images (a stratified split is drawn with the run's seed), so its validation accuracy is on another sample."""
    c = r.config
    stratified = c.get("validation", "stratified") == "stratified"
    return (r.dataset, c.get("validation", "stratified"), c.get("val_fraction"), c.get("limit_images"),
            c.get("seed", 1) if stratified else None)


def validated_alike(experiments: list[RunResult], reference: RunResult | None = None) -> tuple[list[RunResult], int]:
    """The experiments validated on the same images as `reference` (else as the first seed's), and how many were
    left out: picking the best of accuracies on different images partly picks the luckiest draw of images."""
    if not experiments:
        return [], 0
    images = [validation_images(r) for r in experiments]
    if reference is None or validation_images(reference) not in images:
        reference = first_seed(experiments)
    alike = [r for r, key in zip(experiments, images) if key == validation_images(reference)]
    return alike, len(experiments) - len(alike)


def left_out(count: int) -> str:
    return (f"({plural(count, 'experiment run')} of other seeds or splits validated on other images, so "
            f"{'is' if count == 1 else 'are'} left out of this comparison.)")


def vs_baseline(result: RunResult, baseline: RunResult | None) -> dict:
    """McNemar of `result` against the baseline: counts of images only one gets right, and the p-value."""
    if baseline is None or baseline is result or len(baseline.true) != len(result.true):
        return {"only_this_right": "", "only_baseline_right": "", "mcnemar_p": ""}
    this_only, base_only, p = mcnemar_exact(result.right, baseline.right)
    return {"only_this_right": this_only, "only_baseline_right": base_only, "mcnemar_p": round(p, 6)}


def csv_rows(by_dataset: dict[str, list[RunResult]]) -> list[dict]:
    rows = []
    for results in by_dataset.values():
        baseline = baseline_of(results)
        for r in results:
            low, high = r.interval
            rows.append({"dataset": r.dataset, "run": r.run, "network": r.network, "params": r.params,
                         "epochs": r.epochs, "train_seconds": r.train_seconds,
                         "val_accuracy": round(r.val_accuracy, 4), "val_images": r.val_images,
                         "test_accuracy": round(r.test_accuracy, 4),
                         "balanced_accuracy": round(r.balanced_accuracy, 4), "ci95_low": round(low, 4),
                         "ci95_high": round(high, 4), "test_errors": r.errors, "test_images": len(r.true),
                         "baseline": baseline.run if baseline else "", **vs_baseline(r, baseline)})
    return rows


def markdown_table(rows: list[dict], balanced: bool = False) -> str:
    """The table of every run of a dataset; `balanced` (where its classes are unequal) adds balanced accuracy, the
    mean over classes, beside plain accuracy."""
    lines = ["| run | network | params | epochs | train time | val accuracy | test accuracy [95% CI] "
             + ("| balanced accuracy " if balanced else "") + "| errors | vs baseline (McNemar) |",
             "|---|---|---:|---:|---:|---:|---|" + ("---:|" if balanced else "") + "---:|---|"]
    for r in rows:
        minutes = f"{r['train_seconds'] / 60:.1f} min" if r["train_seconds"] else ""
        if r["mcnemar_p"] == "":
            versus = "baseline" if r["run"] == r["baseline"] else ""
        else:
            versus = (f"{r['only_this_right']} vs {r['only_baseline_right']} images, {p_text(r['mcnemar_p'])}"
                      + (" (real)" if r["mcnemar_p"] < SIGNIFICANCE else " (could be chance)"))
        lines.append(f"| {r['run']} | {r['network']} | {r['params']:,} | {r['epochs']} | {minutes} "
                     f"| {pct(r['val_accuracy'])} | {pct(r['test_accuracy'])} [{pct(r['ci95_low'])}, "
                     f"{pct(r['ci95_high'])}] " + (f"| {pct(r['balanced_accuracy'])} " if balanced else "")
                     + f"| {r['test_errors']} | {versus} |")
    return "\n".join(lines)


def per_class_table(result: RunResult, role: str = "the baseline") -> str:
    class_names = class_names_of(result.dataset)
    accuracy = per_class_accuracy(result.true, result.predicted, len(class_names))
    counts = np.bincount(result.true, minlength=len(class_names))
    order = np.argsort(accuracy, kind="stable")
    unequal = classes_unequal(result.true)
    cells = [f"{class_names[i]} {pct(accuracy[i])}" + (f" (of {counts[i]:,})" if unequal else "")
             for i in order if not math.isnan(accuracy[i])]
    balanced = (f"; balanced accuracy, the mean of these: {pct(result.balanced_accuracy)}, against "
                f"{pct(result.test_accuracy)} plain; each class's count of test images in brackets"
                if unequal else "")
    return (f"Per-class test accuracy of `{result.run}` ({role}{balanced}), worst first:\n\n"
            + "\n".join(f"- {' · '.join(cells[i:i + 6])}" for i in range(0, len(cells), 6)))


# ---------------------------------------------------------------------------------------------------------
# The answers


def spread(results: list[RunResult]) -> str:
    """'99.09% (3 seeds: 99.02-99.15%)', or one run's accuracy with its interval."""
    accs = [r.test_accuracy for r in results]
    if len(results) == 1:
        low, high = results[0].interval
        return f"{pct(accs[0])} [95% CI {pct(low)}-{pct(high)}] (`{results[0].run}`, one seed)"
    return f"{pct(float(np.mean(accs)))} on average ({len(accs)} seeds: {pct(min(accs))}-{pct(max(accs))})"


def missing(commands: str) -> str:
    return f"Not measured yet: `{commands}` would answer it."


def answer_keras_cnn(mnist: list[RunResult]) -> str:
    groups = [("keras_cnn", "Today's network (Keras 2's example, its Adadelta settings spelled out)"),
              ("keras_cnn_eps1e-6", "The same network with Adadelta's epsilon at 2015's 1e-6"),
              ("keras2015_cnn", "The network the claim was written for (June 2015: 32/32 filters, 'full' padding, "
                                "2015's Glorot initialisation, epsilon 1e-6)")]
    parts = []
    for role, title in groups:
        runs = with_role(mnist, role)
        if runs:
            parts.append(f"{title}: {spread(runs)} against the claimed {pct(KERAS_CNN_CLAIM)} "
                         f"({against_claim(runs, KERAS_CNN_CLAIM)}).")
    if not parts:
        return missing(command_line("warmup_mnist_cnn.py"))
    if not with_role(mnist, "keras_cnn"):
        parts.insert(0, f"Today's network is not in this report (`{command_line('warmup_mnist_cnn.py')}` trains it).")
    if not with_role(mnist, "keras2015_cnn"):
        parts.append(f"The 2015 network is not measured yet: `{command_line('run_all.py', '--full')}` trains it with three "
                     f"seeds.")
    mlp = with_role(mnist, "keras_mlp")
    if mlp:
        parts.append(f"(The MLP warm-up: {spread(mlp)} against its claimed {pct(KERAS_MLP_CLAIM)}, "
                     f"{against_claim(mlp, KERAS_MLP_CLAIM)}.)")
    return " ".join(parts)


def against_claim(results: list[RunResult], claim: float) -> str:
    """Whether the runs' mean reaches a published claim, and what the test set's sampling error lets one say:
    one run whose interval holds the claim cannot tell; of several seeds, how many reach it on their own."""
    accs = [r.test_accuracy for r in results]
    if np.mean(accs) >= claim:
        return "reached"
    if len(results) == 1:
        if results[0].interval[1] >= claim:
            return "not reached, though the claim lies inside its 95% interval: one run cannot tell"
        return "not reached"
    hits = sum(a >= claim for a in accs)
    if not hits:
        return "not reached by any seed"
    return f"not reached on average; {hits} of the {len(accs)} seeds {'reaches' if hits == 1 else 'reach'} it"


def answer_nielsen(mnist: list[RunResult]) -> str:
    single, vote = with_role(mnist, "nielsen"), with_role(mnist, "nielsen_vote")
    parts = []
    if single:
        parts.append(f"His single network: {spread(single)} against the claimed {pct(NIELSEN_CLAIM)} "
                     f"({against_claim(single, NIELSEN_CLAIM)}).")
    else:
        parts.append(missing(command_line("nielsen_cnn.py", "--batch-size", 50)))
    if vote:
        parts.append(f"His vote of five: {spread(vote)} against the claimed {pct(NIELSEN_VOTE_CLAIM)} "
                     f"({against_claim(vote, NIELSEN_VOTE_CLAIM)}).")
    else:
        parts.append("The vote of five is not measured yet: "
                     f"`{command_line('nielsen_cnn.py', '--batch-size', 50, '--ensemble', 5)}` "
                     "(or `run_all.py --full`).")
    return " ".join(parts)


def answer_letters_vs_digits(mnist: list[RunResult], letters: list[RunResult]) -> str:
    digits, cnn = baseline_of(mnist), baseline_of(letters)
    if not (digits and cnn):
        needed = (([] if digits else [command_line("warmup_mnist_cnn.py")])
                  + ([] if cnn else [command_line("emnist_baseline.py")]))
        return missing("` and `".join(needed))
    gap = digits.test_accuracy - cnn.test_accuracy
    ratio = (f", {(1 - cnn.test_accuracy) / (1 - digits.test_accuracy):.1f}x the error rate"
             if digits.test_accuracy < 1 and gap > 0 else "")
    versus = f"{points(gap)} {'lower' if gap > 0 else 'higher'}{ratio}" if gap else "the same accuracy"
    on = "EMNIST ByClass's letters" if is_from_byclass(cnn.test_source) else "EMNIST Letters"
    balanced = (f" (balanced accuracy {pct(cnn.balanced_accuracy)})" if classes_unequal(cnn.true) else "")
    return (f"The Keras CNN, unchanged but for its 26 outputs, reaches {pct(cnn.test_accuracy)}{balanced} on {on} "
            f"(`{cnn.run}`) against {pct(digits.test_accuracy)} on MNIST (`{digits.run}`): {versus}. Letters are "
            f"usually "
            f"harder: 26 classes instead of 10, upper and lower case sharing a class, and look-alike pairs (i/l, "
            f"g/q) that even people confuse. Different test sets, so no paired test: the intervals in the tables "
            f"say how firm each figure is." + quick_caveat([digits, cnn]))


def answer_cnn_vs_mlp(letters: list[RunResult]) -> str:
    cnn, mlps = baseline_of(letters), with_role(letters, "letters_mlp")
    if not (cnn and mlps):
        needed = (([] if cnn else [command_line("emnist_baseline.py")])
                  + ([] if mlps else [command_line("emnist_baseline.py", "--model", "mlp")]))
        return missing("` and `".join(needed))
    mlp = first_seed(mlps)
    gap = cnn.test_accuracy - mlp.test_accuracy
    leader = ("The CNN did better than the MLP" if gap > 0 else "The MLP did better than the CNN" if gap < 0
              else "The CNN and the MLP did equally well")
    scores = (f"{leader}: the CNN (`{cnn.run}`) reaches {pct(cnn.test_accuracy)}, the MLP (`{mlp.run}`) "
              f"{pct(mlp.test_accuracy)}" + (f", {points(gap)} apart." if gap else "."))
    if len(cnn.true) != len(mlp.true):  # judged on different test images: no paired test
        return scores + quick_caveat([cnn, mlp])
    cnn_only, mlp_only, p = mcnemar_exact(cnn.right, mlp.right)
    if p < SIGNIFICANCE:
        verdict = "a split too uneven to be the luck of the test set: the difference is real"
    else:
        verdict = ("a split as uneven as that could well be chance: this test set cannot tell which network is "
                   "better" if gap else "no difference at all")
    caveat = quick_caveat([cnn, mlp])
    why = (" Convolution shares its weights across positions, so a stroke learnt in one place is recognised in "
           "another; the MLP must learn each position anew." if gap > 0 and p < SIGNIFICANCE and not caveat else "")
    return (f"{scores} Of the test letters only one of the two gets right, {cnn_only} go to the CNN and {mlp_only} "
            f"to the MLP (exact McNemar test, {p_text(p)}), {verdict}.{why}{caveat}")


def answer_best_experiment(letters: list[RunResult]) -> str:
    candidates = with_role(letters, "experiment")
    if not candidates:
        return missing(command_line("emnist_experiments.py", "--exp", "sgd_tta", "ensemble_tta"))
    experiments, others = validated_alike(candidates, baseline_of(letters))
    chosen = max(experiments, key=lambda r: r.val_accuracy)  # chosen on validation, never on test
    low, high = chosen.interval
    reached = "reaches" if chosen.test_accuracy >= LETTERS_TARGET else "does not reach"
    if is_from_byclass(chosen.test_source):
        standing = ("No comparison with the published EMNIST Letters figures is drawn: these letters are EMNIST "
                    "ByClass's, with their natural frequencies, not the balanced Letters split they were measured on.")
    else:
        above = [name for name, acc in PUBLISHED if chosen.test_accuracy >= acc]
        listed = "; ".join(f"{name} {pct(acc)}" for name, acc in PUBLISHED)
        standing = (f"`{chosen.run}` is above {len(above)} of the {len(PUBLISHED)} published single-network "
                    f"figures listed here ({listed}).")
    extras = []
    if chosen.config.get("ensemble", 1) > 1:
        extras.append(f"an ensemble of {chosen.config['ensemble']} networks")
    if chosen.config.get("test_time_views"):
        extras.append(f"predicting from {chosen.config['test_time_views']} distorted copies as well")
    caveat = (f" The published figures are single networks without test-time copies; this one is "
              f"{' and '.join(extras)}, so it is not quite a like-for-like comparison."
              if extras and not is_from_byclass(chosen.test_source) else "")
    balanced = (f" (balanced accuracy {pct(chosen.balanced_accuracy)})" if classes_unequal(chosen.true) else "")
    return (f"Chosen on validation among {plural(len(experiments), 'experiment run')}: `{chosen.run}` (validation "
            f"{pct(chosen.val_accuracy)}), with {pct(chosen.test_accuracy)} on the test letters [95% CI {pct(low)}-"
            f"{pct(high)}]{balanced}. It {reached} the assignment's {pct(LETTERS_TARGET)}. "
            f"{against_baselines(chosen, candidates, letters)} {standing}{caveat}"
            + (f" {left_out(others)}" if others else "") + over_seeds(letters) + quick_caveat([chosen]))


def recipe_name(r: RunResult) -> str:
    """A run's name less its seed ("exp_sgd_tta-seed2" -> "exp_sgd_tta"): the runs of one recipe."""
    return re.sub(r"-seed\d+$", "", r.run)


def over_seeds(letters: list[RunResult]) -> str:
    """Where recipes were trained with several seeds: each recipe's mean test accuracy and its spread, and how far
    the experiment recipe with the best mean validation accuracy lies above the warm-up CNN's mean."""
    groups = {}
    for r in letters:
        groups.setdefault((r.role, recipe_name(r)), []).append(r)
    seeded = {key: runs for key, runs in groups.items() if len(runs) > 1}
    if not seeded:
        return ""
    parts = [f"`{name}` {spread(runs)}" for (_, name), runs in seeded.items()]
    text = f" Over seeds (each seed its own validation images): {'; '.join(parts)}."
    cnns = [runs for (role, _), runs in seeded.items() if role == BASELINE_ROLES["emnist-letters"]]
    recipes_seeded = {key: runs for key, runs in seeded.items() if key[0] == "experiment"}
    if cnns and recipes_seeded:
        (_, best), runs = max(recipes_seeded.items(), key=lambda item: np.mean([r.val_accuracy for r in item[1]]))
        gap = np.mean([r.test_accuracy for r in runs]) - np.mean([r.test_accuracy for r in cnns[0]])
        text += (f" The recipe with the best mean validation accuracy, `{best}`, is {points(gap)} "
                 f"{'above' if gap >= 0 else 'below'} the warm-up CNN on average over its seeds.")
    return text


def against_baselines(chosen: RunResult, experiments: list[RunResult], letters: list[RunResult]) -> str:
    """Whether any experiment beat the letters baselines on test (the warm-up CNN, and the MLP where there is
    one), said plainly; where one did, how the chosen experiment stands against the CNN baseline."""
    cnn, mlps = baseline_of(letters), with_role(letters, "letters_mlp")
    if cnn is None:
        return ""
    best = max(experiments, key=lambda r: r.test_accuracy)
    named = f"the warm-up CNN (`{cnn.run}`, {pct(cnn.test_accuracy)})"
    if best.test_accuracy <= cnn.test_accuracy:
        mlp = first_seed(mlps) if mlps else None
        if mlp is not None and best.test_accuracy <= mlp.test_accuracy:
            return (f"None of the experiments beat the baselines: {named} and the MLP (`{mlp.run}`, "
                    f"{pct(mlp.test_accuracy)}) both do at least as well on test as every experiment run (the best "
                    f"of them on test: `{best.run}`, {pct(best.test_accuracy)}).")
        return (f"None of the experiments beat the baseline: {named} does at least as well on test as every "
                f"experiment run (the best of them on test: `{best.run}`, {pct(best.test_accuracy)}).")
    gap = chosen.test_accuracy - cnn.test_accuracy
    where = "above" if gap > 0 else "below" if gap < 0 else "level with"
    text = f"`{chosen.run}` is {points(gap) + ' ' if gap else ''}{where} the baseline, {named}"
    if len(chosen.true) == len(cnn.true) and gap:
        chosen_only, cnn_only, p = mcnemar_exact(chosen.right, cnn.right)
        text += (f"; of the letters only one of the two gets right, {chosen_only} go to `{chosen.run}` and "
                 f"{cnn_only} to the CNN (exact McNemar test, {p_text(p)}: "
                 + ("a real difference)" if p < SIGNIFICANCE else "could be chance)"))
    return text + "."


def answer_case_aware(by_dataset: dict[str, list[RunResult]]) -> str:
    case_aware = [r for results in by_dataset.values() for r in results
                  if r.config.get("model_options", {}).get("subunits", 1) > 1]
    if not case_aware:
        return missing(command_line("emnist_experiments.py", "--exp", "case_aware_resplit"))
    parts = []
    for r in case_aware:
        units = r.subunits
        if not units:
            parts.append(f"`{r.run}`: its sub-units are not described yet (`{command_line('show_misclassified.py', r.run)}`).")
        elif "purity" in units and units.get("hidden_label", "digit") == "digit":  # merged MNIST
            parts.append(f"`{r.run}` ({r.dataset}): each sub-unit against the digit hidden in the merged class: "
                         f"purity {units['purity']:.3f} (the share of images whose unit's commonest digit is their "
                         f"own), NMI {units['nmi']:.3f} (normalised mutual information: how much knowing the unit "
                         f"tells of the digit, from 0, nothing, to 1, all of it); {units['classes_split']} of "
                         f"{units['classes']} classes use both units.")
        elif units["classes_split"] == 0:
            parts.append(collapsed(r))
        else:
            rest = units["classes"] - units["classes_split"]
            parts.append(f"`{r.run}` ({r.dataset}): {units['classes_split']} of {units['classes']} classes divide "
                         f"their validation images between the sub-units (each taking at least "
                         f"{units['split_share']:.0%})" + (f"; in the other {rest}, one sub-unit took more than "
                                                          f"{1 - units['split_share']:.0%} of them" if rest else "")
                         + f". The figure `{r.run}_subunits.png` shows, class by class, the validation images each "
                           f"sub-unit is most sure of.")
        if r.dataset == "emnist-letters":
            parts.append(case_answer(r))
    return " ".join(parts + [knowing_the_case(by_dataset)]).strip()


RECIPE_KEYS = ("model", "model_options", "epochs", "batch_size", "seed", "optimizer", "schedule", "augment",
               "label_smoothing", "ensemble", "test_time_views")


def recipe_of(r: RunResult) -> tuple:
    """What a run trained, its dataset aside: runs alike in these differ by their labels alone."""
    return tuple(str(r.config.get(key)) for key in RECIPE_KEYS)


def knowing_the_case(by_dataset: dict[str, list[RunResult]]) -> str:
    """Does knowing the case help letters accuracy? Each network trained with the case labels (ByClass's 52 letter
    classes), its cases merged at prediction, against the letters run of the same recipe and epochs trained
    without them, on the same test letters (ByClass's letters: the same images in the same order)."""
    parts = []
    letters = by_dataset.get("emnist-letters", [])
    for cased in by_dataset.get(BYCLASS_LETTERS, []):
        if cased.letters_predicted is None:
            continue
        right = cased.letters_predicted == cased.true % len(LETTERS)
        text = (f"Knowing the case: `{cased.run}`, trained with the case labels on ByClass's 52 letter classes, reads "
                f"{pct(float(right.mean()))} of its test letters right once each letter's two cases are merged "
                f"(and tells the letter and its case together for {pct(cased.test_accuracy)})")
        same = [r for r in letters if recipe_of(r) == recipe_of(cased) and np.array_equal(r.true, cased.true % 26)]
        if same:
            plain = same[0]
            this_only, plain_only, p = mcnemar_exact(right, plain.right)
            text += (f", against {pct(plain.test_accuracy)} for `{plain.run}`, the same recipe and epochs trained on "
                     f"the 26 merged classes: of the letters only one of the two reads right, {this_only} go to the "
                     f"case-trained network and {plain_only} to the other (exact McNemar test, {p_text(p)}: "
                     + ("a real difference" if p < SIGNIFICANCE else "could be chance") + ")")
        parts.append(text + ".")
    return " ".join(parts)


def collapsed(r: RunResult) -> str:
    """A case-aware head whose sub-units split no class: said plainly, with what to try."""
    units = r.subunits
    shares = [s for s in (units.get("unit_shares") or {}).values() if s]
    took = ("one sub-unit took every validation image of every class" if shares and all(max(s) >= 1 for s in shares)
            else f"in every class one sub-unit took more than {1 - units['split_share']:.0%} of the validation images")
    resplit = r.config.get("resplit_idle_units", 0) > 0
    if not resplit:
        advice = "try the case_aware_resplit recipe, which splits a collapsed class afresh by k-means between epochs"
    elif r.epochs <= 1:
        advice = ("train for more epochs: its recipe splits a collapsed class afresh between epochs, so a run of one "
                  "epoch never gets the chance")
    else:
        advice = (f"train for more epochs: its recipe splits a collapsed class afresh between epochs, and "
                  f"{plural(r.epochs, 'epoch')} did not give it the chance to take (it waits until the network "
                  f"gets most of its training images right)")
    epochs = recipes.recipe("case_aware_resplit", r.run, r.dataset).epochs if r.dataset == "emnist-letters" else 0
    if not resplit or r.epochs < epochs:
        full = command_line("emnist_experiments.py", "--exp", "case_aware_resplit", "--run-name",
                            "exp_case_aware_resplit-full")
        advice += (f"; `{full}` "
                   f"trains that recipe for its own {epochs} epochs, under the name `run_all.py --full` gives it"
                   if epochs else "")
    return (f"`{r.run}` ({r.dataset}): the head collapsed: {took}, so the sub-units learnt nothing a plain softmax "
            f"would not (the figure `{r.run}_subunits.png` still shows the images each sub-unit is most sure of, "
            f"however weakly). To do better, {advice}.")


def case_answer(r: RunResult) -> str:
    """Whether a letters run's sub-units took the case, from its case check against EMNIST ByClass."""
    if not r.case_check:
        return (f"Letters carry no case labels, but EMNIST ByClass (in NIST's gzip.zip) does: with it in a "
                f"--data-dir folder, `{command_line('show_misclassified.py', r.run)}` scores the units against the true case.")
    return (f"{case_check.summary_line(r.case_check)}; the table is under \"The case-aware head against the true "
            f"case\" and the figure is `{r.run}_case_check.png`.")


def case_check_sections(by_dataset: dict[str, list[RunResult]]) -> list[str]:
    """The per-letter case table of every letters run measured against ByClass."""
    checked = [r for results in by_dataset.values() for r in results if r.case_check]
    if not checked:
        return []
    parts = ["## The case-aware head against the true case", "",
             "On letters the network never trained on (EMNIST ByClass's test letters for a run trained on EMNIST "
             "Letters; its own validation letters for a run trained on ByClass's letters, whose test letters are "
             "this report's), which case-aware sub-unit each image picks among its letter's, against its true case "
             "(the network never saw case labels). Purity: the share of images whose unit's commoner "
             "case is their own; in brackets its floor, the share of the letter's commoner case, which any split "
             f"reaches. A letter splits by case when at least {case_check.BY_CASE_SHARE:.0%} of its capitals, and of "
             "its small letters, pick a unit their own case dominates. \"Cases look alike\": the 15 letters EMNIST's "
             "ByMerge and Balanced splits merge (Cohen et al. 2017); there a split by case is not to be expected.", ""]
    for r in checked:
        parts += [f"### {r.run}", "", case_check.summary_line(r.case_check) + ".", "",
                  case_check.markdown_table(r.case_check), "", f"![{r.run}: sub-units against case]"
                                                              f"({r.run}_case_check.png)", ""]
    return parts


def overuse_gap(r: RunResult) -> float | None:
    """How many standard errors the validation accuracy lies above the test accuracy, counting the sampling error
    of both sets (a small validation set's accuracy is a coarse figure); None without a validation size."""
    if not r.val_images:
        return None
    p_val, p_test = r.val_accuracy, r.test_accuracy
    se = math.sqrt(max(p_val * (1 - p_val), 0.25 / r.val_images) / r.val_images
                   + max(p_test * (1 - p_test), 0.25 / len(r.true)) / len(r.true))
    return (p_val - p_test) / se


def answer_overuse(by_dataset: dict[str, list[RunResult]]) -> str:
    flagged = []
    for results in by_dataset.values():
        for r in results:
            gap = overuse_gap(r)
            if gap is not None and gap > 1.96:
                flagged.append(f"`{r.run}` (validation {pct(r.val_accuracy)} of {r.val_images:,}, test "
                               f"{pct(r.test_accuracy)} of {len(r.true):,})")
    parts = [("Validation accuracy lies further above the test accuracy than the two sets' sampling error "
              "explains (by more than 1.96 standard errors) for " + ", ".join(flagged)
              + ": the validation set may have been used too often to choose, or the test set is harder.")
             if flagged else
             ("No run's validation accuracy lies further above its test accuracy than the two sets' sampling "
              "error explains: no sign that choosing by validation has overfitted the validation set.")]
    for dataset, results in by_dataset.items():
        baseline = baseline_of(results)
        experiments, others = validated_alike(with_role(results, "experiment"), baseline)
        compared = []
        if len(experiments) >= 3:
            chosen = max(experiments, key=lambda r: r.val_accuracy)
            rank = 1 + sum(r.test_accuracy > chosen.test_accuracy for r in experiments)
            compared.append(f"On {dataset}, the experiment validation chose (`{chosen.run}`) ranks {rank} of "
                            f"{len(experiments)} on test.")
        if baseline and experiments and validation_images(baseline) == validation_images(experiments[0]):
            ahead = [r for r in experiments if r.val_accuracy > baseline.val_accuracy]
            if ahead:
                kept = sum(r.test_accuracy > baseline.test_accuracy for r in ahead)
                compared.append(f"On {dataset}, of the {plural(len(ahead), 'experiment')} ahead of the warm-up CNN "
                                f"(`{baseline.run}`) on validation, {kept} {'stays' if kept == 1 else 'stay'} ahead "
                                f"on test.")
        if compared and others:
            compared.append(left_out(others))
        parts += compared
    return " ".join(parts)


# The words the answers use, each explained once, before them.
READING_GUIDE = (
    "*How to read the answers.* A test accuracy comes with its 95% interval (\"95% CI\", the Wilson score "
    "interval): the range of true accuracies that could well have produced this score on this many test images; "
    "the fewer the images, the wider the range. A difference between two accuracies is given in percentage points: 99% against 97% is "
    "2 percentage points. Two networks judged on the same test images are compared by the exact McNemar test: it "
    "counts only the images exactly one of the two gets right. Were the two networks equally good, those images "
    "would fall to one or the other about evenly, like tosses of a fair coin; p is the chance of a split at least "
    "as uneven as the one seen. Below 0.05 the difference is called real (the luck of the test set would rarely "
    "produce it); above, it could be chance. The case-aware head is a last layer with two outputs per letter, its "
    "sub-units, instead of one; the letter's probability is their sum, so the network is free, without ever being "
    "told the case, to give `A` and `a` a sub-unit each.")


def letters_test_set_note(letters: list[RunResult]) -> str:
    """A sentence where the letters were judged on a test set other than NIST's official 20,800 images (Kaggle's
    CSV and TensorFlow Datasets hold an older split of 14,800): such a result is not comparable with the published
    figures. Nothing where it is the official one, or where the test set's record is not known."""
    judged = letters[0].test_source if letters else {}
    if not judged or is_official(judged) or is_from_byclass(judged):
        return ""  # (letters from ByClass are said so at the top of the report: letters_data_note)
    return (f" Caution: these letters were judged on {source_line(judged)}, not on NIST's official 20,800 "
            f"test images, on which the published figures were measured: a result here is not comparable with them.")


def changed_data_note(by_dataset: dict[str, list[RunResult]]) -> list[str]:
    """A paragraph naming the runs judged although the data they trained on changed after they trained."""
    changed = [r for results in by_dataset.values() for r in results if r.data_changed]
    if not changed:
        return []
    runs = "; ".join(f"`{r.run}` ({', '.join(r.data_changed)})" for r in changed)
    return [f"**Judged on changed data** (`--accept-changed-data`): the files these runs trained on changed after "
            f"they trained, so their figures may not be the runs' own: {runs}.", ""]


def letters_data_note(letters: list[RunResult]) -> list[str]:
    """A paragraph, where the letters were taken from EMNIST ByClass: what these letters are, and that no figure
    of theirs compares with a published EMNIST Letters one. Nothing otherwise."""
    judged = letters[0].test_source if letters else {}
    if not is_from_byclass(judged):
        return []
    return [f"**The letters here are not the EMNIST Letters split.** No copy of EMNIST Letters was found, so every "
            f"letters figure below is on EMNIST ByClass's letters, upper and lower case merged into Letters' 26 "
            f"classes, with ByClass's natural letter frequencies (common letters such as `e` several times as "
            f"many as rare ones such as `q`), not the balanced Letters split: the test set is {source_line(judged)}. "
            f"They compare with no published EMNIST Letters figure; where classes are unequal, balanced accuracy "
            f"(the mean over the letters) stands beside plain accuracy.", ""]


def answers(by_dataset: dict[str, list[RunResult]]) -> list[str]:
    """The assignment's questions, each answered from the runs present."""
    mnist, letters = by_dataset.get("mnist", []), by_dataset.get("emnist-letters", [])
    questions = [
        ("Does the Keras `mnist_cnn` reach its claimed 99.25%?", answer_keras_cnn(mnist)),
        ("Does Nielsen's network reach 99.60%, and his vote of five 99.67%?", answer_nielsen(mnist)),
        ("The same CNN on EMNIST Letters: how does its accuracy compare with MNIST?",
         answer_letters_vs_digits(mnist, letters)),
        ("On letters, how does the CNN compare with the MLP?", answer_cnn_vs_mlp(letters)),
        ("Which experiment does best on letters; does it reach 90%; how does it stand against the published "
         "figures?", answer_best_experiment(letters) + letters_test_set_note(letters)),
        ("What did the case-aware head's sub-units learn?", answer_case_aware(by_dataset)),
        ("Test against validation, and against the earlier networks: any sign the validation set was overused?",
         answer_overuse(by_dataset)),
    ]
    return [f"{i}. **{question}** {text}" for i, (question, text) in enumerate(questions, 1)]


# ---------------------------------------------------------------------------------------------------------
# The chart and the report


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


def write_report(by_dataset: dict[str, list[RunResult]], out_dir: Path, figure_links: list[str],
                 subset: bool = False) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = csv_rows(by_dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out_dir / "test_results.csv", rows)
    figures.save(accuracy_chart(by_dataset), out_dir / "test_accuracy.png")
    judged = ("a stratified subset of each test set (--quick): the figures below are a smoke test, not results"
              if subset else "its own dataset's whole test set")
    parts = ["# Test results", "",
             f"Written by `evaluate_test.py`: each run judged once on {judged}. Models were chosen on validation "
             "accuracy alone; the test set was read here and nowhere else.", "",
             *letters_data_note(by_dataset.get("emnist-letters", [])), *changed_data_note(by_dataset),
             "## Answers", "", READING_GUIDE, "", *answers(by_dataset), "", *case_check_sections(by_dataset),
             "## Every run", "",
             "The interval is the 95% Wilson score interval. \"vs baseline\" counts the test images only one of the "
             "run and the dataset's baseline (the warm-up CNN) gets right, with the exact McNemar p-value (below "
             "0.05: a real difference).", "",
             "![test accuracy with 95% intervals](test_accuracy.png)", ""]
    for dataset, results in by_dataset.items():
        unequal = classes_unequal(results[0].true)
        parts += [f"### {dataset}", "", markdown_table([r for r in rows if r["dataset"] == dataset], unequal), ""]
        baseline = baseline_of(results)
        if baseline is not None:
            parts += [per_class_table(baseline), ""]
        experiments = with_role(results, "experiment")
        if unequal and experiments:  # the rare classes' accuracy, for the run validation would choose too
            chosen = max(validated_alike(experiments, baseline)[0], key=lambda r: r.val_accuracy)
            parts += [per_class_table(chosen, "the experiment chosen on validation"), ""]
    if figure_links:
        parts += ["## Figures", ""] + [f"- [{Path(f).name}]({f})" for f in figure_links] + [""]
    path = out_dir / "RESULTS.md"
    write_text_atomic(path, "\n".join(parts))
    return path
