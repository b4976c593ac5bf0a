"""Beyond one CPU: --precision auto on GPUs (their details faked), --distribute mirrored training and resuming on
two logical CPU devices, and --distribute multiworker's settings. (TensorBoard's HParams view and the notebook
are tested in test_run_all.py, on the quick study's runs.)"""

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from emnist_study import distribute, precision
from emnist_study.errors import UserError
from helpers import ROOT


@pytest.fixture
def fake_gpu(monkeypatch):
    """Makes TensorFlow report one GPU of the given compute capability."""
    import tensorflow as tf

    def install(capability):
        gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [gpu] if kind == "GPU" else [])
        monkeypatch.setattr(tf.config.experimental, "get_device_details",
                            lambda device: {"device_name": "a faked GPU", "compute_capability": capability})

    return install


@pytest.mark.parametrize("capability, expected", [
    ((9, 0), "mixed_bfloat16"),  # H100
    ((8, 0), "mixed_bfloat16"),  # A100
    ((8, 6), "mixed_bfloat16"),  # RTX 30xx, A10
    ((7, 5), "mixed_float16"),   # T4 (Colab's free GPU), RTX 20xx
    ((7, 0), "mixed_float16"),   # V100
    ((6, 0), "float32"),         # P100: no tensor cores, nothing to gain
])
def test_precision_auto_on_a_gpu_follows_its_compute_capability(fake_gpu, monkeypatch, capability, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})  # the GPU decides, not the CPU
    fake_gpu(capability)
    assert precision.resolve("auto") == expected


def test_mixed_float16_trains_with_loss_scaling():
    """Keras wraps the optimizer of a model built under mixed_float16 in a LossScaleOptimizer when it compiles,
    so small float16 gradients do not underflow; the learning rate history.csv records still reads through."""
    import keras

    import warmup_mnist_mlp
    from emnist_study import recipes, training

    with precision.policy("mixed_float16"):
        model = warmup_mnist_mlp.build_mlp(10)
        training.compile_model(model, recipes.BASE, 1000)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1.0)


MIRRORED_SCRIPT = """
    import sys
    import tensorflow as tf

    # two logical CPU devices, before TensorFlow starts: MirroredStrategy trains a replica on each
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import signal
    from emnist_study import interrupts, run
    import warmup_mnist_mlp

    # Ctrl-C after the first epoch, as the SIGINT handler records it
    record_epoch = run.RunRecorder.on_epoch_end
    def record_then_interrupt(self, epoch, logs=None):
        record_epoch(self, epoch, logs)
        interrupts._signal_received = signal.SIGINT
    run.RunRecorder.on_epoch_end = record_then_interrupt

    argv = sys.argv[1:]
    for flag in ("--overwrite", "--resume"):
        try:
            interrupts.run_main(warmup_mnist_mlp.main, argv + [flag])
            print("exit 0")
        except SystemExit as exc:
            print("exit", exc.code)
        run.RunRecorder.on_epoch_end = record_epoch
"""


def test_mirrored_training_on_two_devices_is_recorded_and_resumes(tmp_path, mnist_dir):
    """Train under MirroredStrategy on two logical CPU devices (in a process of its own: devices are set before
    TensorFlow starts), stop it after its first epoch, resume it to the end."""
    (tmp_path / "mirrored.py").write_text(textwrap.dedent(MIRRORED_SCRIPT))
    argv = ["--quick", "--epochs", "2", "--batch-size", "32", "--distribute", "mirrored", "--data-dir", str(mnist_dir),
            "--runs-dir", str(tmp_path / "runs"), "--logs-dir", str(tmp_path / "logs")]
    result = subprocess.run([sys.executable, str(tmp_path / "mirrored.py"), *argv], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    out = result.stdout + result.stderr
    exits = [line for line in result.stdout.splitlines() if line.startswith("exit")]
    assert exits == ["exit 130", "exit 0"], out[-3000:]
    assert "interrupted after 1 completed epoch of" in out and "Resuming" in out
    run = tmp_path / "runs" / "mnist_mlp-quick"
    config = json.loads((run / "config.json").read_text())["config"]
    assert (config["distribute"], config["replicas"], config["batch_size"], config["global_batch_size"]) == (
        "mirrored", 2, 32, 64)
    assert config["optimizer"]["learning_rate"] == 0.001  # the recipe's, whatever the batch
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["epochs_completed"] == 2
    assert "batch 64" in out  # the pipeline batches the global batch; the strategy splits it


@pytest.fixture
def two_replicas(monkeypatch):
    """A strategy of two replicas, for code that only asks how many there are (no devices needed)."""
    fake = SimpleNamespace(num_replicas_in_sync=2, scope=contextlib.nullcontext)
    monkeypatch.setitem(distribute._strategies, "mirrored", fake)
    monkeypatch.setitem(distribute._strategies, "multiworker", fake)


def test_nielsens_learning_rate_follows_the_global_batch(two_replicas, monkeypatch):
    """His rule keeps the step per image: 0.03 per 10 images, so 0.3 for two replicas of 50, 0.15 for one."""
    import keras
    import nielsen_cnn
    from emnist_study import cli
    from emnist_study.run import Run

    class Compiled(Exception):
        pass

    def sgd(learning_rate):  # what the script compiles with; nothing needs training after it
        raise Compiled(learning_rate)

    monkeypatch.setattr(keras.optimizers, "SGD", sgd)
    data = SimpleNamespace(num_classes=10, y_train=[])
    for flags, rate in ((["--distribute", "mirrored"], 0.3), ([], 0.15)):
        config = cli.config_from_args(nielsen_cnn.parser.parse_args(["--batch-size", "50", *flags]),
                                      nielsen_cnn.VARIANTS["dropout"])
        with pytest.raises(Compiled) as compiled:
            nielsen_cnn.train(Run(config), data)
        assert compiled.value.args[0] == pytest.approx(rate)
    assert (config.batch_size, config.global_batch_size) == (50, None)


def cluster(index: int) -> str:
    return json.dumps({"cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]},
                       "task": {"type": "worker", "index": index}})


def test_multiworker_chief_writes_the_run_and_other_workers_their_own_copy(two_replicas, monkeypatch, tmp_path):
    from emnist_study import recipes

    base = recipes.MNIST_MLP
    monkeypatch.setenv("TF_CONFIG", cluster(0))
    chief = distribute.configure(base, "multiworker")
    assert (chief.runs_dir, chief.logs_dir, chief.global_batch_size) == (base.runs_dir, base.logs_dir, 256)
    monkeypatch.setenv("TF_CONFIG", cluster(1))
    worker = distribute.configure(base, "multiworker")
    assert worker.runs_dir == "runs/.worker-1" and worker.logs_dir == "runs/.worker-1/logs"


@pytest.mark.parametrize("tf_config, message", [
    (None, "--distribute multiworker needs TF_CONFIG"),
    ("{not json", "TF_CONFIG is not a cluster description"),
    ('{"cluster": {}}', "TF_CONFIG is not a cluster description"),
])
def test_multiworker_without_a_usable_tf_config_fails_in_one_line(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UserError, match=message) as error:
        distribute.strategy("multiworker")
    assert "\n" not in str(error.value)


def test_multiworker_reduces_a_batch_part_by_part_and_scalars_across_replicas_alone():
    """The workaround for Keras 3's fit under MultiWorkerMirroredStrategy (keras-team/keras#20585), on a stand-in
    strategy that records how it is asked."""
    import tensorflow as tf

    calls = []
    fake = SimpleNamespace(experimental_local_results=lambda v: (v,),
                           reduce=lambda op, v, axis=None: calls.append((op, tuple(v.shape), axis)) or v)
    reduce = distribute.reduce_parts(fake)
    reduce("MEAN", (tf.zeros((4, 28)), tf.zeros((4, 10))), axis=None)
    reduce("MEAN", tf.constant(0.5), axis=0)
    assert calls == [("MEAN", (4, 28), None), ("MEAN", (4, 10), None), ("MEAN", (), None)]
