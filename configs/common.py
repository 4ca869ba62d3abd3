"""Fields shared by every family. Each field is documented here, once; family bases add theirs.

A family base calls `get_config()`, sets `family`, adds its own sections and locks the result, so
that an override file or a `--config.x.y=...` flag naming a field that does not exist is an error.
"""

import ml_collections

from gen_runtime.domains import (
    BOOL,
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY_RATE,
    TEXT,
    CommaList,
    Int,
    OneOf,
    Real,
    Text,
)


def get_config() -> ml_collections.ConfigDict:
    """Returns the shared fields with their defaults (unlocked: the family base locks it)."""
    config = ml_collections.ConfigDict()
    # Package that runs this config: 'sde_jax', 'ldm_jax' or 'zsl_jax'. main.py dispatches on it.
    config.family = ''
    # Seeds parameter init, the data order and all training noise (runs are reproducible).
    config.seed = 0

    config.data = data = ml_collections.ConfigDict()
    # Where examples come from: 'digits' (scikit-learn's bundled 8x8 digits, no download), 'npz'
    # (arrays x_<split>, y_<split>), 'image_folder' (<path>/<split>/<class>/*.png|jpg, or a flat
    # folder of images; a .tar/.tgz archive of either works too) or 'tfds' (tensorflow-datasets).
    data.source = 'digits'
    # tfds data set name, e.g. 'mnist', 'cifar10', 'celeb_a_hq/256' (source='tfds').
    data.name = ''
    # File or folder of the data (npz, image_folder). Relative paths are under `data.root`.
    data.path = ''
    # Data root for relative paths; '' uses the environment variable JAXGEN_DATA_ROOT.
    data.root = ''
    # tfds data_dir ('' uses tfds' default, ~/tensorflow_datasets).
    data.tfds_dir = ''
    # Split names used for training and for evaluation.
    data.train_split = 'train'
    data.eval_split = 'test'
    # Side length images are resized to (square); 0 keeps the stored size.
    data.image_size = 0
    # Channels of the images (1 grey, 3 RGB; sde_jax takes only these, ldm_jax any count of an npz array's last
    # axis, e.g. 4 for a latent-space UNet); grey images are broadcast to 3 where 3 is asked.
    data.num_channels = 1
    # Uniform dequantisation: x = (n + u) / 2^bits with u ~ U[0, 1) instead of x = n / (2^bits - 1).
    data.dequantize = False
    # Randomly flip training images left-right.
    data.random_flip = False
    # Keep at most this many training examples (0 keeps all): for tiny runs and overfitting checks.
    data.max_examples = 0

    config.training = training = ml_collections.ConfigDict()
    # Global batch size over all devices and hosts; must be divisible by the device count.
    training.batch_size = 128
    # Total number of optimisation steps.
    training.num_steps = 1000
    # Steps run per host-side iteration; num_steps, log_every and checkpoint_every must be
    # multiples of it.
    training.steps_per_call = 1
    # How those steps run: 'scan' fuses them into one compiled lax.scan with donated state (GPU/TPU);
    # 'host' dispatches one compiled step steps_per_call times without donation (XLA:CPU runs
    # convolution gradients inside loops and with donated buffers an order of magnitude slower);
    # 'auto' picks 'host' on CPU and 'scan' elsewhere. Both give the same parameters.
    training.step_loop = 'auto'
    # Write metrics (JSONL, TensorBoard, progress bar) every this many steps.
    training.log_every = 50
    # Save a checkpoint every this many steps (and at the end, and on SIGTERM).
    training.checkpoint_every = 500
    # Number of checkpoints kept on disk.
    training.keep_checkpoints = 3

    config.optim = optim = ml_collections.ConfigDict()
    # 'adam' or 'adamw'.
    optim.optimizer = 'adam'
    # Peak learning rate, reached after `warmup_steps` of linear warm-up from 0. At most 1: Adam moves every
    # parameter by about the learning rate each step, so a larger rate destroys any network (typical: 1e-4 to 2e-3).
    optim.learning_rate = 2e-4
    optim.warmup_steps = 0
    # After warm-up: 'constant' or 'cosine' decay to 0 at training.num_steps.
    optim.schedule = 'constant'
    optim.beta1 = 0.9
    optim.beta2 = 0.999
    optim.eps = 1e-8
    # Decoupled weight decay (adamw only).
    optim.weight_decay = 0.0
    # Clip gradients to this global norm; 0 disables clipping.
    optim.grad_clip = 1.0
    # Exponential moving average of the parameters: ema = rate * ema + (1 - rate) * params.
    optim.ema_rate = 0.999
    # EMA warm-up: use min(rate, (1 + step) / (10 + step)) so early averages are not stale.
    optim.ema_warmup = False

    config.eval = ev = ml_collections.ConfigDict()
    # The parameters of the run's networks that every mode using them takes (sampling, likelihood,
    # reconstructions, FID, ZSL evaluation): the exponential moving average of optim.ema_rate (True) or the raw
    # parameters (False). A network read from another run (ldm's first stage and guidance classifier) is taken as
    # that run's saved config says.
    ev.use_ema = True
    # Seed of every random number of the modes that use a trained model (samples, inpainting and colorization,
    # the likelihood's probes and dequantisation; gen_runtime.rng.stream(eval.seed, <purpose>)), independent of
    # the training seed, so that one trained run can be sampled with several.
    ev.seed = 0
    # Samples generated and scored by `--mode eval` (FID in papers uses 50000).
    ev.num_samples = 50000
    # Images per Inception call over all devices (a multiple of the device count).
    ev.batch_size = 200
    # Comma-separated metrics: 'fid', 'kid' (kernel Inception distance), 'is' (Inception Score; needs the
    # classifier weights, see docs/sample_quality.md) and 'pr' (improved precision and recall).
    ev.metrics = 'fid,kid,pr'
    # Reference statistics file; '' uses the cache file of `data` and `reference_split` that
    # `python -m gen_runtime.sample_quality.reference_stats --config <this config>` writes.
    ev.reference_stats = ''
    # Split of the data set the default reference statistics describe.
    ev.reference_split = 'train'
    # Converted Inception weights; '' uses ~/.cache/jaxgen/inception-2015-12-05-fid.npz, written once
    # by `python -m gen_runtime.sample_quality.convert`.
    ev.inception_path = ''
    # KID: number of random subsets and their size (Binkowski et al. 2018: 100 subsets of 1000).
    ev.kid_subsets = 100
    ev.kid_subset_size = 1000
    # Inception Score: number of splits (Salimans et al. 2016: 10).
    ev.is_splits = 10
    # Precision/recall: the k of the k-nearest-neighbour balls (Kynkaanniemi et al. 2019: 3).
    ev.pr_k = 3
    # Feature vectors kept (a uniform random subset, 8 KiB each) of the samples and of the reference
    # set for KID and precision/recall; FID and IS use every sample.
    ev.max_features = 10000

    config.runtime = runtime = ml_collections.ConfigDict()
    # Multi-host: call jax.distributed.initialize() before anything else (TPU pods, GPU clusters).
    runtime.distributed = False
    # For distributed runs outside auto-detected clusters: 'host:port' of process 0, the process
    # count and this process's id ('' / 0 / -1 let JAX detect them).
    runtime.coordinator_address = ''
    runtime.num_processes = 0
    runtime.process_id = -1
    # Write TensorBoard event files beside metrics.jsonl.
    runtime.tensorboard = True
    # Show a progress bar on long work (process 0 only).
    runtime.progress_bar = True
    # Computation dtype of the networks: 'float32', or 'bfloat16' for mixed precision (convolutions, dense
    # layers and attention in bf16; parameters, optimiser state, EMA, normalisation statistics, losses and
    # the sampler state in float32; gen_runtime/precision.py).
    runtime.compute_dtype = 'float32'
    return config


# The domain of every field above (gen_runtime/domains.py), checked for every mode before any work.
DOMAINS = {
    'family': OneOf('sde_jax', 'ldm_jax', 'zsl_jax'),
    'seed': Int(0),
    'data.source': OneOf('digits', 'npz', 'image_folder', 'tfds'),
    'data.name': TEXT,
    'data.path': TEXT,
    'data.root': TEXT,
    'data.tfds_dir': TEXT,
    'data.train_split': Text(nonempty=True),
    'data.eval_split': Text(nonempty=True),
    'data.image_size': COUNT,
    'data.num_channels': POSITIVE_INT,
    'data.dequantize': BOOL,
    'data.random_flip': BOOL,
    'data.max_examples': COUNT,
    'training.batch_size': POSITIVE_INT,
    'training.num_steps': COUNT,
    'training.steps_per_call': POSITIVE_INT,
    'training.step_loop': OneOf('auto', 'scan', 'host'),
    'training.log_every': POSITIVE_INT,
    'training.checkpoint_every': POSITIVE_INT,
    'training.keep_checkpoints': POSITIVE_INT,
    'optim.optimizer': OneOf('adam', 'adamw'),
    'optim.learning_rate': Real(0.0, 1.0, '(]'),
    'optim.warmup_steps': COUNT,
    'optim.schedule': OneOf('constant', 'cosine'),
    'optim.beta1': PROBABILITY_RATE,
    'optim.beta2': PROBABILITY_RATE,
    'optim.eps': POSITIVE,
    'optim.weight_decay': NON_NEGATIVE,
    'optim.grad_clip': NON_NEGATIVE,
    'optim.ema_rate': PROBABILITY_RATE,
    'optim.ema_warmup': BOOL,
    'eval.use_ema': BOOL,
    'eval.seed': Int(0),
    'eval.num_samples': POSITIVE_INT,
    'eval.batch_size': POSITIVE_INT,
    'eval.metrics': CommaList('fid', 'kid', 'is', 'pr'),
    'eval.reference_stats': TEXT,
    'eval.reference_split': Text(nonempty=True),
    'eval.inception_path': TEXT,
    'eval.kid_subsets': POSITIVE_INT,
    'eval.kid_subset_size': Int(2),
    'eval.is_splits': POSITIVE_INT,
    'eval.pr_k': POSITIVE_INT,
    'eval.max_features': POSITIVE_INT,
    'runtime.distributed': BOOL,
    'runtime.coordinator_address': TEXT,
    'runtime.num_processes': COUNT,
    'runtime.process_id': Int(-1),
    'runtime.tensorboard': BOOL,
    'runtime.progress_bar': BOOL,
    'runtime.compute_dtype': OneOf('float32', 'bfloat16'),
}
