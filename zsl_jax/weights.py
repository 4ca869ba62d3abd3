"""`--mode import_weights` for zsl_jax: a generator and discriminator saved by the original training scripts.

CIZSL's train_CIZSL.py and GAZSL's train_CUB.py / train_GBU.py save
`{'it', 'state_dict_G', 'state_dict_D', 'random_seed', 'log'}` with torch.save (PyTorch 0.4: the legacy
format; newer torch: a zip; both read without torch, tensors only, by gen_runtime.torch_archive).
Their networks (models.py) map onto ours (zsl_jax/models.py) layer by layer, PyTorch Linear weights
(out, in) transposed to Dense kernels (in, out):
  _netG / _netG_att   rdc_text -> text_reduction (wiki text only), main.0 -> hidden, main.2 -> out
                      (the input is cat([z, text]) in both);
  _netD               D_shared.0 -> shared, D_gan -> critic, D_aux -> classifier.
The imported models become step 0 of `<workdir>/seed_<seed>/best_on_test`, the run that
`--mode eval --config.eval.protocol=best_on_test` evaluates (the originals select their checkpoints
on test data, so an imported model is reported under their protocol). Learned Sharma-Mittal orders
are not in the originals' files; CIZSL's start from their initialisation.

The layers' shapes show every model.* size (`checkpoint_sizes`), and a config that differs is refused naming
the field with both values; everything else that shapes the outputs (LeakyReLU(0.01), tanh, ReLU, the
[z, text] order) is the same in both originals and ours.
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.config import resolve_data_path
from gen_runtime.errors import CheckpointError, ConfigError
from gen_runtime.import_checks import mismatch_message
from gen_runtime.imported import refuse_existing_checkpoints, save_imported_state
from gen_runtime.run_once import run_once
from gen_runtime.state_dicts import dense_kernel, without_prefix
from gen_runtime.torch_archive import load_archive
from gen_runtime.train_state import TrainState
from zsl_jax.data import load_problem
from zsl_jax.experiment import initialiser, make_experiment
from zsl_jax.protocol import check_eval_config, for_seed

GENERATOR_LAYERS = {'rdc_text': 'text_reduction', 'main.0': 'hidden', 'main.2': 'out'}
DISCRIMINATOR_LAYERS = {'D_shared.0': 'shared', 'D_gan': 'critic', 'D_aux': 'classifier'}
HINT = 'check model.noise_dim, model.hidden_dim, model.text_reduction_dim and the benchmark against the checkpoint'


def checkpoint_sizes(state_dict_g: dict, text_dim: int) -> dict[str, int]:
    """The model.* sizes of a saved generator for text features of `text_dim` dims (main.0 takes
    cat([z, reduced text]) or cat([z, text])); empty if it has no main.0 matrix."""
    g = {k.removeprefix('module.'): np.shape(v) for k, v in state_dict_g.items()}
    hidden = g.get('main.0.weight', ())
    if len(hidden) != 2:
        return {}
    reduction = g['rdc_text.weight'][0] if len(g.get('rdc_text.weight', ())) == 2 else 0
    return {'hidden_dim': hidden[0], 'text_reduction_dim': reduction, 'noise_dim': hidden[1] - (reduction or text_dim)}


def size_hint(state_dict_g: dict, model: ml_collections.ConfigDict, text_dim: int) -> str:
    """The model.* fields whose sizes differ from the saved generator's, with both values, else `HINT`."""
    return mismatch_message('the checkpoint', checkpoint_sizes(state_dict_g, text_dim), model, 'model') or HINT


def dense_layers(state_dict: dict, layers: dict[str, str], shapes: dict, what: str, hint: str = HINT) -> dict:
    """Our Dense parameters from PyTorch Linear layers, each checked against `shapes`; a mismatch is refused
    with `hint` (what to change)."""
    state_dict = without_prefix(state_dict)
    expected = {theirs for theirs, ours in layers.items() if ours in shapes}
    present = {k.rsplit('.', 1)[0] for k in state_dict}
    if present != expected:
        raise CheckpointError(f'the checkpoint {what} has layers {sorted(present)} where this config\'s has '
                              f'{sorted(expected)}; {hint}')
    params = {}
    for theirs in sorted(expected):
        ours = layers[theirs]
        kernel, bias = dense_kernel(state_dict[f'{theirs}.weight']), state_dict[f'{theirs}.bias']
        for leaf, value in (('kernel', kernel), ('bias', bias)):
            want = tuple(shapes[ours][leaf].shape)
            if value.shape != want:
                raise CheckpointError(f'checkpoint parameter {what}.{theirs} ({leaf}) has shape {value.shape}, this '
                                      f'config\'s {ours}.{leaf} {want}; {hint}')
        params[ours] = {'kernel': kernel.astype(np.float32), 'bias': bias.astype(np.float32)}
    return params


def check_import_config(config: ml_collections.ConfigDict) -> None:
    check_eval_config(config)
    if config.eval.protocol != 'best_on_test' or len(config.eval.seeds) != 1:
        raise ConfigError('an imported model is evaluated as the originals selected it: give '
                          '--config.eval.protocol=best_on_test and one seed (e.g. "--config.eval.seeds=(0,)")')
    if not config.weights.path:
        raise ConfigError('--mode import_weights needs --config.weights.path=<the original checkpoint .tar>')


def import_weights(config: ml_collections.ConfigDict, workdir: str) -> None:
    """The original checkpoint at weights.path as step 0 of <workdir>/seed_<seed>/best_on_test (the config is
    checked: zsl_jax.checks.check_import)."""
    path = resolve_data_path(config, config.weights.path)
    if not os.path.isfile(path):
        raise ConfigError(f'weights.path {path} is not a file')
    seed = int(config.eval.seeds[0])
    run_config, run_dir = for_seed(config, seed), os.path.join(workdir, f'seed_{seed}', 'best_on_test')
    refuse_existing_checkpoints(run_config, run_dir)
    saved = load_archive(path)
    if not isinstance(saved, dict) or 'state_dict_G' not in saved or 'state_dict_D' not in saved:
        raise CheckpointError(f'{path} has no state_dict_G / state_dict_D; is it a checkpoint of the original '
                              'CIZSL or GAZSL training scripts?')
    problem = load_problem(run_config, 'final')
    hint = size_hint(saved['state_dict_G'], run_config.model, problem.text_dim)
    init_state = initialiser(make_experiment(run_config, problem))
    state = run_once(init_state, jax.random.key(run_config.seed))
    generator = dense_layers(saved['state_dict_G'], GENERATOR_LAYERS, state['generator'].params, 'state_dict_G', hint)
    discriminator = dense_layers(saved['state_dict_D'], DISCRIMINATOR_LAYERS, state['discriminator'].params,
                                 'state_dict_D', hint)
    state = {**state, 'generator': TrainState.from_config(jax.tree.map(jnp.asarray, generator), run_config),
             'discriminator': TrainState.from_config(jax.tree.map(jnp.asarray, discriminator), run_config)}
    save_imported_state(run_config, run_dir, init_state, state,
                        {'path': os.path.abspath(path), 'layout': 'cizsl_gazsl',
                         'original_iteration': int(saved.get('it', 0)),
                         'original_random_seed': saved.get('random_seed')})
