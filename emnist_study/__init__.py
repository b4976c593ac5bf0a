"""Shared code for the EMNIST Letters study: data, models, training glue and run artifacts.

Each module has one job:
    errors    the one exception type that becomes a one-line message instead of a traceback
    idx       reading and writing the IDX file format that MNIST and EMNIST ship in
    download  fetching a file with a progress bar and a checksum, written atomically
    data      finding, loading and splitting MNIST and EMNIST Letters (uint8, upright, labels from 0)
    pipeline  turning uint8 arrays into batched tf.data pipelines
    distortions  the elastic distortion of handwriting (keras.ops, so any backend runs it)
    models    the networks, by name
    runs      the run directory: config, history, summary, atomic writes, overwrite/resume rules
    training  compiling and fitting a model with the callbacks every run gets
    cli       the flags every training script shares, and the error handling around main()
"""

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

__version__ = "0.1.0"
