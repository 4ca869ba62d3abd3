"""diffusers scheduler_config.json read into our settings, proven by diffusers' own schedulers; a pipeline
folder (unet/ + scheduler/) imported by `--mode import_weights`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, PNDMScheduler, UNet2DModel

from configs.ldm import tiny
from gen_runtime.errors import ConfigError
from gen_runtime.modes import run_mode
from gen_runtime.trainer import load_trained_state
from ldm_jax import diffusion, samplers
from ldm_jax.diffusers_folder import read_scheduler, scheduler_settings
from ldm_jax.experiment import initialiser, make_experiment
from ldm_jax.models import unet_from_config
from ldm_jax.schedule import Schedule, beta_schedule
from tests.ldm.test_networks import _nchw, _nhwc, _randomise

SHAPE = (2, 4, 4, 3)


def _schedule(settings):
    d = settings['diffusion']
    return beta_schedule(d['schedule'], d['num_timesteps'], d.get('linear_start', 0.0), d.get('linear_end', 0.0),
                         d.get('cosine_s', 0.0))


def _model(x, t):
    """A smooth stand-in network, the same in torch and jax."""
    return 0.8 * np.tanh(x) * np.cos(t / 40.0) + 0.05


def test_ddim_scheduler_config_gives_the_schedulers_run(tmp_path):
    """v-prediction, set_alpha_to_one, leading spacing with steps_offset 1: our DDIM with the settings read
    from the saved config equals DDIMScheduler step by step."""
    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195, beta_schedule='scaled_linear',
                          clip_sample=False, set_alpha_to_one=True, steps_offset=1, prediction_type='v_prediction')
    sched.save_config(tmp_path)
    settings = read_scheduler(str(tmp_path))
    assert settings == {'diffusion': {'num_timesteps': 1000, 'schedule': 'sqrt_linear', 'parameterization': 'v',
                                      'linear_start': 0.0015, 'linear_end': 0.0195},
                        'sampling': {'method': 'ddim', 'clip_denoised': False, 'spacing': 'uniform',
                                     'alpha_to_one': True}}
    s = Schedule.from_betas(_schedule(settings))
    np.testing.assert_allclose(np.asarray(s.alphas_cumprod), sched.alphas_cumprod.numpy(), rtol=1e-5)
    steps = samplers.ddim_timesteps(settings['sampling']['spacing'], 20, 1000)
    sched.set_timesteps(20)
    np.testing.assert_array_equal(sched.timesteps.numpy(), steps[::-1])
    x_T = np.asarray(jax.random.normal(jax.random.key(3), SHAPE))

    def denoise(x, t):
        out = 0.8 * jnp.tanh(x) * jnp.cos(t[:, None, None, None] / 40.0) + 0.05
        return diffusion.split_prediction('v', s, x, t, out)

    ours = np.asarray(jax.jit(lambda x: samplers.ddim_sample(denoise, s, x, jax.random.key(0), steps, trajectory=True,
                                                             alpha_to_one=True))(jnp.asarray(x_T)))
    for i, t in enumerate(sched.timesteps):
        x_in = torch.from_numpy(np.array(ours[i - 1] if i else x_T)).permute(0, 3, 1, 2)
        out = torch.from_numpy(_model(x_in.permute(0, 2, 3, 1).numpy(), float(t)).astype(np.float32))
        x_prev = sched.step(out.permute(0, 3, 1, 2), t, x_in).prev_sample.permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(ours[i], x_prev, rtol=1e-5, atol=2e-5, err_msg=f'step {i} (t={int(t)})')
    without = np.asarray(samplers.ddim_sample(denoise, s, jnp.asarray(x_T), jax.random.key(0), steps))
    assert np.abs(without - ours[-1]).max() > 1e-3  # alpha-bar_0 vs 1 at the last step matters


def test_ddpm_scheduler_config_cosine_and_fixed_large():
    sched = DDPMScheduler(num_train_timesteps=200, beta_schedule='squaredcos_cap_v2', variance_type='fixed_large')
    settings = scheduler_settings(dict(sched.config, _class_name='DDPMScheduler'))
    assert settings['diffusion']['variance'] == 'fixed_large' and settings['sampling'] == {
        'method': 'ddpm', 'clip_denoised': True}
    np.testing.assert_allclose(_schedule(settings), sched.betas.numpy(), rtol=1e-5)


@pytest.mark.parametrize('field,value,message', [
    ('timestep_spacing', 'trailing', r"^config.json timestep_spacing='trailing': only 'leading'"),
    ('steps_offset', 0, r'^config.json steps_offset=0: only 1'),
    ('thresholding', True, r'^config.json thresholding=True: only False is implemented here$'),
    ('beta_schedule', 'sigmoid', r"^config.json beta_schedule='sigmoid': not one of"),
])
def test_scheduler_fields_we_cannot_express_are_refused_in_one_line(field, value, message):
    cfg = dict(DDIMScheduler(steps_offset=1).config, _class_name='DDIMScheduler')
    cfg[field] = value
    with pytest.raises(ConfigError, match=message):
        scheduler_settings(cfg)
    with pytest.raises(ConfigError, match=r"^config.json _class_name='PNDMScheduler': only DDPMScheduler"):
        scheduler_settings(dict(PNDMScheduler().config, _class_name='PNDMScheduler'))


def test_pipeline_folder_imports_its_unet_and_checks_its_scheduler(tmp_path, capsys):
    torch_model = _randomise(UNet2DModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1,
                                         down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                                         up_block_types=('AttnUpBlock2D', 'UpBlock2D')))
    torch_model.save_pretrained(tmp_path / 'pipe' / 'unet')
    DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule='scaled_linear', clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1).save_config(tmp_path / 'pipe' / 'scheduler')
    config = tiny.get_config('ddpm')
    config.data.image_size, config.data.num_channels = 8, 3
    config.model.update(num_classes=0, channel_mult=(1, 2), num_head_channels=8)
    config.diffusion.update(label_dropout=0.0, num_timesteps=1000, linear_start=0.0015, linear_end=0.0195)
    config.sampling.guidance_scale = 1.0
    config.weights.update(path=str(tmp_path / 'pipe' / 'unet'), layout='diffusers')
    with pytest.raises(ConfigError, match=r"diffusion.schedule='sqrt_linear' where this config has 'linear'; "
                                          r'pass --config.diffusion.schedule=sqrt_linear$'):
        run_mode(config, str(tmp_path / 'run'), 'import_weights')
    config.diffusion.schedule = 'sqrt_linear'
    run_mode(config, str(tmp_path / 'run'), 'import_weights')
    assert ('--config.sampling.method=ddim --config.sampling.clip_denoised=False --config.sampling.spacing=uniform '
            '--config.sampling.alpha_to_one=False') in capsys.readouterr().out
    _, state = load_trained_state(config, str(tmp_path / 'run'), initialiser(make_experiment(config)))
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    t = np.array([7, 650])
    got = unet_from_config(config, 3).apply({'params': state.params}, x, t)
    with torch.no_grad():
        want = _nhwc(torch_model(_nchw(x), torch.from_numpy(t)).sample)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('method', ['dpm_solver_pp', 'heun'])
def test_few_step_solvers_on_the_ddpm_schedule_equal_diffusers(method):
    """ldm's DPM-Solver++ / Heun sampling (the shared solvers on alpha = sqrt(abar), sigma = sqrt(1 - abar)
    at diffusers' 'linspace' timesteps) equals DPMSolverMultistepScheduler / HeunDiscreteScheduler run with
    the same integer timesteps and eps-prediction network."""
    from diffusers import DPMSolverMultistepScheduler, HeunDiscreteScheduler

    from ldm_jax.generation import few_step_from_noise, few_step_timesteps

    steps, betas = 8, {'beta_start': 1e-4, 'beta_end': 0.02, 'beta_schedule': 'linear', 'num_train_timesteps': 1000}
    s = Schedule.from_betas(beta_schedule('linear', 1000, 1e-4, 0.02))
    ts = few_step_timesteps('uniform', steps, np.asarray(s.alphas_cumprod))
    if method == 'dpm_solver_pp':
        sched = DPMSolverMultistepScheduler(**betas, algorithm_type='dpmsolver++', solver_order=2)
        sched.set_timesteps(steps)
        np.testing.assert_array_equal(sched.timesteps.numpy(), ts)
    else:  # Heun's own timesteps are fractional; given ours, it runs the same solver
        sched = HeunDiscreteScheduler(**betas)
        sched.set_timesteps(timesteps=[int(t) for t in ts])
    x_T = np.asarray(jax.random.normal(jax.random.key(5), SHAPE))

    sample = torch.tensor(x_T) * sched.init_noise_sigma
    for t in sched.timesteps:
        model_input = sched.scale_model_input(sample, t)
        eps = torch.tensor(_model(model_input.numpy(), float(t)), dtype=torch.float32)
        sample = sched.step(eps, t, sample).prev_sample

    def denoise(x, t):
        out = 0.8 * jnp.tanh(x) * jnp.cos(t[:, None, None, None] / 40.0) + 0.05
        return diffusion.split_prediction('eps', s, x, t, out)

    ours = jax.jit(lambda x: few_step_from_noise(method, denoise, s, x, ts, clip=False))(jnp.asarray(x_T))
    np.testing.assert_allclose(np.asarray(ours), sample.numpy(), rtol=3e-4, atol=3e-4)


# ours -> (diffusers' flag, ldm's beta schedule name, diffusers' name and betas)
SPACING_FLAGS = {'karras': 'use_karras_sigmas', 'logsnr': 'use_lu_lambdas'}
BETA_SCHEDULES = {'linear': ('linear', 1e-4, 0.02), 'sqrt_linear': ('scaled_linear', 0.00085, 0.012)}


@pytest.mark.parametrize('spacing', sorted(SPACING_FLAGS))
@pytest.mark.parametrize('schedule_name', sorted(BETA_SCHEDULES))
def test_few_step_spacings_are_diffusers_timesteps(spacing, schedule_name):
    """Karras and log-SNR timesteps equal DPMSolverMultistepScheduler's (use_karras_sigmas, use_lu_lambdas)
    at 5, 10, 20 and 50 steps; where rounding puts two steps on one timestep (diffusers then repeats it; at 50
    steps in three of these four cases) ours refuses."""
    from diffusers import DPMSolverMultistepScheduler

    from ldm_jax.generation import few_step_timesteps

    name, start, end = BETA_SCHEDULES[schedule_name]
    abar = np.asarray(Schedule.from_betas(beta_schedule(schedule_name, 1000, start, end)).alphas_cumprod)
    for steps in (5, 10, 20, 50):
        sched = DPMSolverMultistepScheduler(beta_start=start, beta_end=end, beta_schedule=name,
                                            num_train_timesteps=1000, **{SPACING_FLAGS[spacing]: True})
        sched.set_timesteps(steps)
        theirs = sched.timesteps.numpy()
        if len(np.unique(theirs)) == steps:
            np.testing.assert_array_equal(few_step_timesteps(spacing, steps, abar), theirs)
        else:
            with pytest.raises(ValueError, match='put two steps on one'):
                few_step_timesteps(spacing, steps, abar)
