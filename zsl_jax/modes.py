"""What `main.py --mode` runs for the zsl_jax family.

train: the evaluation protocol (`eval.protocol`) over `eval.seeds`: trains, selects, evaluates, and
  writes results.json / results.md / results_seen_unseen.png into the workdir.
eval: re-evaluates the trained models of a finished `train` on the test classes (eval_results.*).
text_features: encodes the CUB Wikipedia articles with `text.encoder` and writes the class features
  (<workdir>/text_features_<encoder>.npz) for benchmark.text_path.
import_weights: a generator and discriminator saved by the original CIZSL / GAZSL training scripts as
  step 0 of <workdir>/seed_<seed>/best_on_test, which eval (eval.protocol=best_on_test) evaluates.
tfidf_report: rebuilds TF-IDF from the same articles (<workdir>/tfidf.npz) and compares its vocabulary
  with the shipped 7551-term list (tfidf_report.json / .md).
"""

from collections.abc import Callable

import ml_collections

from zsl_jax import protocol, report
from zsl_jax.data import load_problem
from zsl_jax.synthetic import oracle_accuracy
from zsl_jax.weights import import_weights


def _write(config: ml_collections.ConfigDict, workdir: str, results: list[protocol.SeedResult], name: str) -> None:
    problem = load_problem(config, 'final')
    params = protocol.parameter_counts(config, problem.feature_dim, problem.text_dim, problem.num_seen)
    extra = {}
    if config.benchmark.kind == 'synthetic':
        extra['oracle_zsl_top1'] = oracle_accuracy(config.benchmark.synthetic)
    report.write_results(config, workdir, results, params, problem.name, name=name, extra=extra)


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
    _write(config, workdir, protocol.run_protocol(config, workdir), 'results')


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
    _write(config, workdir, protocol.evaluate_trained(config, workdir), 'eval_results')


def text_features(config: ml_collections.ConfigDict, workdir: str) -> None:
    from zsl_jax.text_features import write_article_features

    write_article_features(config, workdir)


def tfidf_report(config: ml_collections.ConfigDict, workdir: str) -> None:
    from zsl_jax.tfidf import write_tfidf_report

    write_tfidf_report(config, workdir)


MODES: dict[str, Callable[[ml_collections.ConfigDict, str], None]] = {
    'train': train,
    'eval': evaluate,
    'text_features': text_features,
    'tfidf_report': tfidf_report,
    'import_weights': import_weights,
}
