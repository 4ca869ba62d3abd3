"""sde_jax: score-based generative modelling through stochastic differential equations, in JAX/Flax."""
