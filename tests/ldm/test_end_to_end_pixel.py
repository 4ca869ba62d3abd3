"""Pixel-space diffusion end to end on tiny configs: DDPM, a noise-conditional classifier, sampling with
classifier-free and classifier guidance together, DPM-Solver++ with classifier-free guidance, bits/dim."""

import json

import pytest

from tests.ldm.test_end_to_end import _newest_samples, _run, _tiny


@pytest.mark.slow
def test_pixel_diffusion_with_both_guidances_and_bits_per_dim(tmp_path):
    ddpm_dir, clf_dir = tmp_path / 'ddpm', tmp_path / 'clf'
    ddpm = _tiny('ddpm')
    _run(ddpm, ddpm_dir, 'train')
    _run(_tiny('classifier'), clf_dir, 'train')
    clf_metrics = json.loads(open(clf_dir / 'metrics.jsonl').readlines()[-1])
    assert 0 <= clf_metrics['accuracy'] <= 1 and clf_metrics['loss'] > 0

    guided = _tiny('ddpm', sampling__method='ddpm', sampling__classifier_workdir=str(clf_dir),
                   sampling__classifier_scale=2.0, sampling__class_label=3)
    _run(guided, ddpm_dir, 'sample')
    images, labels, _ = _newest_samples(ddpm_dir)
    assert images.shape == (8, 8, 8, 1) and set(labels) == {3}

    # the shared few-step solver, with classifier-free guidance, through the same mode
    _run(_tiny('ddpm', sampling__method='dpm_solver_pp', sampling__num_steps=5), ddpm_dir, 'sample')
    fast, labels, _ = _newest_samples(ddpm_dir)
    assert fast.shape == (8, 8, 8, 1) and list(labels) == [0, 1, 2, 3, 4, 5, 6, 7] and 0 < fast.std()

    ddpm.likelihood.max_examples = 8
    _run(ddpm, ddpm_dir, 'likelihood')
    result = json.load(open(ddpm_dir / 'likelihood' / 'step_4' / 'likelihood.json'))
    assert result['num_examples'] == 8
    assert result['bpd'] == pytest.approx(result['prior_bpd'] + result['decoder_bpd'] + result['kl_bpd'], rel=1e-5)
    assert 0 < result['bpd'] < 20
