"""Flax linen networks: the openaimodel UNet and classifier, the VQ autoencoder, the patch discriminator."""
