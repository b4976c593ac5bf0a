"""Training speed: the Keras mnist_cnn recipe exactly as the example runs it, against this project's paths.

Everything is measured in one invocation on one machine; the machine may be shared, so compare the figures of
one run with each other, never with a figure from another run.

1. Throughput. Each variant trains two epochs (validating after each, as the scripts do) and predicts, in a
   fresh process, in interleaved rounds (all variants, then all again), so a busy moment hurts every variant
   alike and each process's peak memory is its own: `reference` feeds float32 numpy arrays into fit at batch
   128, as the Keras example does; `project` trains the same network with the same optimizer from the uint8
   tf.data pipeline the scripts use, one endless iterator; the rest are the levers (a new iterator each epoch,
   bfloat16, batch size, and on request XLA and threads) and the fast recipe's network. Reported: training
   images/s over the second epoch (its start included: Keras may spend seconds there), steady-state images/s,
   inference images/s, peak memory, and achieved GFLOP/s (a training step counted as 3x the forward pass).
2. EMNIST-shaped throughput: 124,800 random 28x28 images in 26 classes (content does not matter for speed).
3. Time to accuracy on real MNIST, the same 54,000/6,000 split for both: the reference recipe (12 epochs) and
   the project's fast recipe (`fast` in emnist_study/recipes.py). Validation accuracy is checked every quarter
   epoch with the clock stopped. Reported: training time until it first reaches 99.0%, and until it reaches
   the reference recipe's own best.

    python benchmark.py --data-dir ../shared/data    # about 30 minutes on 2 CPU cores
    python benchmark.py --quick                      # a smoke run on 2,000 images, two at a time

Prints a table and writes benchmark.json under --results-dir (default results/). The test set is never read.

`--epoch-seconds` measures something else: the seconds per training image of every recipe run_all.py runs (the
study's, or with `--full` everything's), each trained for two epochs in a fresh process by the project's own
training code on 124,800 EMNIST-shaped random images (content does not change speed), the second epoch timed.
It writes emnist_study/epoch_seconds.json, from which run_all.py estimates every step, with the machine named.

    python benchmark.py --epoch-seconds              # about 20 minutes on 2 CPU cores; --full about an hour
    python benchmark.py --epoch-seconds --jobs 2     # two copies of each at once, as run_all.py trains: an hour
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from emnist_study import cli, data, interrupts, recipes, study_plan
from emnist_study.errors import UserError
from emnist_study.idx import encode_idx
from emnist_study.run_folder import library_versions, now, write_json_atomic

TARGET_ACCURACY = 0.99
TIME_TO_ACCURACY_RECIPES = ("reference", "fast")
EMNIST_LETTERS_TRAIN = 124_800  # images in the EMNIST Letters training split

# name -> (what it is, how it differs from the project path: mnist_cnn, tf.data repeated, batch 128, float32)
VARIANTS = {
    "reference": ("Keras example: float32 numpy arrays into fit, batch 128", {"feed": "numpy"}),
    "per_epoch": ("uint8 tf.data pipeline, a new iterator each epoch (Keras's default)", {"feed": "per_epoch"}),
    "project": ("same network and optimizer, the project's path: one endless uint8 tf.data iterator", {}),
    "bfloat16": ("project path, mixed_bfloat16 precision", {"precision": "mixed_bfloat16"}),
    "batch256": ("project path, batch 256", {"batch_size": 256}),
    "fast_net": ("the fast recipe's network (half-width vgg_bn), batch 256, its precision",
                 {"model": "vgg_bn", "model_options": recipes.FAST["model_options"], "batch_size": 256,
                  "precision": recipes.FAST["precision"]}),
    "xla": ("project path, XLA (jit_compile=True)", {"jit_compile": True}),
    "interop1": ("project path, 1 inter-op thread", {"inter_op_threads": 1}),
}
# XLA (0.16x) and one inter-op thread (0.96x) did not pay in the first benchmark (docs/benchmark.json of
# 2026-11-24, steady batches only); measured again only when named.
DEFAULT_VARIANTS = ["reference", "per_epoch", "project", "bfloat16", "batch256", "fast_net"]
# Two epochs of the real size: the second shows what every epoch after the first costs, its start included.
FULL = {"images": 54_000, "val_images": 6_000, "warmup_batches": 5, "inference_images": 10_000, "rounds": 2}
QUICK = {"images": 2_000, "val_images": 200, "warmup_batches": 2, "inference_images": 500, "rounds": 1}


def first_time_at(points: list[dict], accuracy: float) -> float | None:
    return next((p["seconds"] for p in points if p["val_accuracy"] >= accuracy), None)


def run_children(args: argparse.Namespace, children_args: list[list[str]]) -> list[dict]:
    """Run measurements side by side, each in a fresh Python process (several share the cores out, as
    run_all.py's side-by-side steps do), passing their progress through (each line marked with its child, where
    there are several), and return their results."""
    data_dirs = [arg for folder in args.data_dir or [] for arg in ("--data-dir", folder)]
    env = {**os.environ, **(study_plan.side_by_side_env(len(children_args)) if len(children_args) > 1 else {})}
    children = [subprocess.Popen([sys.executable, __file__, *child_args, *data_dirs], stdout=subprocess.PIPE,
                                 text=True, env=env) for child_args in children_args]
    results = [None] * len(children)

    def relay(i: int) -> None:
        mark = f"[{i + 1}] " if len(children) > 1 else ""
        for line in children[i].stdout:
            if line.startswith("RESULT "):
                results[i] = json.loads(line[len("RESULT "):])
            else:
                print(mark + line, end="", flush=True)

    relays = [threading.Thread(target=relay, args=(i,)) for i in range(len(children))]
    for thread in relays:
        thread.start()
    for thread, child in zip(relays, children):
        thread.join()
        child.wait()
    for child_args, child, result in zip(children_args, children, results):
        if child.returncode != 0 or result is None:
            raise UserError(f"the measurement {' '.join(child_args)} failed (exit {child.returncode}); see above")
    return results


def write_standin_letters(directory: Path, images: int) -> None:
    """EMNIST Letters' training files, uncompressed, holding `images` random images with balanced labels 1..26."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.arange(images) % 26 + 1).astype(np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "emnist-letters-train-images-idx3-ubyte").write_bytes(
        encode_idx(rng.integers(0, 256, size=(images, 28, 28), dtype=np.uint8)))
    (directory / "emnist-letters-train-labels-idx1-ubyte").write_bytes(encode_idx(labels))


def recipes_by_speed(full: bool) -> dict:
    """One config for each speed key the study's steps (or all steps) train, the first that has it."""
    chosen = {}
    for step in study_plan.training_steps(full, ("mnist", "emnist-letters")):
        for config in step.trains:
            chosen.setdefault(study_plan.speed_key(config), config)
    return chosen


def run_epoch_seconds(args: argparse.Namespace, out: Path) -> dict:
    """Time every recipe asked for, each in a process of its own (with --jobs N, N copies side by side, as
    run_all.py --jobs N trains); the file's entries for other machines are kept, and so are this machine's
    figures for the other way of training (one at a time, or side by side), and with --keys its other keys."""
    images = 2_600 if args.quick else EMNIST_LETTERS_TRAIN
    known = recipes_by_speed(full=True)
    keys = args.keys or list(recipes_by_speed(args.full))
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise UserError(f"no recipe trains at speed {', '.join(unknown)}; choose from {', '.join(known)}")
    measured = {}
    with tempfile.TemporaryDirectory(prefix="epoch-seconds-") as work:
        write_standin_letters(Path(work) / "data", images)
        for i, key in enumerate(keys, 1):
            print(f"[{i}/{len(keys)}] {key}: 2 epochs on {images:,} EMNIST-shaped images"
                  + (f", {args.jobs} trainings side by side" if args.jobs > 1 else ""), flush=True)
            children = [["--child-epoch-seconds", key, "--work-dir", work, "--job", str(job),
                         *(["--quick"] if args.quick else [])] for job in range(args.jobs)]
            results = run_children(args, children)
            measured[key] = {**results[0], "finished_at": now()}
            if args.jobs > 1:  # each training's own rate: the time a step takes when it shares the machine so
                for figure in ("epoch_seconds", "seconds_per_image"):
                    measured[key][figure] = float(np.mean([r[figure] for r in results]))
                measured[key]["each_seconds_per_image"] = [r["seconds_per_image"] for r in results]
    machine = study_plan.this_machine()
    try:
        machines = json.loads(out.read_text(encoding="utf-8"))["machines"]
    except (OSError, ValueError, KeyError):
        machines = []
    others = [m for m in machines if m.get("machine") != machine]
    mine = next((m for m in machines if m.get("machine") == machine), {})
    replaced = mine.get(study_plan.SIDE_BY_SIDE, {}) if args.jobs > 1 else mine
    earlier = replaced.get("epochs", {}) if args.keys else {}  # --keys adds to these figures
    measured = {**earlier, **measured}
    figures = {"command": " ".join(["python", "benchmark.py", *sys.argv[1:]]), "finished_at": now(),
               "source": f"measured by python benchmark.py --epoch-seconds on {images:,} EMNIST-shaped images",
               "machine": machine, "libraries": library_versions(), "standin_images": images,
               "seconds_per_image": {key: m["seconds_per_image"] for key, m in measured.items()}, "epochs": measured}
    if args.jobs > 1:
        side_by_side = {**figures, "jobs": args.jobs, "threads": study_plan.side_by_side_env(args.jobs)}
        record = {**mine, "machine": machine, study_plan.SIDE_BY_SIDE: side_by_side}
    else:
        record = {**figures, **({study_plan.SIDE_BY_SIDE: mine[study_plan.SIDE_BY_SIDE]} if study_plan.SIDE_BY_SIDE in mine else {})}
    return {"machines": [record, *others]}


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def run_measurements(args: argparse.Namespace, measurements: list[tuple[str, list[str]]]) -> list[dict]:
    """Each (what, child args) in a fresh process, one at a time. A --quick run's figures mean nothing (it shows
    that every measurement works), so it runs them two at a time, one TensorFlow thread each, to finish sooner."""
    at_once = 2 if args.quick else 1
    results = []
    for first in range(0, len(measurements), at_once):
        batch = measurements[first:first + at_once]
        for i, (what, _) in enumerate(batch, 1):
            print((f"[{i}] " if len(batch) > 1 else "") + what, flush=True)
        results += run_children(args, [child_args for _, child_args in batch])
    return results


def run_benchmark(args: argparse.Namespace) -> dict:
    sizes = QUICK if args.quick else FULL
    names = args.variants or DEFAULT_VARIANTS
    quick = ["--quick"] if args.quick else []
    measurements = [(f"[throughput, round {r + 1}/{sizes['rounds']}] {name}: {VARIANTS[name][0]}",
                     ["--child-throughput", name, "--classes", "10", *quick])
                    for r in range(sizes["rounds"]) for name in names]
    emnist_images = QUICK["images"] if args.quick else EMNIST_LETTERS_TRAIN
    measurements.append((f"[EMNIST-shaped] project path, {emnist_images:,} random images, 26 classes",
                         ["--child-throughput", "project", "--classes", "26", *(quick or ["--emnist-shaped"])]))
    measurements += [(f"[time to accuracy] {recipe_name} recipe on MNIST (validation every quarter epoch)",
                      ["--child-time-to-accuracy", recipe_name, *quick]) for recipe_name in TIME_TO_ACCURACY_RECIPES]
    results = run_measurements(args, measurements)
    rounds = {name: [results[r * len(names) + i] for r in range(sizes["rounds"])] for i, name in enumerate(names)}
    emnist, *points_by_recipe = results[len(names) * sizes["rounds"]:]
    throughput = {}
    for name, measured in rounds.items():
        median = {key: float(np.median([m[key] for m in measured])) for key in measured[0]}
        throughput[name] = {"what": VARIANTS[name][0], **{k: round(v, 1) for k, v in median.items()},
                            "rounds": measured}
    if "reference" in throughput:
        for row in throughput.values():
            row["train_speedup"] = ratio(row["train_images_per_s"], throughput["reference"]["train_images_per_s"])

    emnist["epoch_seconds"] = round(EMNIST_LETTERS_TRAIN / emnist["train_images_per_s"], 1)

    time_to_accuracy = {}
    for recipe_name, points in zip(TIME_TO_ACCURACY_RECIPES, points_by_recipe):
        time_to_accuracy[recipe_name] = {"points": points, "best_val_accuracy": max(p["val_accuracy"] for p in points),
                                         "seconds_to_target": first_time_at(points, TARGET_ACCURACY),
                                         "total_seconds": points[-1]["seconds"]}
    reference_best = time_to_accuracy["reference"]["best_val_accuracy"]
    for row in time_to_accuracy.values():
        row["seconds_to_reference_best"] = first_time_at(row["points"], reference_best)
    ref, fast = time_to_accuracy["reference"], time_to_accuracy["fast"]
    return {
        "command": " ".join(["python", "benchmark.py", *sys.argv[1:]]), "finished_at": now(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                    **study_plan.this_machine()},
        "libraries": library_versions(), "throughput": throughput, "emnist_shaped": emnist,
        "time_to_accuracy": {"target": TARGET_ACCURACY, "reference_best": reference_best, **time_to_accuracy,
                             "fast_vs_reference_to_target": ratio(fast["seconds_to_target"], ref["seconds_to_target"]),
                             "fast_vs_reference_to_reference_best": ratio(fast["seconds_to_reference_best"],
                                                                          ref["seconds_to_reference_best"])},
    }


def print_table(report: dict) -> None:
    print(f"\n{'variant':<10} {'train img/s':>11} {'vs ref':>7} {'steady':>7} {'epoch start s':>13} "
          f"{'infer img/s':>11} {'peak MB':>8} {'GFLOP/s':>8}  what")
    for name, row in report["throughput"].items():
        print(f"{name:<10} {row['train_images_per_s']:>11,.0f} {row.get('train_speedup') or 0:>6.2f}x "
              f"{row['steady_images_per_s']:>7,.0f} {row['epoch_start_seconds']:>13.1f} "
              f"{row['inference_images_per_s']:>11,.0f} {row['peak_memory_mb']:>8,.0f} "
              f"{row['train_gflop_per_s']:>8.1f}  {row['what']}")
    print("(train img/s: the second epoch, its start included; steady: batches after warm-up in the first; "
          "epoch start: seconds before the second epoch's first batch finishes, beyond one batch's time)")
    e = report["emnist_shaped"]
    print(f"EMNIST-shaped (124,800 images, 26 classes, project path): {e['train_images_per_s']:,.0f} img/s, "
          f"{e['epoch_seconds']} s per epoch, peak {e['peak_memory_mb']:,.0f} MB")
    t = report["time_to_accuracy"]
    print("\nTime to accuracy on MNIST validation (training time, validation checks excluded):")
    for name in ("reference", "fast"):
        r = t[name]
        print(f"  {name:<10} to {t['target']:.1%}: {r['seconds_to_target']} s; to the reference's best "
              f"({t['reference_best']:.2%}): {r['seconds_to_reference_best']} s; best {r['best_val_accuracy']:.2%} "
              f"in {r['total_seconds']} s")
    print(f"  fast / reference: {t['fast_vs_reference_to_target']} to {t['target']:.1%}, "
          f"{t['fast_vs_reference_to_reference_best']} to the reference's best")


def networks() -> dict:
    """Every network the measurements build, by the name a recipe gives it: the step scripts' and the experiments'."""
    import emnist_experiments
    import nielsen_cnn
    import warmup_mnist_mlp

    return {**emnist_experiments.networks(), "mnist_mlp": warmup_mnist_mlp.build_mlp,
            "nielsen_dropout": nielsen_cnn.build_nielsen}


def trainer(config):
    """The code that trains `config`, as its script does: a step script's `train(run, data)`, or for a recipe of
    the experiments, training.train with the recipe's network."""
    import nielsen_cnn
    import warmup_mnist_cnn
    import warmup_mnist_mlp
    from emnist_study import training

    if config.script == recipes.BASE.script:
        build = networks()[config.model]
        return lambda run, data: training.train(run, data, build)
    return {"mnist_mlp": warmup_mnist_mlp.train, "mnist_cnn": warmup_mnist_cnn.train,
            "keras2015_cnn": lambda run, data: warmup_mnist_cnn.train(run, data, variant="keras2015"),
            "nielsen_dropout": nielsen_cnn.train, "nielsen_dense100": nielsen_cnn.train}[config.model]


def measure_in_this_process(args: argparse.Namespace) -> None:
    """A child's one measurement, printed as a RESULT line for the parent to read."""
    from emnist_study import speed_measurements  # TensorFlow loads only here, in the child processes that measure

    if args.child_epoch_seconds:
        result = speed_measurements.measure_epoch_seconds(args.child_epoch_seconds, recipes_by_speed(full=True),
                                             str(Path(args.work_dir) / "data"), Path(args.work_dir) / f"job{args.job}",
                                             epochs=2, trainer=trainer)
    elif args.child_throughput:
        sizes = QUICK if args.quick else {**FULL, "images": EMNIST_LETTERS_TRAIN} if args.emnist_shaped else FULL
        result = speed_measurements.measure_throughput(VARIANTS[args.child_throughput][1], sizes, args.classes, networks())
    else:
        result = speed_measurements.measure_time_to_accuracy(args.child_time_to_accuracy, args.data_dir, args.quick, networks())
    print("RESULT " + json.dumps(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_data_dir(parser)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one round, one epoch")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), metavar="NAME",
                        help=f"throughput variants to measure (default: {' '.join(DEFAULT_VARIANTS)}; "
                             f"also: {' '.join(v for v in VARIANTS if v not in DEFAULT_VARIANTS)})")
    parser.add_argument("--results-dir", default="results",
                        help="where benchmark.json goes (default: %(default)s)")
    parser.add_argument("--out", metavar="FILE", help="with --epoch-seconds: the file to write (default: "
                                                      f"emnist_study/{study_plan.EPOCH_SECONDS_FILE.name})")
    parser.add_argument("--epoch-seconds", action="store_true",
                        help=f"time one epoch of every recipe run_all.py runs; writes {study_plan.EPOCH_SECONDS_FILE.name} "
                             "(with --out, there instead)")
    parser.add_argument("--full", action="store_true", help="with --epoch-seconds: the recipes of run_all.py --full too")
    parser.add_argument("--jobs", type=cli.positive_int, default=1, metavar="N",
                        help="with --epoch-seconds: time N trainings of each recipe side by side, the cores shared "
                             "out, as run_all.py --jobs N trains (default: %(default)s)")
    parser.add_argument("--keys", nargs="+", metavar="KEY",
                        help="with --epoch-seconds: measure only these speed keys, keeping the file's others")
    # Internal: one measurement in a child process.
    parser.add_argument("--child-throughput", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--child-time-to-accuracy", choices=TIME_TO_ACCURACY_RECIPES, help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--emnist-shaped", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-epoch-seconds", help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    parser.add_argument("--job", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_epoch_seconds or args.child_throughput or args.child_time_to_accuracy:
        measure_in_this_process(args)
        return
    if args.epoch_seconds:
        out = Path(args.out) if args.out else study_plan.EPOCH_SECONDS_FILE
        report = run_epoch_seconds(args, out)
        write_json_atomic(out, report)
        record = report["machines"][0]
        for key, m in (record[study_plan.SIDE_BY_SIDE] if args.jobs > 1 else record)["epochs"].items():
            print(f"  {key:<48} {m['epoch_seconds']:>8.1f} s per epoch of {m['training_images']:,} images")
        print(f"Saved {out}")
        return

    # fail now, not in 15 minutes
    data.load_train_val("mnist", val_fraction=0.1, seed=1, data_dir=args.data_dir, limit=cli.QUICK_IMAGES)
    report = run_benchmark(args)
    out = Path(args.results_dir) / "benchmark.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, report)
    print_table(report)
    print(f"\nSaved {out}")


if __name__ == "__main__":
    interrupts.run_main(main)
