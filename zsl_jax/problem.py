"""The zero-shot learning problem every loader produces and every trainer and evaluator consumes."""

import dataclasses

import numpy as np

from gen_runtime.errors import DataError
from zsl_jax.segments import segment_means


@dataclasses.dataclass(frozen=True)
class ZslProblem:
    """Seen classes to learn from and unseen classes to recognise, as arrays.

    Labels are 0-based within their group: seen classes 0..S-1, unseen classes 0..U-1. In generalised
    (seen + unseen) evaluation the unseen classes follow the seen ones, as S..S+U-1.
    """

    name: str
    train_features: np.ndarray  # (N, D) visual features of seen-class training images
    train_labels: np.ndarray  # (N,) in [0, S)
    seen_text: np.ndarray  # (S, T) class semantics (TF-IDF, attributes, text features)
    unseen_text: np.ndarray  # (U, T)
    unseen_features: np.ndarray  # (Nu, D) images of unseen classes to classify
    unseen_labels: np.ndarray  # (Nu,) in [0, U)
    seen_test_features: np.ndarray  # (Ns, D) seen-class images for generalised evaluation
    seen_test_labels: np.ndarray  # (Ns,) in [0, S)

    @property
    def num_seen(self) -> int:
        return len(self.seen_text)

    @property
    def num_unseen(self) -> int:
        return len(self.unseen_text)

    @property
    def feature_dim(self) -> int:
        return self.train_features.shape[1]

    @property
    def text_dim(self) -> int:
        return self.seen_text.shape[1]

    def centroids(self) -> np.ndarray:
        """(S, D) mean training feature of each seen class: the visual pivots of GAZSL."""
        return segment_means(self.train_features, self.train_labels, self.num_seen).astype(np.float32)

    def checked(self) -> 'ZslProblem':
        """Returns self after checking shapes, label ranges and finiteness; raises DataError otherwise."""
        pairs = [('train', self.train_features, self.train_labels, self.num_seen),
                 ('unseen', self.unseen_features, self.unseen_labels, self.num_unseen),
                 ('seen test', self.seen_test_features, self.seen_test_labels, self.num_seen)]
        if self.unseen_text.shape[1] != self.text_dim:
            raise DataError(f'{self.name}: seen text features have {self.text_dim} dims, unseen ones '
                            f'{self.unseen_text.shape[1]}; both must come from the same text file')
        for what, features, labels, num_classes in pairs:
            if features.ndim != 2 or features.shape[1] != self.feature_dim:
                raise DataError(f'{self.name}: {what} features have shape {features.shape}, expected '
                                f'(rows, {self.feature_dim})')
            if len(features) != len(labels):
                raise DataError(f'{self.name}: {len(features)} {what} feature rows but {len(labels)} labels; '
                                'the feature and label files do not belong together')
            if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
                raise DataError(f'{self.name}: {what} labels span {labels.min()}..{labels.max()}, outside '
                                f'0..{num_classes - 1}')
            if not np.all(np.isfinite(features)):
                raise DataError(f'{self.name}: {what} features contain NaN or Inf')
        missing = np.setdiff1d(np.arange(self.num_seen), self.train_labels)
        if len(missing):
            raise DataError(f'{self.name}: seen classes {missing[:5].tolist()} have no training features')
        return self


def hold_out_last_classes(name: str, features: np.ndarray, labels: np.ndarray, text: np.ndarray,
                          num_val: int) -> ZslProblem:
    """The validation problem of CIZSL: the last `num_val` seen classes become unseen.

    As in the original `is_val` split, seen accuracy in generalised evaluation is measured on the
    training images of the remaining seen classes (the benchmark has no held-out seen images).
    """
    num_seen = len(text) - num_val
    if not 0 < num_seen < len(text):
        raise DataError(f'{name}: cannot hold out {num_val} of {len(text)} seen classes for validation')
    train = labels < num_seen
    return ZslProblem(name=f'{name} (validation)', train_features=features[train], train_labels=labels[train],
                      seen_text=text[:num_seen], unseen_text=text[num_seen:],
                      unseen_features=features[~train], unseen_labels=labels[~train] - num_seen,
                      seen_test_features=features[train], seen_test_labels=labels[train]).checked()
