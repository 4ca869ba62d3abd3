"""main.py end to end on an imported score_sde_pytorch checkpoint (its own file: xdist keeps files whole,
and this one runs main.py four times)."""

import json

import numpy as np

from tests.conftest import run_python
from tests.sde.test_original_checkpoints import FIXTURES, reference


def test_an_imported_checkpoint_samples_evaluates_and_fine_tunes_through_main(tmp_path):
    """main.py end to end on the VP fixture: import_weights, then an ODE sample, a likelihood run and
    two fine-tuning steps from step 0 (8x8 digits stand in for CIFAR-10: no data set needed)."""
    _, original = reference('vp')
    m = original['model']
    workdir = tmp_path / 'run'
    args = ['main.py', '--config', 'configs/sde/cifar10_ddpmpp_continuous.py', '--workdir', str(workdir),
            f'--config.weights.path={FIXTURES / "vp" / "checkpoint_1.pth"}',
            f'--config.data.image_size={original["data"]["image_size"]}', '--config.data.source=digits',
            '--config.data.path=', f'--config.model.nf={m["nf"]}',
            f'--config.model.ch_mult=({",".join(map(str, m["ch_mult"]))})',
            f'--config.model.num_res_blocks={m["num_res_blocks"]}',
            f'--config.model.attn_resolutions=({m["attn_resolutions"][0]},)',
            '--config.training.num_steps=2', '--config.training.batch_size=4', '--config.training.log_every=1',
            '--config.training.checkpoint_every=2', '--config.sampling.method=ode', '--config.sampling.rtol=1e-3',
            '--config.sampling.atol=1e-3', '--config.sampling.num_samples=2', '--config.sampling.batch_size=2',
            '--config.likelihood.max_examples=2', '--config.likelihood.batch_size=2',
            '--config.likelihood.rtol=1e-3', '--config.likelihood.atol=1e-3']
    run_python(args + ['--mode', 'import_weights'])
    run_python(args + ['--mode', 'sample'])
    sampling = json.loads((workdir / 'sample' / 'step_0' / 'sampling.json').read_text())
    assert sampling['step'] == 0 and sampling['method'] == 'ode'
    assert sampling['score_evaluations_per_batch'][0] > 2
    run_python(args + ['--mode', 'likelihood'])
    summary = json.loads((workdir / 'likelihood' / 'step_0' / 'likelihood.json').read_text())
    assert summary['step'] == 0 and np.isfinite(summary['bpd'])
    run_python(args + ['--mode', 'train'])
    logged = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in logged] == [1, 2] and all(np.isfinite(r['loss']) for r in logged)
