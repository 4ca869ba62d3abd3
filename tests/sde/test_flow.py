"""Flow matching (sde_jax.sde.RectifiedFlow) against closed forms and diffusers' FlowMatchEulerDiscreteScheduler.

With the exact velocity of Gaussian or mixture data (tests/sde/analytic.py) the flow's ODE must carry its prior
N(0, I), which is exactly p_1, to the closed-form marginals and the data; its likelihood through that ODE must be
the closed-form log-density; Euler's method (our DDIM on alpha = 1 - t, sigma = t) must take diffusers' steps.
Monte Carlo bounds as in test_samplers_analytic.py (5 standard errors).
"""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.sde import base
from gen_runtime import few_step
from sde_jax.experiment import make_experiment
from sde_jax.generation import few_step_times
from sde_jax.likelihood import ode_log_likelihood
from sde_jax.ode import dopri5, ode_sample, probability_flow_drift
from sde_jax.sampling import few_step_sample
from sde_jax.sde import SDE, VPSDE, RectifiedFlow, VelocityScore, shift_times
from tests.conftest import run_python
from tests.sde.analytic import GAUSSIAN, MIXTURE, DiagonalMixture, moment_bounds

FLOW = RectifiedFlow()
N_SAMPLES = 8000
EPS = 1e-3


def _velocity(dist: DiagonalMixture) -> VelocityScore:
    return VelocityScore(functools.partial(dist.velocity, FLOW))


def _check_moments(samples: np.ndarray, dist: DiagonalMixture) -> None:
    mean_tol, var_tol = moment_bounds(dist, len(samples))
    np.testing.assert_array_less(np.abs(samples.mean(0) - dist.mean()), mean_tol)
    np.testing.assert_array_less(np.abs(samples.var(0) - dist.variance()), var_tol)


def _marginal(dist: DiagonalMixture, t: float) -> DiagonalMixture:
    """p_t of the flow in closed form: components N((1 - t) m_k, (1 - t)^2 s_k^2 + t^2)."""
    return DiagonalMixture(dist.weights, (1 - t) * dist.means, np.sqrt((1 - t) ** 2 * dist.stds**2 + t**2))


def test_the_analytic_drift_is_the_probability_flow_of_an_sde():
    """The helper's a' E[x0] + std' E[eps] equals f - g^2 s / 2 of the VP SDE (where both are finite)."""
    sde, x, t = VPSDE(), jnp.asarray(MIXTURE.sample(np.random.default_rng(0), 16)), jnp.full((16,), 0.4)
    reverse = probability_flow_drift(sde, functools.partial(MIXTURE.score, sde))(x, jnp.asarray(0.4))
    np.testing.assert_allclose(MIXTURE.velocity(sde, x, t), reverse, rtol=1e-4, atol=1e-5)


def test_the_flow_score_and_denoiser_agree_with_the_velocity():
    x, t = jnp.asarray(MIXTURE.sample(np.random.default_rng(1), 16)), jnp.full((16,), 0.3)
    np.testing.assert_allclose(_velocity(MIXTURE)(x, t), MIXTURE.score(FLOW, x, t), rtol=1e-4, atol=1e-5)
    x0 = FLOW.denoise(_velocity(MIXTURE), x, t)
    np.testing.assert_allclose(x0, SDE.denoise(FLOW, functools.partial(MIXTURE.score, FLOW), x, t), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize('dist', [GAUSSIAN, MIXTURE], ids=['gaussian', 'mixture'])
def test_the_flow_ode_carries_its_prior_to_the_closed_form_marginals(dist):
    drift = probability_flow_drift(FLOW, _velocity(dist))

    @jax.jit
    def solve(rng: jax.Array) -> jax.Array:
        return dopri5(drift, jax.random.normal(rng, (N_SAMPLES, 2)), 1.0, 0.5, rtol=1e-5, atol=1e-5).y

    _check_moments(np.asarray(solve(jax.random.key(0))), _marginal(dist, 0.5))
    samples, nfe = jax.jit(lambda r: ode_sample(FLOW, _velocity(dist), (N_SAMPLES, 2), r, eps=EPS))(jax.random.key(1))
    _check_moments(np.asarray(samples), dist)
    assert 9 <= int(nfe) < 2000


# Uniform times (flow matching's), shifted or not: the fewest steps of 25, 50, 100 at which each solver fell below
# the bounds on both data sets (measured worst error / bound: 0.50, 0.39, 0.31, 0.31, 0.31; DDIM at 50 steps 0.81,
# DPM-Solver++ shifted by 3 at 25 steps 1.6: the shift leaves fewer steps near the data).
FEW_STEP_CASES = [('ddim', 100, 1.0), ('dpm_solver_pp', 25, 1.0), ('heun', 25, 1.0), ('dpm_solver_pp', 50, 3.0),
                  ('heun', 25, 3.0)]


@pytest.mark.parametrize('method,steps,shift', FEW_STEP_CASES, ids=[f'{c[0]}-shift{c[2]:g}' for c in FEW_STEP_CASES])
def test_few_step_solvers_on_the_flow_match_data_moments(method, steps, shift):
    times = shift_times(np.linspace(1.0, EPS, steps + 1), shift)
    for dist in (GAUSSIAN, MIXTURE):
        sample = jax.jit(lambda r, d=dist: few_step_sample(FLOW, _velocity(d), (N_SAMPLES, 2), r, times, method))
        _check_moments(np.asarray(sample(jax.random.key(2))), dist)


@pytest.mark.parametrize('dist', [GAUSSIAN, MIXTURE], ids=['gaussian', 'mixture'])
def test_the_flow_likelihood_is_the_closed_form_density(dist):
    """With the exact velocity and the flow's own prior N(0, I) (exactly p_1: no prior mismatch) the ODE's
    log-likelihood of x at t = eps is log p_eps(x)."""
    x = jnp.asarray(_marginal(dist, EPS).sample(np.random.default_rng(3), 64))
    logp, _, nfe = jax.jit(lambda v: ode_log_likelihood(FLOW, _velocity(dist), v, jax.random.key(0),
                                                        estimator='exact', rtol=1e-6, atol=1e-6, eps=EPS))(x)
    exact = dist.log_density(FLOW, x, jnp.full((64,), EPS))
    np.testing.assert_allclose(logp, exact, atol=2e-3)
    assert int(jnp.max(nfe)) < 2000


def _toy_velocity(x: jax.Array, t: jax.Array) -> jax.Array:
    """A fixed nonlinear field of (x, t), standing in for a network."""
    return jnp.tanh(x[..., ::-1] * 1.3 - 0.4) * (1.0 + t[:, None]) - 0.5 * x


def test_euler_on_the_flow_takes_diffusers_flow_match_euler_steps():
    """Our DDIM on the flow's kernel is Euler's method; with diffusers' shifted sigmas it takes
    FlowMatchEulerDiscreteScheduler's steps one by one, and the library's sampler (few_step_times with
    sampling.shift, the last step to 0 as its final denoising) ends where diffusers' loop ends."""
    torch = pytest.importorskip('torch')
    schedulers = pytest.importorskip('diffusers.schedulers')
    shift, n = 3.0, 8
    scheduler = schedulers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    scheduler.set_timesteps(n)
    sigmas = scheduler.sigmas.numpy().astype(np.float64)

    config = base.get_config()
    config.sde.type, config.loss.type = 'rectified_flow', 'flow_matching'
    config.data.image_size, config.sampling.method = 8, 'ddim'
    config.sampling.num_steps, config.sampling.shift = n - 1, shift
    config.sampling.eps = float(shift_times(np.array(1e-3), shift))  # diffusers' sigma_min, shifted once
    times = few_step_times(make_experiment(config))
    np.testing.assert_allclose(times, sigmas[:-1], rtol=1e-6)

    rng = jax.random.key(4)
    x = jax.random.normal(jax.random.split(rng)[0], (6, 2))  # the prior draw of few_step_sample
    sample = torch.from_numpy(np.array(x))
    ts, (alphas, s) = jnp.asarray(sigmas, jnp.float32), FLOW.marginal_coefs(jnp.asarray(sigmas, jnp.float32))
    ours = x
    for i, timestep in enumerate(scheduler.timesteps):
        v = _toy_velocity(jnp.asarray(sample.numpy()), jnp.full((6,), float(timestep) / 1000.0))
        sample = scheduler.step(torch.from_numpy(np.asarray(v)), timestep, sample).prev_sample
        ours = few_step.ddim(lambda y, t: FLOW.denoise(VelocityScore(_toy_velocity), y, t), ours, ts[i:i + 2],
                             alphas[i:i + 2], s[i:i + 2])
        np.testing.assert_allclose(ours, sample.numpy(), rtol=1e-5, atol=1e-5)

    whole = few_step_sample(FLOW, VelocityScore(_toy_velocity), (6, 2), rng, times, 'ddim')
    np.testing.assert_allclose(whole, sample.numpy(), rtol=1e-5, atol=1e-5)


def test_flow_matching_trains_samples_and_scores_through_main(tmp_path):
    """The quickstart as a rectified flow: training on the velocity loss with logit-normal times, samples by
    DPM-Solver++ and Heun with a shift, bits/dim through the ODE."""
    workdir = tmp_path / 'flow'
    args = ['main.py', '--config', 'configs/quickstart.py', '--workdir', str(workdir),
            '--config.sde.type=rectified_flow', '--config.loss.type=flow_matching',
            '--config.loss.time_sampling=logit_normal', '--config.training.num_steps=8',
            '--config.training.batch_size=16', '--config.training.log_every=4', '--config.training.checkpoint_every=8',
            '--config.sampling.method=dpm_solver_pp', '--config.sampling.num_steps=5', '--config.sampling.shift=2.0',
            '--config.sampling.num_samples=8', '--config.sampling.batch_size=8', '--config.likelihood.bound_times=0']
    run_python(args)
    metrics = json.loads((workdir / 'metrics.json').read_text())
    assert metrics['step'] == 8 and np.isfinite(metrics['final_logged']['loss'])
    assert metrics['samples']['score_evaluations_per_batch'] == [6]  # 5 steps + the final denoising

    run_python(args + ['--mode', 'sample', '--config.sampling.method=heun'])
    sampling = json.loads((workdir / 'sample' / 'step_8' / 'sampling.json').read_text())
    assert sampling['method'] == 'heun' and sampling['score_evaluations_per_batch'] == [11]  # 2 x 5 + 1
    with np.load(workdir / 'sample' / 'step_8' / 'samples.npz') as f:
        assert f['images'].shape == (8, 8, 8, 1)

    run_python(args + ['--mode', 'likelihood', '--config.likelihood.max_examples=4', '--config.likelihood.batch_size=4',
                       '--config.likelihood.rtol=1e-3', '--config.likelihood.atol=1e-3'])
    result = json.loads((workdir / 'likelihood' / 'step_8' / 'likelihood.json').read_text())
    assert np.isfinite(result['bpd']) and result['bpd'] > 0 and 'bound_bpd' not in result
