"""The run layer around every mode (gen_runtime.modes): one run per workdir, signals, faults of the machine,
and one line for what the user must fix.

Each bad input of the battery must end with exit code 2, a last stderr line starting `error:`, no
traceback, and the filesystem as it was: earlier files unchanged, nothing added (not even a config.json, nor
the workdir itself where the command named a new one).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from gen_runtime.errors import ConfigError
from gen_runtime.trainer import StopSignal
from gen_runtime.workdir_lock import LOCK_FILE, hold_workdir
from tests.conftest import REPO, python_env, run_python, without_xla_cache
from tests.runtime.test_main import one_line_error, quickstart


def _snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder)) if (folder / name).is_file()}


def _tree(folder):
    """Every file (with its bytes) and folder under `folder`, Python's caches left out."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), folder) + '/'] = None
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, folder)] = open(path, 'rb').read()
    return out


def test_a_second_run_on_a_held_workdir_is_refused_naming_the_holder(tmp_path):
    (tmp_path / 'run').mkdir()
    with hold_workdir(str(tmp_path / 'run')):
        before = _snapshot(tmp_path / 'run')
        proc = run_python(quickstart(tmp_path / 'run', '--config.training.num_steps=4'), check=False)
        line = one_line_error(proc)
        assert f'--workdir {tmp_path / "run"} is in use by pid {os.getpid()} on host ' in line
        assert _snapshot(tmp_path / 'run') == before  # no config.json written by the refused run
        with pytest.raises(ConfigError, match='is in use by pid'):
            with hold_workdir(str(tmp_path / 'run')):
                pass
    assert not (tmp_path / 'run' / LOCK_FILE).exists()


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    code = ('import sys, time; from gen_runtime.workdir_lock import hold_workdir; '
            'held = hold_workdir(sys.argv[1]); held.__enter__(); print("held", flush=True); time.sleep(120)')
    holder = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(ConfigError, match=f'in use by pid {holder.pid}'):
            with hold_workdir(str(tmp_path)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / LOCK_FILE).read_text().startswith(f'pid {holder.pid} ')  # left behind by the kill
    with hold_workdir(str(tmp_path)):
        assert (tmp_path / LOCK_FILE).read_text().startswith(f'pid {os.getpid()} ')


def test_a_workdir_of_another_family_says_so(tmp_path):
    from configs import common
    from gen_runtime.config import bind_workdir

    config = common.get_config()
    config.family = 'sde_jax'
    bind_workdir(config, str(tmp_path))
    (tmp_path / 'checkpoints' / '4').mkdir(parents=True)
    config.family = 'ldm_jax'
    with pytest.raises(ConfigError, match=r"holds a run of another family \('sde_jax'; this config is 'ldm_jax'\)"):
        bind_workdir(config, str(tmp_path))


def test_ctrl_c_is_recorded_like_sigterm_during_training():
    previous = signal.getsignal(signal.SIGINT)
    with StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        assert stop.raised and stop.name == 'SIGINT'
    assert signal.getsignal(signal.SIGINT) is previous


SDE, LDM, ZSL = 'configs/quickstart.py', 'configs/ldm/tiny.py', 'configs/zsl/synthetic.py'
SMALL = {SDE: ['--config.training.num_steps=4', '--config.training.batch_size=16', '--config.training.log_every=4',
               '--config.sampling.num_steps=4', '--config.sampling.num_samples=8', '--config.sampling.batch_size=8',
               '--config.model.channels=(8, 16, 16)', '--config.model.embed_dim=16']}
FLOW = ['--config.sde.type=rectified_flow', '--config.loss.type=flow_matching']
NO_GET_CONFIG = r'the config file .*no_get_config.py defines no get_config'

# case: (config file, extra flags ({tmp} is the test's folder; --workdir defaults to {tmp}/run), expected message)
BAD_INPUTS = {
    # the command line and the config file
    'config syntax error': ('{tmp}/broken.py', [], 'the config file .*broken.py has a syntax error at line 1'),
    'no get_config': ('{tmp}/no_get_config.py', [], NO_GET_CONFIG),
    'unknown variant': (LDM + ':bogus', [], "the config file raised ValueError: unknown tiny variant 'bogus'"),
    'unknown field': (SDE, ['--config.training.batchsize=3'], "config field 'batchsize' does not exist.*'batch_size'"),
    'value of the wrong type': (SDE, ['--config.training.batch_size=abc'], 'flag --config.training.batch_size=abc'),
    'unknown mode': (SDE, ['--mode=dream'], "unknown --mode 'dream' for family sde_jax; choose one of train"),
    'stray argument': (SDE, ['stray'], 'unexpected arguments stray'),
    'workdir is a file': (SDE, ['--workdir={tmp}/a_file'], 'is a file; pass a folder'),
    'workdir under a file': (SDE, ['--workdir={tmp}/a_file/run'], 'is under a file; pass a folder'),
    'unknown compute dtype': (ZSL, ['--config.runtime.compute_dtype=float16'],
                              "runtime.compute_dtype='float16' is not one of 'float32', 'bfloat16'"),
    # training and optimiser settings, checked before any work
    'zero batch': (SDE, ['--config.training.batch_size=0'], 'training.batch_size=0 is not an integer >= 1'),
    'negative batch': (SDE, ['--config.training.batch_size=-4'], 'training.batch_size=-4 is not an integer >= 1'),
    'steps per call': (SDE, ['--config.training.steps_per_call=3'], 'must be a positive multiple of training.steps'),
    'learning rate 1e6': (SDE, ['--config.optim.learning_rate=1e6'], r'learning_rate=1000000.0 is not .* in \(0, 1\]'),
    'zero learning rate': (LDM, ['--config.optim.learning_rate=0.0'], r'optim.learning_rate=0.0 is not .* in \(0, 1\]'),
    'unknown optimiser': (ZSL, ['--config.optim.optimizer=sgd'], "optim.optimizer='sgd' is not one of 'adam', 'adamw'"),
    'unknown schedule': (SDE, ['--config.optim.schedule=linear'], "optim.schedule='linear' is not one of 'constant'"),
    # sde_jax: the model, the loss, and the settings of the modes that come after training
    'unknown sde': (SDE, ['--config.sde.type=vesdee'], "sde.type='vesdee'"),
    'unknown loss': (SDE, ['--config.loss.type=dms'], "loss.type='dms' is not one of"),
    'importance sampling without the likelihood weighting': (
        SDE, ['--config.loss.importance_sampling=True'], 'loss.importance_sampling draws t for the likelihood'),
    'importance sampling of a constant weight': (
        SDE, ['--config.loss.importance_sampling=True', '--config.loss.weighting=likelihood',
              '--config.sde.type=vesde', '--config.sde.ve_marginal_std=sigma'],
        'the likelihood weight is constant and uniform t is already exact'),
    'negative bound draws': (SDE, ['--mode=likelihood', '--config.likelihood.bound_times=-1'],
                             'likelihood.bound_times=-1 is not an integer >= 0'),
    'flow trained by score matching': (SDE, ['--config.sde.type=rectified_flow'],
                                       "loss.type='flow_matching' trains sde.type='rectified_flow'"),
    'flow matching of an SDE': (SDE, ['--config.loss.type=flow_matching'],
                                "loss.type='flow_matching' trains sde.type='rectified_flow'"),
    'flow times for score matching': (SDE, ['--config.loss.time_sampling=logit_normal'],
                                      "loss.time_sampling='logit_normal' draws the times of loss.type='flow_matching'"),
    'unknown flow times': (SDE, ['--config.loss.time_sampling=beta'], "loss.time_sampling='beta' is not one of"),
    'zero logit spread': (SDE, ['--config.loss.logit_std=0.0'], 'loss.logit_std=0.0 is not'),
    'flow by PC': (SDE, FLOW, "sde.type='rectified_flow' is sampled through its probability-flow ODE, not by the PC"),
    'flow inpainting': (SDE, FLOW + ['--mode=inpaint'], 'is sampled through its probability-flow ODE, not by the PC'),
    'flow by log-SNR steps': (SDE, FLOW + ['--config.sampling.method=heun', '--config.sampling.spacing=logsnr'],
                              "sampling.spacing='logsnr' needs finite log-SNRs"),
    'shift of an SDE': (SDE, ['--config.sampling.method=ddim', '--config.sampling.shift=3.0'],
                        "sampling.shift=3.0 shifts the few-step times of sde.type='rectified_flow'"),
    'shift of the adaptive ODE': (SDE, FLOW + ['--config.sampling.method=ode', '--config.sampling.shift=3.0'],
                                  "sde.type='rectified_flow' and sampling.method='ode' leave it 1"),
    'zero shift': (SDE, ['--config.sampling.shift=0.0'], 'sampling.shift=0.0 is not'),
    'bound of the flow': (SDE, FLOW + ['--mode=likelihood'], 'set likelihood.bound_times=0'),
    'no image size': (SDE, ['--config.data.image_size=0'], 'sde_jax needs data.image_size'),
    'two channels': (SDE, ['--config.data.num_channels=2'], 'data.num_channels=2 must be 1 or 3'),
    'impossible network': (SDE, ['--config.model.channels=(6, 16, 16)'], 'a network that cannot be built'),
    'unknown predictor': (SDE, ['--config.sampling.predictor=eulr'], "sampling.predictor='eulr' is not one"),
    'unknown corrector': (SDE, ['--config.sampling.corrector=lngevin'], "sampling.corrector='lngevin'"),
    'ancestral on sub-VP': (SDE, ['--config.sde.type=subvpsde', '--config.sampling.predictor=ancestral_sampling'],
                            "predictor='ancestral_sampling' is defined for the VE and VP SDEs only"),
    'multistep solver with one step': (SDE, ['--config.sampling.method=dpm_solver_pp', '--config.sampling.num_steps=1'],
                                       'sampling.num_steps=1 is too few for the order-2 multistep DPM-Solver'),
    'unknown spacing': (SDE, ['--config.sampling.method=heun', '--config.sampling.spacing=cosine'],
                        "sampling.spacing='cosine' is not one of 'auto', 'uniform', 'logsnr', 'karras'"),
    'unknown sampling method': (SDE, ['--config.sampling.method=euler'], "sampling.method='euler' is not one of"),
    'no samples': (SDE, ['--config.sampling.num_samples=0'], 'sampling.num_samples=0 is not an integer >= 1'),
    'zero sampling batch': (SDE, ['--mode=sample', '--config.sampling.batch_size=0'], 'sampling.batch_size=0 is not'),
    'sample before training': (SDE, ['--mode=sample'], 'no checkpoint in .*; train first with --mode train'),
    'unknown estimator': (SDE, ['--mode=likelihood', '--config.likelihood.estimator=gauss'],
                          "likelihood.estimator='gauss' is not one of"),
    'no probes': (SDE, ['--mode=likelihood', '--config.likelihood.num_probes=0'], 'likelihood.num_probes=0 is not an'),
    'unknown metric': (SDE, ['--mode=eval', '--config.eval.metrics=fidd'], "eval.metrics='fidd' is not a comma"),
    'unknown mask': (SDE, ['--mode=inpaint', '--config.sampling.inpaint_mask=middle'], "inpaint_mask='middle'"),
    'colorize grey images': (SDE, ['--mode=colorize'], 'colorization needs colour images'),
    # data
    'float images': (SDE, ['--config.data.source=npz', '--config.data.path={tmp}/float.npz'],
                     'x_train is float32; images must be integers 0..255'),
    'flat images': (SDE, ['--config.data.source=npz', '--config.data.path={tmp}/flat.npz'],
                    r'x_train has shape \(16, 64\); images are \(N, H, W\)'),
    'missing npz': (SDE, ['--config.data.source=npz', '--config.data.path={tmp}/none.npz'], 'none.npz does not exist'),
    'corrupt image': (SDE, ['--config.data.source=image_folder', '--config.data.path={tmp}/faces'],
                      r'faces/b.png could not be decoded'),
    'unknown data source': (SDE, ['--config.data.source=mnist'], "data.source='mnist' is not one of"),
    # ldm_jax
    'unknown task': (LDM, ['--config.task=vae'], "task='vae' is not one of 'diffusion', 'classifier'"),
    'unknown parameterisation': (LDM, ['--config.diffusion.parameterization=score'], "parameterization='score'"),
    '3rd-order multistep with 2 steps': (LDM, ['--mode=sample', '--config.sampling.method=dpm_solver_pp',
                                               '--config.sampling.order=3', '--config.sampling.num_steps=2'],
                                         'sampling.order=3 must be 1, 2 or 3 and at most sampling.num_steps=2'),
    'merged karras steps': (LDM, ['--mode=sample', '--config.sampling.method=heun', '--config.sampling.spacing=karras',
                                  '--config.sampling.num_steps=100'], 'put two steps on one of the'),
    'unknown variance': (LDM, ['--mode=sample', '--config.diffusion.variance=learned'], "variance='learned'"),
    'too many ddim steps': (LDM, ['--mode=sample', '--config.sampling.num_steps=1000'],
                            'sampling.num_steps=1000 is more DDIM steps than the 100 timesteps'),
    'unknown ddim spacing': (LDM, ['--mode=sample', '--config.sampling.spacing=cubic'],
                             "sampling.spacing='cubic' is not one of"),
    'unknown beta schedule': (LDM, ['--config.diffusion.schedule=quadratic'], "diffusion.schedule='quadratic' is"),
    'guidance without dropout': (LDM, ['--mode=sample', '--config.diffusion.label_dropout=0.0'],
                                 'guidance_scale != 1 needs a model trained for classifier-free guidance'),
    'class label out of range': (LDM, ['--mode=sample', '--config.sampling.class_label=12'],
                                 'sampling.class_label=12 is not below 10 classes'),
    'group norm': (LDM, ['--config.model.norm_groups=7'], 'GroupNorm uses model.norm_groups=7 groups'),
    'first stage missing': (LDM + ':ldm', ['--config.latent.first_stage_workdir={tmp}/nowhere'],
                            'latent.first_stage_workdir .*nowhere.* holds no run'),
    'unknown codebook': (LDM + ':vq', ['--mode=train_autoencoder', '--config.autoencoder.codebook=kmeans'],
                         "autoencoder.codebook='kmeans' is not one of"),
    'classifier timesteps': (LDM + ':classifier', ['--config.classifier.max_timestep=500'],
                             'classifier.max_timestep=500 must be in 1..diffusion.num_timesteps'),
    # zsl_jax
    'unknown zsl variant': (ZSL, ['--config.model.variant=wgan'], "model.variant='wgan' is not one of"),
    'unknown divergence': (ZSL, ['--config.cizsl.divergence=kl2'], "cizsl.divergence='kl2' is not one of"),
    'unknown protocol': (ZSL, ['--config.eval.protocol=oracle'], "eval.protocol='oracle' is not one of"),
    'no seeds': (ZSL, ['--config.eval.seeds=()'], r'eval.seeds=\(\) is not a tuple of at least 1 items'),
    'evaluation after the end': (ZSL, ['--config.training.num_steps=50'], 'eval.start=100 is after training.num_steps'),
    'no critic steps': (ZSL, ['--config.loss.critic_steps=0'], 'loss.critic_steps=0 is not an integer >= 1'),
    'clip without weights': (ZSL, ['--mode=text_features', '--config.text.encoder=clip'], 'needs text.encoder_path'),
    'unknown benchmark': (ZSL, ['--config.benchmark.kind=imagenet'], "benchmark.kind='imagenet' is not one of"),
    'import without a path': (ZSL, ['--mode=import_weights', '--config.eval.protocol=best_on_test'],
                              'needs --config.weights.path'),
    # fields outside their declared domains (gen_runtime.domains), for every mode
    'negative ode tolerance': (SDE, ['--mode=sample', '--config.sampling.method=ode', '--config.sampling.rtol=-1'],
                               r'--config.sampling.rtol=-1.0 is not a finite number in \(0, inf\)'),
    'zero ode atol': (SDE, ['--mode=sample', '--config.sampling.method=ode', '--config.sampling.atol=0'],
                      r'sampling.atol=0.0 is not a finite number in \(0, inf\)'),
    'negative likelihood tolerance': (SDE, ['--mode=likelihood', '--config.likelihood.rtol=-1e-5'],
                                      r'likelihood.rtol=-1e-05 is not a finite number in \(0, inf\)'),
    'NaN likelihood atol': (SDE, ['--mode=likelihood', '--config.likelihood.atol=nan'], 'likelihood.atol=nan is not'),
    'one-level tutorial U-Net': (SDE, ['--config.model.channels=(16,)'],
                                 r'model.channels=\(16,\) is not a tuple of at least 2 items'),
    'no U-Net levels': (SDE, ['--config.model.channels=()'], r'model.channels=\(\) is not a tuple of at least 2'),
    'negative training eps': (SDE, ['--config.loss.eps=-1e-5'], r'loss.eps=-1e-05 is not a finite number in \(0, 1\)'),
    'NaN learning rate': (ZSL, ['--config.optim.learning_rate=nan'], 'optim.learning_rate=nan is not'),
    'DDIM eta above 1': (LDM, ['--mode=sample', '--config.sampling.eta=1.5'], r'sampling.eta=1.5 is not .* \[0, 1\]'),
    'negative guidance': (LDM, ['--mode=sample', '--config.sampling.guidance_scale=-2'], 'guidance_scale=-2.0 is not'),
    'empty channel multipliers': (LDM, ['--config.model.channel_mult=()'], r'model.channel_mult=\(\) is not'),
    'negative gradient penalty': (ZSL, ['--config.loss.gp_weight=-10'], 'loss.gp_weight=-10.0 is not'),
    'zero knn': (ZSL, ['--mode=eval', '--config.eval.knn=0'], 'eval.knn=0 is not an integer >= 1'),
    # importers: a config that differs from what the file fixes (tests/*/test_import_config_checks.py: all five)
    'CompVis UNet under DDPM embedding': ('configs/ldm/cifar10_ddpm.py', [
        '--mode=import_weights', '--config.weights.path={repo}/tests/ldm/fixtures/compvis/unet_heads.ckpt',
        '--config.model.model_channels=32', '--config.model.channel_mult=(1,2)', '--config.model.num_res_blocks=1'],
        r'a latent-diffusion \(CompVis\) checkpoint has model.flip_sin_to_cos=True, .* where this config has False'),
    'GAZSL checkpoint of another width': (ZSL, [
        '--mode=import_weights', '--config.eval.protocol=best_on_test',
        '--config.weights.path={repo}/tests/zsl/fixtures/original_checkpoints/gbu.tar'],
        'the checkpoint has model.text_reduction_dim=0 where this config has 16'),
    # a refused command on a new workdir leaves no workdir behind
    'sample on a new workdir': (SDE, ['--mode=sample', '--workdir={tmp}/fresh'], 'no checkpoint in .*fresh; train'),
    'missing data on a new workdir': (SDE, ['--config.data.source=npz', '--config.data.path={tmp}/none.npz',
                                            '--workdir={tmp}/fresh'], 'none.npz does not exist'),
    'likelihood on a new workdir': (LDM, ['--mode=likelihood', '--workdir={tmp}/fresh/deeper'], 'no checkpoint'),
}


def _files(tmp_path):
    """The inputs the cases refer to, and a workdir holding one earlier file."""
    (tmp_path / 'broken.py').write_text('def get_config(:\n')
    (tmp_path / 'a_file').write_text('not a folder\n')
    (tmp_path / 'no_get_config.py').write_text('learning_rate = 1e-3\n')
    images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / 'float.npz', x_train=images.astype(np.float32) / 255)
    np.savez(tmp_path / 'flat.npz', x_train=images.reshape(16, 64))
    (tmp_path / 'faces').mkdir()
    Image.fromarray(images[0, :, :, 0]).save(tmp_path / 'faces' / 'a.png')
    (tmp_path / 'faces' / 'b.png').write_bytes(b'\x89PNG\r\n\x1a\n cut short')
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'notes.txt').write_text('kept\n')


def test_the_battery_covers_the_three_families():
    assert len(BAD_INPUTS) >= 40
    assert {config.split(':')[0] for config, _, _ in BAD_INPUTS.values()} >= {SDE, LDM, ZSL}


@pytest.mark.parametrize('case', sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_leaves_the_workdir_alone(tmp_path, case):
    _files(tmp_path)
    before = _tree(tmp_path)
    config, extra, message = BAD_INPUTS[case]
    overridden = {arg.split('=')[0] for arg in extra}
    small = [arg for arg in SMALL.get(config, []) if arg.split('=')[0] not in overridden]
    command = ['main.py', '--config', config.format(tmp=tmp_path), '--workdir', str(tmp_path / 'run'),
               *small, *(arg.format(tmp=tmp_path, repo=REPO) for arg in extra)]
    proc = run_python(command, check=False)
    assert re.search(message, one_line_error(proc)), proc.stderr[-2000:]
    assert _tree(tmp_path) == before  # not even the refused run's config.json, nor a new workdir, is left


def _quickstart_command(workdir, *extra):
    return ['main.py', '--config', SDE, '--workdir', str(workdir), *SMALL[SDE], '--config.training.checkpoint_every=4',
            '--config.runtime.progress_bar=False', *extra]


def _messages(stderr):
    """stderr without progress bars: what a user reads."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(('train:', 'sample:'))]


def test_two_runs_at_once_the_second_is_refused_and_the_first_is_unharmed(tmp_path):
    workdir = tmp_path / 'run'
    first = subprocess.Popen([sys.executable, *_quickstart_command(workdir, '--config.training.num_steps=4000')],
                             cwd=REPO, env=python_env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (workdir / 'metrics.jsonl').exists():  # the first run holds the lock and trains
            assert first.poll() is None and time.monotonic() < deadline, 'the first run did not start training'
            time.sleep(0.2)
        second = run_python(_quickstart_command(workdir, '--config.training.num_steps=4000'), check=False)
        assert f'is in use by pid {first.pid} on host ' in one_line_error(second)
        assert first.poll() is None  # still training
    finally:
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 143, stderr[-2000:]
    steps = [json.loads(line)['step'] for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps  # one writer: no interleaved or repeated records
    assert not [name for name in os.listdir(workdir / 'checkpoints') if 'tmp' in name]
    assert not (workdir / LOCK_FILE).exists()


def test_disk_full_is_one_line_keeps_the_saved_checkpoint_and_the_same_command_resumes(tmp_path):
    workdir = tmp_path / 'run'
    run_python(_quickstart_command(workdir, '--config.training.num_steps=4'))
    saved = {str(p.relative_to(workdir)): p.read_bytes() for p in (workdir / 'checkpoints').rglob('*') if p.is_file()}

    command = _quickstart_command(workdir, '--config.training.num_steps=8')
    env = without_xla_cache(python_env())
    # Writes past 20 KiB fail with EFBIG, as on a full disk (SIGXFSZ ignored, so the write returns the error).
    limited = ['bash', '-c', 'ulimit -f 20 && trap "" XFSZ && exec "$0" "$@"', sys.executable, *command]
    full = subprocess.run(limited, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert one_line_error(full).startswith('error: File too large')
    assert len(_messages(full.stderr)) <= 3, full.stderr[-3000:]
    assert {k: (workdir / k).read_bytes() for k in saved} == saved  # the step-4 checkpoint is untouched
    run_python(command)  # space again: the same command resumes and finishes
    assert json.loads((workdir / 'metrics.json').read_text())['step'] == 8


def test_a_truncated_newest_checkpoint_costs_one_warning_line(tmp_path):
    from tests.runtime.test_checkpoint import truncate_checkpoint

    workdir = tmp_path / 'run'
    run_python(_quickstart_command(workdir, '--config.training.num_steps=8'))
    truncate_checkpoint(workdir / 'checkpoints' / '8')
    proc = run_python(_quickstart_command(workdir, '--config.training.num_steps=8', '--mode=sample'))
    messages = _messages(proc.stderr)
    assert len(messages) <= 3, proc.stderr[-3000:]
    assert any('checkpoint at step 8' in m and 'using the previous good checkpoint, step 4' in m for m in messages)
    assert json.loads((workdir / 'sample' / 'step_4' / 'sampling.json').read_text())['step'] == 4


def test_a_failed_start_then_the_fix_in_the_same_workdir(tmp_path):
    workdir = tmp_path / 'run'
    missing = ['--config.data.source=npz', f'--config.data.path={tmp_path}/none.npz']
    assert 'none.npz does not exist' in one_line_error(
        run_python(_quickstart_command(workdir, '--config.training.num_steps=4', *missing), check=False))
    assert not workdir.exists()  # the refused start left nothing behind, not even the folder it made
    run_python(_quickstart_command(workdir, '--config.training.num_steps=4'))  # the data fixed: not "another run"
    assert json.loads((workdir / 'metrics.json').read_text())['step'] == 4
