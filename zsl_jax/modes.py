"""What `main.py --mode` runs for the zsl_jax family.

train: the evaluation protocol (`eval.protocol`) over `eval.seeds`: trains, selects, evaluates, and
  writes results.json / results.md / results_seen_unseen.png into the workdir.
eval: re-evaluates the trained models of a finished `train` on the test classes (eval_results.*).
text_features: encodes the CUB Wikipedia articles with `text.encoder` and writes the class features
  (<workdir>/text_features_<encoder>.npz) for benchmark.text_path.
tfidf_report: rebuilds TF-IDF from the same articles (<workdir>/tfidf.npz) and compares its vocabulary
  with the shipped 7551-term list (tfidf_report.json / .md).
"""

from collections.abc import Callable

import ml_collections

from zsl_jax import protocol, report
from zsl_jax.data import load_problem


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
    results = protocol.run_protocol(config, workdir)
    params = protocol.parameter_counts(config, load_problem(config, 'final'))
    report.write_results(config, workdir, results, params)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
    results = protocol.evaluate_trained(config, workdir)
    params = protocol.parameter_counts(config, load_problem(config, 'final'))
    report.write_results(config, workdir, results, params, name='eval_results')


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
}
