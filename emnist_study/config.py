"""TrainConfig: everything that defines a training run, as plain values. Saved as config.json with the run."""

from dataclasses import asdict, dataclass, field

# Flags that say how to run, not what to train: they may differ when a run is resumed.
OPERATIONAL_FIELDS = ("data_dir", "runs_dir", "logs_dir", "overwrite", "resume", "summary")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Saved as config.json with the run.

    The step scripts build and compile their networks in their own code: for them `optimizer` is left empty here
    and filled in from the compiled optimizer when training starts (run.Run.training), so that the run records what
    the script really trained with. The experiments (recipes.py) name it here, with their network in `model`."""

    script: str
    run_name: str
    dataset: str
    model: str  # the network's name: a builder in a step script ("mnist_cnn") or in models.py ("vgg_bn")
    epochs: int
    batch_size: int
    seed: int = 1
    val_fraction: float = 0.1
    optimizer: dict = field(default_factory=dict)  # {"name": "adadelta", "learning_rate": 1.0, ...}
    loss: str = "categorical_crossentropy"
    model_options: dict = field(default_factory=dict)  # keyword arguments of the model builder
    validation: str = "stratified"  # how validation images are held out: "stratified" or "last" (Nielsen)
    expand_shifts: bool = False  # add one-pixel shifts up, down, left and right of every training image (x5)
    select: str = "last_epoch"  # what model.keras holds: the "last_epoch", or the "best_val" epoch's weights
    ensemble: int = 1  # members trained with seeds member_seed(seed, i); the run predicts by combining them
    ensemble_combine: str = "vote"  # "vote" (Nielsen's majority) or "average" (mean of the probabilities)
    # Settings that differ between members: member i trains with ensemble_variants[i % len] applied to this config,
    # e.g. [{}, {"optimizer": {...}}] alternates two optimizers. Empty: every member differs by its seed alone.
    ensemble_variants: list = field(default_factory=list)
    schedule: dict = field(default_factory=dict)  # {} (constant), or {"name": "cosine", "warmup_fraction": 0.05}
    augment: dict = field(default_factory=dict)  # {"rotation_degrees": 10, "shift": 0.1, "zoom": 0.1, ...}
    label_smoothing: float = 0.0
    # Test-time augmentation: model.keras predicts from the average over the image and this many copies distorted
    # as `augment` distorts the training images (0: from the image alone). Training itself is unchanged.
    test_time_views: int = 0
    # With the case-aware head: at the end of each epoch but the last, a class whose least-used sub-unit is the
    # choice of under this share of its training images is split afresh by k-means (subunits.ResplitIdleSubunits).
    # 0: never.
    resplit_idle_units: float = 0.0
    precision: str = "float32"  # or "mixed_bfloat16" / "mixed_float16" (see precision.py); "auto" is resolved before
    # tf.distribute (distribute.py): "none", "mirrored" (this machine's devices) or "multiworker" (TF_CONFIG's
    # machines); each of the `replicas` takes batch_size images a step, global_batch_size in all (None: not
    # distributed, a step takes batch_size).
    distribute: str = "none"
    replicas: int = 1
    global_batch_size: int | None = None
    quick: bool = False
    limit_images: int | None = None  # a stratified subset of the training split (the --quick profile)
    data_dir: list | None = None  # the folders searched for the data, absolute (None: the environment, the caches)
    runs_dir: str = "runs"
    logs_dir: str = "logs"
    overwrite: bool = False
    resume: bool = False
    summary: bool = True  # print the network's layer table before training

    @property
    def subunits(self) -> int:
        """Sub-units per class of the network's head: 1 is a plain softmax, K > 1 the case-aware head."""
        return self.model_options.get("subunits", 1)

    @property
    def paired_copies(self) -> bool:
        """Whether each training batch holds two distorted copies of every image (for the case-aware head's
        agreement term: model_options {"paired_copies": True})."""
        return bool(self.model_options.get("paired_copies"))

    def defining_fields(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in OPERATIONAL_FIELDS}


def member_seed(seed: int, member: int) -> int:
    """The seed of an ensemble's member number `member` (from 0). Seed 1's members take seeds 1, 2, 3, ...; another
    seed's start 1,000 x (seed - 1) further on, so that the ensembles of seeds 1, 2 and 3 share no member's
    initial weights or batch order (with seed + member, seed 2's members would be seed 1's, shifted by one)."""
    return 1000 * max(seed - 1, 0) + seed + member
