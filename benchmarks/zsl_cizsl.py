"""CIZSL training speed at CUB-easy sizes: zsl_jax against a PyTorch implementation of the same step.

    python -m benchmarks.zsl_cizsl [--iterations 1] [--repeats 3]

The published run is 3000 generator iterations (train_CIZSL.py loops 0..3000) with batch 1000 on
CUB-easy: 8855 training features of 3584 dims, 150 seen classes with 7551-d TF-IDF texts, hidden 4086.
Features and texts are generated with those shapes (the real ones are not distributed). Each timed
call runs `--iterations` full iterations (5 critic steps + 1 generator step each) from the current
state, host batch sampling included, on both sides; on a small CPU the whole run would take many
hours, so a prefix is timed and the full run's time is extrapolated from the median.
"""

import argparse

import jax
import numpy as np
import torch

from benchmarks.harness import compare, record
from benchmarks.zsl_cizsl_torch import TorchCizsl
from configs.zsl import base
from zsl_jax import gan
from zsl_jax.problem import ZslProblem

PUBLISHED_ITERATIONS = 3000


def cub_easy_sized_problem(seed: int = 0, tiny: bool = False) -> ZslProblem:
    """Generated features and texts of CUB-easy's shapes (`tiny`: 400 features of 64 dims, 20 + 5 classes,
    texts of 100 dims, for a CPU check)."""
    examples, feature_dim, seen, unseen, text_dim = (400, 64, 20, 5, 100) if tiny else (8855, 3584, 150, 50, 7551)
    rng = np.random.default_rng(seed)
    labels = np.sort(np.arange(examples) % seen).astype(np.int32)
    features = rng.normal(0, 0.3, (examples, feature_dim)).astype(np.float32)
    text = rng.uniform(size=(seen + unseen, text_dim)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return ZslProblem('CUB-easy sized', train_features=features, train_labels=labels, seen_text=text[:seen],
                      unseen_text=text[seen:], unseen_features=features[:10], unseen_labels=np.zeros(10, np.int32),
                      seen_test_features=features[:10], seen_test_labels=labels[:10])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iterations', type=int, default=1, help='generator iterations per timed call')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls of each side')
    args = parser.parse_args()

    config = base.use_cizsl(base.get_config())
    problem = cub_easy_sized_problem()
    task = gan.make_task(config, problem)
    state = {'value': jax.jit(task.init_state)(jax.random.key(0)), 'step': 0}
    update = jax.jit(task.update)

    def ours():
        metrics = None
        for _ in range(args.iterations):
            batch = jax.tree.map(lambda x: x[0], task.host_batches(state['step'], 1))
            state['value'], metrics = update(state['value'], batch, jax.random.key(state['step']))
            state['step'] += 1
        return metrics['loss']

    baseline = TorchCizsl(problem.train_features, problem.train_labels, problem.seen_text,
                          creativity_weight=config.cizsl.creativity_weight)

    def theirs():
        loss = None
        for _ in range(args.iterations):
            loss = baseline.step()
        return loss

    result = compare(f'CIZSL iteration, CUB-easy sizes ({args.iterations} per call)', ours, theirs,
                     repeats=args.repeats, unit='iteration', work_per_call=args.iterations,
                     details={'batch_size': config.training.batch_size, 'hidden': config.model.hidden_dim,
                              'torch_threads': torch.get_num_threads(),
                              'published_iterations': PUBLISHED_ITERATIONS})
    result['ours_full_run_hours'] = PUBLISHED_ITERATIONS / result['ours_per_s'] / 3600
    result['baseline_full_run_hours'] = PUBLISHED_ITERATIONS / result['baseline_per_s'] / 3600
    print(f"full {PUBLISHED_ITERATIONS}-iteration run, extrapolated: ours {result['ours_full_run_hours']:.1f} h, "
          f"PyTorch {result['baseline_full_run_hours']:.1f} h")
    record('zsl_cizsl', [result], f'python -m benchmarks.zsl_cizsl --iterations {args.iterations} '
           f'--repeats {args.repeats}')


if __name__ == '__main__':
    main()
