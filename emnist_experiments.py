"""Step 5: experiments toward the best EMNIST Letters accuracy, one lever at a time.

Each experiment is a plain config (architecture, optimizer, schedule, augmentation, regularisation, epochs) in
the registry in emnist_study/recipes.py, trained as an ordinary run (artifacts, TensorBoard, --resume). Its network
is named there and defined in warmup_mnist_cnn.py or emnist_study/models.py (`--list` says which). To change a
network where you read it, copy my_experiment.py: one whole recipe, its layers, compile and fit written out in
Keras. After any run a leaderboard of validation accuracy (never test) with parameters and train time is printed
and saved as results/leaderboard.csv. The test set is left to evaluate_test.py.

`--dataset mnist` runs the same recipes on MNIST; `--dataset mnist-merged --merge 0-5,1-6,...` merges digits
into classes of two, a real-data stand-in for EMNIST's merged upper and lower case: there the case-aware head's
sub-units can be checked against the hidden digit (purity and normalised mutual information, saved as
subunits.json in the run and drawn as results/<run>_subunits.png).

    python emnist_experiments.py --list
    python emnist_experiments.py --exp vgg_bn case_aware
    python emnist_experiments.py --all --dataset mnist --data-dir ../shared/data
    python emnist_experiments.py --exp plain_head case_aware --dataset mnist-merged --merge 0-5,1-6,2-7,3-8,4-9
    python emnist_experiments.py --exp fast --subunits 2          # the case-aware head on another recipe
    python emnist_experiments.py --exp baseline --dataset emnist-byclass-letters --epochs 3
        # the case check's reference: a plain CNN on EMNIST ByClass's 52 letter classes, case labels and all
"""

from dataclasses import replace
from pathlib import Path

from emnist_study import cli, data, interrupts, run_folder
from emnist_study.config import TrainConfig
from emnist_study.errors import UserError
from emnist_study.recipes import (BASE, EXPERIMENTS, LETTERS_BASELINES, MNIST_CNN, MNIST_MLP, NIELSEN_VARIANTS,
                                  network_name, recipe)
from emnist_study.run_folder import all_run_dirs, read_run_config, read_summary, write_csv_atomic

# emnist-byclass-letters: ByClass's 52 letter classes, for the case check's reference network (case_check.py)
RUN_PREFIX = {"emnist-letters": "exp", "mnist": "mnist_exp", data.MERGED: "merged_exp",
              data.BYCLASS_LETTERS: "byclass_exp"}


# Where each network the recipes name is defined (networks() below builds them by these names).
NETWORK_DEFINED = {"mnist_cnn": "build_cnn in warmup_mnist_cnn.py", "vgg_bn": "vgg_bn in emnist_study/models.py"}
# The study's reference points, not experiments: the leaderboard leaves their runs out.
WARM_UP_SCRIPTS = {config.script for config in (MNIST_MLP, MNIST_CNN, *LETTERS_BASELINES.values(),
                                                *NIELSEN_VARIANTS.values())}


def experiment_config(name: str, args) -> TrainConfig:
    dataset = f"{data.MERGED}:{args.merge}" if args.dataset == data.MERGED else args.dataset
    config = recipe(name, f"{RUN_PREFIX[args.dataset]}_{name}", dataset)
    if args.subunits is not None and args.subunits != config.subunits:
        # Another head is another run: it gets a name of its own rather than clashing with the recipe's.
        config = replace(config, run_name=f"{config.run_name}-subunits{args.subunits}",
                         model_options={**config.model_options, "subunits": args.subunits})
    return cli.config_from_args(args, config)


def networks() -> dict:
    """The recipes' networks by name: the assignment's own first (the warm-up CNN, defined once, in its script),
    then the experiments' (emnist_study/models.py)."""
    from emnist_study import models  # TensorFlow loads here, not before a run needs it: --help answers at once
    from warmup_mnist_cnn import build_cnn

    return {"mnist_cnn": build_cnn, **models.NETWORKS}


def recipe_network(config: TrainConfig, num_classes: int):
    from emnist_study import training

    return training.build_network(networks()[config.model], config, num_classes)


def run_experiment(config: TrainConfig, results_dir: Path) -> None:
    from emnist_study import subunits, training
    from emnist_study.run import Run

    build = networks()[config.model]
    dataset = data.load_training_data(config)
    if config.ensemble > 1:
        training.train_ensemble(config, dataset, lambda member, member_data: training.train(member, member_data, build))
        return
    model = training.train(Run(config), dataset, build)
    if config.subunits > 1:
        probs = subunits.subunit_probabilities(model, dataset.x_val)
        out = subunits.record_subunits(probs, dataset, Path(config.runs_dir) / config.run_name, config.subunits, results_dir)
        print(f"Saved {out}")


def leaderboard(runs_dir: str, results_dir: Path) -> None:
    """Every experiment run so far, best validation accuracy first (validation only: the test set judges once):
    the registry's, and those of scripts of one's own (my_experiment.py and its copies); the warm-ups are the
    study's reference points, not experiments. A run that predicts from distorted copies of each image
    (test_time_views) is ranked by that prediction's."""
    rows = []
    for run_dir in all_run_dirs(runs_dir):
        config = read_run_config(run_dir)
        if config.get("script") in WARM_UP_SCRIPTS or not run_folder.has_summary(run_dir):
            continue
        summary = read_summary(run_dir)
        rows.append({"run": run_dir.name, "dataset": config["dataset"], "network": network_name(config),
                     "status": summary["status"],
                     "val_accuracy": round(summary.get("val_accuracy_with_views") or summary["best_val_accuracy"]
                                           or 0.0, 4),
                     "params": summary.get("params"), "epochs": config["epochs"],
                     "train_minutes": round(summary.get("train_seconds", 0) / 60, 1)})
    rows.sort(key=lambda r: -r["val_accuracy"])
    if not rows:
        return
    run_width = max(len("run"), *(len(r["run"]) for r in rows))
    dataset_width = max(len("dataset"), *(len(r["dataset"]) for r in rows))
    print(f"\n{'run':<{run_width}} {'dataset':<{dataset_width}} {'val acc':>8} {'params':>10} {'minutes':>8}  status")
    for r in rows:
        print(f"{r['run']:<{run_width}} {r['dataset']:<{dataset_width}} {r['val_accuracy']:>8.4f} "
              f"{r['params'] or 0:>10,} {r['train_minutes']:>8}  {r['status']}")
    results_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(results_dir / "leaderboard.csv", rows)
    print(f"Saved {results_dir / 'leaderboard.csv'}")


def experiment_list() -> str:
    """Each recipe, its network and a line of what it adds; then where each network is defined, to change it."""
    width = max(map(len, EXPERIMENTS))
    used = {name: recipe(name, name, "emnist-letters").model for name in EXPERIMENTS}
    net_width = max(map(len, used.values()))
    lines = [f"{name:<{width}}  {used[name]:<{net_width}}  {description}"
             for name, (description, _) in EXPERIMENTS.items()]
    lines += ["", "The networks: " + "; ".join(f"{net} is {where}" for net, where in NETWORK_DEFINED.items())
              + ". The recipes' settings are in emnist_study/recipes.py; my_experiment.py is one whole recipe written "
              "out in Keras, to copy and change."]
    return "\n".join(lines)


def build_parser():
    parser = cli.training_parser(__doc__, BASE, per_experiment=True)
    parser.epilog = "experiments:\n" + "\n".join("  " + line for line in experiment_list().splitlines())
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--exp", nargs="+", choices=list(EXPERIMENTS), metavar="NAME", help="experiments to run")
    parser.add_argument("--all", action="store_true", help="run every experiment, in the order listed")
    parser.add_argument("--dataset", choices=list(RUN_PREFIX), default="emnist-letters",
                        help="where to run them (default: %(default)s)")
    parser.add_argument("--merge", default=data.DEFAULT_MERGE,
                        help="with --dataset mnist-merged: the digits that share a class (default: %(default)s)")
    parser.add_argument("--subunits", type=cli.positive_int, metavar="K",
                        help="switch the case-aware head on (K sub-units per class) or off (1) for any experiment; "
                             "the run is named <name>-subunitsK (default: the experiment's own: 2 for case_aware, "
                             "1 for the rest)")
    parser.add_argument("--results-dir", default="results", help="leaderboard and figures (default: %(default)s)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list:
        print(experiment_list())
        return
    names = list(EXPERIMENTS) if args.all else args.exp
    if not names:
        raise UserError("name experiments with --exp NAME..., or pass --all or --list")
    if args.run_name and len(names) > 1:
        raise UserError(f"--run-name names one run, but {len(names)} experiments were given; run them one at a time")
    data.parse_merge(args.merge)  # a bad --merge fails now, not after the first run
    for name in names:
        config = experiment_config(name, args)
        print(f"\n=== experiment {name}: {EXPERIMENTS[name][0]}")
        from emnist_study.run import Run  # TensorFlow loads here, after the flags: --help and --list answer at once

        # A complete run is compared with the recipe's network as models.py builds it now (an edited layer is
        # refused, not taken for the trained one).
        if Run(config).needs_training(network=lambda classes, _: recipe_network(config, classes)):
            run_experiment(config, Path(args.results_dir))
    leaderboard(args.runs_dir, Path(args.results_dir))


if __name__ == "__main__":
    interrupts.run_main(main)
