"""The case-aware head: a softmax over several sub-units per class, summed per class, with the losses that ask a
class's images to share its sub-units out; the restart of a class whose sub-units collapsed; and what the
sub-units learned: which unit each image lights up, and how well those units line up with a hidden label the
network never saw (the digit behind a merged MNIST class; upper vs lower case)."""

from pathlib import Path

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
import numpy as np
from keras import layers
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from . import figures, pipeline
from .config import TrainConfig
from .data import TrainVal, stratified_split
from .run_folder import write_json_atomic



@keras.saving.register_keras_serializable(package="emnist_study")
class SumSubunits(layers.Layer):
    """The case-aware head's second half: (batch, classes * k) sub-unit probabilities -> (batch, classes), each
    class's probability the sum of its k sub-units' (unit c * k + j belongs to class c).

    Trained with the cross-entropy of that sum, the network needs only the class labels, yet is free to give the
    different shapes of one class (an `A` and an `a`) sub-units of their own. Free is not the same as pushed: left
    alone, a class's second unit can die and the first take both shapes. So, while training, the layer adds a loss
    of `diversity` times minus the mutual information between image and sub-unit within each class (in the
    batch): high when each image picks one unit clearly and the class's images share its units out, zero when
    one unit takes everything. It changes no class probability, only how a class divides among its units.

    With `paired_copies`, each training batch holds two distorted copies of every image (the first half of the
    batch and the second, as the pipeline pairs them), and the term adds the mutual information between the
    units the two copies pick (Ji et al.'s Invariant Information Clustering, 2019): highest when both copies
    pick the same unit and the class's images share the units out. A split by slant or stroke width, which a
    distortion changes, then scores lower than a split by shape, which survives it. (Alone, without the first
    term, it let some classes collapse into one unit: measured on merged MNIST, see docs/case-aware.md.) A class can still
    collapse, and neither term can lift it out again; `subunits.ResplitIdleSubunits` restarts such a class.
    """

    def __init__(self, subunits: int, diversity: float = 1.0, paired_copies: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.subunits = subunits
        self.diversity = diversity
        self.paired_copies = paired_copies

    def call(self, probabilities, training=None):
        ops = keras.ops
        units = ops.shape(probabilities)[-1]
        grouped = ops.reshape(probabilities, (-1, units // self.subunits, self.subunits))  # (batch, class, unit)
        class_probabilities = ops.sum(grouped, axis=-1)
        if training and self.diversity:
            information = within_class_information(grouped, class_probabilities)
            if self.paired_copies:
                information = information + paired_copy_information(grouped, class_probabilities)
            self.add_loss(-self.diversity * information)
        return class_probabilities

    def get_config(self):
        return {**super().get_config(), "subunits": self.subunits, "diversity": self.diversity,
                "paired_copies": self.paired_copies}


def within_class_information(grouped, class_probabilities, eps: float = 1e-7):
    """Mutual information between image and sub-unit within each class, averaged over classes: the entropy of
    the class's average split among its units minus the average entropy of each image's split. Images count
    towards a class by the probability the network gives them of being in it."""
    ops = keras.ops
    split = grouped / (class_probabilities[..., None] + eps)  # p(unit | class, image), (batch, class, unit)
    weight = class_probabilities / (ops.sum(class_probabilities, axis=0, keepdims=True) + eps)  # sums to 1 per class
    average_split = ops.sum(weight[..., None] * split, axis=0)  # (class, unit)
    entropy_of_average = -ops.sum(average_split * ops.log(average_split + eps), axis=-1)
    average_entropy = ops.sum(weight * -ops.sum(split * ops.log(split + eps), axis=-1), axis=0)
    return ops.mean(entropy_of_average - average_entropy)


def paired_copy_information(grouped, class_probabilities, eps: float = 1e-7):
    """Mutual information between the sub-units two copies of an image pick, within each class, averaged over
    classes. Copy i of the batch's first half pairs with copy i of its second half; pairs count towards a class
    by the probability the network gives them of being in it (the mean over the two copies)."""
    ops = keras.ops
    half = ops.shape(grouped)[0] // 2
    split = grouped / (class_probabilities[..., None] + eps)  # p(unit | class, image), (batch, class, unit)
    weight = (class_probabilities[:half] + class_probabilities[half:]) / 2
    weight = weight / (ops.sum(weight, axis=0, keepdims=True) + eps)  # sums to 1 per class
    joint = ops.einsum("nc,nck,ncl->ckl", weight, split[:half], split[half:])  # p(unit of copy 1, of copy 2 | class)
    joint = (joint + ops.transpose(joint, (0, 2, 1))) / 2
    marginal = ops.sum(joint, axis=-1)  # (class, unit)
    independent = marginal[:, :, None] * marginal[:, None, :]
    return ops.mean(ops.sum(joint * (ops.log(joint + eps) - ops.log(independent + eps)), axis=(1, 2)))


SUBUNITS_LAYER = "subunits"


def with_case_aware_head(model: keras.Model, subunits: int, paired_copies: bool = False) -> keras.Model:
    """`model` (a Sequential network ending in a Dense softmax over the classes) with the case-aware head in place
    of its softmax: a softmax over classes x `subunits` sub-units, whose probabilities SumSubunits sums per class.
    The layers before the head are `model`'s own."""
    softmax = model.layers[-1]
    num_classes = softmax.units
    # float32 even under mixed precision: a softmax and its log-loss need more than bfloat16's 8 bits of mantissa.
    head = [layers.Dense(num_classes * subunits, activation="softmax", kernel_regularizer=softmax.kernel_regularizer,
                         name=SUBUNITS_LAYER, dtype="float32"),
            SumSubunits(subunits, paired_copies=paired_copies, dtype="float32")]
    return keras.Sequential([keras.Input(model.input_shape[1:]), *model.layers[:-1], *head], name=model.name)


def subunit_model(model: keras.Model) -> keras.Model:
    """A model giving the sub-unit probabilities of a network with the case-aware head."""
    return keras.Model(model.inputs, model.get_layer(SUBUNITS_LAYER).output)


def subunit_probabilities(model, images: np.ndarray) -> np.ndarray:
    """(N, classes * k) sub-unit probabilities of a network with the case-aware head."""
    return pipeline.predict(subunit_model(model), images)


def class_probabilities(subunit_probs: np.ndarray, subunits: int) -> np.ndarray:
    """(N, classes) class probabilities: each class's sub-unit probabilities summed, as the head's output layer does."""
    return subunit_probs.reshape(len(subunit_probs), -1, subunits).sum(axis=2)


def purity(units: np.ndarray, hidden: np.ndarray) -> float:
    """The share of images whose unit's most common hidden label is their own (1.0: each unit one label)."""
    total = 0
    for unit in np.unique(units):
        total += np.bincount(hidden[units == unit]).max()
    return total / len(units)


def recovery(subunit_probs: np.ndarray, hidden: np.ndarray) -> dict:
    """Purity and normalised mutual information of each image's most active sub-unit against the hidden label."""
    units = subunit_probs.argmax(axis=1)
    return {"purity": round(float(purity(units, hidden)), 4),
            "nmi": round(float(normalized_mutual_info_score(hidden, units)), 4),
            "units_used": int(len(np.unique(units))), "images": int(len(units))}


def most_confident_images(subunit_probs: np.ndarray, labels: np.ndarray, subunits: int, per_unit: int):
    """For each class and each of its sub-units, the indices of the class's images that unit is most sure of."""
    num_classes = subunit_probs.shape[1] // subunits
    chosen = {}
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        for j in range(subunits):
            order = np.argsort(-subunit_probs[members, c * subunits + j], kind="stable")
            chosen[(c, j)] = members[order[:per_unit]]
    return chosen


SPLIT_SHARE = 0.1  # a class counts as split when its least-used sub-unit takes at least this share of its images


def record_subunits(probs: np.ndarray, dataset: TrainVal, run_dir: Path, subunits: int, results_dir: Path,
             show: bool = False) -> Path:
    """Draw, for each class, the validation images each sub-unit is most sure of (results/<run>_subunits.png),
    from the sub-unit probabilities of the validation images, and record in <run>/subunits.json how each class
    divides among its units; where the hidden label is known (merged MNIST), also score the units against it."""
    per_unit = 8
    chosen = most_confident_images(probs, dataset.y_val, subunits, per_unit)
    title = f"{run_dir.name}: the validation images each sub-unit is most sure of"
    shares = unit_shares(probs, dataset.y_val, subunits)
    record = {"split": "validation", "split_share": SPLIT_SHARE,
              "classes_split": sum(1 for s in shares if s is not None and s.min() >= SPLIT_SHARE),
              "classes": len(shares),
              "unit_shares": {name: None if s is None else [round(float(x), 4) for x in s]
                              for name, s in zip(dataset.class_names, shares)}}
    if dataset.fine_val is not None:
        # merged MNIST hides the digit; letters taken from ByClass hide each letter's case
        hidden = "letter and case" if dataset.source.get("derived_from") else "digit"
        scores = recovery(probs, dataset.fine_val)
        record = {"hidden_label": hidden, **scores, **record}
        title += f" (purity {scores['purity']:.3f}, NMI {scores['nmi']:.3f} against the hidden {hidden})"
        print(f"Sub-units against the hidden {hidden}: purity {scores['purity']:.4f}, NMI {scores['nmi']:.4f}")
    write_json_atomic(run_dir / "subunits.json", record)
    print(f"{record['classes_split']} of {record['classes']} classes use both sub-units for at least "
          f"{SPLIT_SHARE:.0%} of their validation images")
    return figures.save(figures.plot_subunits(dataset.x_val, chosen, dataset.class_names, subunits, per_unit, title),
                        results_dir / f"{run_dir.name}_subunits.png", show=show)


class ResplitIdleSubunits(keras.callbacks.Callback):
    """Revive a class whose sub-units collapsed: at the end of every epoch but the last, on a fixed sample of the
    training images (never validation), find each class whose least-used sub-unit is the most active one for
    under `below` of the class's images, and split that class afresh: k-means on the features the head sees
    (the layer before it) divides the class's images into K groups, and each sub-unit is set to pick its group,
    by nearest centroid, on top of the weights of the unit that held the class.

    Why: once one unit takes a whole class, the head's within-class information is at its minimum, where its
    gradient vanishes, so nothing pushes the images apart again (measured on merged MNIST: 2/3 stayed in one
    unit from 5 epochs to 8). The features still tell the digits apart, and k-means finds them. The class's
    probability is left nearly as it was, so accuracy pays little for the restart.

    Nothing is split while the network classifies under `min_accuracy` of the sample: its features do not yet
    tell the classes apart (and early on, batch norm's running statistics do not yet match its training ones, so
    a split computed from them misleads; measured on a 540-image run, the loss rose from 1.4 to 10).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, subunits: int, below: float, margin: float = 4.0,
                 min_accuracy: float = 0.8, seed: int = 0, class_names: list | None = None):
        super().__init__()
        self.images, self.labels, self.min_accuracy = images, labels, min_accuracy
        self.class_names = class_names or [str(c) for c in range(int(labels.max()) + 1)]
        self.subunits, self.below, self.margin, self.seed = subunits, below, margin, seed
        self.resplits = []  # (epoch, class) of every restart, for the summary and the tests

    def set_model(self, model):
        super().set_model(model)
        self.head = model.get_layer(SUBUNITS_LAYER)
        # built once: a new model every epoch would trace its prediction function anew every epoch
        self.features_and_units = keras.Model(model.inputs, [self.head.input, self.head.output])

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.params.get("epochs", 0):  # nothing left to train the new split
            return
        head = self.head
        features, probs = pipeline.predict(self.features_and_units, self.images)
        features = np.asarray(features, dtype=np.float32)  # bfloat16 under mixed precision
        k = self.subunits
        accuracy = float((class_probabilities(probs, k).argmax(axis=1) == self.labels).mean())
        if accuracy < self.min_accuracy:  # features that do not yet tell the classes apart are not worth clustering
            return
        kernel, bias = (np.array(w, dtype=np.float32) for w in head.get_weights())
        collapsed = [(c, shares) for c, shares in enumerate(unit_shares(probs, self.labels, k))
                     if shares is not None and shares.min() < self.below]
        for c, shares in collapsed:
            held_by = c * k + int(shares.argmax())
            columns = slice(c * k, (c + 1) * k)
            kernel[:, columns], bias[columns] = nearest_centroid_units(
                features[self.labels == c], features, kernel[:, held_by], bias[held_by], k, self.margin,
                self.seed + epoch)
            self.resplits.append((epoch + 1, c))
            print(f"After epoch {epoch + 1}: class {self.class_names[c]}'s least-used sub-unit is the choice of "
                  f"{shares.min():.1%} of its sampled training images; split the class afresh by k-means on its "
                  f"features")
        if collapsed:
            head.set_weights([kernel, bias])


def unit_shares(subunit_probs: np.ndarray, labels: np.ndarray, subunits: int) -> list:
    """For each class, the share of its images whose most active unit (among the class's own) is each unit;
    None for a class with no images."""
    grouped = subunit_probs.reshape(len(subunit_probs), -1, subunits)
    shares = []
    for c in range(grouped.shape[1]):
        picks = grouped[labels == c, c].argmax(axis=1)
        shares.append(np.bincount(picks, minlength=subunits) / len(picks) if len(picks) else None)
    return shares


def nearest_centroid_units(class_features: np.ndarray, features: np.ndarray, weights: np.ndarray, bias: float,
                           subunits: int, margin: float, seed: int):
    """Kernel columns (features, K) and biases (K) for K sub-units that split `class_features` as k-means does.

    Unit j adds alpha * (c_j . h - |c_j|^2 / 2) to the logit `weights . h + bias` of the unit that held the
    class, less the mean of that term over the units: the most active unit is then the nearest centroid c_j,
    and the class's total probability stays close to what it was (less log K for the K units sharing it).
    alpha makes two neighbouring centroids `margin` nats apart, each at its own centroid, but no more than
    makes any unit's term exceed 2 * margin nats for 99% of `features` (the images of every class): centroids
    that lie close together must not give every image of every class a large push towards this one."""
    centroids = KMeans(subunits, n_init=4, random_state=seed).fit(class_features).cluster_centers_
    gaps = [np.sum((a - b) ** 2) for i, a in enumerate(centroids) for b in centroids[i + 1:]]
    squares = np.sum(centroids ** 2, axis=1)
    terms = features @ centroids.T - squares / 2  # (images, K), before alpha
    spread = np.percentile(np.abs(terms - terms.mean(axis=1, keepdims=True)), 99)
    alpha = min(2 * margin / max(min(gaps), 1e-6), 2 * margin / max(spread, 1e-6))
    kernel = weights[:, None] + alpha * (centroids - centroids.mean(axis=0)).T
    biases = bias - np.log(subunits) - alpha * (squares - squares.mean()) / 2
    return kernel, biases


def resplit_callback(data: TrainVal, config: TrainConfig, sample: int = 10_000):
    """The case-aware head's restart of collapsed classes, judged on a fixed, stratified sample of the training
    images (all of them, where there are fewer)."""
    keep = (np.arange(len(data.y_train)) if len(data.y_train) <= sample
            else stratified_split(data.y_train, sample, config.seed)[1])
    return ResplitIdleSubunits(data.x_train[keep], data.y_train[keep], config.subunits,
                                        config.resplit_idle_units, seed=config.seed,
                                        class_names=data.class_names)
