"""One entry point to every benchmark: `load_problem(config, stage)`."""

import ml_collections

from gen_runtime.errors import ConfigError
from zsl_jax.gbu_data import load_gbu_problem
from zsl_jax.problem import ZslProblem
from zsl_jax.synthetic import load_synthetic_problem
from zsl_jax.wiki_data import load_wiki_problem

LOADERS = {'wiki': load_wiki_problem, 'gbu': load_gbu_problem, 'synthetic': load_synthetic_problem}
STAGES = ('validation', 'final')


def load_problem(config: ml_collections.ConfigDict, stage: str) -> ZslProblem:
    """The problem of `config.benchmark` for `stage`: 'validation' (model selection) or 'final' (test)."""
    kind = config.benchmark.kind
    if kind not in LOADERS:
        raise ConfigError(f'benchmark.kind={kind!r} is not one of {", ".join(LOADERS)}')
    if stage not in STAGES:
        raise ValueError(f'stage {stage!r} is not one of {STAGES}')
    return LOADERS[kind](config, stage)
