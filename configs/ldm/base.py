"""Base config of the ldm_jax family: DDPM/DDIM, guidance, the VQ-f4 autoencoder and latent diffusion.

Every other configs/ldm/*.py file starts from `get_config()` here and overrides a few fields. The
defaults are DDPM's CIFAR-10 model (Ho et al. 2020, appendix B).
"""

import ml_collections

from configs import common
from gen_runtime.domains import (
    ANY_REAL,
    BOOL,
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY_RATE,
    TEXT,
    UNIT_CLOSED,
    UNIT_OPEN,
    Int,
    OneOf,
    Text,
    TupleOf,
)


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.family = 'ldm_jax'
    # What `--mode train` trains: 'diffusion' (a pixel-space or, with latent.first_stage_workdir, a
    # latent diffusion model) or 'classifier' (a noise-conditional classifier for classifier guidance).
    # `--mode train_autoencoder` always trains the `autoencoder` section.
    config.task = 'diffusion'

    config.data.source = 'tfds'
    config.data.name = 'cifar10'
    config.data.num_channels = 3
    config.data.random_flip = True

    config.training.batch_size = 128
    config.training.num_steps = 800_000
    config.training.log_every = 100
    config.training.checkpoint_every = 10_000
    config.optim.grad_clip = 1.0
    config.optim.warmup_steps = 5000
    config.optim.ema_rate = 0.9999

    # The denoising UNet (latent diffusion's openaimodel.UNetModel).
    config.model = model = ml_collections.ConfigDict()
    # Base width; level l has channel_mult[l] * model_channels channels; time embedding is 4x.
    model.model_channels = 128
    model.channel_mult = (1, 2, 2, 2)
    # Residual blocks per level (the decoder has one more).
    model.num_res_blocks = 2
    # Downsampling factors (1, 2, 4, ...) at which blocks get self-attention (2: 16x16 of a 32x32 input).
    model.attention_resolutions = (2,)
    model.dropout = 0.1
    # Attention heads: a fixed head width num_head_channels if > 0, else num_heads heads.
    model.num_heads = 1
    model.num_head_channels = -1
    # FiLM conditioning norm(h) * (1 + scale) + shift instead of adding the embedding.
    model.scale_shift_norm = False
    # GroupNorm epsilon (openaimodel: 1e-5; DDPM's TF code: 1e-6).
    model.norm_eps = 1e-5
    # GroupNorm groups (the originals: 32; diffusers' norm_num_groups); every width must be a multiple.
    model.norm_groups = 32
    # Sinusoidal time embedding: [cos, sin] order and frequency denominator dim/2 - freq_shift
    # (openaimodel: True, 0; DDPM's TF code: False, 1).
    model.flip_sin_to_cos = True
    model.freq_shift = 0.0
    # Number of data classes for a class-conditional model (0: unconditional; labels come from the data).
    model.num_classes = 0

    # The discrete-time diffusion.
    config.diffusion = diffusion = ml_collections.ConfigDict()
    diffusion.num_timesteps = 1000
    # 'linear' (DDPM), 'sqrt_linear' (what latent diffusion calls "linear") or 'cosine' (improved DDPM).
    diffusion.schedule = 'linear'
    diffusion.linear_start = 1e-4
    diffusion.linear_end = 2e-2
    # Offset s of the cosine schedule.
    diffusion.cosine_s = 8e-3
    # What the network predicts: 'eps', 'x0' or 'v'.
    diffusion.parameterization = 'eps'
    # L_simple distance: 'l2' or 'l1'.
    diffusion.loss = 'l2'
    # Reverse-process variance: 'fixed_small' (posterior beta~_t), 'fixed_large' (beta_t) or 'learned_range'
    # (improved DDPM, Nichol & Dhariwal 2021: the network outputs twice the channels, the second half v sets
    # log Sigma = v' log beta_t + (1 - v') log beta~_t with v' = (v + 1) / 2, trained by the hybrid loss).
    diffusion.variance = 'fixed_small'
    # lambda of the hybrid loss L_simple + lambda L_vlb (variance 'learned_range' only; the paper's 0.001),
    # L_vlb estimated as T times one uniformly drawn term L_{t-1}, its mean through a stopped gradient.
    diffusion.vlb_weight = 0.001
    # Classifier-free guidance training: probability of replacing the label by the null label
    # (label index model.num_classes). 0 disables it.
    diffusion.label_dropout = 0.0

    # Cascaded diffusion (Ho et al. 2022): this run as a super-resolution stage, its network conditioned on the
    # image averaged down to low_resolution x low_resolution and upsampled bilinearly (channel concatenation).
    config.cascade = cascade = ml_collections.ConfigDict()
    # Side of the low-resolution condition (it must divide data.image_size); 0: not a super-resolution stage.
    cascade.low_resolution = 0
    # Gaussian conditioning augmentation in training: the condition noised by the forward process at a level
    # drawn uniformly from 0..max_level (0: clean; s >= 1: timestep s - 1 of this run's schedule), the level
    # given to the network. 0 turns augmentation off.
    cascade.max_level = 0
    # The level at sampling (0..diffusion.num_timesteps): the base model's sample noised at this level, or with
    # `truncated` the base model's ancestral chain stopped there (truncated conditioning augmentation).
    cascade.sample_level = 0
    cascade.truncated = False
    # The base model's run: --mode sample draws its low-resolution samples (its own config and EMA setting),
    # then this stage's. It must diffuse data.num_channels images of side low_resolution.
    cascade.base_workdir = ''

    # Latent diffusion: where the first stage comes from and how latents are scaled.
    config.latent = latent = ml_collections.ConfigDict()
    # Workdir of a `--mode train_autoencoder` run; '' trains in pixel space.
    latent.first_stage_workdir = ''
    # Latents are multiplied by this before diffusion; 0 uses 1 / std of the training latents
    # (latent diffusion's scale_by_std). Its VQ models use 1.0.
    latent.scale_factor = 1.0
    # Batch size for encoding the data set into latents (cached in <workdir>/latents/).
    latent.encode_batch_size = 32

    # The noise-conditional classifier of classifier guidance (openaimodel.EncoderUNetModel,
    # adaptive pooling); trained with task='classifier' on the same data and noise schedule.
    config.classifier = classifier = ml_collections.ConfigDict()
    # Number of classes it tells apart (the labels of the data).
    classifier.num_classes = 10
    classifier.model_channels = 64
    classifier.channel_mult = (1, 2, 2)
    classifier.num_res_blocks = 2
    classifier.attention_resolutions = (2,)
    classifier.dropout = 0.0
    classifier.num_heads = 1
    classifier.num_head_channels = 64
    classifier.scale_shift_norm = True
    # GroupNorm groups, as model.norm_groups.
    classifier.norm_groups = 32
    # Train on timesteps t < max_timestep only (0: all); guidance then applies at those t.
    classifier.max_timestep = 0

    # The VQ autoencoder (first stage), trained by --mode train_autoencoder. Defaults: vq-f4.
    config.autoencoder = ae = ml_collections.ConfigDict()
    ae.ch = 128
    ae.ch_mult = (1, 2, 4)
    ae.num_res_blocks = 2
    # Resolutions (side lengths) with self-attention blocks besides the middle one.
    ae.attn_resolutions = ()
    ae.z_channels = 3
    # Codebook vector dimension and number of codes.
    ae.embed_dim = 3
    ae.num_codes = 8192
    ae.dropout = 0.0
    # GroupNorm groups, as model.norm_groups.
    ae.norm_groups = 32
    # Commitment weight beta; legacy_beta puts it on the codebook term instead (taming's default).
    ae.beta = 0.25
    ae.legacy_beta = False
    # Codebook learning: 'loss' (gradient of the codebook term) or 'ema' (moving averages).
    ae.codebook = 'loss'
    ae.ema_decay = 0.99
    # Initialise the codebook by k-means on the first batch's latents.
    ae.kmeans_init = False
    # Train on random train_crop x train_crop windows of the images (0: whole images), a multiple of the
    # downsampling factor 2^(len(ch_mult) - 1). The networks are convolutional but for the middle attention,
    # so reconstructions, the latents and the diffusion model use whole images; at 256x256 the middle
    # attention over 64x64 positions is most of a training step's time on a CPU.
    ae.train_crop = 0
    # Weight of the quantiser loss in the generator objective.
    ae.codebook_weight = 1.0
    # Reconstruction distance: 'l1' or 'l2'.
    ae.pixel_loss = 'l1'
    # Perceptual loss: 'none' (LPIPS needs pretrained VGG weights that cannot be had offline; see
    # docs/ldm.md for plugging one in) and its weight.
    ae.perceptual_loss = 'none'
    ae.perceptual_weight = 0.0
    # Patch discriminator: on from step disc_start, weighted by the adaptive weight times disc_weight.
    ae.disc_start = 0
    ae.disc_weight = 0.75
    ae.disc_factor = 1.0
    # Reconstructions the discriminator step sees: 'updated' (those of the generator after this step's
    # update, as taming's alternating optimisers recompute them; one more generator forward pass) or
    # 'before_update' (the generator step's own, no extra pass).
    ae.disc_reconstructions = 'updated'
    ae.disc_layers = 3
    ae.disc_ndf = 64

    # Sampling (--mode sample, and the samples of --mode eval).
    config.sampling = sampling = ml_collections.ConfigDict()
    # 'ddim', 'ddpm' (ancestral, all num_timesteps steps), 'ddpm_strided' (ancestral over num_steps evenly
    # spaced timesteps, round(linspace(0, T - 1, num_steps)), with the respaced schedule: improved DDPM's
    # strided sampling; spacing 'uniform'), or the shared few-step solvers of gen_runtime/few_step.py:
    # 'dpm_solver_pp' (DPM-Solver++ 2M or 3M) or 'heun' (EDM's), which step through num_steps integer
    # timesteps (ldm_jax.generation.few_step_timesteps), the last step to x_0.
    sampling.method = 'ddim'
    # DDIM's and the few-step solvers' steps and spacing; DDIM's eta (0: deterministic). DDIM spacing:
    # 'uniform' (exactly num_steps steps, every (T // num_steps)-th), 'uniform_ldm' (latent diffusion's
    # make_ddim_timesteps: every (T // num_steps)-th index below T, so ceil(T / (T // num_steps)) steps:
    # 30 -> 31, 64 -> 67) or 'quad' (latent diffusion's quadratic spacing). Few-step spacing: 'uniform'
    # (diffusers' 'linspace', round(linspace(T - 1, 0, num_steps + 1))), 'logsnr' (uniform in log(alpha /
    # sigma)) or 'karras' (uniform in sigma^(1/rho), sigma = sqrt((1 - abar) / abar)), rounded to timesteps.
    sampling.num_steps = 50
    sampling.spacing = 'uniform'
    sampling.eta = 0.0
    # Karras' rho (spacing 'karras'); DPM-Solver++'s order (1, 2 or 3; at most num_steps).
    sampling.rho = 7.0
    sampling.order = 2
    # DDIM's last step ends at alpha-bar = 1 (diffusers' set_alpha_to_one) instead of alpha-bar_0 (latent
    # diffusion's, and diffusers' set_alpha_to_one=False).
    sampling.alpha_to_one = False
    # Clip predicted x_0 to [-1, 1] at each step (pixel space; ignored for latents).
    sampling.clip_denoised = True
    sampling.num_samples = 64
    # Global batch of one sampling call (divisible by the device count).
    sampling.batch_size = 64
    # Classifier-free guidance weight w (1: plain conditional; needs diffusion.label_dropout > 0 when != 1).
    sampling.guidance_scale = 1.0
    # Class of every sample (-1: classes 0, 1, 2, ... in turn).
    sampling.class_label = -1
    # Classifier guidance: workdir of a task='classifier' run and the scale (0: off).
    sampling.classifier_workdir = ''
    sampling.classifier_scale = 0.0

    # Variational bound in bits/dim (--mode likelihood, pixel space only).
    config.likelihood = likelihood = ml_collections.ConfigDict()
    likelihood.batch_size = 64
    # Evaluate at most this many examples of the eval split (0: all).
    likelihood.max_examples = 0

    # --mode import_weights / import_autoencoder: PyTorch weights (.npz or .safetensors of a state dict)
    # that become step 0 of the workdir. layout: 'ldm' (CompVis latent-diffusion keys) or 'diffusers'.
    config.weights = weights = ml_collections.ConfigDict()
    weights.path = ''
    weights.layout = 'ldm'
    # Key prefix of the first stage in an 'ldm' checkpoint ('' for a stand-alone VQGAN checkpoint).
    weights.prefix = 'first_stage_model.'

    # --mode preprocess: resize a folder of images (e.g. CelebA-HQ 1024x1024) to size x size PNGs.
    config.preprocess = preprocess = ml_collections.ConfigDict()
    # Input folder (relative paths are under the data root) and output folder.
    preprocess.input = 'celebahq_samples'
    preprocess.output = ''
    preprocess.size = 256

    config.lock()
    return config


# The domain of every field above (gen_runtime/domains.py), checked for every mode before any work.
DOMAINS = {
    'task': OneOf('diffusion', 'classifier'),
    'model.model_channels': POSITIVE_INT,
    'model.channel_mult': TupleOf(POSITIVE_INT, min_len=1),
    'model.num_res_blocks': POSITIVE_INT,
    'model.attention_resolutions': TupleOf(POSITIVE_INT),
    'model.dropout': PROBABILITY_RATE,
    'model.num_heads': POSITIVE_INT,
    'model.num_head_channels': Int(-1),
    'model.scale_shift_norm': BOOL,
    'model.norm_eps': POSITIVE,
    'model.norm_groups': POSITIVE_INT,
    'model.flip_sin_to_cos': BOOL,
    'model.freq_shift': ANY_REAL,
    'model.num_classes': COUNT,
    'diffusion.num_timesteps': Int(2),
    'diffusion.schedule': OneOf('linear', 'sqrt_linear', 'cosine'),
    'diffusion.linear_start': UNIT_OPEN,
    'diffusion.linear_end': UNIT_OPEN,
    'diffusion.cosine_s': NON_NEGATIVE,
    'diffusion.parameterization': OneOf('eps', 'x0', 'v'),
    'diffusion.loss': OneOf('l2', 'l1'),
    'diffusion.variance': OneOf('fixed_small', 'fixed_large', 'learned_range'),
    'diffusion.vlb_weight': NON_NEGATIVE,
    'diffusion.label_dropout': PROBABILITY_RATE,
    'cascade.low_resolution': COUNT,
    'cascade.max_level': COUNT,
    'cascade.sample_level': COUNT,
    'cascade.truncated': BOOL,
    'cascade.base_workdir': TEXT,
    'latent.first_stage_workdir': TEXT,
    'latent.scale_factor': NON_NEGATIVE,
    'latent.encode_batch_size': POSITIVE_INT,
    'classifier.num_classes': Int(2),
    'classifier.model_channels': POSITIVE_INT,
    'classifier.channel_mult': TupleOf(POSITIVE_INT, min_len=1),
    'classifier.num_res_blocks': POSITIVE_INT,
    'classifier.attention_resolutions': TupleOf(POSITIVE_INT),
    'classifier.dropout': PROBABILITY_RATE,
    'classifier.num_heads': POSITIVE_INT,
    'classifier.num_head_channels': Int(-1),
    'classifier.scale_shift_norm': BOOL,
    'classifier.norm_groups': POSITIVE_INT,
    'classifier.max_timestep': COUNT,
    'autoencoder.ch': POSITIVE_INT,
    'autoencoder.ch_mult': TupleOf(POSITIVE_INT, min_len=1),
    'autoencoder.num_res_blocks': POSITIVE_INT,
    'autoencoder.attn_resolutions': TupleOf(POSITIVE_INT),
    'autoencoder.z_channels': POSITIVE_INT,
    'autoencoder.embed_dim': POSITIVE_INT,
    'autoencoder.num_codes': Int(2),
    'autoencoder.dropout': PROBABILITY_RATE,
    'autoencoder.norm_groups': POSITIVE_INT,
    'autoencoder.beta': NON_NEGATIVE,
    'autoencoder.legacy_beta': BOOL,
    'autoencoder.codebook': OneOf('loss', 'ema'),
    'autoencoder.ema_decay': UNIT_OPEN,
    'autoencoder.kmeans_init': BOOL,
    'autoencoder.train_crop': COUNT,
    'autoencoder.codebook_weight': NON_NEGATIVE,
    'autoencoder.pixel_loss': OneOf('l1', 'l2'),
    'autoencoder.perceptual_loss': Text(nonempty=True),  # 'none' or an importable 'module:function'
    'autoencoder.perceptual_weight': NON_NEGATIVE,
    'autoencoder.disc_start': COUNT,
    'autoencoder.disc_weight': NON_NEGATIVE,
    'autoencoder.disc_factor': NON_NEGATIVE,
    'autoencoder.disc_reconstructions': OneOf('updated', 'before_update'),
    'autoencoder.disc_layers': POSITIVE_INT,
    'autoencoder.disc_ndf': POSITIVE_INT,
    'sampling.method': OneOf('ddim', 'ddpm', 'ddpm_strided', 'dpm_solver_pp', 'heun'),
    'sampling.num_steps': POSITIVE_INT,
    'sampling.spacing': OneOf('uniform', 'uniform_ldm', 'quad', 'logsnr', 'karras'),
    'sampling.eta': UNIT_CLOSED,
    'sampling.rho': POSITIVE,
    'sampling.order': Int(1, 3),
    'sampling.alpha_to_one': BOOL,
    'sampling.clip_denoised': BOOL,
    'sampling.num_samples': POSITIVE_INT,
    'sampling.batch_size': POSITIVE_INT,
    'sampling.guidance_scale': NON_NEGATIVE,
    'sampling.class_label': Int(-1),
    'sampling.classifier_workdir': TEXT,
    'sampling.classifier_scale': NON_NEGATIVE,
    'likelihood.batch_size': POSITIVE_INT,
    'likelihood.max_examples': COUNT,
    'weights.path': TEXT,
    'weights.layout': OneOf('ldm', 'diffusers'),
    'weights.prefix': TEXT,
    'preprocess.input': TEXT,
    'preprocess.output': TEXT,
    'preprocess.size': POSITIVE_INT,
}
