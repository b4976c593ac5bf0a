"""Imported before keras by every module that uses it: TensorFlow starts without burying the one line a user
needs to read."""

import os


def _import_tensorflow_quietly():
    """Import TensorFlow and find its devices with stderr silenced at the file-descriptor level.

    TensorFlow's C++ start-up chatter ("All log messages before absl::InitializeLog()", oneDNN notes, "Could not
    find cuda drivers", "failed call to cuInit") is written before its log level applies and would bury the one
    line a user needs to read. Python exceptions still propagate and are printed once stderr is restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
