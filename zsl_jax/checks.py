"""Every setting each zsl_jax mode reads, checked before any work (gen_runtime.modes calls these).

The players' shapes depend on the data's feature and text dimensions, so they are built when the data
is loaded; everything else is checked here, before any data is read or any model trained.
"""

import ml_collections

from gen_runtime.errors import ConfigError
from gen_runtime.trainer import check_train_settings
from zsl_jax.protocol import check_eval_config
from zsl_jax.text_encoders import check_text_encoder
from zsl_jax.tfidf import check_analyzer
from zsl_jax.weights import check_import_config


def check_model(config: ml_collections.ConfigDict) -> None:
    """What the domains of the single fields (configs/zsl/base.py) cannot say: the order of CIZSL's mixing
    range."""
    if not config.cizsl.mix_low <= config.cizsl.mix_high:
        raise ConfigError(f'cizsl.mix_low={config.cizsl.mix_low} must not exceed '
                          f'cizsl.mix_high={config.cizsl.mix_high}')


def check_train(config: ml_collections.ConfigDict) -> None:
    """train: the model, the training and optimiser settings, and the evaluation protocol."""
    check_model(config)
    check_train_settings(config)
    check_eval_config(config)


def check_eval(config: ml_collections.ConfigDict) -> None:
    check_model(config)
    check_eval_config(config)


def check_import(config: ml_collections.ConfigDict) -> None:
    check_model(config)
    check_import_config(config)


def check_text_features(config: ml_collections.ConfigDict) -> None:
    check_text_encoder(config.text)


def check_tfidf(config: ml_collections.ConfigDict) -> None:
    check_analyzer(config.text.porter_mode, config.text.stop_word_stage)
