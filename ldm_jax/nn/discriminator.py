"""The PatchGAN discriminator of pix2pix (Isola et al. 2017) that taming-transformers' VQGAN uses.

4x4 convolutions: stride 2 with `ndf` filters and LeakyReLU(0.2), then `num_layers - 1` further stride-2
layers and one stride-1 layer, each with BatchNorm (no bias) and doubling width (capped at 8 ndf),
then a stride-1 conv to one logit per patch. Weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).
"""

import flax.linen as nn
import jax

_PAD = ((1, 1), (1, 1))


class PatchDiscriminator(nn.Module):
    ndf: int = 64
    num_layers: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        init = nn.initializers.normal(0.02)

        def scale_init(key: jax.Array, shape: tuple, dtype: jax.typing.DTypeLike = float) -> jax.Array:
            return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)

        h = nn.Conv(self.ndf, (4, 4), (2, 2), _PAD, kernel_init=init, name='conv_0')(x)
        h = nn.leaky_relu(h, 0.2)
        width = 1
        for n in range(1, self.num_layers + 1):
            width = min(2**n, 8)
            stride = 2 if n < self.num_layers else 1
            h = nn.Conv(self.ndf * width, (4, 4), (stride, stride), _PAD, use_bias=False, kernel_init=init,
                        name=f'conv_{n}')(h)
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=scale_init,
                             name=f'norm_{n}')(h)
            h = nn.leaky_relu(h, 0.2)
        return nn.Conv(1, (4, 4), (1, 1), _PAD, kernel_init=init, name=f'conv_{self.num_layers + 1}')(h)
