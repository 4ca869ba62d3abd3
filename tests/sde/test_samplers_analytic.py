"""Every sampler, driven by the exact score of Gaussian and mixture data, reproduces the data's moments.

With the true score the only errors are (i) Monte Carlo error of n samples, bounded by 5 standard
errors (`analytic.moment_bounds`: SE(mean) = sqrt(var/n), SE(variance) = sqrt((mu4 - var^2)/n)),
(ii) the time discretisation (N = 1000 steps; the ODE at rtol = atol = 1e-5) and (iii) the prior
mismatch N(0, std(T)^2) vs the true p_T, which shifts the mean by at most |mu| s / sigma_max
(VE, sigma_max = 100: <= 0.012) or |mu| exp(-int beta / 2) (VP: <= 0.007). (ii) and (iii) are well
below the 5-SE bounds for n = 20000 (mean: >= 0.02, variance: >= 0.004).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_runtime import few_step
from sde_jax.ode import ode_sample
from sde_jax.sampling import few_step_sample, get_corrector, get_predictor, pc_sample
from sde_jax.sde import VESDE, VPSDE, SubVPSDE
from tests.sde.analytic import GAUSSIAN, MIXTURE, DiagonalMixture, moment_bounds

N_SAMPLES = 8000
SDES = {'ve': VESDE(sigma_min=0.01, sigma_max=100.0, N=300), 'vp': VPSDE(beta_min=0.1, beta_max=20.0, N=300),
        'subvp': SubVPSDE(beta_min=0.1, beta_max=20.0, N=300)}
DISTS = {'gaussian': GAUSSIAN, 'mixture': MIXTURE}
EPS = {'ve': 1e-5, 'vp': 1e-3, 'subvp': 1e-3}
# (predictor, corrector) pairs of Algorithms 1-5 and the paper's experiments.
PC_CASES = [
    ('euler_maruyama', 'none'), ('reverse_diffusion', 'none'), ('ancestral_sampling', 'none'),
    ('reverse_diffusion', 'langevin'), ('euler_maruyama', 'ald'),
]


def _check_moments(samples: np.ndarray, dist) -> None:
    mean_tol, var_tol = moment_bounds(dist, len(samples))
    np.testing.assert_array_less(np.abs(samples.mean(0) - dist.mean()), mean_tol)
    np.testing.assert_array_less(np.abs(samples.var(0) - dist.variance()), var_tol)


@functools.partial(jax.jit, static_argnames=('sde_name', 'predictor', 'corrector'))
def _pc(sde_name: str, predictor: str, corrector: str, dist: DiagonalMixture, rng: jax.Array) -> jax.Array:
    sde = SDES[sde_name]
    return pc_sample(sde, functools.partial(dist.score, sde), (N_SAMPLES, 2), rng,
                     predictor=get_predictor(predictor), corrector=get_corrector(corrector, 0.16, 1),
                     num_steps=sde.N, eps=EPS[sde_name])


@pytest.mark.parametrize('dist_name', list(DISTS))
@pytest.mark.parametrize('sde_name', list(SDES))
@pytest.mark.parametrize('predictor,corrector', PC_CASES, ids=['-'.join(c) for c in PC_CASES])
def test_pc_samplers_match_data_moments(sde_name, predictor, corrector, dist_name):
    if predictor == 'ancestral_sampling' and sde_name == 'subvp':
        pytest.skip('ancestral sampling is defined for the VE and VP SDEs only')
    samples = np.asarray(_pc(sde_name, predictor, corrector, DISTS[dist_name], jax.random.key(0)))
    _check_moments(samples, DISTS[dist_name])


@pytest.mark.parametrize('sde_name', list(SDES))
def test_probability_flow_ode_sampler_matches_data_moments(sde_name):
    sde = SDES[sde_name]

    @jax.jit
    def sample(dist: DiagonalMixture, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        return ode_sample(sde, functools.partial(dist.score, sde), (N_SAMPLES, 2), rng, rtol=1e-5, atol=1e-5,
                          eps=EPS[sde_name])

    for dist in (GAUSSIAN, MIXTURE):
        samples, nfe = sample(dist, jax.random.key(1))
        _check_moments(np.asarray(samples), dist)
        # Dormand-Prince: 2 evaluations before the first step, 6 per step tried, 1 for the denoising step.
        assert 9 <= int(nfe) < 2000 and (int(nfe) - 3) % 6 == 0


def test_subvp_langevin_corrector_uses_the_vp_alphas():
    """The original's sub-VP corrector crashed for lack of alphas; here it has VP's 1 - beta_i."""
    t = jnp.array([0.5])
    np.testing.assert_allclose(SDES['subvp'].langevin_alpha(t, 1e-3), SDES['vp'].langevin_alpha(t, 1e-3))
    assert 0.98 < float(SDES['subvp'].langevin_alpha(t, 1e-3)[0]) < 1.0


# The few-step solvers of gen_runtime.few_step on the probability-flow ODE, each with its paper's spacing, at
# the fewest steps (of 25, 50, 100, 200) at which the Heun / DPM-Solver++ / DDIM time discretisation error fell
# below the moment bounds on all three SDEs and both data sets (measured worst error / bound: 0.86, 0.57, 0.46).
FEW_STEP_CASES = [('ddim', 'uniform', 200), ('dpm_solver_pp', 'logsnr', 25), ('heun', 'karras', 50)]


@pytest.mark.parametrize('sde_name', list(SDES))
@pytest.mark.parametrize('method,spacing,steps', FEW_STEP_CASES, ids=[c[0] for c in FEW_STEP_CASES])
def test_few_step_solvers_match_data_moments(sde_name, method, spacing, steps):
    sde = SDES[sde_name]

    def coefs(t):
        return tuple(np.asarray(c, np.float64) for c in sde.marginal_coefs(jnp.asarray(t, jnp.float32)))

    times = few_step.spaced_times(spacing, steps, sde.T, EPS[sde_name], coefs)

    @jax.jit
    def sample(dist: DiagonalMixture, rng: jax.Array) -> jax.Array:
        return few_step_sample(sde, functools.partial(dist.score, sde), (N_SAMPLES, 2), rng, times, method)

    for dist in (GAUSSIAN, MIXTURE):
        _check_moments(np.asarray(sample(dist, jax.random.key(0))), dist)
