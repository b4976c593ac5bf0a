"""Numeric precision of training: float32, or mixed precision (bfloat16 or float16 arithmetic, float32 weights).

Mixed bfloat16 pays only where the hardware does bfloat16 natively (CPUs with AVX512_BF16 or AMX, NVIDIA GPUs
from Ampere on); elsewhere it is emulated and slower than float32. "auto" picks it only there, and mixed float16
on GPUs with float16 tensor cores alone (Volta, Turing: Colab's T4). float16's narrow range would round small
gradients to zero, so its loss is scaled: Keras's compile wraps the optimizer of a model built under
mixed_float16 in a LossScaleOptimizer by itself. The output layers stay float32 (see models.classifier_head), so
probabilities and the loss keep their precision.
"""

from contextlib import contextmanager
from pathlib import Path

CHOICES = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():  # not Linux: no cheap way to know, so assume no bfloat16
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve(name: str) -> str:
    """The precision to train with: `name` itself, or for "auto" mixed_bfloat16 on hardware with native
    bfloat16 (the first GPU if there is one, else the CPU), mixed_float16 on GPUs with float16 tensor cores
    alone, float32 elsewhere."""
    if name != "auto":
        return name
    from . import quiet_tensorflow  # noqa: F401  (TensorFlow starts as everywhere in the package)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        if capability >= (8, 0):  # Ampere and later: bfloat16 tensor cores
            return "mixed_bfloat16"
        return "mixed_float16" if capability >= (7, 0) else "float32"  # Volta/Turing: float16 tensor cores only
    return "mixed_bfloat16" if cpu_flags() & BF16_CPU_FLAGS else "float32"


@contextmanager
def policy(name: str):
    """Layers built inside take this precision (Keras's global dtype policy); the old policy comes back after."""
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(resolve(name))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)
