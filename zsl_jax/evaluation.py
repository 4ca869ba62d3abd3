"""Zero-shot evaluation on generated features, jit-compiled and chunked (no per-class Python loops).

- ZSL top-1: each unseen test feature takes the majority class of its k nearest (cosine) generated
  unseen features (k = 20 of 60 per class in the originals); reported per sample (the CUB/NABirds
  papers) and as the mean of per-class accuracies (the GBU papers).
- Generalised seen-unseen AUC (GAZSL Sec. 4.3, Chao et al. 2016): classify seen and unseen test
  features among all classes by cosine to the visual pivots (means of generated features), adding a
  calibration lambda in [-2, 2) to the unseen classes' scores; integrate seen accuracy over unseen
  accuracy with the trapezoid rule.
- GBU u / s / H (Xian et al.): kNN among generated features of all classes, per-class mean accuracy
  on unseen and seen test features, and their harmonic mean (vote ties go to the query's own group,
  as in GAZSL's train_GBU.py).
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from zsl_jax.models import Generator
from zsl_jax.problem import ZslProblem


def generate(generator: Generator, params: dict, text: jax.Array, per_class: int, noise_dim: int,
             key: jax.Array) -> jax.Array:
    """(C * per_class, D) generated features, class-major: row i belongs to class i // per_class."""
    repeated = jnp.repeat(text, per_class, axis=0)
    z = jax.random.normal(key, (repeated.shape[0], noise_dim))
    return generator.apply({'params': params}, z, repeated)


def unit_rows(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def knn_vote(queries: jax.Array, gallery: jax.Array, per_class: int, num_classes: int, k: int,
             chunk: int = 256) -> jax.Array:
    """Majority class among each query's k most cosine-similar gallery rows (ties: lowest class).

    `gallery` is class-major with `per_class` rows per class; queries are processed in chunks.
    """
    gallery = unit_rows(gallery)

    def vote(q: jax.Array) -> jax.Array:
        _, nearest = jax.lax.top_k(unit_rows(q)[None] @ gallery.T, k)
        votes = jnp.sum(jax.nn.one_hot(nearest[0] // per_class, num_classes, dtype=jnp.int32), axis=0)
        return jnp.argmax(votes)

    return jax.lax.map(vote, queries, batch_size=chunk)


def accuracies(pred: jax.Array, labels: jax.Array, num_classes: int) -> tuple[jax.Array, jax.Array]:
    """(per-sample accuracy, mean of per-class accuracies over the classes present)."""
    correct = (pred == labels).astype(jnp.float32)
    hits = jax.ops.segment_sum(correct, labels, num_segments=num_classes)
    counts = jax.ops.segment_sum(jnp.ones_like(correct), labels, num_segments=num_classes)
    present = counts > 0
    per_class = jnp.sum(jnp.where(present, hits / jnp.maximum(counts, 1.0), 0.0)) / jnp.sum(present)
    return jnp.mean(correct), per_class


def seen_unseen_curve(seen_scores: jax.Array, seen_labels: jax.Array, unseen_scores: jax.Array,
                      unseen_labels: jax.Array, num_seen: int, lambdas: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-sample seen and unseen accuracy for each calibration lambda (scores: (N, S + U)).

    argmax over [seen scores, unseen scores + lambda] picks an unseen class exactly when the best
    unseen score + lambda exceeds the best seen score (a tie goes to the seen class, the first
    index), so one pass over the scores serves every lambda.
    """

    def parts(scores: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        seen, unseen = scores[:, :num_seen], scores[:, num_seen:]
        return jnp.max(seen, 1), jnp.argmax(seen, 1), jnp.max(unseen, 1), jnp.argmax(unseen, 1)

    s_best, s_arg, u_best, _ = parts(seen_scores)
    picks_unseen = u_best[None] + lambdas[:, None] > s_best[None]
    acc_seen = jnp.mean((s_arg == seen_labels)[None] & ~picks_unseen, axis=1)
    s_best, _, u_best, u_arg = parts(unseen_scores)
    picks_unseen = u_best[None] + lambdas[:, None] > s_best[None]
    acc_unseen = jnp.mean((u_arg == unseen_labels)[None] & picks_unseen, axis=1)
    return acc_seen, acc_unseen


def gbu_accuracies(unseen_x: jax.Array, unseen_y: jax.Array, seen_x: jax.Array, seen_y: jax.Array,
                   gen_unseen: jax.Array, gen_seen: jax.Array, per_class: int, k: int,
                   chunk: int = 256) -> tuple[jax.Array, jax.Array]:
    """GBU (u, s): per-class mean kNN accuracy of unseen and seen test features among the generated
    features of all classes. As in the original (GAZSL train_GBU.py), each query's own group comes
    first in its gallery (unseen then seen for u, seen then unseen for s), so a vote tied between a
    seen and an unseen class goes to the query's own group."""
    num_classes = gen_unseen.shape[0] // per_class + gen_seen.shape[0] // per_class
    pred_u = knn_vote(unseen_x, jnp.concatenate([gen_unseen, gen_seen]), per_class, num_classes, k, chunk)
    pred_s = knn_vote(seen_x, jnp.concatenate([gen_seen, gen_unseen]), per_class, num_classes, k, chunk)
    return accuracies(pred_u, unseen_y, num_classes)[1], accuracies(pred_s, seen_y, num_classes)[1]


def area_under_curve(acc_seen: np.ndarray, acc_unseen: np.ndarray) -> float:
    """Seen accuracy integrated over unseen accuracy (trapezoid rule, in %), as the originals' AUC."""
    return float(np.trapezoid(y=acc_seen, x=acc_unseen) * 100.0)


def harmonic_mean(u: float, s: float) -> float:
    return 2.0 * u * s / (u + s) if u + s > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Metrics (in %) and the seen-unseen curve of one evaluation."""

    metrics: dict[str, float]
    lambdas: np.ndarray
    acc_seen: np.ndarray
    acc_unseen: np.ndarray


class Evaluator:
    """Evaluates a generator's parameters on one problem (compiled on the first call)."""

    def __init__(self, generator: Generator, problem: ZslProblem, settings: ml_collections.ConfigDict,
                 noise_dim: int) -> None:
        self.problem = problem
        self.settings = settings
        self.lambdas = np.arange(settings.gzsl_lambda_min, settings.gzsl_lambda_max, settings.gzsl_lambda_step,
                                 dtype=np.float64).astype(np.float32)
        self._generator, self._noise_dim = generator, noise_dim
        self._data = jax.device_put({
            'seen_text': problem.seen_text, 'unseen_text': problem.unseen_text,
            'unseen_x': problem.unseen_features, 'unseen_y': problem.unseen_labels,
            'seen_x': problem.seen_test_features, 'seen_y': problem.seen_test_labels,
        })
        self._run = jax.jit(self._evaluate_arrays)

    def _evaluate_arrays(self, params: dict, key: jax.Array, d: dict[str, jax.Array]) -> dict[str, Any]:
        s = self.settings
        n, num_seen, num_unseen = s.samples_per_class, self.problem.num_seen, self.problem.num_unseen
        k_seen, k_unseen = jax.random.split(key)
        gen_unseen = generate(self._generator, params, d['unseen_text'], n, self._noise_dim, k_unseen)
        gen_seen = generate(self._generator, params, d['seen_text'], n, self._noise_dim, k_seen)
        pred = knn_vote(d['unseen_x'], gen_unseen, n, num_unseen, s.knn, s.chunk)
        out = {}
        out['zsl_top1'], out['zsl_top1_per_class'] = accuracies(pred, d['unseen_y'], num_unseen)
        pivots = unit_rows(jnp.concatenate([gen_seen, gen_unseen]).reshape(num_seen + num_unseen, n, -1).mean(1))
        out['acc_seen'], out['acc_unseen'] = seen_unseen_curve(
            unit_rows(d['seen_x']) @ pivots.T, d['seen_y'], unit_rows(d['unseen_x']) @ pivots.T, d['unseen_y'],
            num_seen, jnp.asarray(self.lambdas))
        if s.gbu:
            out['gbu_u'], out['gbu_s'] = gbu_accuracies(d['unseen_x'], d['unseen_y'], d['seen_x'], d['seen_y'],
                                                        gen_unseen, gen_seen, n, s.knn, s.chunk)
        return out

    def __call__(self, params: dict, key: jax.Array) -> Evaluation:
        out = jax.device_get(self._run(params, key, self._data))
        metrics = {'zsl_top1': 100.0 * float(out['zsl_top1']),
                   'zsl_top1_per_class': 100.0 * float(out['zsl_top1_per_class']),
                   'gzsl_auc': area_under_curve(out['acc_seen'], out['acc_unseen'])}
        if self.settings.gbu:
            u, s = 100.0 * float(out['gbu_u']), 100.0 * float(out['gbu_s'])
            metrics.update(gbu_u=u, gbu_s=s, gbu_h=harmonic_mean(u, s))
        return Evaluation(metrics, self.lambdas, np.asarray(out['acc_seen']), np.asarray(out['acc_unseen']))
