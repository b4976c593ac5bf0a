"""Imported before keras by every module that uses it: TensorFlow starts without burying the one line a user
needs to read."""

import os
import sys
import warnings

from .environment import thread_settings_problem


def _import_tensorflow_quietly():
    """Import TensorFlow and find its devices with stderr silenced at the file-descriptor level.

    TensorFlow's C++ start-up chatter ("All log messages before absl::InitializeLog()", oneDNN notes, "Could not
    find cuda drivers", "failed call to cuInit") is written before its log level applies and would bury the one
    line a user needs to read. Python exceptions still propagate and are printed once stderr is restored.
    """
    problem = thread_settings_problem()
    if problem:  # refused here, before TensorFlow starts: it would abort the process in C++ with no word why
        sys.exit(f"{os.path.basename(sys.argv[0]) or 'python'}: error: {problem}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow's oneDNN kernels are on by default only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX.
    # On the many x86 machines with AVX2 alone they train these networks 1.3-1.6x faster than the default
    # kernels (docs/speed.md), so the project turns them on; TF_ENABLE_ONEDNN_OPTS=0 turns them off.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices("GPU")
        # Predicting with several saved models in one process retraces a tf.function per model, as it must;
        # TensorFlow's warning about it would only alarm.
        tensorflow.get_logger().setLevel("ERROR")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()
# The training batches are a tf.data pipeline that reshuffles itself every epoch (pipeline.make_dataset), so Keras's
# warning that fit's own shuffle flag does not apply to it says nothing a reader needs.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed, but will be ignored", category=UserWarning)
