"""Training a recipe of the experiments' registry (recipes.py): its network by name, its optimizer, schedule, loss
and label smoothing from its config, then the same `fit` and run-keeping as the step scripts (run.Run); and
training an ensemble's members, each by a step script's `train` or a recipe's, into one combined model.

The step scripts show their own Keras code; `train` here is that code once more, driven by a config.
"""

from dataclasses import replace

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras

from . import distribute, ensembles, hparams, models, pipeline, run_folder, subunits
from .config import TrainConfig, member_seed
from .data import TrainVal
from .run_folder import now
from .recording import save_model_atomic
from .run import Run, validation_accuracy

OPTIMIZERS = {
    "adadelta": keras.optimizers.Adadelta,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
}


def build_optimizer(spec: dict, schedule: dict | None = None, total_steps: int | None = None):
    """An optimizer from its config, e.g. {"name": "adadelta", "learning_rate": 1.0, "rho": 0.95}.

    Every setting is spelled out in the config rather than left to library defaults: Keras 3 changed Adadelta's
    default learning rate from 1.0 to 0.001, which silently ruins the mnist_cnn reproduction.
    With schedule {"name": "cosine", "warmup_fraction": f}, the learning rate climbs linearly from 0 to the
    configured one over the first f of the `total_steps`, then follows a cosine down to 0.
    """
    settings = dict(spec)
    if schedule:
        peak = settings.pop("learning_rate")
        warmup = int(schedule.get("warmup_fraction", 0.0) * total_steps)
        if warmup:
            settings["learning_rate"] = keras.optimizers.schedules.CosineDecay(
                0.0, total_steps - warmup, warmup_target=peak, warmup_steps=warmup)
        else:
            settings["learning_rate"] = keras.optimizers.schedules.CosineDecay(peak, total_steps)
    return OPTIMIZERS[settings.pop("name")](**settings)


def compile_model(model: keras.Model, config: TrainConfig, training_images: int | None = None) -> keras.Model:
    """Compile with the config's optimizer (and schedule, which needs the number of training images), loss
    and label smoothing."""
    total_steps = pipeline.steps_per_epoch(training_images or 0, distribute.global_batch_size(config)) * config.epochs
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
            if config.label_smoothing else config.loss)
    model.compile(optimizer=build_optimizer(config.optimizer, config.schedule, total_steps), loss=loss,
                  metrics=["accuracy"])
    return model


def build_network(build, config: TrainConfig, num_classes: int) -> keras.Model:
    """The recipe's network: `build(num_classes, **options)`, with the case-aware head in place of its softmax
    where model_options asks for sub-units."""
    options = {k: v for k, v in config.model_options.items() if k not in ("subunits", "paired_copies")}
    model = build(num_classes, **options)
    if config.subunits > 1:
        model = subunits.with_case_aware_head(model, config.subunits, config.paired_copies)
    return model


def train(run: Run, dataset: TrainVal, build) -> keras.Model:
    """Train a recipe (run.config) on `dataset`: its network from `build` (a builder of the networks module or
    of a step script), compiled as the recipe says, fitted and saved through the run. Returns the model saved."""
    config = run.config
    keras.utils.set_random_seed(config.seed)  # same seed: same initial weights, dropout masks and batch order
    with run.scope():
        model = build_network(build, config, dataset.num_classes)
        compile_model(model, config, len(dataset.y_train))
    with run.training(model, dataset):
        model.fit(run.train_batches, validation_data=run.val_batches, epochs=config.epochs,
                  steps_per_epoch=run.steps_per_epoch, initial_epoch=run.epochs_done,
                  callbacks=[keras.callbacks.TensorBoard(log_dir=run.logs_dir), *run.callbacks()],
                  verbose=run.verbose)
        return run.save(model)
def member_variant(config: TrainConfig, i: int) -> dict:
    """The settings member i takes from config.ensemble_variants ({} where there are none)."""
    return config.ensemble_variants[i % len(config.ensemble_variants)] if config.ensemble_variants else {}


def member_config(config: TrainConfig, run: Run, i: int) -> TrainConfig:
    """Member i's own run, under runs/<name>/members/: its seed (member_seed) and its variant's settings."""
    return replace(config, **member_variant(config, i), run_name=f"member{i + 1}", seed=member_seed(config.seed, i),
                   ensemble=1, summary=config.summary and i == 0, ensemble_variants=[], test_time_views=0,
                   runs_dir=str(run_folder.members_dir(run.dir)), logs_dir=str(run.logs_dir / run_folder.MEMBERS),
                   overwrite=False, resume=True)


def train_ensemble(config: TrainConfig, dataset: TrainVal, train_member) -> keras.Model:
    """Train config.ensemble members, each by `train_member(member_run, dataset)` (a step script's `train`, or a
    recipe's), each saved in its run's folder, then save one model that combines them (config.ensemble_combine). A finished member is kept and
    an interrupted one resumes, so a stopped ensemble picks up where it was. With config.test_time_views, the
    combined model predicts from the image and that many distorted copies."""
    run = Run(config)
    try:
        run.create(dataset.source)  # locks the run (until released below)
        members = []
        for i in range(config.ensemble):
            member_run = Run(member_config(config, run, i))
            print(f"Ensemble member {i + 1} of {config.ensemble} (seed {member_run.config.seed}"
                  + "".join(f", {key} {value}" for key, value in member_variant(config, i).items()) + ")")
            if member_run.needs_training():
                train_member(member_run, dataset)
            member = models.load(run_folder.model_path(member_run.dir))  # as saved: a finished member's the same
            member.name = member_run.config.run_name  # the combined model needs distinct names
            members.append(member)
        return save_ensemble(run, members, dataset)
    finally:
        run.release()


def save_ensemble(run: Run, members: list[keras.Model], dataset: TrainVal) -> keras.Model:
    config = run.config
    ensemble = ensembles.combine(members, config.ensemble_combine, name=config.run_name)
    if config.test_time_views:
        ensemble = models.with_test_time_views(ensemble, config.augment, config.test_time_views)
    views = f" and {config.test_time_views} distorted copies of each" if config.test_time_views else ""
    print(f"Every member trained; predicting the validation images by all {config.ensemble}{views}, then saving "
          f"{run_folder.model_path(run.dir)}", flush=True)  # minutes, for a big ensemble on a CPU: not a silent wait
    val_accuracy = validation_accuracy(ensemble, dataset)
    save_model_atomic(ensemble, run_folder.model_path(run.dir))
    summaries = [run_folder.read_summary(run_folder.members_dir(run.dir) / m.name) for m in members]
    summary = {
        "members": config.ensemble, "combine": config.ensemble_combine,
        "test_time_views": config.test_time_views,
        "params": ensemble.count_params(), "best_val_accuracy": val_accuracy, "final_val_accuracy": val_accuracy,
        "val_images": len(dataset.y_val),
        "member_best_val_accuracy": [s["best_val_accuracy"] for s in summaries],
        "train_seconds": round(sum(s["train_seconds"] for s in summaries), 2),
        "seconds_per_epoch": round(sum(s["seconds_per_epoch"] for s in summaries) / config.ensemble, 2),
        "finished_at": now(),
    }
    run_folder.write_summary(run.dir, "complete", **summary)
    hparams.record_ensemble(run, summary)
    views = f", from the image and {config.test_time_views} distorted copies" if config.test_time_views else ""
    print(f"Ensemble of {config.ensemble} ({config.ensemble_combine}{views}): validation accuracy {val_accuracy:.4f}; "
          f"saved to {run.dir}")
    return ensemble
