"""Shared code for the EMNIST Letters study: data, models, training glue and run artifacts.

Each module has one job:
    errors    the one exception type that becomes a one-line message instead of a traceback
    idx       reading and writing the IDX file format that MNIST and EMNIST ship in
    download  fetching a file with a progress bar and a checksum, written atomically
    data      finding, loading and splitting MNIST and EMNIST Letters (uint8, upright, labels from 0)
    byclass   EMNIST ByClass, for its case labels: its letters with their case beside them, its 52 letter classes
    pipeline  turning uint8 arrays into batched tf.data pipelines
    distortions  the elastic distortion of handwriting (keras.ops, so any backend runs it)
    models    the networks, by name
    runs      the run directory: config, history, summary, atomic writes, its lock, overwrite/resume rules
    backup    the per-epoch training state that --resume continues from, exactly, after any kill
    training  compiling and fitting a model with the callbacks every run gets
    cli       the flags every training script shares, and the error handling around main()
    recipes   the warm-up recipes and the experiments, as plain configs
    study     the steps run_all.py runs, and their estimated minutes
    case_check  a case-aware letters run's sub-units against ByClass's true case: per-letter table and figure
    quiet_tensorflow  imported before keras: TensorFlow starts without burying the output in C++ chatter

Nothing here imports TensorFlow until a module that trains or predicts is imported, so `--help`, `run_all.py
--dry-run` and the data check answer at once.
"""

__version__ = "0.1.0"
