"""Read your own handwriting: a trained run's network on photos, scans or drawings of letters.

Each image (PNG or JPEG, any size, colour or grey, dark ink on light paper or light on dark) holds one letter or
a short word. Its letters are found left to right and each is converted as EMNIST's makers converted NIST's scans
(Cohen et al. 2017, Fig. 1): blurred, cut out, centred in a square frame with a border, down-sampled to 28x28 with
bicubic interpolation, scaled to 0..255, light on black (emnist_study/handwriting.py says how, docs/predict.md how
faithfully). Peers that resize a photo straight to 28x28 give the network images unlike any it trained on.

The network predicts as it does at test time (evaluate_test.py): an ensemble votes or averages, a recipe with
test-time views averages over them. For each image it prints the letters read and each letter's three likeliest
classes; for a case-aware run, which of the letter's sub-units won.

    python predict.py emnist_cnn page.jpg
    python predict.py exp_sgd_tta word.png letter.png --csv results/read.csv --no-show
    python predict.py mnist_cnn digit.png --show         # a run on MNIST reads digits the same way

`--csv FILE` writes one row per letter: image, index (left to right, from 0), letter, probability, second,
second_probability, third, third_probability (and, for a case-aware run, subunit). `--show` draws each image beside
the 28x28 images the network saw; `--no-show` only saves that figure, beside the CSV or in --results-dir.
"""

import argparse
from pathlib import Path

import numpy as np

from emnist_study import data, handwriting, interrupts, run_folder
from emnist_study.config import TrainConfig
from emnist_study.errors import UserError
from emnist_study.interrupts import DEBUG_HELP
from emnist_study.run_folder import named_run_dirs, read_run_config, require_complete, write_csv_atomic
from emnist_study.plurals import plural

TOP = 3  # classes shown for each letter
PLACES = ("letter", "second", "third")  # the CSV's names of the likeliest classes, likeliest first
FIGURE_PIXELS = 400  # the figure shows each image at most this many pixels each way


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=DEBUG_HELP)
    parser.add_argument("run", help="a complete run directory (or a name under --runs-dir)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="a photo, scan or drawing (PNG or JPEG)")
    parser.add_argument("--runs-dir", default="runs", help="where the runs are (default: %(default)s)")
    parser.add_argument("--csv", metavar="FILE", help="write one row per letter found to FILE")
    parser.add_argument("--results-dir", default="results",
                        help="where the figure goes without --csv (default: %(default)s)")
    figure = parser.add_mutually_exclusive_group()
    figure.add_argument("--show", action="store_true", help="draw each image beside the 28x28 images the network "
                                                            "saw, on screen where there is one, and save it")
    figure.add_argument("--no-show", action="store_true", help="only save that figure as a PNG")
    args = parser.parse_args(argv)
    (run_dir,) = named_run_dirs(args.runs_dir, [args.run])
    require_complete(run_dir)  # an unfinished run is named, with the command that continues it
    config = TrainConfig(**read_run_config(run_dir))
    class_names = data.class_names_of(config.dataset)

    # The images are read and their letters found before TensorFlow loads: a bad file answers at once.
    letters, thumbnails = {}, {}
    for path in args.images:
        page = handwriting.read_page(path)
        letters[path] = handwriting.letters_of_page(page, path)
        if args.show or args.no_show:  # for the figure, a copy of each page small enough to keep
            step = -(-max(page.shape) // FIGURE_PIXELS)
            thumbnails[path] = page[::step, ::step]

    from emnist_study import figures, models, pipeline, subunits  # TensorFlow loads here

    model = models.load(run_folder.model_path(run_dir))
    images = np.stack([letter.image for found in letters.values() for letter in found])
    # A case-aware head is asked for its sub-units; their sums are the class probabilities, as it predicts.
    case_aware = config.subunits > 1
    if case_aware:
        unit_probabilities = subunits.subunit_probabilities(model, images)
        probabilities = subunits.class_probabilities(unit_probabilities, config.subunits)
    else:
        probabilities = pipeline.predict(model, images)
    if probabilities.shape[1] != len(class_names):
        raise UserError(f"{run_folder.model_path(run_dir)} answers in {probabilities.shape[1]} classes, but "
                        f"{config.dataset} has {len(class_names)}: it is not the network this run trained; "
                        f"train the run again with --overwrite")

    rows, readings, first = [], [], 0
    for path, found in letters.items():
        best = np.argsort(-probabilities[first: first + len(found)], axis=1, kind="stable")[:, :TOP]
        read = []
        print(f"{path}: {plural(len(found), 'letter')} read: "
              f"{' '.join(class_names[b[0]] for b in best)}")
        for index, top in enumerate(best):
            p = probabilities[first + index]
            row = {"image": str(path), "index": index}
            for place, c in zip(PLACES, top):
                row[place] = class_names[c]
                row["probability" if place == "letter" else f"{place}_probability"] = round(float(p[c]), 6)
            line = ", ".join(f"{class_names[c]} {p[c]:.1%}" for c in top)
            if case_aware:  # which of the winning class's sub-units took the most of its probability
                k = config.subunits
                row["subunit"] = int(np.argmax(unit_probabilities[first + index, top[0] * k: (top[0] + 1) * k])) + 1
                line += f"; sub-unit {row['subunit']} of {k} won"
            print(f"  {index}: {line}")
            rows.append(row)
            read.append((class_names[top[0]], float(p[top[0]])))
        readings.append((Path(path).name, thumbnails.get(path), [letter.image for letter in found], read))
        first += len(found)

    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(Path(args.csv), rows)
        print(f"Saved {args.csv}")
    if args.show or args.no_show:
        where = Path(args.csv).with_suffix(".png") if args.csv else Path(args.results_dir) / f"{run_dir.name}_read.png"
        title = f"What {run_dir.name} read (left: the image; right: the 28x28 images it saw)"
        print(f"Saved {figures.save(figures.plot_readings(readings, title), where, show=args.show)}")
    return letters  # {image: its letters}, the 28x28 images the network read


if __name__ == "__main__":
    interrupts.run_main(main, resumable=False)
