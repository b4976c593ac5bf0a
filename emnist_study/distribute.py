"""Training on several devices (--distribute mirrored) or several machines (--distribute multiworker) with
tf.distribute. docs/distribute.md says how to run it.

Every replica takes --batch-size images a step, so a step trains on batch_size x replicas images (the global
batch) and there are that many times fewer steps an epoch. Gradients are averaged over the global batch. The
learning rate stays the recipe's: only Nielsen's recipe ties it to the batch (0.03 per 10 images), and there the
global batch sets it. config.json records the strategy, the replicas and the global batch; a run is resumed with
the same ones.

MultiWorkerMirroredStrategy reads the cluster from the TF_CONFIG environment variable and must be made before
TensorFlow does anything else, and once per process: `strategy` keeps the one it made. Every worker runs the
same command; the chief writes the run as usual, each other worker its own copy under
<runs-dir>/.<task>-<index>/ (TensorFlow's advice: workers must not write to the same files).
"""

import json
import os
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

from .errors import UserError
from .config import TrainConfig

CHOICES = ("none", "mirrored", "multiworker")
_strategies = {}  # name -> the strategy made for it: one per process


def strategy(name: str):
    """The tf.distribute strategy `name` stands for (None for "none"), made on first use."""
    if name == "none":
        return None
    if name not in _strategies:
        from . import quiet_tensorflow  # noqa: F401  (TensorFlow starts as everywhere in the package)
        import tensorflow as tf

        if name == "mirrored":
            # every GPU of this machine; without one, every CPU device (one, unless the process split the CPU
            # into logical devices, as the tests do: MirroredStrategy would take the first alone)
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            _strategies[name] = tf.distribute.MirroredStrategy([device.name for device in devices])
        elif name == "multiworker":
            task()  # a missing or malformed TF_CONFIG fails here, in one line, not deep inside TensorFlow
            made = tf.distribute.MultiWorkerMirroredStrategy()
            made.reduce = reduce_parts(made)
            _strategies[name] = made
        else:
            raise UserError(f"unknown --distribute {name!r}: choose one of {', '.join(CHOICES)}")
    return _strategies[name]


def task() -> tuple[str, int]:
    """This process's (task type, index) in the TF_CONFIG cluster."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UserError("--distribute multiworker needs TF_CONFIG, the cluster and this worker's place in it, e.g. "
                        "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                        "\"task\": {\"type\": \"worker\", \"index\": 0}}' (see docs/distribute.md)")
    try:
        config = json.loads(text)
        return str(config["task"]["type"]), int(config["task"]["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"TF_CONFIG is not a cluster description with a task type and index ({exc!r}); "
                        f"see docs/distribute.md") from None


def is_chief(task_type: str, index: int) -> bool:
    """The worker that writes the run: the "chief" task, or worker 0 where the cluster names no chief."""
    cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    return task_type == "chief" or (task_type == "worker" and index == 0 and "chief" not in cluster)


def configure(config: TrainConfig, name: str) -> TrainConfig:
    """The config with its strategy, replicas and global batch recorded (unchanged for "none"); on a worker other
    than the chief, the run and its logs go to that worker's own folder."""
    if name == "none":
        return config
    replicas = strategy(name).num_replicas_in_sync
    config = replace(config, distribute=name, replicas=replicas, global_batch_size=config.batch_size * replicas)
    if name == "multiworker":
        task_type, index = task()
        if not is_chief(task_type, index):
            own = Path(config.runs_dir) / f".{task_type}-{index}"
            config = replace(config, runs_dir=str(own), logs_dir=str(own / "logs"))
    return config


def global_batch_size(config: TrainConfig) -> int:
    """Images a training step takes, over all replicas."""
    return config.global_batch_size or config.batch_size




def scope(config: TrainConfig):
    """Where to build and compile the model: inside the strategy's scope, so its variables are mirrored."""
    made = strategy(config.distribute)
    return made.scope() if made else nullcontext()


def make_optimizer_variables(model, config: TrainConfig) -> None:
    """Under a strategy, the optimizer's variables (moments, step count) are made now, inside its scope, so they
    are mirrored like the model's; --resume sets them from the backup before training starts, outside it."""
    if config.distribute != "none":
        model.optimizer.build(model.trainable_variables)


def reduce_parts(strategy):
    """MultiWorkerMirroredStrategy.reduce as Keras 3's fit calls it (keras-team/keras#20585): Keras reduces a
    whole (images, labels) batch in one call, which this strategy, unlike MirroredStrategy, refuses ("Attempt to
    convert a value (PerReplica...)"), and each replica's scalar loss and metrics along axis 0, which a scalar
    lacks. This reduces each part on its own, a scalar across the replicas alone."""
    from . import quiet_tensorflow  # noqa: F401  (TensorFlow starts as everywhere in the package)
    import tensorflow as tf

    reduce_one = strategy.reduce

    def reduce(reduce_op, value, axis=None):
        def part(v):
            rank = strategy.experimental_local_results(v)[0].shape.rank
            return reduce_one(reduce_op, v, axis=axis if rank else None)

        return tf.nest.map_structure(part, value)

    return reduce
