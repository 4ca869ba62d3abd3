"""Training runs and model selection: the honest protocol and, only on request, the original one.

'validation' (default), per seed: train on the validation split (the last seen classes held out as
unseen), evaluating every `eval.every` steps; pick the step (and, with `eval.creativity_weights`,
CIZSL's creativity weight) with the best validation `eval.selection_metric`; train again on all seen
classes for that many steps; evaluate once on the test classes.

'best_on_test': the originals' protocol, labelled as such in every output: train on all seen
classes, evaluate on the test classes every `eval.every` steps and report the best value of each
metric seen during training. It selects on test data, so it overstates accuracy.

Each run is a gen_runtime training run in its own folder under the workdir, so an interrupted
protocol resumes where it stopped.
"""

import dataclasses
import json
import logging
import os

import jax
import ml_collections
import numpy as np

from gen_runtime.errors import CheckpointError, ConfigError
from gen_runtime.metric_writer import METRICS_FILE
from gen_runtime.outputs import write_json
from gen_runtime.pytree import count_params
from gen_runtime.rng import stream
from gen_runtime.trainer import TrainTask, train, trained_params
from zsl_jax.data import load_problem
from zsl_jax.evaluation import Evaluation, Evaluator
from zsl_jax.experiment import (
    Experiment,
    evaluated_params,
    initialiser,
    make_experiment,
    train_task,
    training_batches,
)
from zsl_jax.models import make_models
from zsl_jax.problem import ZslProblem

log = logging.getLogger(__name__)
PROTOCOLS = {
    'validation': 'model selection on a validation split, then one test evaluation',
    'best_on_test': 'ORIGINAL PROTOCOL: best test value during training (selects on test data; optimistic)',
}
CURVES_FILE = 'curves.jsonl'
SELECTION_FILE = 'selection.json'


@dataclasses.dataclass
class SeedResult:
    """What one seed's protocol produced."""

    seed: int
    metrics: dict[str, float]
    curve: Evaluation | None
    details: dict


def check_eval_config(config: ml_collections.ConfigDict) -> None:
    e = config.eval
    if e.selection_metric == 'gbu_h' and not e.gbu:
        raise ConfigError("eval.selection_metric='gbu_h' needs eval.gbu=True")
    if e.every % config.training.steps_per_call:
        raise ConfigError(f'eval.every={e.every} must be a multiple of training.steps_per_call')
    if e.start > config.training.num_steps:
        raise ConfigError(f'eval.start={e.start} is after training.num_steps={config.training.num_steps}: '
                          'nothing would be evaluated')


def for_seed(config: ml_collections.ConfigDict, seed: int, **changes: float) -> ml_collections.ConfigDict:
    """A copy of `config` with `seed` and dotted-name field changes."""
    out = config.copy_and_resolve_references()
    out.seed = seed
    for name, value in changes.items():
        section, field = name.split('.')
        out[section][field] = value
    return out


def eval_key(seed: int, step: int) -> jax.Array:
    return stream(seed, 'zsl_evaluation', step)


def make_evaluator(exp: Experiment) -> Evaluator:
    return Evaluator(exp.generator, exp.problem, exp.config.eval, exp.config.model.noise_dim)


def _train_task(exp: Experiment) -> TrainTask:
    return train_task(exp, training_batches(exp))


def with_evaluation(task: TrainTask, config: ml_collections.ConfigDict, evaluator: Evaluator, run_dir: str,
                    prefix: str) -> TrainTask:
    """`task` with a periodic evaluation from `eval.start` on; curves go to <run_dir>/curves.jsonl."""

    def evaluate(step: int, state: dict) -> dict[str, float]:
        if step < config.eval.start:
            return {}
        result = evaluator(evaluated_params(config, state), eval_key(config.seed, step))
        if jax.process_index() == 0:
            with open(os.path.join(run_dir, CURVES_FILE), 'a') as f:
                f.write(json.dumps({'step': step, 'acc_seen': result.acc_seen.tolist(),
                                    'acc_unseen': result.acc_unseen.tolist()}) + '\n')
        return {f'{prefix}/{k}': v for k, v in result.metrics.items()}

    return dataclasses.replace(task, evaluate=evaluate, evaluate_every=config.eval.every)


def read_history(run_dir: str, prefix: str) -> dict[int, dict[str, float]]:
    """{step: {metric: value}} of the evaluations logged in <run_dir>/metrics.jsonl."""
    history = {}
    with open(os.path.join(run_dir, METRICS_FILE)) as f:
        for line in f:
            record = json.loads(line)
            values = {k[len(prefix) + 1:]: v for k, v in record.items() if k.startswith(prefix + '/')}
            if values:
                history[record['step']] = values
    return history


def read_curve(run_dir: str, step: int, lambdas: np.ndarray) -> Evaluation | None:
    path = os.path.join(run_dir, CURVES_FILE)
    if not os.path.exists(path):
        return None
    curve = None
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record['step'] == step:
                curve = Evaluation({}, lambdas, np.asarray(record['acc_seen']), np.asarray(record['acc_unseen']))
    return curve


def train_with_selection(config: ml_collections.ConfigDict, problem: ZslProblem, run_dir: str) -> dict:
    """Trains on the validation problem, evaluating as it goes; returns the validation history's best."""
    exp = make_experiment(config, problem)
    task = with_evaluation(_train_task(exp), config, make_evaluator(exp), run_dir, 'val')
    train(config, run_dir, task)
    history = read_history(run_dir, 'val')
    if not history:
        raise ConfigError(f'no validation evaluation was logged in {run_dir}; lower eval.start or eval.every')
    metric = config.eval.selection_metric
    step = max(history, key=lambda s: (history[s][metric], -s))
    return {'step': step, 'validation': history[step]}


def validation_protocol(config: ml_collections.ConfigDict, workdir: str, seed: int,
                        problems: dict[str, ZslProblem]) -> SeedResult:
    seed_dir = os.path.join(workdir, f'seed_{seed}')
    weights = list(config.eval.creativity_weights) if config.model.variant == 'cizsl' else []
    candidates = []
    for weight in weights or [None]:
        changes = {} if weight is None else {'cizsl.creativity_weight': weight}
        run_config = for_seed(config, seed, **changes)
        run_dir = os.path.join(seed_dir, 'validation' if weight is None else f'validation_weight_{weight:g}')
        best = train_with_selection(run_config, problems['validation'], run_dir)
        weight = run_config.cizsl.creativity_weight if config.model.variant == 'cizsl' else None
        candidates.append({**best, 'creativity_weight': weight, 'run': run_dir})
    metric = config.eval.selection_metric
    chosen = max(candidates, key=lambda c: (c['validation'][metric], -c['step']))
    selection = {'selected_step': chosen['step'], 'creativity_weight': chosen['creativity_weight'],
                 'validation': chosen['validation'], 'selection_metric': metric,
                 'candidates': [{k: c[k] for k in ('creativity_weight', 'step', 'validation')} for c in candidates]}
    os.makedirs(seed_dir, exist_ok=True)
    write_json(os.path.join(seed_dir, SELECTION_FILE), selection)
    final_config = final_run_config(config, seed, selection)
    exp = make_experiment(final_config, problems['final'])
    state = train(final_config, os.path.join(seed_dir, 'final'), _train_task(exp))
    result = make_evaluator(exp)(evaluated_params(final_config, state), eval_key(seed, chosen['step']))
    return SeedResult(seed, result.metrics, result, selection)


def final_run_config(config: ml_collections.ConfigDict, seed: int, selection: dict) -> ml_collections.ConfigDict:
    changes = {'training.num_steps': selection['selected_step']}
    if selection['creativity_weight'] is not None:
        changes['cizsl.creativity_weight'] = selection['creativity_weight']
    return for_seed(config, seed, **changes)


def best_on_test_protocol(config: ml_collections.ConfigDict, workdir: str, seed: int,
                          problems: dict[str, ZslProblem]) -> SeedResult:
    run_config = for_seed(config, seed)
    run_dir = os.path.join(workdir, f'seed_{seed}', 'best_on_test')
    exp = make_experiment(run_config, problems['final'])
    evaluator = make_evaluator(exp)
    train(run_config, run_dir, with_evaluation(_train_task(exp), run_config, evaluator, run_dir, 'test'))
    history = read_history(run_dir, 'test')
    best = {m: max(history, key=lambda s, m=m: (history[s][m], -s)) for m in history[min(history)]}
    metrics = {m: history[step][m] for m, step in best.items()}
    curve = read_curve(run_dir, best['gzsl_auc'], evaluator.lambdas)
    return SeedResult(seed, metrics, curve, {'best_step': best})


def load_problems(config: ml_collections.ConfigDict) -> dict[str, ZslProblem]:
    """The problems `eval.protocol` trains on: 'final', and 'validation' under the validation protocol."""
    stages = ('validation', 'final') if config.eval.protocol == 'validation' else ('final',)
    return {stage: load_problem(config, stage) for stage in stages}


def run_protocol(config: ml_collections.ConfigDict, workdir: str,
                 problems: dict[str, ZslProblem]) -> list[SeedResult]:
    """Trains and evaluates every seed of `eval.seeds` under `eval.protocol` on `problems` (load_problems);
    the config is checked (zsl_jax.checks.check_train)."""
    run = validation_protocol if config.eval.protocol == 'validation' else best_on_test_protocol
    return [run(config, workdir, int(seed), problems) for seed in config.eval.seeds]


def evaluate_trained(config: ml_collections.ConfigDict, workdir: str, problem: ZslProblem) -> list[SeedResult]:
    """Re-evaluates the trained final model of every seed on the final `problem`'s test classes (no training);
    the config is checked (zsl_jax.checks.check_eval)."""
    results = []
    for seed in config.eval.seeds:
        seed_dir = os.path.join(workdir, f'seed_{int(seed)}')
        if config.eval.protocol == 'validation':
            path = os.path.join(seed_dir, SELECTION_FILE)
            if not os.path.exists(path):
                raise CheckpointError(f'{path} does not exist; run --mode train with this --workdir first')
            with open(path) as f:
                selection = json.load(f)
            run_config, run_dir = final_run_config(config, int(seed), selection), os.path.join(seed_dir, 'final')
            details = {**selection, 'evaluated': 'selected final model'}
        else:
            run_config, run_dir = for_seed(config, int(seed)), os.path.join(seed_dir, 'best_on_test')
            details = {'evaluated': 'last checkpoint of the best_on_test run'}
        exp = make_experiment(run_config, problem)
        step, params, _ = trained_params(run_config, run_dir, initialiser(exp), config.eval.use_ema, 'generator')
        result = make_evaluator(exp)(params, eval_key(int(seed), step))
        results.append(SeedResult(int(seed), result.metrics, result, {**details, 'checkpoint_step': step}))
    return results


def parameter_counts(config: ml_collections.ConfigDict, feature_dim: int, text_dim: int,
                     num_seen: int) -> dict[str, int]:
    """Parameters of the generator and discriminator of `config.model` at these sizes."""
    generator, discriminator = make_models(config.model, feature_dim, num_seen)
    shape = jax.ShapeDtypeStruct
    g = jax.eval_shape(generator.init, jax.random.key(0), shape((1, config.model.noise_dim), 'float32'),
                       shape((1, text_dim), 'float32'))
    d = jax.eval_shape(discriminator.init, jax.random.key(0), shape((1, feature_dim), 'float32'))
    return {'generator': count_params(g), 'discriminator': count_params(d)}
