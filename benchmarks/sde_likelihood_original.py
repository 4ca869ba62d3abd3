"""Benchmark: CIFAR-10 DDPM++ cont. bits/dim, ours against the original score_sde_pytorch code path.

The original's `likelihood.get_likelihood_fn` (scipy RK45 on the host over the whole batch as one ODE,
calling the PyTorch model and its Rademacher divergence at every evaluation) against ours
(`sde_jax.likelihood.ode_log_likelihood`: dopri5 on device, one ODE per example, vmapped), on the same
network and the same images at the same tolerance. The network is the original's own `NCSNpp` built from
its configs/<sde>/cifar10_ddpmpp_continuous.py with random weights (zero-initialised layers too, as in
the fixtures: tests/sde/fixtures/make_score_sde_pytorch_fixtures.py), saved as a score_sde_pytorch
checkpoint and loaded here by `--mode import_weights`'s code. Both use the same Rademacher probe (the
original's draw is replaced by it). Images: the first CIFAR-10 test images, dequantised, if
JAXGEN_DATA_ROOT is set, else uniform noise. Reports wall time, NFE and bits/dim of each.

    python -m benchmarks.sde_likelihood_original /path/to/score_sde_pytorch [--batch 8] [--tol 1e-5]
        [--variant ''|deep|subvp|subvp_deep] [--nf 128] [--out DIR] [--no-readme]

torch 2.13 CPU must be installed (the baseline only; the library never imports it).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.harness import compare, parse_arguments, record_from_args
from benchmarks.sde_likelihood import EPS, images
from configs.sde import cifar10_ddpmpp_continuous
from gen_runtime import trainer
from sde_jax.experiment import initialiser, make_experiment
from sde_jax.likelihood import bits_per_dim, draw_probes, ode_log_likelihood
from sde_jax.weights import import_weights
from tests.sde.fixtures.make_score_sde_pytorch_fixtures import load_original, make_sde, randomise, smooth_in_time


def original_config(orig: dict, rel: str):
    """The original's config file. Its `configs` (a namespace package) is not ours: our package and
    our root on sys.path are set aside while it loads."""
    def ours() -> list[str]:
        return [k for k in sys.modules if k == 'configs' or k.startswith('configs.')]

    root = str(Path(__file__).resolve().parents[1])
    saved, saved_path = {k: sys.modules.pop(k) for k in ours()}, list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ('', '.', root)]
    try:
        return orig['config_module'](rel).get_config()
    finally:
        for k in ours():
            del sys.modules[k]
        sys.modules.update(saved)
        sys.path[:] = saved_path


def original_model(orig: dict, variant: str, nf: int):
    """(config, sde, DataParallel NCSNpp with random weights) of the original code."""
    import torch

    sde_dir = 'subvp' if variant.startswith('subvp') else 'vp'
    suffix = '_deep' if variant.endswith('deep') else ''
    config = original_config(orig, f'{sde_dir}/cifar10_ddpmpp{suffix}_continuous.py')
    config.model.nf = nf
    config.device = torch.device('cpu')
    torch.manual_seed(0)
    model = torch.nn.DataParallel(orig['mutils'].get_model(config.model.name)(config))
    randomise(model, torch)
    smooth_in_time(model, config, torch)
    model.eval()
    return config, make_sde(orig, config), model


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkout', type=Path, help='path of a yang-song/score_sde_pytorch checkout')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--tol', type=float, default=1e-5)
    parser.add_argument('--variant', default='', choices=cifar10_ddpmpp_continuous.VARIANTS)
    parser.add_argument('--nf', type=int, default=128, help='width (the paper: 128)')
    args = parse_arguments(parser, argv)
    import torch

    orig = load_original(args.checkout.resolve())
    original_config, original_sde, model = original_model(orig, args.variant, args.nf)

    config = cifar10_ddpmpp_continuous.get_config(args.variant)
    config.unlock()
    config.model.nf = args.nf
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / 'checkpoint_0.pth'
        torch.save({'model': model.state_dict(), 'step': 0}, checkpoint)
        config.weights.path = str(checkpoint)
        config.lock()
        import_weights(config, str(Path(tmp) / 'run'))
        exp = make_experiment(config)
        _, state = trainer.load_trained_state(config, str(Path(tmp) / 'run'), initialiser(exp))
    params = state.ema_params

    x_unit, source = images(config, args.batch)
    x = exp.to_model_space(jnp.asarray(x_unit))
    dims = int(np.prod(x.shape[1:]))
    probes = draw_probes(jax.random.key(1), 'rademacher', 1, x.shape)
    ours = jax.jit(lambda p, v: ode_log_likelihood(exp.sde, exp.score_fn(p), v, jax.random.key(1), rtol=args.tol,
                                                    atol=args.tol, eps=EPS, probes=probes))
    theirs = orig['likelihood'].get_likelihood_fn(original_sde, lambda v: (v + 1.0) / 2.0,
                                                  hutchinson_type='Rademacher', rtol=args.tol, atol=args.tol,
                                                  eps=EPS)
    probe01 = torch.tensor(np.transpose((np.asarray(probes[0]) + 1) / 2, (0, 3, 1, 2)))
    data = torch.tensor(np.transpose(np.asarray(x), (0, 3, 1, 2)))
    stats: dict = {}

    def run_ours() -> jax.Array:
        logp, _, nfe = ours(params, x)
        jax.block_until_ready(logp)
        stats['ours_nfe'] = int(np.max(nfe))
        stats['ours_bpd'] = float(bits_per_dim(logp, dims, 256, exp.model_scale()).mean())
        return logp

    def run_original() -> np.ndarray:
        original_draw = torch.randint_like
        torch.randint_like = lambda v, *a, **k: probe01.to(v.dtype)  # the same probe as ours
        try:
            bpd, _, nfe = theirs(model, data)
        finally:
            torch.randint_like = original_draw
        stats['original_nfe'], stats['original_bpd'] = int(nfe), float(bpd.mean())
        return bpd

    result = compare(f'CIFAR-10 DDPM++ cont. ({args.variant or "vp"}, nf={args.nf}) bits/dim, batch {args.batch}, '
                     f'rtol=atol={args.tol:g}', run_ours, run_original, repeats=1, warmup=0,
                     baseline_sync=lambda r: r, unit='images', work_per_call=args.batch,
                     details={'weights': 'random (original init re-drawn)', 'images': source,
                              'original_config': f'{original_config.training.sde}, {original_config.model.name}'})
    result.update(stats)
    print(f"NFE: ours {stats['ours_nfe']} (max over examples), original {stats['original_nfe']}; bits/dim: ours "
          f"{stats['ours_bpd']:.4f}, original {stats['original_bpd']:.4f}")
    record_from_args('sde_likelihood_original', [result],
                     ' '.join(['python -m benchmarks.sde_likelihood_original', '<score_sde_pytorch>', *argv[1:]]), args)


if __name__ == '__main__':
    main(sys.argv[1:])
