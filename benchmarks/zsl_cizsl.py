"""CIZSL training speed at CUB-easy sizes: zsl_jax against a PyTorch implementation of the same step.

    python -m benchmarks.zsl_cizsl [--iterations 1] [--repeats 3] [--tiny] [--out DIR] [--no-readme]

The published run is 3000 generator iterations (train_CIZSL.py loops 0..3000) with batch 1000 on
CUB-easy: 8855 training features of 3584 dims, 150 seen classes with 7551-d TF-IDF texts, hidden 4086.
Features and texts are generated with those shapes (the real ones are not distributed). Each timed
call runs `--iterations` full iterations (5 critic steps + 1 generator step each) from the current
state, host batch sampling included, on both sides; on a small CPU the whole run would take many
hours, so a prefix is timed and the full run's time is extrapolated from the median. Our initial weights are
copied into the PyTorch players and their outputs checked to agree before timing. `--tiny` (CI): 400 features
of 64 dims, batch 32, hidden 64, one repeat.
"""

import argparse

import jax
import numpy as np
import torch

from benchmarks.harness import compare, merge_checks, parse_arguments, record_from_args, same_network
from benchmarks.zsl_cizsl_torch import TorchCizsl
from configs.zsl import base
from gen_runtime.run_once import run_once
from zsl_jax import models
from zsl_jax.experiment import make_experiment, train_task, training_batches
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


def players_check(state: dict, config, problem: ZslProblem, baseline: TorchCizsl) -> dict:
    """Our generator and discriminator against the torch players (our weights copied in) on the same inputs."""
    generator, discriminator = models.make_models(config.model, problem.feature_dim, problem.num_seen)
    g_params, d_params = state['generator'].params, state['discriminator'].params
    rng = np.random.default_rng(4)
    z = rng.standard_normal((8, config.model.noise_dim)).astype(np.float32)
    text = problem.seen_text[np.arange(8) % problem.num_seen]
    ours_g = generator.apply({'params': g_params}, z, text)
    critic, logits = discriminator.apply({'params': d_params}, ours_g)
    with torch.no_grad():
        theirs_g = baseline.g(torch.from_numpy(z), torch.from_numpy(text))
        theirs_critic, theirs_logits = baseline.d(theirs_g)
    return merge_checks(same_network(ours_g, theirs_g.numpy(), what='CIZSL generator outputs'),
                        same_network(np.concatenate([critic[:, None], logits], 1),
                                     np.concatenate([theirs_critic[:, None].numpy(), theirs_logits.numpy()], 1),
                                     what='CIZSL discriminator outputs'))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iterations', type=int, default=1, help='generator iterations per timed call')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls of each side')
    args = parse_arguments(parser, argv)

    config = base.use_cizsl(base.get_config())
    if args.tiny:
        args.repeats = 1
        config.training.batch_size, config.model.hidden_dim, config.model.text_reduction_dim = 32, 64, 16
    problem = cub_easy_sized_problem(tiny=args.tiny)
    exp = make_experiment(config, problem)
    task = train_task(exp, training_batches(exp))
    state = {'value': run_once(task.init_state, jax.random.key(0)), 'step': 0}
    update = jax.jit(task.update)

    def ours():
        metrics = None
        for _ in range(args.iterations):
            batch = jax.tree.map(lambda x: x[0], task.host_batches(state['step'], 1))
            state['value'], metrics = update(state['value'], batch, jax.random.key(state['step']))
            state['step'] += 1
        return metrics['loss']

    baseline = TorchCizsl(problem.train_features, problem.train_labels, problem.seen_text,
                          batch_size=config.training.batch_size, hidden=config.model.hidden_dim,
                          noise_dim=config.model.noise_dim, reduced=config.model.text_reduction_dim,
                          creativity_weight=config.cizsl.creativity_weight)
    initial = state['value']
    baseline.load_flax_params(initial['generator'].params, initial['discriminator'].params,
                              initial['orders'].params if 'orders' in initial else None)
    check = players_check(initial, config, problem, baseline)

    def theirs():
        loss = None
        for _ in range(args.iterations):
            loss = baseline.step()
        return loss

    sizes = 'tiny' if args.tiny else 'CUB-easy'
    result = compare(f'CIZSL iteration, {sizes} sizes ({args.iterations} per call)', ours, theirs,
                     repeats=args.repeats, warmup=0 if args.tiny else 1, unit='iteration',
                     work_per_call=args.iterations,
                     details={'same_network': check, 'batch_size': config.training.batch_size,
                              'hidden': config.model.hidden_dim,
                              'torch_threads': torch.get_num_threads(),
                              'published_iterations': PUBLISHED_ITERATIONS})
    result['ours_full_run_hours'] = PUBLISHED_ITERATIONS / result['ours_per_s'] / 3600
    result['baseline_full_run_hours'] = PUBLISHED_ITERATIONS / result['baseline_per_s'] / 3600
    print(f"full {PUBLISHED_ITERATIONS}-iteration run, extrapolated: ours {result['ours_full_run_hours']:.1f} h, "
          f"PyTorch {result['baseline_full_run_hours']:.1f} h")
    record_from_args('zsl_cizsl', [result], f'python -m benchmarks.zsl_cizsl --iterations {args.iterations} '
                     f'--repeats {args.repeats}', args)


if __name__ == '__main__':
    import sys

    main(sys.argv[1:])
