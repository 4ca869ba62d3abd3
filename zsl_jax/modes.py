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

import ml_collections

from gen_runtime.modes import Mode
from zsl_jax import checks, protocol, report
from zsl_jax.data import load_problem
from zsl_jax.problem import ZslProblem
from zsl_jax.synthetic import oracle_accuracy
from zsl_jax.weights import import_weights


def _write(config: ml_collections.ConfigDict, workdir: str, results: list[protocol.SeedResult], problem: ZslProblem,
           name: str) -> None:
    params = protocol.parameter_counts(config, problem.feature_dim, problem.text_dim, problem.num_seen)
    extra = {}
    if config.benchmark.kind == 'synthetic':
        extra['oracle_zsl_top1'] = oracle_accuracy(config.benchmark.synthetic)
    report.write_results(config, workdir, results, params, problem.name, name=name, extra=extra)


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
    problems = protocol.load_problems(config)
    _write(config, workdir, protocol.run_protocol(config, workdir, problems), problems['final'], 'results')


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
    problem = load_problem(config, 'final')
    _write(config, workdir, protocol.evaluate_trained(config, workdir, problem), problem, 'eval_results')


def text_features(config: ml_collections.ConfigDict, workdir: str) -> None:
    from zsl_jax.text_features import write_article_features

    write_article_features(config, workdir)


def tfidf_report(config: ml_collections.ConfigDict, workdir: str) -> None:
    from zsl_jax.tfidf import write_tfidf_report

    write_tfidf_report(config, workdir)


# Sections that may change between invocations on one workdir (besides gen_runtime.config's, which include
# the evaluation protocol `eval`): where imported weights came from (recorded in import.json).
RUN_INDEPENDENT_FIELDS = ('weights',)
MODES: dict[str, Mode] = {
    'train': Mode(train, 'the evaluation protocol over eval.seeds: train, select, evaluate, report',
                  checks.check_train),
    'eval': Mode(evaluate, "re-evaluate a finished train's models on the test classes", checks.check_eval),
    'text_features': Mode(text_features, 'encode the CUB Wikipedia articles with text.encoder',
                          checks.check_text_features),
    'tfidf_report': Mode(tfidf_report, 'rebuild TF-IDF and compare it with the shipped vocabulary', checks.check_tfidf),
    'import_weights': Mode(import_weights, 'an original CIZSL / GAZSL checkpoint as step 0', checks.check_import),
}
