"""The measurements benchmark.py makes, each in a child process of its own: training throughput of a variant of
the mnist_cnn recipe, time to accuracy on MNIST, and the seconds per image of a study recipe. Kept out of the
script so that its --help and its parent process never start TensorFlow."""

import platform
import resource
import time
from dataclasses import replace
from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
import numpy as np
import tensorflow as tf

from . import cli, data, pipeline, precision, recipes, training
from .run import Run
from .run_folder import read_history

# The Keras example's recipe: mnist_cnn, Adadelta with the Keras 2 settings, batch 128, 12 epochs.
REFERENCE = replace(recipes.BASE, run_name="benchmark_reference", dataset="mnist")
FAST = recipes.recipe("fast", "benchmark_fast", "mnist")
# What a throughput variant changes from: mnist_cnn fed by one endless tf.data iterator, batch 128, float32.
PROJECT_PATH = {"feed": "repeat", "model": "mnist_cnn", "model_options": {}, "batch_size": 128,
                "jit_compile": False, "precision": "float32", "inter_op_threads": None}


def peak_memory_mb() -> float:
    """This process's peak resident memory (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 2**10


def forward_flops(model: keras.Model) -> int:
    """Floating-point operations of one image's forward pass (2 per multiply-add, convolutions and dense)."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            flops += 2 * height * width * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * int(np.prod(layer.kernel.shape))
    return flops


class EpochClock(keras.callbacks.Callback):
    """Wall times of every training batch's end, and of the validation pass at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.batch_ends, self.validation = [[]], []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch:
            self.batch_ends.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.batch_ends[-1].append(time.perf_counter())

    def on_test_begin(self, logs=None):
        self.validation.append([time.perf_counter()])

    def on_test_end(self, logs=None):
        self.validation[-1].append(time.perf_counter())


def measure_throughput(settings: dict, sizes: dict, num_classes: int, networks: dict) -> dict:
    """Train one variant for two epochs on random images, validating after each as the scripts do, then
    predict. Training images/s is the second epoch's (its start included, its validation pass not): what
    every epoch after the first costs. Steady-state images/s counts the first epoch's batches after warm-up.
    `networks`: the builders by name (benchmark.networks)."""
    s = {**PROJECT_PATH, **settings}
    if s["inter_op_threads"]:
        tf.config.threading.set_inter_op_parallelism_threads(s["inter_op_threads"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (sizes["images"], 28, 28), dtype=np.uint8)
    labels = rng.integers(0, num_classes, sizes["images"])
    val_images, val_labels = images[:sizes["val_images"]], labels[:sizes["val_images"]]
    with precision.policy(s["precision"]):
        model = networks[s["model"]](num_classes, **s["model_options"])
    model.compile(optimizer=training.build_optimizer(REFERENCE.optimizer), loss="categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=s["jit_compile"])
    batch = s["batch_size"]
    clock = EpochClock()
    inference = images[:sizes["inference_images"]]
    if s["feed"] == "numpy":  # the Keras example: the whole set as float32 in memory, one-hot labels
        as_float = lambda x: x.astype("float32")[..., np.newaxis] / 255  # noqa: E731
        x, y = as_float(images), keras.utils.to_categorical(labels, num_classes)
        validation = (as_float(val_images), keras.utils.to_categorical(val_labels, num_classes))
        model.fit(x, y, batch_size=batch, epochs=2, validation_data=validation, callbacks=[clock], verbose=0)
        x_inference = x[:len(inference)]
        predict = lambda: model.predict(x_inference, batch_size=500, verbose=0)  # noqa: E731
    else:
        repeat = s["feed"] == "repeat"
        train_ds = pipeline.make_dataset(images, labels, num_classes, batch, shuffle=True, seed=0, repeat=repeat)
        val_ds = pipeline.make_dataset(val_images, val_labels, num_classes, batch, shuffle=False)
        steps = pipeline.steps_per_epoch(len(labels), batch) if repeat else None
        # shuffle=False: the dataset reshuffles itself (fit's own flag only applies to arrays, and warns here).
        model.fit(train_ds, validation_data=val_ds, epochs=2, steps_per_epoch=steps, callbacks=[clock],
                  shuffle=False, verbose=0)
        predict = lambda: pipeline.predict(model, inference)  # noqa: E731
    first, second = clock.batch_ends
    warmup = sizes["warmup_batches"]
    steady_rate = (len(first) - warmup) * batch / (first[-1] - first[warmup - 1])
    second_epoch_seconds = clock.validation[1][0] - clock.validation[0][1]  # end of validation 1 to start of 2
    train_rate = len(labels) / second_epoch_seconds
    predict()  # the first call traces the graph
    start = time.perf_counter()
    predict()
    inference_seconds = time.perf_counter() - start
    return {"train_images_per_s": train_rate, "steady_images_per_s": steady_rate,
            "epoch_start_seconds": second[0] - clock.validation[0][1] - batch / steady_rate,
            "inference_images_per_s": len(inference) / inference_seconds,
            "peak_memory_mb": peak_memory_mb(), "params": model.count_params(),
            "train_gflop_per_s": 3 * forward_flops(model) * steady_rate / 1e9}


class ValidationClock(keras.callbacks.Callback):
    """Checks validation accuracy every `every` batches; the clock stops while it does, so `points` holds
    (training seconds, images seen, validation accuracy) with training time alone."""

    def __init__(self, x_val: np.ndarray, y_val: np.ndarray, every: int):
        super().__init__()
        self.x_val, self.y_val, self.every = x_val, y_val, every
        self.points, self.batches, self.paused = [], 0, 0.0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches % self.every:
            return
        stopped = time.perf_counter()
        accuracy = float((pipeline.predict(self.model, self.x_val).argmax(axis=1) == self.y_val).mean())
        seconds = stopped - self.start - self.paused
        self.points.append({"seconds": round(seconds, 2), "images": self.batches * self.batch_size,
                            "val_accuracy": accuracy})
        print(f"    {seconds:7.1f} s  {self.batches * self.batch_size:>9,} images  val {accuracy:.4f}", flush=True)
        self.paused += time.perf_counter() - stopped


def measure_time_to_accuracy(recipe_name: str, data_dir: list | None, quick: bool, networks: dict) -> list[dict]:
    """Train one recipe on MNIST's 54,000/6,000 split, checking validation accuracy every quarter epoch."""
    config = REFERENCE if recipe_name == "reference" else FAST
    if quick:
        config = replace(config, epochs=1)
    dataset = data.load_train_val("mnist", val_fraction=config.val_fraction, seed=config.seed, data_dir=data_dir,
                                  limit=cli.QUICK_IMAGES if quick else None)
    keras.utils.set_random_seed(config.seed)
    with precision.policy(config.precision):
        model = training.build_network(networks[config.model], config, dataset.num_classes)
    steps_per_epoch = pipeline.steps_per_epoch(len(dataset.y_train), config.batch_size)
    clock = ValidationClock(dataset.x_val, dataset.y_val, every=max(1, steps_per_epoch // 4))
    clock.batch_size = config.batch_size
    if recipe_name == "reference":  # exactly as the Keras example: float32 numpy arrays into fit
        model.compile(optimizer=training.build_optimizer(config.optimizer), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        x = dataset.x_train.astype("float32")[..., np.newaxis] / 255
        y = keras.utils.to_categorical(dataset.y_train, dataset.num_classes)
        model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, callbacks=[clock], verbose=0)
    else:  # the project's path: uint8 tf.data pipeline, the recipe's optimizer and schedule
        training.compile_model(model, config, len(dataset.y_train))
        train_ds = pipeline.make_dataset(dataset.x_train, dataset.y_train, dataset.num_classes, config.batch_size,
                                         shuffle=True, seed=config.seed, repeat=True)
        model.fit(train_ds, epochs=config.epochs, steps_per_epoch=steps_per_epoch, callbacks=[clock],
                  shuffle=False, verbose=0)
    return clock.points


def measure_epoch_seconds(key: str, configs: dict, data_dir: str, work_dir: Path, epochs: int, trainer) -> dict:
    """Train the recipe of speed `key` (configs: key -> a config that trains at it) for `epochs` on the stand-in
    letters as one network (an ensemble's member, without Nielsen's shifted copies: the rate per image is what
    counts), and time its last epoch. `trainer(config)` is the code that trains a config (its step script's
    `train`, or the recipes' training.train: see benchmark.trainer)."""
    config = replace(configs[key], run_name=key, dataset="emnist-letters", epochs=epochs,
                     ensemble=1, ensemble_variants=[], test_time_views=0, expand_shifts=False,
                     validation="stratified", val_fraction=0.1, data_dir=[data_dir], runs_dir=str(work_dir / "runs"),
                     logs_dir=str(work_dir / "logs"), overwrite=True, limit_images=None, quick=False)
    dataset = data.load_training_data(config)
    run = Run(config)
    run.needs_training()  # (with overwrite: its refusals alone, of a folder another process writes or none can)
    trainer(config)(run, dataset)
    last = read_history(work_dir / "runs" / key)[-1]
    images = len(dataset.y_train)
    return {"recipe": config.script if config.script != recipes.BASE.script else "emnist_experiments.py",
            "epoch_seconds": round(last["seconds"], 2), "training_images": images,
            "seconds_per_image": last["seconds"] / images}
