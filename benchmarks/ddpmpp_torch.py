"""PyTorch baseline of DDPM++ cont. (Song et al. 2021, Appendix H.2): the network sde_jax.models.ncsnpp.NCSNpp
builds for configs/sde/cifar10_ddpmpp_continuous.py, written in PyTorch for the training-step benchmarks.

That configuration only: BigGAN residual blocks without FIR (resampling by nearest-neighbour repetition and 2x2
average pooling), no input or output pyramid, sinusoidal embedding of the noise label (DDPM's: [sin, cos],
frequencies 10000^(-i / (nf/2 - 1))), skip connections scaled by 1/sqrt(2), GroupNorm(min(C/4, 32), eps 1e-6),
self-attention at `attn_resolutions`. Written from the paper's description and our Flax module, not from the
original code: its layers sit in one list `all_modules`, in the order the forward pass calls them, under the
names a score_sde_pytorch state dict uses, so that our own importer (sde_jax.convert.ncsnpp_from_pytorch) maps
its parameters to ours and both sides of a benchmark run the same function. Benchmarks only: the library never
imports torch.
"""

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(channels // 4, 32), channels, eps=1e-6)


def timestep_embedding(label: torch.Tensor, dim: int) -> torch.Tensor:
    """DDPM's sinusoidal embedding: [sin, cos] of label * 10000^(-i / (dim/2 - 1)), i < dim/2."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=label.device) / (half - 1))
    args = label.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class NIN(nn.Module):
    """A 1x1 layer over channels with parameters W (in, out) and b, as the original's attention keeps them."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(in_ch, out_ch) * in_ch ** -0.5)
        self.b = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum('bchw,co->bohw', x, self.W) + self.b[None, :, None, None]


class AttnBlock(nn.Module):
    """Self-attention over all positions: x + NIN_3(softmax(q k^T / sqrt(C)) v), scaled by 1/sqrt(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.GroupNorm_0 = group_norm(channels)
        self.NIN_0, self.NIN_1, self.NIN_2, self.NIN_3 = (NIN(channels, channels) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        h = self.GroupNorm_0(x)
        q, k, v = self.NIN_0(h), self.NIN_1(h), self.NIN_2(h)
        w = torch.einsum('bchw,bcij->bhwij', q, k) * c ** -0.5
        w = torch.softmax(w.reshape(b, height, width, height * width), dim=-1).reshape(w.shape)
        h = self.NIN_3(torch.einsum('bhwij,bcij->bchw', w, v))
        return (x + h) / math.sqrt(2.0)


class ResnetBlockBigGAN(nn.Module):
    """GN-SiLU-(resample)-conv, + Dense(SiLU(temb)), GN-SiLU-dropout-conv; 1x1 shortcut when the width changes
    or it resamples; (x + h) / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, dropout: float, up: bool = False,
                 down: bool = False) -> None:
        super().__init__()
        self.up, self.down = up, down
        self.GroupNorm_0 = group_norm(in_ch)
        self.Conv_0 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.Dense_0 = nn.Linear(temb_dim, out_ch)
        self.GroupNorm_1 = group_norm(out_ch)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        if in_ch != out_ch or up or down:
            self.Conv_2 = nn.Conv2d(in_ch, out_ch, 1)

    def _resample(self, v: torch.Tensor) -> torch.Tensor:
        if self.up:
            return F.interpolate(v, scale_factor=2, mode='nearest')
        if self.down:
            return F.avg_pool2d(v, 2)
        return v

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self._resample(F.silu(self.GroupNorm_0(x)))
        x = self._resample(x)
        h = self.Conv_0(h) + self.Dense_0(F.silu(temb))[:, :, None, None]
        h = self.Conv_1(self.Dropout_0(F.silu(self.GroupNorm_1(h))))
        if hasattr(self, 'Conv_2'):
            x = self.Conv_2(x)
        return (x + h) / math.sqrt(2.0)


class TorchDDPMpp(nn.Module):
    """DDPM++ cont. on NCHW images in [-1, 1] (data.centered) with the noise label 999 t; returns the predicted
    noise (our convention: -std(t) x score)."""

    def __init__(self, channels: int = 3, resolution: int = 32, nf: int = 128, ch_mult: Sequence[int] = (1, 2, 2, 2),
                 num_res_blocks: int = 4, attn_resolutions: Sequence[int] = (16,), dropout: float = 0.1) -> None:
        super().__init__()
        self.nf, self.ch_mult, self.num_res_blocks = nf, tuple(ch_mult), num_res_blocks
        self.attn_resolutions = tuple(attn_resolutions)
        temb = 4 * nf
        modules: list[nn.Module] = [nn.Linear(nf, temb), nn.Linear(temb, temb), nn.Conv2d(channels, nf, 3, padding=1)]
        skips, width, res = [nf], nf, resolution
        for level, mult in enumerate(self.ch_mult):
            for _ in range(num_res_blocks):
                modules.append(ResnetBlockBigGAN(width, nf * mult, temb, dropout))
                width = nf * mult
                if res in self.attn_resolutions:
                    modules.append(AttnBlock(width))
                skips.append(width)
            if level != len(self.ch_mult) - 1:
                modules.append(ResnetBlockBigGAN(width, width, temb, dropout, down=True))
                skips.append(width)
                res //= 2
        modules += [ResnetBlockBigGAN(width, width, temb, dropout), AttnBlock(width),
                    ResnetBlockBigGAN(width, width, temb, dropout)]
        for level in reversed(range(len(self.ch_mult))):
            for _ in range(num_res_blocks + 1):
                modules.append(ResnetBlockBigGAN(width + skips.pop(), nf * self.ch_mult[level], temb, dropout))
                width = nf * self.ch_mult[level]
            if res in self.attn_resolutions:
                modules.append(AttnBlock(width))
            if level != 0:
                modules.append(ResnetBlockBigGAN(width, width, temb, dropout, up=True))
                res *= 2
        modules += [group_norm(width), nn.Conv2d(width, channels, 3, padding=1)]
        self.all_modules = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        layer: Iterator[nn.Module] = iter(self.all_modules)
        temb = next(layer)(timestep_embedding(label, self.nf))
        temb = next(layer)(F.silu(temb))
        hs = [next(layer)(x)]
        for level in range(len(self.ch_mult)):
            for _ in range(self.num_res_blocks):
                h = next(layer)(hs[-1], temb)
                if h.shape[-1] in self.attn_resolutions:
                    h = next(layer)(h)
                hs.append(h)
            if level != len(self.ch_mult) - 1:
                hs.append(next(layer)(hs[-1], temb))
        h = next(layer)(hs[-1], temb)
        h = next(layer)(h)
        h = next(layer)(h, temb)
        for level in reversed(range(len(self.ch_mult))):
            for _ in range(self.num_res_blocks + 1):
                h = next(layer)(torch.cat([h, hs.pop()], dim=1), temb)
            if h.shape[-1] in self.attn_resolutions:
                h = next(layer)(h)
            if level != 0:
                h = next(layer)(h, temb)
        h = F.silu(next(layer)(h))
        return next(layer)(h)
