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
    args = parser.parse_args(argv)
    (run_dir,) = named_run_dirs(args.runs_dir, [args.run])
    require_complete(run_dir)
    config = read_run_config(run_dir)
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
    predict.main([str(run_dir), *map(str, single_pages + word_pages), "--csv", str(table)])
    seconds = time.perf_counter() - started
    read = read_csv(table)

    from emnist_study import handwriting, models, pipeline  # TensorFlow is loaded by now

    names = data.class_names_of(config["dataset"])
    model = models.load(run_folder.model_path(run_dir))
    original = pipeline.predict(model, test.images[chosen]).argmax(axis=1)
    expected = [names[c] for c in original]
    single_agree = [read[str(p)] == [expected[i]] for i, p in enumerate(single_pages)]
    word_agree, split_wrong, first = [], 0, args.letters
    for path, size in zip(word_pages, sizes):
        found, wanted = read[str(path)], expected[first: first + size]
        split_wrong += len(found) != size
        word_agree += [len(found) == size and a == b for a, b in zip(found, wanted)]
        first += size
    # the pixels: the 28x28 images predict.py gave the network, against the originals
    seen = [handwriting.letters_of_page(handwriting.read_page(p), p) for p in single_pages]
    one = [i for i, letters in enumerate(seen) if len(letters) == 1]
    given = np.stack([seen[i][0].image for i in one]).astype(np.float64)
    truth = test.images[singles[one]].astype(np.float64)
    difference = np.abs(given - truth).mean(axis=(1, 2))
    correlation = np.array([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(given, truth)])
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
