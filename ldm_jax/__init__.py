"""ldm_jax: DDPM/DDIM diffusion, guidance, the VQ-f4 autoencoder and latent diffusion (see docs/ldm.md)."""

from ldm_jax.diffusers_folder import load_pretrained

__all__ = ['load_pretrained']
