"""Side-by-side speed benchmarks of our JAX code against PyTorch baselines (see harness.py)."""
