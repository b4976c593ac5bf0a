"""How faithfully predict.py converts a photographed page: real letters in, the network's reading compared.

Real handwritten letters are taken from the test part of the letters data (by default EMNIST ByClass's letters in
../shared/data/emnist-byclass-letters), each made into a page as a user would photograph it (emnist_study/
pages.py: scaled up to 100-300 pixels, dark on light, off-centre on a larger page, uneven light, a little blur,
grain; some light on dark, some saved as JPEG), and several side by side as words. predict.py reads the pages, as
a user runs it, and its letters are compared with the same network's reading of the original 28x28 images:

    single letters    the share of pages whose one letter predict.py reads as the network reads the original
    letters in words  the share of the words' letters read so (a word split into too many or too few letters
                      counts each of its letters as not agreeing)
    resized straight  for the single letters, the same share where each page is resized straight to 28x28 (as
                      peers do), inverted where it is dark on light
    pixels            for the single letters, the mean absolute difference (0..255) and the correlation between
                      the 28x28 image predict.py gave the network and the original

    python predict_fidelity.py emnist_cnn
    python predict_fidelity.py exp_sgd_tta --letters 500 --words 100 --data-dir path/to/letters

`--calibrate LETTERS` measures, instead, what the conversion's two calibrated constants were chosen by: LETTERS
letters of the run's train part (never those measured), each photographed as above and converted back with a
range of NIST_STROKE_PIXELS and EMNIST_EDGE_BLUR (emnist_study/handwriting.py), and the round trip's pixels against
the originals for each; and the blur EMNIST's own letters show at their edges. No network is used.

    python predict_fidelity.py emnist_cnn --calibrate 400

Writes predict_fidelity.json under --results-dir (the figures, the commands' settings, the CPU, the date) and
keeps the pages and predict.py's CSV under --pages-dir.
"""

import argparse
import csv
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from emnist_study import cli, data, interrupts, run_folder
from emnist_study.run_folder import named_run_dirs, read_run_config, require_complete

WORD_LETTERS = (3, 6)  # letters in a word, at least and at most
SURE = 0.6  # the agreement is also given apart for the letters the network reads this sure of on their originals
LIGHT_ON_DARK_EVERY = 5  # every fifth page is light ink on dark paper
JPEG_EVERY = 2  # every second page is saved as a JPEG, as a phone saves it


def make_pages(images: np.ndarray, sizes: list[int], pages_dir: Path, prefix: str, rng) -> list[Path]:
    """A page per group of `sizes[i]` consecutive images, written under `pages_dir`."""
    from emnist_study import pages

    paths, first = [], 0
    for number, size in enumerate(sizes):
        page = pages.photographed(images[first: first + size], rng,
                                  light_on_dark=number % LIGHT_ON_DARK_EVERY == LIGHT_ON_DARK_EVERY - 1)
        suffix = ".jpg" if number % JPEG_EVERY else ".png"
        paths.append(pages.save(page, pages_dir / f"{prefix}-{number:05d}{suffix}"))
        first += size
    return paths


def resized_straight(path: Path) -> np.ndarray:
    """A page as the peers that resize a photo straight to 28x28 give it to the network: greyscale, bicubic, its
    dark ink on light paper turned light on dark and scaled to 0..255."""
    from PIL import Image

    with Image.open(path) as page:
        small = np.asarray(page.convert("L").resize((28, 28), Image.Resampling.BICUBIC), np.float64)
    ink = 255 - small if np.median(small) > 127 else small  # light paper: dark ink, turned light
    ink -= ink.min()
    return np.round(255 * ink / max(ink.max(), 1e-6)).astype(np.uint8)


def read_csv(path: Path) -> dict[str, list[str]]:
    """{image: [the letters predict.py read, left to right]} from its --csv file."""
    read = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            read.setdefault(row["image"], []).append(row["letter"])
    return read


def share(agreed: np.ndarray) -> float | None:
    """The share of True in `agreed`, or None where it is empty."""
    return float(np.mean(agreed)) if agreed.size else None


def percent(value: float | None) -> str:
    return "none" if value is None else f"{value:.2%}"


def pixel_agreement(given: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the mean absolute difference, 0..255, the correlation) of each 28x28 image against its original."""
    given, truth = given.astype(np.float64), truth.astype(np.float64)
    difference = np.abs(given - truth).mean(axis=(1, 2))
    correlation = np.array([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(given, truth)])
    return difference, correlation


def half_extent(images: np.ndarray) -> np.ndarray:
    """The longer side, in pixels, of each 28x28 image's ink at half brightness."""
    ink = images > 127
    spans = []
    for axis in (1, 2):
        seen = ink.any(axis=axis)
        first, last = seen.argmax(axis=1), seen.shape[1] - seen[:, ::-1].argmax(axis=1)
        spans.append(np.where(seen.any(axis=1), last - first, 0))
    return np.maximum(*spans)


def emnist_edge_blur(images: np.ndarray) -> float:
    """The median blur EMNIST's letters show at their edges, in NIST's pixels, measured as handwriting.edge_blur
    measures a page's (on each image enlarged 8 times). A letter L NIST pixels long spans 28 L / (L + 8) of the
    28 pixels (2 pixels of the blur's reach and 2 of border on each side), which gives L from its extent."""
    from PIL import Image

    from emnist_study import handwriting

    extents, blurs = half_extent(images), []
    for image, extent in zip(images, extents):
        if not 0 < extent < 28:
            continue
        big = Image.fromarray(image.astype(np.float32) / 255, mode="F").resize((224, 224), Image.Resampling.BICUBIC)
        nist_length = 8 * extent / (28 - extent)
        blurs.append(handwriting.edge_blur(np.clip(np.asarray(big), 0, 1)) / 8 * (nist_length + 8) / 28)
    return float(np.median(blurs))


def calibrate(config: dict, count: int, args) -> None:
    """The round trip of `count` photographed letters of the train part for a range of the conversion's two
    calibrated constants, printed and written to predict_calibration.json under --results-dir."""
    from emnist_study import handwriting, pages

    train = data.load_split(config["dataset"], "train", args.data_dir or config.get("data_dir"))
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(train.labels), count, replace=False)
    inks, originals = [], []
    for index in chosen:
        page = pages.photographed(train.images[index: index + 1], rng).image.astype(np.float32) / 255
        letters = handwriting.letter_inks(page, f"letter {index}")
        if len(letters) == 1:
            inks.append(letters[0][0])
            originals.append(train.images[index])
    originals = np.stack(originals)
    lengths = np.array([handwriting.nist_length(ink > 0.5) for ink in inks])
    settings = (handwriting.NIST_STROKE_PIXELS, handwriting.EMNIST_EDGE_BLUR)
    rows = []
    print(f"{len(inks)} letters of the train part, each photographed and converted back "
          f"(the constants now: NIST_STROKE_PIXELS {settings[0]}, EMNIST_EDGE_BLUR {settings[1]}):")
    print("  stroke  blur  correlation  abs. difference  extent - original's")
    try:
        for stroke in (3.5, 3.75, 4.0, 4.25, 4.5):
            for blur in (0.6, 0.8, 1.0):
                handwriting.NIST_STROKE_PIXELS, handwriting.EMNIST_EDGE_BLUR = stroke, blur
                given = np.stack([handwriting.emnist_frame(ink) for ink in inks])
                difference, correlation = pixel_agreement(given, originals)
                offset = float(np.mean(half_extent(given) - half_extent(originals)))
                rows.append({"stroke_pixels": stroke, "edge_blur": blur,
                             "correlation_median": float(np.median(correlation)),
                             "difference_median": float(np.median(difference)), "extent_offset": offset})
                print(f"  {stroke:6.2f}  {blur:4.1f}  {rows[-1]['correlation_median']:11.4f}  "
                      f"{rows[-1]['difference_median']:15.2f}  {offset:+19.2f}")
    finally:
        handwriting.NIST_STROKE_PIXELS, handwriting.EMNIST_EDGE_BLUR = settings
    blur = emnist_edge_blur(train.images[chosen])
    print(f"EMNIST's own letters' edges (the same {count}): blur {blur:.2f} NIST pixels in the median")
    low, high = handwriting.NIST_CHARACTER_PIXELS
    print(f"The letters' lengths in NIST's pixels, as the conversion finds them: median {np.median(lengths):.1f}; "
          f"{np.mean(lengths <= low):.1%} at the least ({low}), {np.mean(lengths >= high):.1%} "
          f"at the most ({high})")
    from emnist_study import study_plan

    result = {"dataset": config["dataset"], "train_data": data.source_line(train.source), "letters": len(inks),
              "seed": args.seed, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "cpu": study_plan.machine_name(study_plan.this_machine()), "emnist_edge_blur_median": blur,
              "nist_length_median": float(np.median(lengths)),
              "settings": rows}
    out = Path(args.results_dir) / "predict_calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"Saved {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a complete run on letters (or digits): a directory or a name under --runs-dir")
    parser.add_argument("--runs-dir", default="runs", help="where the runs are (default: %(default)s)")
    cli.add_data_dir(parser, default="the folders the run was trained from, then ")
    parser.add_argument("--letters", type=cli.positive_int, default=2000,
                        help="pages of a single letter (default: %(default)s)")
    parser.add_argument("--words", type=cli.positive_int, default=400,
                        help=f"pages of a word of {WORD_LETTERS[0]} to {WORD_LETTERS[1]} letters "
                             f"(default: %(default)s)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--pages-dir", default="results/fidelity_pages",
                        help="where the pages and predict.py's CSV go (default: %(default)s)")
    parser.add_argument("--results-dir", default="results", help="where the figures go (default: %(default)s)")
    parser.add_argument("--calibrate", type=cli.positive_int, metavar="LETTERS",
                        help="instead: the conversion's calibration on LETTERS letters of the train part")
    args = parser.parse_args(argv)
    (run_dir,) = named_run_dirs(args.runs_dir, [args.run])
    require_complete(run_dir)
    config = read_run_config(run_dir)
    if args.calibrate:
        return calibrate(config, args.calibrate, args)
    test = data.load_test_set(config["dataset"], args.data_dir or config.get("data_dir"))

    rng = np.random.default_rng(args.seed)
    sizes = [int(rng.integers(*WORD_LETTERS, endpoint=True)) for _ in range(args.words)]
    chosen = rng.choice(len(test.labels), args.letters + sum(sizes), replace=False)
    singles, in_words = chosen[: args.letters], chosen[args.letters:]
    pages_dir = Path(args.pages_dir)
    started = time.perf_counter()
    single_pages = make_pages(test.images[singles], [1] * args.letters, pages_dir, "letter", rng)
    word_pages = make_pages(test.images[in_words], sizes, pages_dir, "word", rng)
    print(f"Made {len(single_pages):,} pages of a letter and {len(word_pages):,} of a word "
          f"({len(in_words):,} letters) in {time.perf_counter() - started:.0f} s, under {pages_dir}")

    # predict.py, as a user runs it, on every page at once (the network loads once)
    import predict

    table = pages_dir / "read.csv"
    started = time.perf_counter()
    letters = predict.main([str(run_dir), *map(str, single_pages + word_pages), "--csv", str(table)])
    seconds = time.perf_counter() - started
    read = read_csv(table)

    from emnist_study import models, pipeline  # TensorFlow is loaded by now

    names = data.class_names_of(config["dataset"])
    model = models.load(run_folder.model_path(run_dir))
    probabilities = pipeline.predict(model, test.images[chosen])
    original = probabilities.argmax(axis=1)
    # where the network is near a coin flip on the original itself, a page's change of a pixel's fraction decides
    sure = probabilities[: args.letters].max(axis=1) >= SURE
    expected = [names[c] for c in original]
    single_agree = [read[str(p)] == [expected[i]] for i, p in enumerate(single_pages)]
    word_agree, split_wrong, first = [], 0, args.letters
    for path, size in zip(word_pages, sizes):
        found, wanted = read[str(path)], expected[first: first + size]
        split_wrong += len(found) != size
        word_agree += [len(found) == size and a == b for a, b in zip(found, wanted)]
        first += size
    # the pixels: the 28x28 images predict.py gave the network, against the originals
    seen = [letters[str(p)] for p in single_pages]
    one = [i for i, found in enumerate(seen) if len(found) == 1]
    difference, correlation = pixel_agreement(np.stack([seen[i][0].image for i in one]), test.images[singles[one]])
    # what peers do, for comparison: the whole photo resized straight to 28x28 (its ink made light on black)
    straight = np.stack([resized_straight(p) for p in single_pages])
    straight_read = pipeline.predict(model, straight).argmax(axis=1)
    disagreements = {}
    for i, agree in enumerate(single_agree):
        if not agree:
            key = f"{expected[i]} -> {'+'.join(read[str(single_pages[i])])}"
            disagreements[key] = disagreements.get(key, 0) + 1

    from emnist_study import study_plan

    machine = study_plan.this_machine()
    result = {
        "run": run_dir.name, "dataset": config["dataset"], "test_data": data.source_line(test.source),
        "seed": args.seed, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": study_plan.machine_name(machine),
        "single_letters": len(single_pages), "single_agreement": float(np.mean(single_agree)),
        "single_sure": int(sure.sum()), "single_agreement_sure": share(np.array(single_agree)[sure]),
        "single_agreement_unsure": share(np.array(single_agree)[~sure]),
        "single_split_wrong": len(single_pages) - len(one),
        "resized_straight_agreement": float(np.mean(straight_read == original[: args.letters])),
        "words": len(word_pages), "letters_in_words": len(in_words),
        "word_letter_agreement": float(np.mean(word_agree)), "words_split_wrong": split_wrong,
        "original_accuracy_single": float(np.mean(original[: args.letters] == test.labels[singles])),
        "page_accuracy_single": float(np.mean([read[str(p)] == [names[test.labels[s]]]
                                               for p, s in zip(single_pages, singles)])),
        "mean_absolute_difference": {"median": float(np.median(difference)),
                                     "p90": float(np.percentile(difference, 90))},
        "correlation": {"median": float(np.median(correlation)), "p10": float(np.percentile(correlation, 10))},
        "predict_seconds": seconds,
        "disagreements": dict(sorted(disagreements.items(), key=lambda item: -item[1])),
    }
    out = Path(args.results_dir) / "predict_fidelity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"Single letters: {result['single_agreement']:.2%} of {len(single_pages):,} read as on the original "
          f"({result['single_split_wrong']} pages not read as one letter)")
    print(f"  of the {result['single_sure']:,} the network gives {SURE:.0%} or more on the original: "
          f"{percent(result['single_agreement_sure'])}; of the rest, near a coin flip there: "
          f"{percent(result['single_agreement_unsure'])}")
    print(f"Letters in words: {result['word_letter_agreement']:.2%} of {len(in_words):,} "
          f"({split_wrong} of {len(word_pages)} words split into another number of letters)")
    print(f"Resized straight to 28x28 instead: {result['resized_straight_agreement']:.2%} of the single letters "
          f"read as on the original")
    print(f"Pixels: mean absolute difference median {result['mean_absolute_difference']['median']:.1f} of 255, "
          f"correlation median {result['correlation']['median']:.3f} (10th percentile "
          f"{result['correlation']['p10']:.3f})")
    print(f"Saved {out}")


if __name__ == "__main__":
    interrupts.run_main(main, resumable=False)
