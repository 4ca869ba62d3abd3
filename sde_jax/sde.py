"""The forward SDEs of Song et al. 2021 ("Score-Based Generative Modeling through SDEs") as pytrees.

Each SDE dx = f(x, t) dt + g(t) dw on t in [0, 1] provides its drift and diffusion (eq. 5), the exact
Gaussian perturbation kernel p_0t(x(t) | x(0)) = N(mean_coef(t) x(0), std(t)^2 I) (eqs. 29, 33),
the prior p_T and its log-density, a discretisation of one step (the SMLD and DDPM ones for VE and
VP, eqs. 8-10 and Appendix B), and `reverse(score_fn, probability_flow)`, the reverse-time SDE
(eq. 6) or the probability-flow ODE (eq. 13). Parameters are pytree leaves, so an SDE can be
passed through `jax.jit`; the number of discretisation steps N is static.

`RectifiedFlow` is the fourth process, flow matching's interpolant x_t = (1 - t) x_0 + t eps, run only
through its probability-flow ODE, the velocity its network predicts (`VelocityScore`).

The VE marginal is the exact one of dx = sqrt(d[sigma^2(t)]/dt) dw started at the data:
std(t)^2 = sigma(t)^2 - sigma_min^2 with sigma(t) = sigma_min (sigma_max/sigma_min)^t. (The original
code uses sigma(t) itself, which describes data already blurred by sigma_min.) With
sigma_min = 1/sqrt(2 log s), sigma_max = s/sqrt(2 log s) this is exactly the SDE dx = s^t dw of Song's
tutorial (`tutorial_ve_sigmas`).
"""

from collections.abc import Callable

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.errors import ConfigError

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]


def batch_broadcast(v: jax.Array, x: jax.Array) -> jax.Array:
    """Reshapes a per-example vector (B,) to broadcast against x of shape (B, ...)."""
    return jnp.reshape(v, v.shape + (1,) * (x.ndim - v.ndim))


def _sum_non_batch(x: jax.Array) -> jax.Array:
    return jnp.sum(x, axis=tuple(range(1, x.ndim)))


def gaussian_logp(z: jax.Array, std: jax.Array | float) -> jax.Array:
    """log N(z; 0, std^2 I) summed over all but the batch axis."""
    d = np.prod(z.shape[1:])
    return -0.5 * d * jnp.log(2 * np.pi * std**2) - _sum_non_batch(z**2) / (2 * std**2)


class SDE(flax.struct.PyTreeNode):
    """Shared behaviour of the forward SDEs: Euler discretisation, prior, reverse process."""

    N: int = flax.struct.field(pytree_node=False, default=1000)

    T = 1.0

    def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Drift f(x, t) (shape of x) and diffusion g(t) (shape (B,))."""
        raise NotImplementedError

    def marginal_coefs(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean_coef(t), std(t)) of the perturbation kernel N(mean_coef x0, std^2 I)."""
        raise NotImplementedError

    def heun_coefs(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(s(t), sigma(t)) of EDM's Heun sampler (Karras et al. 2022, Alg. 1 in the variables x / s(t)):
        the kernel's marginal coefficients."""
        return self.marginal_coefs(t)

    def marginal_prob(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean (shape of x) and std (shape (B,)) of p_0t(x(t) | x(0) = x)."""
        coef, std = self.marginal_coefs(t)
        return batch_broadcast(coef, x) * x, std

    def prior_std(self) -> jax.Array:
        """Standard deviation of the prior p_T = N(0, prior_std^2 I)."""
        return self.marginal_coefs(jnp.asarray(self.T))[1]

    def prior_sampling(self, rng: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return self.prior_std() * jax.random.normal(rng, shape)

    def prior_logp(self, z: jax.Array) -> jax.Array:
        """log p_T(z) per example (summed over all non-batch dimensions)."""
        return gaussian_logp(z, self.prior_std())

    def discretize(self, x: jax.Array, t: jax.Array, dt: float | jax.Array) -> tuple[jax.Array, jax.Array]:
        """One forward step from t - dt to t: x_t = x + f + G z. Euler-Maruyama by default."""
        drift, diffusion = self.sde(x, t)
        return drift * dt, diffusion * jnp.sqrt(dt)

    def discrete_noise(self, i: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean_coef, std) of noise level i = 0..N-1 of the discrete model (SMLD / DDPM losses)."""
        raise ValueError(f'{type(self).__name__} has no discrete noise levels; the discrete models are SMLD '
                         '(the VE SDE) and DDPM (the VP SDE)')

    def denoise(self, score_fn: ScoreFn, x: jax.Array, t: jax.Array) -> jax.Array:
        """Tweedie's formula: E[x_0 | x_t] = (x + std(t)^2 s(x, t)) / mean_coef(t)."""
        coef, std = self.marginal_coefs(t)
        return (x + batch_broadcast(std**2, x) * score_fn(x, t)) / batch_broadcast(coef, x)

    def ancestral_step(self, x: jax.Array, score: jax.Array, t: jax.Array, dt: float,
                       z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One ancestral-sampling step from t to t - dt: (x, x_mean)."""
        raise ValueError(f'ancestral sampling is defined for the VE and VP SDEs only, not {type(self).__name__}')

    def langevin_alpha(self, t: jax.Array, dt: float) -> jax.Array:
        """alpha_i of the Langevin step size of Algorithms 4-5: 1 for VE, 1 - beta_i for VP-type SDEs."""
        return jnp.ones_like(t)

    def reverse(self, score_fn: ScoreFn, probability_flow: bool = False) -> 'ReverseSDE':
        """The reverse-time SDE (eq. 6) or, with probability_flow, the probability-flow ODE (eq. 13)."""
        return ReverseSDE(self, score_fn, probability_flow)


class ReverseSDE:
    """dx = [f - c g^2 score] dt + g' dw-bar, c = 1 (SDE, g' = g) or 1/2 (ODE, g' = 0), run from T to 0."""

    def __init__(self, forward: SDE, score_fn: ScoreFn, probability_flow: bool) -> None:
        self.forward = forward
        self.score_fn = score_fn
        self.probability_flow = probability_flow

    def _reverse(self, f: jax.Array, g: jax.Array, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        c = 0.5 if self.probability_flow else 1.0
        drift = f - c * batch_broadcast(g**2, x) * self.score_fn(x, t)
        return drift, jnp.zeros_like(g) if self.probability_flow else g

    def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Drift and diffusion of the reverse process, meant for steps backwards in time."""
        return self._reverse(*self.forward.sde(x, t), x, t)

    def discretize(self, x: jax.Array, t: jax.Array, dt: float | jax.Array) -> tuple[jax.Array, jax.Array]:
        """The reverse of the forward discretisation: x_{t-dt} = x_t - f_rev + G_rev z."""
        f, g = self.forward.discretize(x, t, dt)
        return self._reverse(f, g, x, t)


class VESDE(SDE):
    """Variance exploding: dx = sqrt(d[sigma^2(t)]/dt) dw, sigma(t) = sigma_min (sigma_max/sigma_min)^t (eq. 30)."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    # Marginal std of x(t) given x(0): 'exact' sqrt(sigma(t)^2 - sigma_min^2) (eq. 31), or 'sigma'
    # sigma(t), as the original code perturbs data (x(0) is taken to carry sigma_min noise already);
    # models trained one way must be sampled and scored the same way.
    marginal_std: str = flax.struct.field(pytree_node=False, default='exact')

    def log_ratio(self) -> jax.Array:
        return jnp.log(self.sigma_max / self.sigma_min)

    def sigma(self, t: jax.Array) -> jax.Array:
        """The geometric noise scale sigma(t) of SMLD (also the network's noise label, see conditioning)."""
        return self.sigma_min * jnp.exp(t * self.log_ratio())

    def marginal_variance(self, t: jax.Array) -> jax.Array:
        if self.marginal_std == 'sigma':
            return self.sigma(t) ** 2
        return self.sigma_min**2 * jnp.expm1(2.0 * t * self.log_ratio())

    def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jnp.zeros_like(x), self.sigma(t) * jnp.sqrt(2.0 * self.log_ratio())

    def marginal_coefs(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jnp.ones_like(t), jnp.sqrt(self.marginal_variance(t))

    def discretize(self, x: jax.Array, t: jax.Array, dt: float | jax.Array) -> tuple[jax.Array, jax.Array]:
        """SMLD (eq. 8): x_t = x_{t-dt} + sqrt(std(t)^2 - std(t-dt)^2) z, exact for any step."""
        step = jnp.sqrt(self.marginal_variance(t) - self.marginal_variance(jnp.maximum(t - dt, 0.0)))
        return jnp.zeros_like(x), step

    def discrete_noise(self, i: jax.Array) -> tuple[jax.Array, jax.Array]:
        """SMLD's N geometric noise levels sigma_min ... sigma_max (Song & Ermon 2019)."""
        return jnp.ones_like(i, jnp.float32), self.sigma(i / (self.N - 1))

    def ancestral_step(self, x: jax.Array, score: jax.Array, t: jax.Array, dt: float,
                       z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """SMLD ancestral sampling (eq. 47): Gaussian posterior step with the learned score."""
        var, var_prev = self.marginal_variance(t), self.marginal_variance(jnp.maximum(t - dt, 0.0))
        delta = batch_broadcast(var - var_prev, x)
        x_mean = x + delta * score
        noise_std = jnp.sqrt(var_prev * (var - var_prev) / var)
        return x_mean + batch_broadcast(noise_std, x) * z, x_mean


class LinearBetaSDE(SDE):
    """The linear schedule beta(t) = beta_min + t (beta_max - beta_min) shared by the VP and sub-VP SDEs."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def beta(self, t: jax.Array) -> jax.Array:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def integrated_beta(self, t: jax.Array) -> jax.Array:
        """int_0^t beta(s) ds; the signal coefficient is exp(-integrated_beta / 2)."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def step_beta(self, t: jax.Array, dt: float | jax.Array) -> jax.Array:
        """beta_i of the DDPM step from t - dt to t: 1 - alpha_bar(t) / alpha_bar(t - dt), exact."""
        return -jnp.expm1(self.integrated_beta(jnp.maximum(t - dt, 0.0)) - self.integrated_beta(t))

    def langevin_alpha(self, t: jax.Array, dt: float) -> jax.Array:
        """alpha_i = 1 - beta_i for both VP-type SDEs (the original's sub-VP corrector lacked them)."""
        return 1.0 - self.step_beta(t, dt)


class VPSDE(LinearBetaSDE):
    """Variance preserving: dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw, beta linear in t (eq. 32)."""

    def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        beta = self.beta(t)
        return -0.5 * batch_broadcast(beta, x) * x, jnp.sqrt(beta)

    def marginal_coefs(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        b = self.integrated_beta(t)
        return jnp.exp(-0.5 * b), jnp.sqrt(-jnp.expm1(-b))

    def discretize(self, x: jax.Array, t: jax.Array, dt: float | jax.Array) -> tuple[jax.Array, jax.Array]:
        """DDPM (eq. 10): x_t = sqrt(1 - beta_i) x_{t-dt} + sqrt(beta_i) z."""
        beta = self.step_beta(t, dt)
        return (batch_broadcast(jnp.sqrt(1.0 - beta), x) - 1.0) * x, jnp.sqrt(beta)

    def discrete_betas(self) -> jax.Array:
        """DDPM's N betas, linear from beta_min / N to beta_max / N (Ho et al. 2020)."""
        return jnp.linspace(self.beta_min / self.N, self.beta_max / self.N, self.N)

    def discrete_noise(self, i: jax.Array) -> tuple[jax.Array, jax.Array]:
        """DDPM's alpha_bar_i = prod_{j<=i} (1 - beta_j): (sqrt(alpha_bar_i), sqrt(1 - alpha_bar_i))."""
        alpha_bar = jnp.cumprod(1.0 - self.discrete_betas())[i]
        return jnp.sqrt(alpha_bar), jnp.sqrt(1.0 - alpha_bar)

    def ancestral_step(self, x: jax.Array, score: jax.Array, t: jax.Array, dt: float,
                       z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """DDPM ancestral sampling (eq. 47): x_{i-1} = (x_i + beta_i s) / sqrt(1 - beta_i) + sqrt(beta_i) z."""
        beta = batch_broadcast(self.step_beta(t, dt), x)
        x_mean = (x + beta * score) / jnp.sqrt(1.0 - beta)
        return x_mean + jnp.sqrt(beta) * z, x_mean


class SubVPSDE(LinearBetaSDE):
    """Sub-VP: dx = -beta x / 2 dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta))) dw (eq. 16).

    Euler-Maruyama discretisation; its Langevin corrector uses alpha_i = 1 - beta_i like the VP SDE.
    """

    def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        beta = self.beta(t)
        drift = -0.5 * batch_broadcast(beta, x) * x
        return drift, jnp.sqrt(beta * -jnp.expm1(-2.0 * self.integrated_beta(t)))

    def marginal_coefs(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        b = self.integrated_beta(t)
        return jnp.exp(-0.5 * b), -jnp.expm1(-b)


class VelocityScore:
    """A velocity field v(x, t) of the rectified flow, seen as its score.

    With x_t = (1 - t) x_0 + t eps and v = E[eps - x_0 | x_t]: E[x_0 | x_t] = x - t v, E[eps | x_t] = x + (1 - t) v,
    and the score is s(x, t) = -E[eps | x_t] / t (t > 0). The process's ODE and denoiser read `velocity` itself,
    which stays finite at t = 1 where the score's conversions divide by 1 - t.
    """

    def __init__(self, velocity: Callable[[jax.Array, jax.Array], jax.Array]) -> None:
        self.velocity = velocity

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        eps = x + batch_broadcast(1.0 - t, x) * self.velocity(x, t)
        return -eps / batch_broadcast(t, x)


class FlowODE:
    """The rectified flow's probability-flow ODE dx/dt = v(x, t), in ReverseSDE's interface (no diffusion)."""

    def __init__(self, velocity: Callable[[jax.Array, jax.Array], jax.Array]) -> None:
        self.velocity = velocity
        self.probability_flow = True

    def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.velocity(x, t), jnp.zeros(x.shape[:1], x.dtype)


class RectifiedFlow(SDE):
    """Flow matching / rectified flow (Lipman et al. 2023; Liu, Gong & Liu 2023): x_t = (1 - t) x_0 + t eps.

    Its kernel N((1 - t) x_0, t^2 I) is that of dx = -x / (1 - t) dt + sqrt(2 t / (1 - t)) dw, whose drift is
    singular at t = 1; its probability-flow ODE (eq. 13) is the flow itself, dx/dt = v(x, t) = E[eps - x_0 | x_t],
    finite everywhere. So the process is sampled and scored only through that ODE, from its exact prior N(0, I)
    at T = 1, with the velocity a `VelocityScore` carries; the reverse SDE and PC samplers do not apply.
    """

    def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        return -x / batch_broadcast(1.0 - t, x), jnp.sqrt(2.0 * t / (1.0 - t))

    def marginal_coefs(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        return 1.0 - t, t

    def heun_coefs(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(1, t): EDM's x / s(t) is infinite at the flow's t = 1; with s = 1 and sigma = t the Heun sampler steps
        dx/dt = (x - x0) / t = v itself (Heun's method on the flow, as diffusers' FlowMatchHeunDiscreteScheduler)."""
        return jnp.ones_like(t), t

    def reverse(self, score_fn: ScoreFn, probability_flow: bool = False) -> FlowODE:
        """The probability-flow ODE dx/dt = v; the reverse SDE is not offered (its drift is singular at T)."""
        if not probability_flow:
            raise ValueError('the rectified flow is sampled through its probability-flow ODE; its reverse SDE is '
                             'singular at t = 1')
        if not isinstance(score_fn, VelocityScore):
            raise ValueError('the rectified flow\'s ODE is its velocity: pass a VelocityScore')
        return FlowODE(score_fn.velocity)

    def denoise(self, score_fn: ScoreFn, x: jax.Array, t: jax.Array) -> jax.Array:
        """E[x_0 | x_t] = x - t v(x, t)."""
        if not isinstance(score_fn, VelocityScore):
            raise ValueError('the rectified flow denoises with its velocity: pass a VelocityScore')
        return x - batch_broadcast(t, x) * score_fn.velocity(x, t)


def shift_times(t: np.ndarray, shift: float) -> np.ndarray:
    """t' = s t / (1 + (s - 1) t): the time shift of Esser et al. 2024 (SD3, eq. 23) and diffusers' `shift` of
    FlowMatchEulerDiscreteScheduler; s > 1 spends more steps at high noise, s = 1 is the identity."""
    t = np.asarray(t, np.float64)
    return shift * t / (1.0 + (shift - 1.0) * t)


def tutorial_ve_sigmas(sigma: float) -> tuple[float, float]:
    """(sigma_min, sigma_max) making VESDE the tutorial's dx = sigma^t dw.

    Its marginal std(t)^2 = (sigma^(2t) - 1) / (2 log sigma) equals sigma_min^2 ((sigma_max/sigma_min)^(2t) - 1).
    """
    scale = 1.0 / np.sqrt(2.0 * np.log(sigma))
    return float(scale), float(sigma * scale)


VE_MARGINAL_STDS = ('exact', 'sigma')


def get_sde(sde_config: ml_collections.ConfigDict) -> SDE:
    """The SDE `config.sde` describes (see configs/sde/base.py)."""
    kind = sde_config.type
    if kind == 'vesde':
        if not 0 < sde_config.sigma_min < sde_config.sigma_max:
            raise ConfigError(f'sde.sigma_min={sde_config.sigma_min} and sde.sigma_max={sde_config.sigma_max} '
                              'must satisfy 0 < sigma_min < sigma_max')
        if sde_config.ve_marginal_std not in VE_MARGINAL_STDS:
            raise ConfigError(f'sde.ve_marginal_std={sde_config.ve_marginal_std!r} is not one of '
                              f'{", ".join(VE_MARGINAL_STDS)}')
        return VESDE(sigma_min=sde_config.sigma_min, sigma_max=sde_config.sigma_max, N=sde_config.num_scales,
                     marginal_std=sde_config.ve_marginal_std)
    if kind in ('vpsde', 'subvpsde'):
        if not 0 < sde_config.beta_min < sde_config.beta_max:
            raise ConfigError(f'sde.beta_min={sde_config.beta_min} and sde.beta_max={sde_config.beta_max} '
                              'must satisfy 0 < beta_min < beta_max')
        cls = VPSDE if kind == 'vpsde' else SubVPSDE
        return cls(beta_min=sde_config.beta_min, beta_max=sde_config.beta_max, N=sde_config.num_scales)
    if kind == 'rectified_flow':
        return RectifiedFlow(N=sde_config.num_scales)
    raise ConfigError(f"sde.type={kind!r} is not one of 'vesde', 'vpsde', 'subvpsde', 'rectified_flow'")
