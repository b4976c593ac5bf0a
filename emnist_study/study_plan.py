"""The study run_all.py runs: its steps in order, what each trains, and how long each takes on 2 CPU cores.

Plain data and arithmetic, no TensorFlow, so `run_all.py --dry-run` and `--help` answer at once and need no data.

The estimates come from epoch_seconds.json beside this file: `python benchmark.py --epoch-seconds` trains every
recipe the steps use for two epochs on EMNIST-shaped images (124,800 random 28x28 images in 26 classes: content
does not change speed) and records the second epoch's seconds per training image, under the machine it ran on.
The file holds one entry per kind of machine (an entry may instead be compiled from earlier runs' timings, and
then says so); run_all estimates with this machine's entry, else the first, and gives the others' totals. A
step's minutes are epochs x members x training images x that figure, for the dataset it trains on. Steps side by
side (run_all.py --jobs N) take the entry's side-by-side figures (benchmark.py --epoch-seconds --jobs N), where
it has them; the plan is then the schedule of the steps over N lanes.
"""

import json
import os
import platform
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import precision, recipes
from .commands import command_line
from .config import TrainConfig

EPOCH_SECONDS_FILE = Path(__file__).with_name("epoch_seconds.json")
SIDE_BY_SIDE = "side_by_side"  # a machine's figures for trainings run side by side (benchmark.py --jobs N)
# Training images per epoch (the training split less the validation set) of each dataset.
TRAIN_SPLIT_IMAGES = {"mnist": 60_000, "emnist-letters": 124_800}
NIELSEN_BATCH = 50  # Nielsen's 10, with the learning rate scaled to match (0.15): 5x fewer steps for a CPU
CNN_SEEDS = (1, 2, 3)  # one seed cannot show whether a claimed figure holds
# The case-aware recipe's 20 epochs cost more than the rest of the letters steps together (paired copies double
# every step). The study trains it for 3, which keeps it within 4 hours on 2 cores: on merged MNIST 3 epochs were
# enough for the sub-units to split, a stuck class restarted after epoch 2 included (docs/case-aware.md), and a
# letters epoch holds twice MNIST's images. --full trains the recipe's 20.
STUDY_CASE_AWARE_EPOCHS = 3
STUDY_CASE_AWARE = "case_aware_resplit"
COMMITTED_RECIPES = ("sgd_tta", "ensemble_tta")  # the best single network and the best ensemble


@dataclass
class Step:
    """One command of the study: the script, its arguments, the dataset it needs, and the runs it trains (their
    configs, as the script will build them, for the estimate; none for figures and the evaluation)."""

    script: str
    args: list
    dataset: str
    trains: list = field(default_factory=list)
    split_images: int | None = None  # images in the training split found for the dataset (None: the full split's)

    @property
    def run_names(self) -> list:
        return [config.run_name for config in self.trains]


def experiment(name: str, dataset: str, epochs: int | None = None, seed: int = 1) -> Step:
    """An experiment on a dataset; another seed trains under a name of its own (<run>-seed2)."""
    prefix = {"emnist-letters": "exp", "mnist": "mnist_exp", "mnist-merged": "merged_exp"}[dataset]
    config = recipes.recipe(name, f"{prefix}_{name}", dataset)
    args = ["--exp", name] + (["--dataset", dataset] if dataset != "emnist-letters" else [])
    if epochs:
        config, args = replace(config, epochs=epochs), args + ["--epochs", str(epochs)]
    if seed > 1:
        config = replace(config, seed=seed, run_name=f"{config.run_name}-seed{seed}")
        args += ["--seed", str(seed), "--run-name", config.run_name]
    return Step("emnist_experiments", args, "mnist" if dataset.startswith("mnist") else dataset, [config])


def cnn_seed(variant: str, seed: int, epsilon: float | None = None) -> Step:
    """The Keras CNN warm-up (or its 2015 form) with another seed or Adadelta epsilon, under a name of its own."""
    config = recipes.CNN_VARIANTS[variant]
    name = config.run_name + (f"-eps{epsilon:g}" if epsilon else "") + (f"-seed{seed}" if seed > 1 else "")
    args = (["--variant", variant] if variant != "keras2" else []) + (["--epsilon", f"{epsilon:g}"] if epsilon else [])
    if seed > 1:
        args += ["--seed", str(seed)]
    if name != config.run_name:
        args += ["--run-name", name]
    return Step("warmup_mnist_cnn", args, "mnist", [replace(config, run_name=name, seed=seed)])


def nielsen(ensemble: int = 1) -> Step:
    config = replace(recipes.NIELSEN_VARIANTS["dropout"], batch_size=NIELSEN_BATCH, ensemble=ensemble)
    args = ["--batch-size", str(NIELSEN_BATCH)] + (["--ensemble", str(ensemble)] if ensemble > 1 else [])
    if ensemble > 1:
        config = replace(config, run_name=f"{config.run_name}-ensemble{ensemble}")
    return Step("nielsen_cnn", args, "mnist", [config])


def letters_baseline(model: str) -> Step:
    return Step("emnist_baseline", ["--model", model], "emnist-letters", [recipes.LETTERS_BASELINES[model]])


# The study: the MNIST warm-ups once each, the letters baselines, the committed letters recipes (single network,
# ensemble) and the case-aware one; the letters results early (the first within the first hour), Nielsen's
# 40-epoch network last.
STUDY = [
    Step("warmup_mnist_mlp", [], "mnist", [recipes.MNIST_MLP]),
    Step("warmup_mnist_cnn", [], "mnist", [recipes.MNIST_CNN]),
    letters_baseline("cnn"),
    letters_baseline("mlp"),
    experiment(COMMITTED_RECIPES[0], "emnist-letters"),
    experiment(STUDY_CASE_AWARE, "emnist-letters", epochs=STUDY_CASE_AWARE_EPOCHS),
    experiment(COMMITTED_RECIPES[1], "emnist-letters"),
    nielsen(),
]
# --full: everything there is, after the study: the seeds, the 2015 network behind the 99.25% claim, Nielsen's
# vote of five, every experiment on MNIST, merged MNIST and letters.
MERGED_EXPERIMENTS = ("plain_head", "case_aware", "case_aware_paired", "case_aware_resplit")
FULL_EXTRA = [
    *[cnn_seed("keras2", seed) for seed in CNN_SEEDS[1:]],
    *[cnn_seed("keras2", seed, epsilon=1e-6) for seed in CNN_SEEDS],
    *[cnn_seed("keras2015", seed) for seed in CNN_SEEDS],
    nielsen(ensemble=5),
    *[experiment(name, "mnist") for name in recipes.EXPERIMENTS],
    # the committed letters recipes' MNIST figures are the mean of three seeds, not one run's luck
    *[experiment(name, "mnist", seed=seed) for name in COMMITTED_RECIPES for seed in CNN_SEEDS[1:]],
    # 5 epochs are enough for the sub-units to split the merged digits (docs/case-aware.md's figures are from these)
    *[experiment(name, "mnist-merged", epochs=5) for name in MERGED_EXPERIMENTS],
    *[experiment(name, "emnist-letters") for name in recipes.EXPERIMENTS],
]


def training_steps(full: bool, datasets, split_images: dict | None = None) -> list[Step]:
    """The training steps of the study (or of everything, `full`) on the chosen datasets, in order. `split_images`
    ({dataset: images in its training split}) gives the size of the copies found, where it is not the full split
    (TRAIN_SPLIT_IMAGES): EMNIST ByClass's letters, say; the estimates scale with it."""
    steps = STUDY + ([renamed_if_shortened(step) for step in FULL_EXTRA] if full else [])
    sizes = split_images or {}
    return [replace(step, split_images=sizes.get(base_dataset(step.dataset))) for step in steps
            if step.dataset in datasets]


def base_dataset(dataset: str) -> str:
    """The dataset whose files a dataset is read from: merged MNIST is MNIST's."""
    return "mnist" if dataset.startswith("mnist") else dataset


def renamed_if_shortened(step: Step) -> Step:
    """A --full step whose run the study trains under the same name with other settings (fewer epochs) gets a
    name of its own ("-full"): --resume would refuse to continue the study's run with different settings."""
    study = {config.run_name: config for s in STUDY for config in s.trains}
    if all(study.get(config.run_name, config) == config for config in step.trains):
        return step
    (config,) = step.trains
    name = f"{config.run_name}-full"
    return Step(step.script, step.args + ["--run-name", name], step.dataset, [replace(config, run_name=name)])


# ---------------------------------------------------------------------------------------------------------
# Estimates


def speed_key(config: TrainConfig) -> str:
    """What sets a recipe's seconds per image: the network and its width, the batch, the arithmetic, the
    distortions, and the case-aware head's extras. Recipes alike in these train alike fast."""
    options = config.model_options
    parts = [config.model] + ([f"width{options['width']}"] if "width" in options else [])
    parts += [f"batch{config.batch_size}"] + ([config.precision] if config.precision != "float32" else [])
    if config.augment:
        parts.append("elastic" if config.augment.get("elastic") else "affine")
    if config.subunits > 1:
        parts.append(f"subunits{config.subunits}")
    parts += (["paired"] if config.paired_copies else []) + (["resplit"] if config.resplit_idle_units else [])
    return "-".join(parts)


def training_images(config: TrainConfig, split_images: int | None = None) -> int:
    """Images in one epoch of the run: its dataset's training split (`split_images`, else the full split's size)
    less the validation set, five times over with Nielsen's shifted copies."""
    split = split_images or TRAIN_SPLIT_IMAGES[base_dataset(config.dataset)]
    images = round(split * (1 - config.val_fraction))
    return images * (5 if config.expand_shifts else 1)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_jobs() -> int:
    """Trainings run_all runs side by side: two on a CPU of two cores or more, one where a GPU trains (and on
    Windows, where a step cannot be sent Ctrl-C)."""
    nvidia = Path("/proc/driver/nvidia/gpus")
    has_gpu = (nvidia.is_dir() and any(nvidia.iterdir())) or shutil.which("nvidia-smi") is not None
    return 1 if has_gpu or cores() < 2 or os.name == "nt" else 2


def side_by_side_env(jobs: int) -> dict:
    """TensorFlow's threads for one of `jobs` trainings side by side: the cores shared out, one inter-op thread.
    On 2 cores, two one-thread trainings get through 1.2 to 1.7 times the images of one two-thread training
    (docs/speed.md): a network of 28x28 images keeps a second thread of its own training only partly busy."""
    return {"TF_NUM_INTRAOP_THREADS": str(max(1, cores() // jobs)), "TF_NUM_INTEROP_THREADS": "1"}


def this_machine() -> dict:
    """What sets this machine's speed, as epoch_seconds.json records it (read without starting TensorFlow)."""
    flags = precision.cpu_flags()
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.is_file() else []
    return {"cpu": names[0] if names else platform.processor() or platform.machine(), "cpu_count": cores(),
            "avx2": "avx2" in flags, "avx512": "avx512f" in flags, "bfloat16": bool(flags & precision.BF16_CPU_FLAGS)}


# What sets a CPU's speed for these networks, most first: native bfloat16 (the recipes' "auto" precision trains in
# it), AVX-512, AVX2, then the number of cores and the model.
LIKENESS = ("bfloat16", "avx512", "avx2", "cpu_count", "cpu")


def likeness(machine: dict, here: dict) -> tuple:
    """How alike a recorded machine is to this one, feature by feature in LIKENESS's order (higher: more alike)."""
    return tuple(machine.get(key) == here.get(key) for key in LIKENESS)


def all_epoch_seconds(path: Path = EPOCH_SECONDS_FILE) -> list[dict]:
    """Every machine's measurement, the one nearest this machine by its features first (marked "this_machine"
    where it is this very kind of machine); empty if none is recorded. Where the first is not this machine's, it
    carries what this CPU was detected as ("detected")."""
    try:
        machines = json.loads(Path(path).read_text(encoding="utf-8"))["machines"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    here = this_machine()
    marked = [{**m, "this_machine": all(m.get("machine", {}).get(k) == v for k, v in here.items())}
              for m in machines]
    # this very kind of machine is alike in every feature, so it comes first
    ordered = sorted(marked, key=lambda m: likeness(m.get("machine", {}), here), reverse=True)
    if ordered and not ordered[0]["this_machine"]:
        ordered[0] = {**ordered[0], "detected": here}
    return ordered


def load_epoch_seconds(path: Path = EPOCH_SECONDS_FILE) -> dict:
    """The measurement for this machine (same CPU, cores and vector units), else the nearest by features: its
    seconds per training image of each speed key, and where they come from. Empty if nothing is recorded."""
    machines = all_epoch_seconds(path)
    return machines[0] if machines else {}


def seconds_per_image(measured: dict, jobs: int = 1) -> dict:
    """Each speed key's seconds per training image for one of `jobs` trainings run side by side: measured so
    where the machine's entry has them (benchmark.py --epoch-seconds --jobs N), else taken as no faster
    together than one at a time (each at 1/jobs of its speed alone)."""
    alone = measured.get("seconds_per_image", {})
    if jobs == 1:
        return alone
    no_faster = {key: s * jobs for key, s in alone.items()}
    if side_by_side_measured(measured, jobs):
        return {**no_faster, **measured[SIDE_BY_SIDE]["seconds_per_image"]}
    return no_faster


def step_minutes(step: Step, measured: dict, jobs: int = 1) -> float | None:
    """Minutes the step takes from scratch by the measured speeds, as one of `jobs` trainings side by side; None
    where a recipe's speed is not measured."""
    per_image = seconds_per_image(measured, jobs)
    seconds = 0.0
    for config in step.trains:
        key = speed_key(config)
        if key not in per_image:
            return None
        seconds += (config.epochs * max(config.ensemble, 1) * training_images(config, step.split_images)
                    * per_image[key])
    return seconds / 60


def schedule(minutes: list, jobs: int) -> list[tuple[int, float | None]]:
    """(lane, minute it ends) of each step, as run_all runs them: in order, each on the first lane to come free;
    a step of unknown length (None) is taken to be over at once, and its end is None."""
    lanes = [0.0] * jobs
    planned = []
    for length in minutes:
        lane = min(range(jobs), key=lanes.__getitem__)
        lanes[lane] += length or 0.0
        planned.append((lane, lanes[lane] if length is not None else None))
    return planned


def plan_minutes(minutes: list, jobs: int) -> float:
    """Minutes until the last step ends, the steps of unknown length left out."""
    return max([end for _, end in schedule(minutes, jobs) if end is not None], default=0.0)


def side_by_side_measured(measured: dict, jobs: int) -> bool:
    return jobs == 1 or measured.get(SIDE_BY_SIDE, {}).get("jobs") == jobs


def machine_name(machine: dict) -> str:
    """A machine by what it is: "AMD EPYC, 2 cores, AVX2, no AVX-512, no native bfloat16"."""
    features = [("AVX2" if machine["avx2"] else "no AVX2")] if "avx2" in machine else []
    features += [("" if machine.get(key) else "no ") + name
                 for key, name in (("avx512", "AVX-512"), ("bfloat16", "native bfloat16"))]
    return ", ".join([machine.get("cpu", "a CPU"), f"{machine.get('cpu_count', '?')} cores", *features])


def machine_line(measured: dict) -> str:
    """Which entry of epoch_seconds.json the figures are, by its CPU, and where they come from; for the entry the
    plan uses, whether it is this CPU's, or which CPU was detected instead."""
    machine = measured.get("machine", {})
    if not machine:
        return f"no measured speeds (run {command_line('benchmark.py', '--epoch-seconds')})"
    name = machine_name(machine)
    if measured.get("this_machine"):
        name = f"by the entry for the CPU detected here: {name}"
    elif "detected" in measured:
        detected = machine_name(measured["detected"])
        name = f"by the entry nearest by its features to the CPU detected here ({detected}): {name}"
    return f"{name}; {measured.get('source', 'measured')}, {measured.get('finished_at', '')[:10]}"
