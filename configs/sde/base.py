"""Base config of the sde_jax family (score-based generative modelling through SDEs).

Every sde_jax config starts here (`config = base.get_config()`) and overrides a few fields. The
shared fields (data, training, optim, runtime) are documented in configs/common.py; this file adds
and documents the family's own: sde, loss, model, sampling, likelihood, weights, and data.centered.
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
    TupleOf,
)


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.family = 'sde_jax'

    # Scale data to [-1, 1] (True) instead of [0, 1] for the model; bits/dim account for it.
    config.data.centered = False

    config.sde = sde = ml_collections.ConfigDict()
    # 'vesde' (variance exploding), 'vpsde' (variance preserving) or 'subvpsde' (Song et al. 2021), or
    # 'rectified_flow', flow matching's x_t = (1 - t) x_0 + t eps (trained with loss.type='flow_matching', sampled
    # through its ODE: sampling.method 'ode', 'ddim' (Euler), 'dpm_solver_pp' or 'heun').
    sde.type = 'vpsde'
    # VE noise scales: sigma(t) = sigma_min (sigma_max / sigma_min)^t.
    sde.sigma_min = 0.01
    sde.sigma_max = 50.0
    # VE marginal std of x(t) | x(0): 'exact' sqrt(sigma(t)^2 - sigma_min^2) (eq. 31) or 'sigma' sigma(t),
    # the original code's (its released checkpoints were trained and are evaluated with it).
    sde.ve_marginal_std = 'exact'
    # VP / sub-VP linear schedule beta(t) = beta_min + t (beta_max - beta_min).
    sde.beta_min = 0.1
    sde.beta_max = 20.0
    # N: noise levels of the discrete losses (SMLD / DDPM) and default number of sampling steps.
    sde.num_scales = 1000

    config.loss = loss = ml_collections.ConfigDict()
    # 'dsm' (continuous denoising score matching), 'smld' (discrete, VE), 'ddpm' (discrete, VP) or
    # 'flow_matching' (the velocity loss of sde.type='rectified_flow').
    loss.type = 'dsm'
    # Weighting lambda(t) of 'dsm': 'sigma2' (std(t)^2) or 'likelihood' (g(t)^2).
    loss.weighting = 'sigma2'
    # With the likelihood weighting (VP, sub-VP, VE with ve_marginal_std='exact'): draw t from p(t) proportional
    # to g(t)^2 / std(t)^2 with the matching weight (Song, Durkan, Murray & Ermon 2021; sde_jax/importance.py)
    # instead of uniformly.
    loss.importance_sampling = False
    # Average the squared error over dimensions (True) instead of summing half of it.
    loss.reduce_mean = False
    # Smallest training time: t ~ U(eps, 1).
    loss.eps = 1e-5
    # flow_matching: training times 'uniform' on (0, 1) or 'logit_normal', t = sigmoid(logit_mean + logit_std n)
    # with n ~ N(0, 1) (Esser et al. 2024).
    loss.time_sampling = 'uniform'
    loss.logit_mean = 0.0
    loss.logit_std = 1.0

    config.model = model = ml_collections.ConfigDict()
    # 'tutorial_unet' (Song's tutorial U-Net), 'ncsnpp' (NCSN++ / DDPM++, see the flags below).
    model.name = 'tutorial_unet'
    # tutorial_unet: channels per level, time-embedding width, 'SAME' padding for non-28x28 inputs.
    model.channels = (32, 64, 128, 256)
    model.embed_dim = 256
    model.same_padding = False
    # Scale of the Gaussian Fourier time features (tutorial: 30; NCSN++: 16).
    model.fourier_scale = 30.0
    # ncsnpp: base width, width multiplier per resolution, residual blocks per resolution.
    model.nf = 128
    model.ch_mult = (1, 2, 2, 2)
    model.num_res_blocks = 4
    # ncsnpp: resolutions (side lengths) with self-attention, dropout rate.
    model.attn_resolutions = (16,)
    model.dropout = 0.1
    # ncsnpp: 'fourier' (for VE, on log sigma) or 'positional' (for VP / sub-VP, on 999 t).
    model.embedding_type = 'fourier'
    # ncsnpp: 'biggan' (resampling inside residual blocks) or 'ddpm' residual blocks.
    model.resblock_type = 'biggan'
    # ncsnpp: FIR resampling filters (StyleGAN2) and their kernel.
    model.fir = False
    model.fir_kernel = (1, 3, 3, 1)
    # ncsnpp: divide skip connections by sqrt(2).
    model.skip_rescale = True
    # ncsnpp: progressive growing of the output ('none', 'output_skip', 'residual') and input
    # ('none', 'input_skip', 'residual'), combined by 'sum' or 'cat'.
    model.progressive = 'none'
    model.progressive_input = 'none'
    model.progressive_combine = 'sum'
    # ncsnpp: scale of the zero-ish initialisation of the last conv of each block (0: default scale 1e-10).
    model.init_scale = 0.0
    # ncsnpp: use a learned 3x3 convolution when resampling (resblock_type='ddpm').
    model.resamp_with_conv = True

    config.sampling = sampling = ml_collections.ConfigDict()
    # 'pc' (predictor-corrector), 'ode' (probability-flow ODE with an adaptive solver), or a few-step solver
    # of that ODE (gen_runtime/few_step.py): 'ddim', 'dpm_solver_pp' (DPM-Solver++ 2M or 3M) or 'heun' (EDM's).
    sampling.method = 'pc'
    # pc: 'euler_maruyama', 'reverse_diffusion', 'ancestral_sampling' or 'none'.
    sampling.predictor = 'euler_maruyama'
    # pc: 'langevin', 'ald' (annealed Langevin dynamics) or 'none'; steps per noise level; its snr.
    sampling.corrector = 'none'
    sampling.n_steps_each = 1
    sampling.snr = 0.16
    # pc and the few-step solvers: number of steps from T to eps (0: sde.num_scales).
    sampling.num_steps = 0
    # Few-step solvers: their time spacing, 'uniform' (in t), 'logsnr' (uniform in log(alpha_t / sigma_t)),
    # 'karras' (uniform in sigma^(1/rho), sigma = sigma_t / alpha_t) or 'auto' (the method's paper's: DDIM
    # uniform, DPM-Solver++ logsnr, Heun karras); Karras' rho; DDIM's eta (0: deterministic);
    # DPM-Solver++'s order (1, 2 or 3; at most num_steps).
    sampling.spacing = 'auto'
    sampling.rho = 7.0
    # Few-step solvers of the rectified flow: the shift s of their uniform times, t -> s t / (1 + (s - 1) t)
    # (diffusers' `shift`; s > 1 spends more steps at high noise; 1: none).
    sampling.shift = 1.0
    sampling.eta = 0.0
    sampling.order = 2
    # Smallest sampling time (the paper: 1e-3 for VP / sub-VP, 1e-5 for VE).
    sampling.eps = 1e-3
    # Finish with Tweedie's denoising step E[x_0 | x_eps].
    sampling.noise_removal = True
    # ode: relative and absolute tolerances of the Dormand-Prince solver.
    sampling.rtol = 1e-5
    sampling.atol = 1e-5
    # Samples to draw (sample mode and the end of training), in batches of batch_size.
    sampling.num_samples = 64
    sampling.batch_size = 64
    # Pixels observed by --mode inpaint: 'left_half', 'right_half', 'top_half', 'bottom_half', 'center'.
    sampling.inpaint_mask = 'right_half'

    config.likelihood = likelihood = ml_collections.ConfigDict()
    # Divergence of the probability-flow drift: 'rademacher' or 'gaussian' (Hutchinson-Skilling
    # estimator with num_probes probes) or 'exact' (D Jacobian-vector products; small images only).
    likelihood.estimator = 'rademacher'
    likelihood.num_probes = 1
    # Tolerances of the ODE solver and the smallest time (the paper: 1e-5).
    likelihood.rtol = 1e-5
    likelihood.atol = 1e-5
    likelihood.eps = 1e-5
    # Evaluation batch size (the last batch is padded and masked); the split is data.eval_split.
    likelihood.batch_size = 128
    # Evaluate at most this many examples (0: the whole split).
    likelihood.max_examples = 0
    # Draws of t per example of the variational bound on the SDE model's NLL reported beside the ODE's bits/dim
    # (Song, Durkan, Murray & Ermon 2021; sde_jax/bound.py; 0: not computed).
    likelihood.bound_times = 4

    config.weights = weights = ml_collections.ConfigDict()
    # --mode import_weights: an original checkpoint that becomes step 0 of the workdir:
    # score_sde_pytorch's checkpoint_*.pth or score_sde's Flax checkpoint_N (docs/sde.md).
    weights.path = ''
    # 'auto' (detected from the file), 'score_sde_pytorch' or 'score_sde'.
    weights.layout = 'auto'

    config.lock()
    return config


# The domain of every field above (gen_runtime/domains.py), checked for every mode before any work.
DOMAINS = {
    'data.centered': BOOL,
    'sde.type': OneOf('vesde', 'vpsde', 'subvpsde', 'rectified_flow'),
    'sde.sigma_min': POSITIVE,
    'sde.sigma_max': POSITIVE,
    'sde.ve_marginal_std': OneOf('exact', 'sigma'),
    'sde.beta_min': NON_NEGATIVE,
    'sde.beta_max': POSITIVE,
    'sde.num_scales': Int(2),
    'loss.type': OneOf('dsm', 'smld', 'ddpm', 'flow_matching'),
    'loss.weighting': OneOf('sigma2', 'likelihood'),
    'loss.importance_sampling': BOOL,
    'loss.reduce_mean': BOOL,
    'loss.eps': UNIT_OPEN,
    'loss.time_sampling': OneOf('uniform', 'logit_normal'),
    'loss.logit_mean': ANY_REAL,
    'loss.logit_std': POSITIVE,
    'model.name': OneOf('tutorial_unet', 'ncsnpp'),
    'model.channels': TupleOf(POSITIVE_INT, min_len=2),  # the tutorial U-Net has at least two levels
    'model.embed_dim': Int(2),
    'model.same_padding': BOOL,
    'model.fourier_scale': POSITIVE,
    'model.nf': POSITIVE_INT,
    'model.ch_mult': TupleOf(POSITIVE_INT, min_len=1),
    'model.num_res_blocks': POSITIVE_INT,
    'model.attn_resolutions': TupleOf(POSITIVE_INT),
    'model.dropout': PROBABILITY_RATE,
    'model.embedding_type': OneOf('fourier', 'positional'),
    'model.resblock_type': OneOf('biggan', 'ddpm'),
    'model.fir': BOOL,
    'model.fir_kernel': TupleOf(ANY_REAL, min_len=1),
    'model.skip_rescale': BOOL,
    'model.progressive': OneOf('none', 'output_skip', 'residual'),
    'model.progressive_input': OneOf('none', 'input_skip', 'residual'),
    'model.progressive_combine': OneOf('sum', 'cat'),
    'model.init_scale': NON_NEGATIVE,
    'model.resamp_with_conv': BOOL,
    'sampling.method': OneOf('pc', 'ode', 'ddim', 'dpm_solver_pp', 'heun'),
    'sampling.predictor': OneOf('euler_maruyama', 'reverse_diffusion', 'ancestral_sampling', 'none'),
    'sampling.corrector': OneOf('langevin', 'ald', 'none'),
    'sampling.n_steps_each': POSITIVE_INT,
    'sampling.snr': POSITIVE,
    'sampling.num_steps': COUNT,
    'sampling.spacing': OneOf('auto', 'uniform', 'logsnr', 'karras'),
    'sampling.rho': POSITIVE,
    'sampling.shift': POSITIVE,
    'sampling.eta': UNIT_CLOSED,
    'sampling.order': Int(1, 3),
    'sampling.eps': UNIT_OPEN,
    'sampling.noise_removal': BOOL,
    'sampling.rtol': POSITIVE,
    'sampling.atol': POSITIVE,
    'sampling.num_samples': POSITIVE_INT,
    'sampling.batch_size': POSITIVE_INT,
    'sampling.inpaint_mask': OneOf('left_half', 'right_half', 'top_half', 'bottom_half', 'center'),
    'likelihood.estimator': OneOf('rademacher', 'gaussian', 'exact'),
    'likelihood.num_probes': POSITIVE_INT,
    'likelihood.rtol': POSITIVE,
    'likelihood.atol': POSITIVE,
    'likelihood.eps': UNIT_OPEN,
    'likelihood.batch_size': POSITIVE_INT,
    'likelihood.max_examples': COUNT,
    'likelihood.bound_times': COUNT,
    'weights.path': TEXT,
    'weights.layout': OneOf('auto', 'score_sde_pytorch', 'score_sde'),
}
