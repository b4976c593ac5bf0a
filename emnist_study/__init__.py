"""Shared code for the EMNIST Letters study: data, models, training glue and run artifacts.

Each module has one job:
    errors    the one exception type that becomes a one-line message instead of a traceback
    idx       reading and writing the IDX file format that MNIST and EMNIST ship in
    download  fetching a file with a progress bar and a checksum, written atomically
    data      finding, loading and splitting MNIST and EMNIST Letters (uint8, upright, labels from 0)
    pipeline  turning uint8 arrays into batched tf.data pipelines
    models    the networks, by name
    runs      the run directory: config, history, summary, atomic writes, overwrite/resume rules
    training  compiling and fitting a model with the callbacks every run gets
    cli       the flags every training script shares, and the error handling around main()
"""

import os

# TensorFlow's C++ start-up chatter (no GPU found, CPU feature notes) buries the output that matters.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
