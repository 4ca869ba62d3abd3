"""PyTorch baselines for the sde_jax benchmarks: the tutorial U-Net, its Euler-Maruyama loop, the VE and VP SDEs
and the DSM training step (the DDPM++ network is benchmarks/ddpmpp_torch.py).

`TorchTutorialUNet` is the network of sde_jax.models.tutorial_unet (Song's tutorial ScoreNet: 28x28,
channels 32-64-128-256, Gaussian Fourier time features) written in PyTorch, and `load_flax_params`
copies our Flax parameters into it, so both sides of a benchmark run the same function (checked by
`max_abs_difference`). Benchmarks only: the library never imports torch.
"""

import math

import numpy as np
import torch
from torch import nn


class TorchTutorialUNet(nn.Module):
    """Noise prediction net(x, label) of the tutorial U-Net (NCHW), same layers as the Flax module."""

    def __init__(self, channels=(32, 64, 128, 256), embed_dim=256) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.fourier_w = nn.Parameter(torch.zeros(embed_dim // 2), requires_grad=False)
        self.embed = nn.Linear(embed_dim, embed_dim)
        self.convs = nn.ModuleList([nn.Conv2d(1, c1, 3, 1, bias=False), nn.Conv2d(c1, c2, 3, 2, bias=False),
                                    nn.Conv2d(c2, c3, 3, 2, bias=False), nn.Conv2d(c3, c4, 3, 2, bias=False)])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(c4, c3, 3, 2, bias=False),
                                  nn.ConvTranspose2d(2 * c3, c2, 3, 2, bias=False, output_padding=1),
                                  nn.ConvTranspose2d(2 * c2, c1, 3, 2, bias=False, output_padding=1)])
        self.out = nn.Conv2d(2 * c1, 1, 3, padding=2)
        widths = (c1, c2, c3, c4, c3, c2, c1)
        self.dense = nn.ModuleList([nn.Linear(embed_dim, w) for w in widths])
        # sde_jax.models.tutorial_unet._groups: 4 groups at the encoder's first level, else min(32, width)
        groups = (4, *(min(32, w) for w in widths[1:]))
        self.norms = nn.ModuleList([nn.GroupNorm(g, w, eps=1e-6) for g, w in zip(groups, widths, strict=True)])

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        act = nn.functional.silu
        proj = label[:, None] * self.fourier_w[None] * 2 * math.pi
        embed = act(self.embed(torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)))

        def block(h: torch.Tensor, i: int) -> torch.Tensor:
            return act(self.norms[i](h + self.dense[i](embed)[:, :, None, None]))

        skips, h = [], x
        for i, conv in enumerate(self.convs):
            h = block(conv(h), i)
            skips.append(h)
        h = skips.pop()
        for i, up in enumerate(self.ups):
            if i:
                h = torch.cat([h, skips.pop()], dim=1)
            h = block(up(h), 4 + i)
        return self.out(torch.cat([h, skips.pop()], dim=1))


def load_flax_params(model: TorchTutorialUNet, params: dict) -> TorchTutorialUNet:
    """Copies sde_jax TutorialUNet parameters (HWIO kernels, (in, out) dense) into the torch model."""

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, np.float32))

    with torch.no_grad():
        model.fourier_w.copy_(t(params['GaussianFourierProjection_0']['W']))
        model.embed.weight.copy_(t(params['Dense_0']['kernel']).T)
        model.embed.bias.copy_(t(params['Dense_0']['bias']))
        for i, conv in enumerate(model.convs):
            conv.weight.copy_(t(params[f'Conv_{i}']['kernel']).permute(3, 2, 0, 1))
        for i, up in enumerate(model.ups):
            up.weight.copy_(t(params[f'UpConv3x3_{i}']['kernel']).permute(2, 3, 0, 1))
        model.out.weight.copy_(t(params['Conv_4']['kernel']).permute(3, 2, 0, 1))
        model.out.bias.copy_(t(params['Conv_4']['bias']))
        for i, (dense, norm) in enumerate(zip(model.dense, model.norms, strict=True)):
            dense.weight.copy_(t(params[f'Dense_{i + 1}']['kernel']).T)
            dense.bias.copy_(t(params[f'Dense_{i + 1}']['bias']))
            norm.weight.copy_(t(params[f'GroupNorm_{i}']['scale']))
            norm.bias.copy_(t(params[f'GroupNorm_{i}']['bias']))
    return model.eval()


class TorchVESDE:
    """The VE SDE sigma(t) = sigma_min (sigma_max / sigma_min)^t with its exact marginal std."""

    def __init__(self, sigma_min: float, sigma_max: float) -> None:
        self.sigma_min, self.log_ratio = sigma_min, math.log(sigma_max / sigma_min)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * torch.exp(t * self.log_ratio)

    def std(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * torch.sqrt(torch.expm1(2 * t * self.log_ratio))

    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma(t) * math.sqrt(2 * self.log_ratio)

    def marginal(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of x(t) given x(0) = x."""
        return x, self.std(t)

    def network_input(self, t: torch.Tensor) -> torch.Tensor:
        """The tutorial network's noise label: log sigma(t) (sde_jax.conditioning)."""
        return torch.log(self.sigma(t))


class TorchVPSDE:
    """The VP SDE, beta(t) = beta_min + t (beta_max - beta_min), with its exact marginal (Song et al. 2021,
    eq. 29)."""

    def __init__(self, beta_min: float, beta_max: float) -> None:
        self.beta_min, self.beta_max = beta_min, beta_max

    def marginal(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_mean = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        return torch.exp(log_mean)[:, None, None, None] * x, torch.sqrt(-torch.expm1(2.0 * log_mean))

    def network_input(self, t: torch.Tensor) -> torch.Tensor:
        """DDPM++ cont.'s noise label: 999 t (sde_jax.conditioning)."""
        return 999.0 * t


@torch.no_grad()
def euler_maruyama(model: TorchTutorialUNet, sde: TorchVESDE, shape: tuple, num_steps: int, eps: float,
                   generator: torch.Generator) -> torch.Tensor:
    """Euler-Maruyama on the reverse VE SDE from x(1) ~ N(0, std(1)^2) to t = eps (no denoising step), on
    the generator's device (the model must be there too)."""
    device = generator.device
    dt = (1.0 - eps) / num_steps
    x = sde.std(torch.ones((), device=device)) * torch.randn(shape, generator=generator, device=device)
    for i in range(num_steps):
        t = torch.full((shape[0],), 1.0 - i * dt, device=device)
        score = -model(x, torch.log(sde.sigma(t))).float() / sde.std(t)[:, None, None, None]
        g = sde.diffusion(t)[:, None, None, None]
        x = x + g**2 * score * dt + g * math.sqrt(dt) * torch.randn(shape, generator=generator, device=device)
    return x


class TorchDSMTrainer:
    """One training step as sde_jax takes it (sde_jax.losses.dsm_loss with weighting 'sigma2', then
    gen_runtime.train_state.TrainState.apply_gradients): t ~ U(eps, 1), x_t = mean(t) + std(t) z,
    loss = batch mean of 1/2 sum (net(x_t, label(t)) - z)^2 (or the mean over dimensions), global-norm clipping
    if asked, one Adam step at the rate of gen_runtime.optim (linear warm-up from 0 over `warmup_steps`, then
    constant), then the parameter EMA (with its (1 + t) / (10 + t) warm-up if asked). `sde` is a TorchVESDE or
    TorchVPSDE (its `marginal` and `network_input`)."""

    def __init__(self, model: nn.Module, sde: 'TorchVESDE | TorchVPSDE', *, lr: float, betas: tuple[float, float],
                 adam_eps: float, ema_rate: float, ema_warmup: bool, loss_eps: float = 1e-5, reduce_mean: bool = False,
                 grad_clip: float = 0.0, warmup_steps: int = 0) -> None:
        self.model, self.sde, self.loss_eps, self.reduce_mean = model.train(), sde, loss_eps, reduce_mean
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=lr, betas=betas, eps=adam_eps)
        self.ema = [p.detach().clone() for p in self.params]
        self.ema_rate, self.ema_warmup, self.step_count = ema_rate, ema_warmup, 0
        self.lr, self.grad_clip, self.warmup_steps = lr, grad_clip, warmup_steps

    def loss(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The DSM loss at given times t (B,) and noise z (NCHW)."""
        mean, std = self.sde.marginal(x, t)
        residual = (self.model(mean + std[:, None, None, None] * z, self.sde.network_input(t)).float() - z) ** 2
        per_example = residual.mean((1, 2, 3)) if self.reduce_mean else 0.5 * residual.sum((1, 2, 3))
        return per_example.mean()

    def step(self, x: torch.Tensor, generator: torch.Generator) -> float:
        t = self.loss_eps + (1.0 - self.loss_eps) * torch.rand(x.shape[0], generator=generator, device=x.device)
        z = torch.randn(x.shape, generator=generator, device=x.device)
        loss = self.loss(x, t, z)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        if self.warmup_steps > 0:
            self.optimizer.param_groups[0]['lr'] = self.lr * min(self.step_count / self.warmup_steps, 1.0)
        self.optimizer.step()
        decay = self.ema_rate
        if self.ema_warmup:
            decay = min(decay, (1.0 + self.step_count) / (10.0 + self.step_count))
        self.step_count += 1
        with torch.no_grad():
            torch._foreach_mul_(self.ema, decay)
            torch._foreach_add_(self.ema, [p.detach() for p in self.params], alpha=1.0 - decay)
        return loss.item()
