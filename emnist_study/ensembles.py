"""Ensembles: several networks saved as one model that combines their answers, by Nielsen's majority vote or by
averaging their probabilities. (training.train_ensemble trains the members.)"""

from . import quiet_tensorflow  # noqa: F401  (first: before keras starts TensorFlow)
import keras
from keras import layers


@keras.saving.register_keras_serializable(package="emnist_study")
class MajorityVote(layers.Layer):
    """Combine members' class probabilities by majority vote, as Nielsen's ensemble does.

    The output is each class's share of the votes; a tie goes to the class with the higher mean probability
    (a small fraction of it is added), where Nielsen's argmax would take the lower class index.
    """

    def call(self, member_probabilities):
        stacked = keras.ops.stack(member_probabilities, axis=0)  # (members, batch, classes)
        classes = keras.ops.shape(stacked)[-1]
        votes = keras.ops.mean(keras.ops.one_hot(keras.ops.argmax(stacked, axis=-1), classes), axis=0)
        return (votes + 1e-3 * keras.ops.mean(stacked, axis=0)) / (1 + 1e-3)


@keras.saving.register_keras_serializable(package="emnist_study")
class MeanProbabilities(layers.Layer):
    """Average the members' class probabilities (a soft-vote ensemble)."""

    def call(self, member_probabilities):
        return keras.ops.mean(keras.ops.stack(member_probabilities, axis=0), axis=0)


COMBINERS = {"vote": MajorityVote, "average": MeanProbabilities}


def combine(members: list[keras.Model], how: str, name: str = "ensemble") -> keras.Model:
    """One model whose prediction combines `members` (which must have distinct names): "vote" or "average"."""
    inputs = keras.Input(members[0].input_shape[1:])
    return keras.Model(inputs, COMBINERS[how]()([member(inputs) for member in members]), name=name)
