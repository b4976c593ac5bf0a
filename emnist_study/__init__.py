"""What the EMNIST Letters study's scripts share: data, the run folder, the experiments' networks and recipes.

Each module has one job (the step scripts above it show the networks, their compile and their fit):
    errors      the one exception type that becomes a one-line message instead of a traceback
    idx         reading and writing the IDX file format that MNIST and EMNIST ship in
    download    fetching a file with a progress bar and a checksum, written atomically
    sources     where dataset files are looked for and how they are fetched and checked, for every dataset
    formats     EMNIST Letters from other copies: Kaggle's CSV, NIST's MATLAB file, a TensorFlow Datasets folder
    data        loading and splitting MNIST and EMNIST Letters (uint8, upright, labels from 0), from any copy
    byclass     EMNIST ByClass, for its case labels: its letters with their case beside them, its 52 letter classes
    pipeline    turning uint8 arrays into batched tf.data pipelines
    distortions the elastic and affine distortions of handwriting (keras.ops, so any backend runs it)
    config      TrainConfig: a run's settings, as plain values
    run_folder  the run folder's files, alone: their names and schemas, the lock, atomic writes, one-line errors
                when read back damaged or newer; finding runs
    run         a training run as one object: create, resume, save; run.callbacks() for fit
    recording   what a run records: the network's layers and optimizer, and every epoch (history.csv, summary)
    backup      the per-epoch training state that --resume continues from, exactly, after any kill
    disk        room on disk before training, and TensorFlow's word for a full disk
    models      the experiments' networks, the test-time views, and loading a saved model
    subunits    the case-aware head: its layer and losses, the restart of collapsed classes, what it learned
    ensembles   the layers that combine an ensemble's members (vote, average)
    training    a recipe trained from its config, and an ensemble's members
    recipes     the warm-up recipes and the experiments, as plain configs
    precision   float32 or mixed precision, and what "auto" picks on this hardware
    distribute  tf.distribute: several GPUs, several machines
    hparams     each run's row in TensorBoard's HPARAMS tab, and its figures in IMAGES
    figures     the plots (matplotlib, PNG)
    evaluation  the test sets' one judgement: accuracy, intervals, McNemar tests
    report      RESULTS.md: the study's answers in words
    interrupts  Ctrl-C, SIGTERM and SIGHUP, and how a script ends (one-line errors, the command that continues)
    cli         the flags every training script shares
    commands    a command printed for the reader to run: this Python, the script's path from where they are
    study_plan  the steps run_all.py runs, and their estimated minutes
    parallel_steps  run_all.py's steps two at a time, each line marked with its step
    speed_measurements  benchmark.py's measurements, each in a child process
    case_check  a case-aware letters run's sub-units against ByClass's true case: per-letter table and figure
    quiet_tensorflow  imported before keras: TensorFlow starts without burying the output in C++ chatter

Nothing here imports TensorFlow until a module that trains or predicts is imported, so `--help`, `run_all.py
--dry-run` and the data check answer at once.
"""

__version__ = "0.1.0"
