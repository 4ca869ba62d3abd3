"""Bits/dim over a whole split: padded last batch masked out, results streamed per batch, resumable."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configs import quickstart
from gen_runtime.data import eval_batches, image_preprocessor
from gen_runtime.run_once import run_once
from sde_jax.experiment import load_images, make_experiment
from sde_jax.likelihood_eval import BatchBpd, evaluate_bpd, summarise


def _config():
    config = quickstart.get_config()
    config.unlock()
    config.likelihood.update(estimator='exact', max_examples=3, batch_size=2, rtol=1e-3, atol=1e-3)
    config.runtime.progress_bar = False
    config.lock()
    return config


def test_whole_split_with_padded_last_batch_streamed_and_resumed(tmp_path):
    config = _config()
    exp = make_experiment(config)
    params = run_once(exp.init_params, jax.random.key(0))
    summary = evaluate_bpd(exp, params, str(tmp_path), step=0)
    lines = [json.loads(line) for line in (tmp_path / 'batches.jsonl').read_text().splitlines()]
    assert [r['count'] for r in lines] == [2, 1]  # 3 examples: a full batch, then 1 real + 1 padding row
    assert summary['num_examples'] == 3 and summary['num_batches'] == 2
    # quickstart's 17-level images scaled to [-1, 1]: the change of variables from the levels to the
    # model's space costs log2(17) - log2(2) bits per dimension.
    assert summary['levels'] == 17 and summary['model_scale'] == 2.0
    np.testing.assert_allclose(summary['dequantisation_offset_bits'], np.log2(17) - 1, rtol=1e-12)
    np.testing.assert_allclose(summary['continuous_bpd'], summary['bpd'] - summary['dequantisation_offset_bits'])
    assert summary['seconds_per_example'] == summary['seconds'] / 3 > 0

    # The same 3 dequantised examples, evaluated in one unpadded batch, give the same mean: the padding
    # row did not enter it (it would move the mean by (bpd_0 - mean) / 4).
    dataset = load_images(config, 'test', exp.image_shape)
    data = dataset.gather(np.arange(3))
    data_config = ml_collections.ConfigDict({**config.data.to_dict(), 'dequantize': True, 'random_flip': False})
    preprocess = image_preprocessor(data_config, dataset.levels)
    rows = [b['image'][b['mask']] for b in eval_batches(type(dataset)({'image': data['image']}, dataset.levels), 2,
                                                        preprocess, seed=config.eval.seed)]
    x = exp.to_model_space(jnp.asarray(np.concatenate(rows)))
    bpd, nfe = BatchBpd(exp, dataset.levels)(params, x, jax.random.key(0))
    assert nfe > 0
    # Each example is its own ODE; only float differences of the batched network (amplified up to the
    # solver tolerance, 1e-3) separate the two runs.
    atol = 2e-3
    np.testing.assert_allclose(summary['bpd'], bpd.mean(), atol=atol)
    # Including the padding row would have moved the mean by 5 times that tolerance or more.
    assert abs(float(bpd[0]) - summary['bpd']) / 4 > 5 * atol

    again = evaluate_bpd(exp, params, str(tmp_path), step=0)  # every batch is already on disk
    assert len((tmp_path / 'batches.jsonl').read_text().splitlines()) == 2
    assert again['bpd'] == summary['bpd'] and again['bound_bpd'] == summary['bound_bpd']
    # The variational bound (sde_jax.bound) is reported beside the ODE's bits/dim, in the same units.
    assert summary['bound_times'] == 4 and np.isfinite(summary['bound_bpd']) and summary['bound_bpd_standard_error'] > 0


def test_a_tolerance_sweep_is_one_compiled_program():
    """likelihood.rtol and .atol are arguments of the compiled solve: two tolerances lower to the same program
    (one compile for a sweep), and each is the one used (the looser solve takes fewer drift evaluations)."""
    experiments = []
    for tol in (1e-1, 1e-4):
        config = _config()
        config.unlock()
        config.likelihood.update(estimator='rademacher', rtol=tol, atol=tol)
        config.lock()
        experiments.append(make_experiment(config))
    params = run_once(experiments[0].init_params, jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (2, *experiments[0].image_shape), minval=-1.0, maxval=1.0)
    fns = [BatchBpd(exp, 17) for exp in experiments]
    programs = {fn._fn.lower(params, x, jax.random.key(2), np.ones(2, np.float32)).as_text() for fn in fns}
    assert len(programs) == 1
    (loose, loose_nfe), (tight, tight_nfe) = (fn(params, x, jax.random.key(2)) for fn in fns)
    assert loose_nfe < tight_nfe and np.all(np.isfinite(loose)) and np.all(np.isfinite(tight))


def test_8_bit_offset_in_minus_one_one_is_7_bits():
    """Song et al. (2021), app. D.2: bits/dim of 8-bit data in [-1, 1] = continuous bits/dim + 8 - 1."""
    exp = make_experiment(_config())  # centred data: model space [-1, 1]
    done = {0: {'count': 2, 'bpd_sum': 2 * 3.5, 'bpd_sq_sum': 3.0**2 + 4.0**2, 'nfe': 10, 'seconds': 4.0,
                'bound_bpd_sum': 2 * 4.0, 'bound_bpd_sq_sum': 3.5**2 + 4.5**2, 'bound_seconds': 0.5}}
    summary = summarise(done, exp, num_examples=2, levels=256)
    assert summary['bound_bpd'] == 4.0 and summary['bound_times'] == 4 and summary['bound_seconds_per_example'] == 0.25
    np.testing.assert_allclose(summary['bound_bpd_standard_error'], 0.5 / np.sqrt(2), rtol=1e-12)
    assert summary['dequantisation_offset_bits'] == 7.0
    assert summary['bpd'] == 3.5 and summary['continuous_bpd'] == -3.5
    np.testing.assert_allclose(summary['bpd_standard_error'], 0.5 / np.sqrt(2), rtol=1e-12)
    assert summary['seconds_per_example'] == 2.0
