"""Warm-up 3: Nielsen's chapter-6 network on MNIST (claimed 99.60%; a vote of five such nets, 99.67%).

Michael Nielsen, "Neural Networks and Deep Learning", chapter 6, with his protocol:
- the first 50,000 MNIST training images train, the last 10,000 validate;
- the training images are expanded to 250,000 with copies shifted one pixel up, down, left and right;
- Conv(20, 5x5, ReLU) -> MaxPool 2x2 -> Conv(40, 5x5, ReLU) -> MaxPool 2x2 -> Dense(1000, ReLU)
  -> Dense(1000, ReLU) -> softmax, dropout 0.5 on the input of each of the last three layers;
- plain SGD, learning rate 0.03, mini-batch 10, 40 epochs, log-likelihood cost;
- the model kept is the epoch with the best validation accuracy (model.keras holds its weights).

`--batch-size B` scales the learning rate with it (0.03 * B / 10): network3.py averages the cost over the
mini-batch, so this keeps the step per image the same and lets a CPU use larger batches. The config records
both. `--ensemble N` trains N members (seeds 1..N for --seed 1; other seeds' members share none of them: see
runs.member_seed), saved under runs/<name>/members/, and saves a model that predicts by their majority vote.
`--variant dense100` is the chapter's earlier step: two Dense(100, ReLU) layers, no dropout, L2 with lambda 0.1, 60
epochs (claimed 99.43%).

One deliberate difference from Nielsen: nothing. His protocol already keeps the test set out of training and
model selection. (The Keras examples, in the other warm-ups, did not.)

    python nielsen_cnn.py --data-dir ../shared/data --batch-size 50
    python nielsen_cnn.py --data-dir ../shared/data --ensemble 5
    python nielsen_cnn.py --quick
"""

from dataclasses import replace

from emnist_study import cli, distribute
from emnist_study.recipes import NIELSEN_VARIANTS as VARIANTS, nielsen_learning_rate
from emnist_study.runs import Run, TrainConfig


def parse_config(argv=None) -> TrainConfig:
    parser = cli.training_parser(__doc__, VARIANTS["dropout"], variants=VARIANTS)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="dropout",
                        help="dropout: the final network (40 epochs); dense100: the earlier Dense(100)+L2 step "
                             "(60 epochs) (default: %(default)s)")
    parser.add_argument("--ensemble", type=cli.positive_int, default=1,
                        help="train this many members and predict by their majority vote (default: 1)")
    args = parser.parse_args(argv)
    defaults = VARIANTS[args.variant]
    if args.ensemble > 1:
        defaults = replace(defaults, run_name=f"{defaults.run_name}-ensemble{args.ensemble}")
    config = cli.config_from_args(args, defaults)
    return replace(config, ensemble=args.ensemble,
                   # under --distribute, the cost is averaged over the global batch: it sets the step
                   optimizer={"name": "sgd",
                              "learning_rate": nielsen_learning_rate(distribute.global_batch_size(config))})


def build_options(config: TrainConfig, dataset) -> dict:
    """The Dense(100) variant's L2 term depends on how many images an epoch holds."""
    return {"training_images": len(dataset.y_train)} if config.model == "nielsen_dense100" else {}


def main(argv=None):
    config = parse_config(argv)
    run = Run(config)
    if not run.needs_training():
        return
    from emnist_study import training  # TensorFlow loads here, after the flags: --help answers at once

    dataset = training.load_dataset(config)
    print(f"Nielsen's protocol: {len(dataset.y_train):,} training images after the one-pixel shifts, "
          f"{len(dataset.y_val):,} validation; SGD learning rate {config.optimizer['learning_rate']:g} "
          f"at batch {config.batch_size}")
    if config.ensemble == 1:
        training.train(config, dataset, **build_options(config, dataset))
        return
    training.train_ensemble(config, dataset, **build_options(config, dataset))


if __name__ == "__main__":
    cli.run_main(main)
