"""ldm_jax: DDPM/DDIM diffusion, guidance, the VQ-f4 autoencoder and latent diffusion (see docs/ldm.md)."""
