"""The recipes: each a plain TrainConfig. The warm-ups say what each step script trains (its run name, dataset,
epochs and batch; the network and the optimizer are in the script); the experiments are named, each with one line
saying what it adds and, above it, why. What each measured is in docs/experiments.md and docs/case-aware.md.

emnist_experiments.py trains the experiments; run_all.py and benchmark.py read both to plan and time the study.
The same experiment runs on any dataset (EMNIST Letters, MNIST, merged MNIST); only the run name's prefix changes.
"""

from dataclasses import replace

from .config import TrainConfig

# The warm-ups: what each step script trains, as the study plans it. Their networks and optimizers are in the
# scripts themselves (a run records the optimizer the script compiled, in config.json).
MNIST_MLP = TrainConfig(script="warmup_mnist_mlp.py", run_name="mnist_mlp", dataset="mnist", model="mnist_mlp",
                        epochs=20, batch_size=128)
MNIST_CNN = TrainConfig(script="warmup_mnist_cnn.py", run_name="mnist_cnn", dataset="mnist", model="mnist_cnn",
                        epochs=12, batch_size=128)
# The network the 99.25% claim was written for (keras-team/keras e23e86a, June 2015; see warmup_mnist_cnn.py).
KERAS2015_CNN = replace(MNIST_CNN, run_name="mnist_cnn_keras2015", model="keras2015_cnn")
CNN_VARIANTS = {"keras2": MNIST_CNN, "keras2015": KERAS2015_CNN}

# The warm-ups carried over to EMNIST Letters: the same networks and recipes, 26 outputs.
LETTERS_BASELINES = {
    "cnn": replace(MNIST_CNN, script="emnist_baseline.py", run_name="emnist_cnn", dataset="emnist-letters"),
    "mlp": replace(MNIST_MLP, script="emnist_baseline.py", run_name="emnist_mlp", dataset="emnist-letters"),
}

# Nielsen's chapter-6 networks and his protocol (see nielsen_cnn.py).
NIELSEN_PROTOCOL = dict(val_fraction=10_000 / 60_000, validation="last", expand_shifts=True, select="best_val")
NIELSEN_VARIANTS = {
    "dropout": TrainConfig(script="nielsen_cnn.py", run_name="nielsen_dropout", dataset="mnist",
                           model="nielsen_dropout", epochs=40, batch_size=10, **NIELSEN_PROTOCOL),
    "dense100": TrainConfig(script="nielsen_cnn.py", run_name="nielsen_dense100", dataset="mnist",
                            model="nielsen_dense100", epochs=60, batch_size=10, model_options={"l2_lambda": 0.1},
                            **NIELSEN_PROTOCOL),
}

# Keras 2's Adadelta defaults, spelled out, as warmup_mnist_cnn.py compiles them: Keras 3 changed the learning
# rate's default from 1.0 to 0.001 (1000x too slow for mnist_cnn), so nothing here is left to the library's defaults.
KERAS2_ADADELTA = {"name": "adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7}

# The experiments start from the warm-up CNN's recipe on letters.
BASE = replace(MNIST_CNN, script="emnist_experiments.py", run_name="", dataset="emnist-letters",
               optimizer=KERAS2_ADADELTA)

# Distortions handwriting survives: a few degrees of rotation, a couple of pixels of shift, some zoom and
# shear. No flips: a mirrored 'b' is a 'd'.
HANDWRITING = {"rotation_degrees": 10, "shift": 0.08, "zoom": 0.1, "shear": 0.15}
VGG = dict(model="vgg_bn", optimizer={"name": "adam", "learning_rate": 1e-3}, epochs=15)
MODERN = dict(model="vgg_bn", augment=HANDWRITING, epochs=20,
              optimizer={"name": "adamw", "learning_rate": 3e-3, "weight_decay": 1e-4},
              schedule={"name": "cosine", "warmup_fraction": 0.05})
# Speed over the last 0.1%: a quarter of vgg_bn's computation, bigger batches, a schedule that gets most of the
# way in a few epochs, and bfloat16 where the hardware has it.
FAST = dict(model="vgg_bn", model_options={"width": 16, "bn_momentum": 0.9}, batch_size=256, epochs=5,
            optimizer={"name": "adamw", "learning_rate": 3e-3, "weight_decay": 1e-4},
            schedule={"name": "cosine", "warmup_fraction": 0.1}, precision="auto")

SMOOTHED = {**MODERN, "label_smoothing": 0.1}  # label_smoothing, which the later recipes build on
# The classic optimizer for convolutional networks: SGD with Nesterov momentum, weight decay 5e-4.
SGD_NESTEROV = {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
SGD_MOMENTUM = {**SMOOTHED, "precision": "auto", "optimizer": SGD_NESTEROV}  # the sgd_momentum recipe
# Ensemble members: half-width label_smoothing networks (a quarter of the computation each) in bfloat16 where the
# hardware has it, their probabilities averaged.
HALF_WIDTH_MEMBERS = {**SMOOTHED, "model_options": {"width": 16}, "ensemble_combine": "average", "precision": "auto"}

EXPERIMENTS = {
    "baseline": ("the warm-up CNN with its Adadelta recipe, unchanged", {}),
    "vgg_bn": ("a deeper VGG-style CNN with batch norm, Adam", VGG),
    "fast": ("half-width vgg_bn, batch 256, AdamW with warm-up + cosine, 5 epochs: the benchmark's fast recipe",
             FAST),
    "augment": ("vgg_bn + handwriting augmentation (rotate, shift, zoom, shear)",
                {**VGG, "augment": HANDWRITING, "epochs": 20}),
    "plain_head": ("augment + AdamW with a cosine schedule and warm-up", MODERN),
    "label_smoothing": ("plain_head + label smoothing 0.1", SMOOTHED),
    # The time bfloat16 saves, spent on more epochs.
    "longer": ("label_smoothing for 32 epochs, in bfloat16 where the hardware has it",
               {**SMOOTHED, "epochs": 32, "precision": "auto"}),
    # Keras's AdamW decays by weight_decay x learning rate per step, so 1e-4 barely decays; 0.05 is the usual.
    "weight_decay": ("label_smoothing with AdamW's weight decay at 0.05 instead of 1e-4, in bfloat16",
                     {**SMOOTHED, "precision": "auto", "optimizer": {**MODERN["optimizer"], "weight_decay": 0.05}}),
    # SGD with momentum often generalises better than Adam's family on convolutional networks (Wilson et al. 2017).
    "sgd_momentum": ("label_smoothing with SGD + Nesterov momentum 0.9 (lr 0.1, weight decay 5e-4), in bfloat16",
                     SGD_MOMENTUM),
    # Simard, Steinkraus & Platt (2003): elastic distortion took a plain CNN to 99.6% on MNIST.
    "elastic": ("sgd_momentum + elastic distortion of the strokes (Simard et al.: alpha 34, sigma 4)",
                {**SGD_MOMENTUM, "augment": {**HANDWRITING, "elastic": {"alpha": 34, "sigma": 4}}}),
    # Half the strength, because the full one, on top of the affine distortions, cost accuracy.
    "elastic_mild": ("elastic at about half the strength: alpha 16, sigma 4",
                     {**SGD_MOMENTUM, "augment": {**HANDWRITING, "elastic": {"alpha": 16, "sigma": 4}}}),
    # More capacity for the time left in the budget: about 1.6x the computation.
    "wider": ("sgd_momentum with 40/80/160 filters instead of 32/64/128",
              {**SGD_MOMENTUM, "model_options": {"width": 40}}),
    # Members that differ by more than their seed should make mistakes that overlap less.
    "mixed_ensemble": ("5 half-width networks, AdamW and SGD in turn, 13 epochs each, probabilities averaged",
                       {**HALF_WIDTH_MEMBERS, "epochs": 13, "ensemble": 5,
                        "ensemble_variants": [{}, {"optimizer": SGD_NESTEROV}]}),
    "case_aware": ("plain_head with the case-aware head: 2 sub-units per class, probabilities summed",
                   {**MODERN, "model_options": {"subunits": 2}}),
    # Left alone, case_aware split look-alike classes by slant and stroke width; agreeing on two distorted copies
    # of an image asks for a split that distortion cannot change (an epoch costs about twice as much).
    "case_aware_paired": ("case_aware, its sub-units asked to agree on two distorted copies of each image (IIC)",
                          {**MODERN, "model_options": {"subunits": 2, "paired_copies": True}}),
    # Once one unit takes a whole class nothing pushes its images apart again, but k-means on the head's features
    # still splits it: so a collapsed class is split that way afresh.
    "case_aware_resplit": ("case_aware_paired, a class that collapsed into one sub-unit split afresh by k-means",
                           {**MODERN, "model_options": {"subunits": 2, "paired_copies": True},
                            "resplit_idle_units": 0.05}),
    # About the cost of one full-width run; averaging cancels much of each member's own mistakes.
    "ensemble": ("5 half-width label_smoothing networks, 15 epochs each, probabilities averaged",
                 {**HALF_WIDTH_MEMBERS, "epochs": 15, "ensemble": 5}),
    # The same budget spent the other way: stronger members, or more of them to average?
    "many_members": ("10 half-width label_smoothing networks, 7 epochs each, probabilities averaged",
                     {**HALF_WIDTH_MEMBERS, "epochs": 7, "ensemble": 10}),
    # `ensemble` with the best single network's optimizer (13 epochs keep it inside the 30-minute budget).
    "sgd_ensemble": ("5 half-width sgd_momentum networks, 13 epochs each, probabilities averaged",
                     {**HALF_WIDTH_MEMBERS, "epochs": 13, "ensemble": 5, "optimizer": SGD_NESTEROV}),
    # Test-time augmentation: the network trained on distorted, softened strokes, so it also judges best from
    # copies that look like them (a prediction costs 9 passes; training is unchanged).
    "sgd_tta": ("sgd_momentum, predicting from the average over the image and 8 copies distorted as in training",
                {**SGD_MOMENTUM, "test_time_views": 8}),
    # `ensemble` with the same views (14 epochs leave the views' time inside the 30-minute budget).
    "ensemble_tta": ("ensemble (14 epochs each) predicting from the image and 8 copies distorted as in training",
                     {**HALF_WIDTH_MEMBERS, "epochs": 14, "ensemble": 5, "test_time_views": 8}),
}


# What each network is called in messages and reports: the builder's name ("mnist_cnn") says where the network
# comes from, not what it is, and would call the warm-up CNN trained on letters an MNIST network.
NETWORK_NAMES = {
    "mnist_mlp": "warm-up MLP",
    "mnist_cnn": "warm-up CNN",
    "keras2015_cnn": "2015 Keras CNN",
    "nielsen_dropout": "Nielsen's CNN",
    "nielsen_dense100": "Nielsen's Dense(100) CNN",
    "vgg_bn": "VGG-style CNN",
}


def network_name(config: dict) -> str:
    """The network a run trained, in words: "warm-up CNN", "half-width VGG-style CNN, case-aware head (2 sub-units)
    x5 averaged + 8 views". `config` is a run's config.json "config" (or asdict of a TrainConfig)."""
    options = config.get("model_options") or {}
    name = NETWORK_NAMES.get(config["model"], config["model"])
    if options.get("width"):
        name = {16: "half-width ", 40: "wider "}.get(options["width"], f"width-{options['width']} ") + name
    if options.get("subunits", 1) > 1:
        name += f", case-aware head ({options['subunits']} sub-units)"
    if config.get("ensemble", 1) > 1:
        combine = {"vote": "majority vote", "average": "averaged"}.get(config.get("ensemble_combine", "vote"), "")
        name += f" x{config['ensemble']} {combine}"
    if config.get("test_time_views"):
        name += f" + {config['test_time_views']} views"
    return name

def recipe(name: str, run_name: str, dataset: str) -> TrainConfig:
    """The named experiment's config, before command-line flags are applied."""
    return replace(BASE, run_name=run_name, dataset=dataset, **EXPERIMENTS[name][1])
