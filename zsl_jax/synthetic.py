"""A generated zero-shot problem with known structure, for tests and quick experiments.

Each class has sparse non-negative semantics t_c (like a TF-IDF row, L2-normalised). Its visual
features are a fixed nonlinear function of the semantics plus Gaussian noise:
x = f(t_c) + noise * eps, f(t) = 0.7 tanh(W2 tanh(W1 t)). A model that learns f from the seen classes
can recognise unseen ones; an oracle that knows f bounds what any method can reach.
"""

import dataclasses

import ml_collections
import numpy as np

from zsl_jax.problem import ZslProblem, hold_out_last_classes


@dataclasses.dataclass(frozen=True)
class SyntheticZsl:
    """The problem and the true class means f(t_c) of its unseen classes (what the oracle knows)."""

    problem: ZslProblem
    unseen_means: np.ndarray  # (U, D)


def class_means(text: np.ndarray, seed: int, feature_dim: int, hidden: int = 64) -> np.ndarray:
    """f(t) = 0.7 tanh(W2 tanh(W1 t)) with fixed random weights drawn from `seed`."""
    rng = np.random.default_rng([seed, 1])
    w1 = rng.normal(0.0, 3.0 / np.sqrt(text.shape[1]), (text.shape[1], hidden))
    w2 = rng.normal(0.0, 1.5 / np.sqrt(hidden), (hidden, feature_dim))
    return (0.7 * np.tanh(np.tanh(text @ w1) @ w2)).astype(np.float32)


def make_synthetic(spec: ml_collections.ConfigDict) -> SyntheticZsl:
    """Draws semantics, means and features of `spec.num_seen` + `spec.num_unseen` classes."""
    rng = np.random.default_rng([spec.seed, 0])
    num_classes = spec.num_seen + spec.num_unseen
    text = np.maximum(rng.normal(size=(num_classes, spec.text_dim)), 0.0)
    text /= np.linalg.norm(text, axis=1, keepdims=True) + 1e-12
    means = class_means(text, spec.seed, spec.feature_dim)

    def draw(classes: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(classes, per_class)
        noise = rng.normal(0.0, spec.noise, (len(labels), spec.feature_dim))
        return (means[labels] + noise).astype(np.float32), labels.astype(np.int32)

    seen, unseen = np.arange(spec.num_seen), np.arange(spec.num_seen, num_classes)
    x_train, y_train = draw(seen, spec.train_per_class)
    x_seen, y_seen = draw(seen, spec.test_per_class)
    x_unseen, y_unseen = draw(unseen, spec.test_per_class)
    problem = ZslProblem(name='synthetic', train_features=x_train, train_labels=y_train,
                         seen_text=text[seen].astype(np.float32), unseen_text=text[unseen].astype(np.float32),
                         unseen_features=x_unseen, unseen_labels=y_unseen - spec.num_seen,
                         seen_test_features=x_seen, seen_test_labels=y_seen).checked()
    return SyntheticZsl(problem, means[unseen])


def oracle_accuracy(spec: ml_collections.ConfigDict) -> float:
    """ZSL top-1 (%) of the oracle that knows f: each unseen test feature takes the class whose true
    mean f(t_c) is most cosine-similar."""
    data = make_synthetic(spec)
    x = data.problem.unseen_features / np.linalg.norm(data.problem.unseen_features, axis=1, keepdims=True)
    means = data.unseen_means / np.linalg.norm(data.unseen_means, axis=1, keepdims=True)
    return 100.0 * float(np.mean(np.argmax(x @ means.T, axis=1) == data.problem.unseen_labels))


def load_synthetic_problem(config: ml_collections.ConfigDict, stage: str) -> ZslProblem:
    """The synthetic problem; 'validation' holds out the last seen classes as in CIZSL's split."""
    data = make_synthetic(config.benchmark.synthetic)
    if stage == 'final':
        return data.problem
    p = data.problem
    return hold_out_last_classes('synthetic', p.train_features, p.train_labels, p.seen_text,
                                 config.benchmark.val_unseen or max(1, p.num_seen // 5))
