"""Did the case-aware head find the case? A case-aware network trained on EMNIST Letters never sees upper and lower
case apart; EMNIST ByClass (byclass.py) labels them. On letters the network never trained on (below) this measures,
for each letter, which of its sub-units each image picks against its true case: how many capitals and small letters
each unit took, purity and NMI per letter and overall, and whether the letter split by case; and draws each unit's
most confident images, coloured by their true case.

Which letters: for a run trained on EMNIST Letters, ByClass's test letters, because ByClass's training letters
include the very images the network trained on (both splits come from the same NIST training partition); for a
run trained on ByClass's own letters (where no copy of the Letters files was found, data.py), its validation
letters, held out from training with their case kept, so that its test letters stay for evaluate_test.py alone.
Nothing is chosen or tuned on them: the check reports what the head learned, it does not judge accuracy.

Not every letter can split by case. EMNIST scales every glyph to fill its frame, so a letter whose small form is
its capital made smaller looks the same in both cases. EMNIST's own ByMerge and Balanced splits merge the 15
letters whose cases look alike (Cohen et al. 2017): c i j k l m o p s u v w x y z. For those the head, pushed to
use both units, splits by something else (slant, stroke width, size of loops), and the figure shows by what.

Where a plain network trained on ByClass's 52 letter classes (dataset "emnist-byclass-letters") sits beside the
run, its accuracy at telling each letter's case (given the letter) is the reference: how well case can be told
apart at all, with the case labels.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from . import byclass, data, figures, models, pipeline, sources, subunits
from .download import file_digest
from .config import TrainConfig
from .errors import UserError
from . import run_folder
from .run_folder import find_complete_runs, read_json, read_run_config, write_json_atomic

RECORD_FILE = run_folder.CASE_CHECK  # in the run directory; evaluate_test.py's report reads it
SAME_SHAPE = "cijklmopsuvwxyz"  # the letters EMNIST's ByMerge and Balanced splits merge: their cases look alike
BY_CASE_SHARE = 0.8  # a letter splits by case when this share of its capitals, and of its small letters, each
#                      pick a unit their own case dominates
PER_UNIT = 8  # images drawn per sub-unit and letter
CASE_COLOURS = {0: (0.05, 0.25, 0.8), 1: (0.9, 0.4, 0.0)}  # ink of capitals (blue) and of small letters (orange)
QUICK_LETTERS = 2_600  # a --quick run (a smoke test) is checked on this many test letters, 50 of each letter and case


def applies(config: dict) -> bool:
    """Whether a run (its config.json "config") is one the case check is for: a single case-aware network trained
    on EMNIST Letters (an ensemble's members each have sub-units of their own, which no one figure can show)."""
    return (config.get("dataset") == "emnist-letters" and config.get("model_options", {}).get("subunits", 1) > 1
            and config.get("ensemble", 1) == 1)


def own_unit_choice(subunit_probs: np.ndarray, letters: np.ndarray, subunits_per_class: int) -> np.ndarray:
    """For each image, which of its own letter's sub-units (0..K-1) is most active."""
    grouped = subunit_probs.reshape(len(subunit_probs), -1, subunits_per_class)
    return grouped[np.arange(len(letters)), letters].argmax(axis=1)


def most_confident_of_each_unit(subunit_probs: np.ndarray, letters: np.ndarray, subunits_per_class: int,
                                per_unit: int) -> dict:
    """For each letter and each of its sub-units, the letter's images that picked that unit, the ones it is most
    sure of first (a unit that took few images shows only those: the figure never shows a unit an image it did
    not pick)."""
    choice = own_unit_choice(subunit_probs, letters, subunits_per_class)
    chosen = {}
    for c in range(subunit_probs.shape[1] // subunits_per_class):
        for j in range(subunits_per_class):
            picked = np.flatnonzero((letters == c) & (choice == j))
            order = np.argsort(-subunit_probs[picked, c * subunits_per_class + j], kind="stable")
            chosen[(c, j)] = picked[order[:per_unit]]
    return chosen


def case_separation(counts: np.ndarray) -> float:
    """From a (units, 2) table of capitals and small letters per unit: the smaller of the two cases' shares of
    images that picked a unit their own case dominates (1.0: each case in units of its own; 0.0 for a case that
    dominates no unit)."""
    majority = counts.argmax(axis=1)
    shares = []
    for case in (0, 1):
        total = counts[:, case].sum()
        if total:
            shares.append(counts[majority == case, case].sum() / total)
    return float(min(shares)) if len(shares) == 2 else 0.0


def letter_row(name: str, choice: np.ndarray, cases: np.ndarray, subunits_per_class: int) -> dict:
    """One letter's line of the table: capitals and small letters per unit, purity (with its floor, the share of
    the letter's commoner case, which any split reaches), NMI, and whether it split by case."""
    counts = np.zeros((subunits_per_class, 2), np.int64)
    np.add.at(counts, (choice, cases), 1)
    total = int(counts.sum())
    return {"letter": name, "capitals": int(counts[:, 0].sum()), "small": int(counts[:, 1].sum()),
            "units": counts.tolist(),
            "purity": round(float(counts.max(axis=1).sum() / total), 4) if total else None,
            "majority_share": round(float(counts.sum(axis=0).max() / total), 4) if total else None,
            "nmi": round(float(normalized_mutual_info_score(cases, choice)), 4) if total else None,
            "by_case": bool(total) and case_separation(counts) >= BY_CASE_SHARE,
            "same_shape": name[-1] in SAME_SHAPE}


def measure(subunit_probs: np.ndarray, letters: np.ndarray, cases: np.ndarray, subunits_per_class: int) -> dict:
    """The case check from the sub-unit probabilities of cased letters: overall, each image's most active sub-unit
    against its letter and case (the 52 ByClass letter classes, as merged MNIST's units are scored against the
    digit); per letter, the unit it picks among its own letter's against its case."""
    overall = subunits.recovery(subunit_probs, letters + len(data.LETTERS) * cases)
    choice = own_unit_choice(subunit_probs, letters, subunits_per_class)
    rows = [letter_row(name, choice[letters == c], cases[letters == c], subunits_per_class)
            for c, name in enumerate(data.LETTERS)]
    counted = [r for r in rows if r["purity"] is not None]
    floor = sum(max(r["capitals"], r["small"]) for r in counted) / max(1, sum(r["capitals"] + r["small"]
                                                                              for r in counted))
    return {"hidden_label": "letter and case (EMNIST ByClass)", **overall,
            "purity_ignoring_case": round(float(floor), 4), "subunits": subunits_per_class,
            "by_case_share": BY_CASE_SHARE, "same_shape_letters": SAME_SHAPE, "letters": rows}


def reference_case_accuracy(class_probs: np.ndarray, letters: np.ndarray, cases: np.ndarray) -> list:
    """Per letter, how often a 52-class network (A..Z then a..z) tells the case right, given the letter: the
    more probable of the letter's two classes against the true case. None for a letter with no images."""
    picked = (class_probs[np.arange(len(letters)), letters + len(data.LETTERS)]
              > class_probs[np.arange(len(letters)), letters]).astype(np.int64)
    return [round(float((picked[letters == c] == cases[letters == c]).mean()), 4) if np.any(letters == c) else None
            for c in range(len(data.LETTERS))]


def reference_record(runs_dir: Path, letters: byclass.CasedLetters) -> dict:
    """The reference run's name and its case accuracy per letter, where `runs_dir` holds one; else nothing."""
    reference = find_reference_run(runs_dir)
    if reference is None:
        return {}
    probs = pipeline.predict(models.load(run_folder.model_path(reference)), letters.images)
    return {"reference_run": reference.name,
            "reference_case_accuracy": reference_case_accuracy(probs, letters.labels, letters.cases)}


def find_reference_run(runs_dir: Path) -> Path | None:
    """A complete run of a plain network on ByClass's 52 letter classes under `runs_dir`, if there is one."""
    for run_dir in find_complete_runs(runs_dir) if Path(runs_dir).is_dir() else []:
        config = read_run_config(run_dir)
        if config.get("dataset") == data.BYCLASS_LETTERS and config.get("model_options", {}).get("subunits", 1) == 1:
            return run_dir
    return None


# ---------------------------------------------------------------------------------------------------------
# Words and tables


def summary_line(record: dict) -> str:
    rows = [r for r in record["letters"] if r["purity"] is not None]
    distinct = [r for r in rows if not r["same_shape"]]
    alike = [r for r in rows if r["same_shape"]]
    split = "".join(r["letter"][-1] for r in rows if r["by_case"]) or "none"
    letters = record.get("split", "test letters").split(" (")[0]
    return (f"Against ByClass's case labels ({record['images']:,} {letters}): purity {record['purity']:.3f} "
            f"(a head that ignored case would score {record['purity_ignoring_case']:.3f}), NMI {record['nmi']:.3f} "
            f"against letter and case; split by case: {sum(r['by_case'] for r in distinct)} of the {len(distinct)} "
            f"letters whose cases differ in shape, {sum(r['by_case'] for r in alike)} of the {len(alike)} whose "
            f"cases look alike (letters split: {split})")


def markdown_table(record: dict) -> str:
    """The per-letter table: capitals and small letters each unit took, purity with its floor, NMI, whether the
    letter split by case, whether its cases look alike, and the reference network's case accuracy if measured."""
    units = record["subunits"]
    reference = record.get("reference_case_accuracy")
    header = (["letter", "capitals", "small"] + [f"unit {j + 1} (cap / small)" for j in range(units)]
              + ["purity (floor)", "NMI", "split by case", "cases look alike"]
              + ([f"reference: case told right (`{record['reference_run']}`)"] if reference else []))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c, r in enumerate(record["letters"]):
        if r["purity"] is None:
            continue
        cells = ([f"`{r['letter']}`", f"{r['capitals']:,}", f"{r['small']:,}"]
                 + [f"{cap:,} / {small:,}" for cap, small in r["units"]]
                 + [f"{r['purity']:.3f} ({r['majority_share']:.3f})", f"{r['nmi']:.3f}",
                    "**yes**" if r["by_case"] else "no", "yes" if r["same_shape"] else "no"]
                 + ([f"{reference[c]:.1%}" if reference[c] is not None else ""] if reference else []))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# The figure


def case_mosaic(images: np.ndarray, cases: np.ndarray, rows: list, per_row: int) -> np.ndarray:
    """figures.mosaic in colour: each image's ink in its case's colour on white."""
    ink = figures.mosaic(images, rows, per_row) / 255.0
    case_of_pixel = figures.mosaic(np.broadcast_to(cases.astype(np.float64)[:, None, None], (len(cases), 28, 28)),
                                   rows, per_row)
    colour = np.where((case_of_pixel == 1)[..., None], CASE_COLOURS[1], CASE_COLOURS[0])
    rgb = 1.0 - np.nan_to_num(ink)[..., None] * (1.0 - colour)
    return np.clip(rgb, 0.0, 1.0)


def plot_case_units(letters: byclass.CasedLetters, chosen: dict, record: dict, title: str) -> plt.Figure:
    """A row per letter; for each of its sub-units, the images that unit is most sure of, capitals in blue, small
    letters in orange, and how many capitals and small letters the unit took in all."""
    units, names = record["subunits"], letters.class_names
    step = 28 + figures.TILE_GAP
    fig, axes = plt.subplots(1, units, figsize=(units * (PER_UNIT * 0.55 + 1.3) + 1.2, len(names) * 0.55 + 1.0),
                             squeeze=False)
    labels = [f"{r['letter']}{' *' if r['by_case'] else ''}" for r in record["letters"]]
    for j, ax in enumerate(axes[0]):
        rows = [chosen.get((c, j), []) for c in range(len(names))]
        ax.imshow(case_mosaic(letters.images, letters.cases, rows, PER_UNIT), interpolation="nearest")
        ax.set_title(f"sub-unit {j + 1}", fontsize=9, loc="left")
        ax.set_xticks([])
        ax.set_yticks([c * step + 14 for c in range(len(names))], labels if j == 0 else [], fontsize=9)
        ax.tick_params(length=0)
        for c, r in enumerate(record["letters"]):
            cap, small = r["units"][j]
            capital, small_letter = r["letter"].split("/")
            ax.text(PER_UNIT * step, c * step + 14, f" {cap:,} {capital}\n {small:,} {small_letter}", fontsize=7,
                    va="center", ha="left", linespacing=1.0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=CASE_COLOURS[case]) for case in (0, 1)]
    fig.legend(handles, ["capital (true case, from ByClass)", "small letter"], loc="lower center", ncol=2,
               fontsize=8, frameon=False)
    fig.suptitle(title + "\n* split by case; beside each block: how many capitals and small letters the unit took",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    return fig


# ---------------------------------------------------------------------------------------------------------
# The whole check of one run


def check_run(run_dir: Path, data_dir, results_dir: Path, show: bool = False) -> Path | None:
    """Measure a case-aware letters run against the true case of letters it never trained on: print the per-letter
    table, save it in <run>/case_check.json and draw results/<run>_case_check.png (returned). A run trained on
    letters taken from EMNIST ByClass (data.letters_from_byclass) is checked on its own validation letters, whose
    case its data kept (its test letters are for evaluate_test.py alone); a run trained on EMNIST Letters, on
    ByClass's test letters where ByClass is in the data folders or the cache. Where it is not found, say so and
    return None (nothing is downloaded for this)."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    units = config["model_options"]["subunits"]
    if data.is_from_byclass(run_folder.read_data_record(run_dir)):
        letters, split = validation_letters(config, data_dir), "validation letters (EMNIST ByClass, held out)"
    else:
        directories = data.resolve_data_dirs(data_dir)
        if byclass.find_byclass("test", directories) is None:
            where = sources.where_looked(byclass.BYCLASS, directories)
            print(f"No case check: EMNIST ByClass was not found in {where} (NIST's gzip.zip holds it; give its "
                  f"folder with --data-dir)")
            return None
        letters, split = byclass.load_cased_letters(split="test", data_dir=data_dir), "test letters (EMNIST ByClass)"
        if config.get("quick"):
            letters = stratified_letters(letters, QUICK_LETTERS)
    probs = subunits.subunit_probabilities(models.load(run_folder.model_path(run_dir)), letters.images)
    record = {"split": split, "source": letters.source.get("description", ""),
              "model_sha256": file_digest(run_folder.model_path(run_dir)),
              **measure(probs, letters.labels, letters.cases, units), **reference_record(run_dir.parent, letters)}
    write_json_atomic(run_dir / RECORD_FILE, record)
    print(summary_line(record))
    print(markdown_table(record))
    chosen = most_confident_of_each_unit(probs, letters.labels, units, PER_UNIT)
    title = (f"{run_dir.name}: the ByClass {split.split(' (')[0]} each sub-unit is most sure of (purity "
             f"{record['purity']:.3f}, NMI {record['nmi']:.3f} against letter and case)")
    return figures.save(plot_case_units(letters, chosen, record, title),
                        Path(results_dir) / f"{run_dir.name}_case_check.png", show=show)


def validation_letters(config: dict, data_dir) -> byclass.CasedLetters:
    """A run's validation letters with their case, rebuilt from its config (the same split, the same seed), for a
    run trained on letters taken from ByClass: `fine_val` holds their ByClass letter class (letter + 26 x case)."""
    dataset = data.load_training_data(TrainConfig(**{**config, "data_dir": data_dir or config.get("data_dir")}),
                                      expand=False)
    cases = dataset.fine_val // len(data.LETTERS)
    return byclass.CasedLetters(dataset.x_val, dataset.y_val, cases, dataset.source)


def stratified_letters(letters: byclass.CasedLetters, count: int) -> byclass.CasedLetters:
    """`count` of the letters, in proportion to each letter and case (all of them where they are no more)."""
    if len(letters.labels) <= count:
        return letters
    _, chosen = data.stratified_split(letters.labels + len(data.LETTERS) * letters.cases, count, seed=0)
    return byclass.CasedLetters(letters.images[chosen], letters.labels[chosen], letters.cases[chosen],
                                {**letters.source, "subset": count})


def check_if_missing(run_dir: Path, data_dir, results_dir: Path) -> Path | None:
    """check_run for a case-aware letters run whose current model has not been checked yet (none other), from the
    folders given, else those the run was trained from. A ByClass that cannot be read is said in one line and
    stops nothing else: the check is an extra to the run's judgement."""
    config = read_run_config(run_dir)
    record_path = Path(run_dir) / RECORD_FILE
    if not applies(config) or (record_path.is_file() and read_json(record_path).get("model_sha256")
                               == file_digest(run_folder.model_path(run_dir))):
        return None
    try:
        return check_run(run_dir, data_dir or config.get("data_dir"), results_dir)
    except UserError as exc:
        print(f"No case check of {Path(run_dir).name}: {exc}")
        return None
