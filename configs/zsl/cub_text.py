"""Text features of the CUB Wikipedia articles: `configs/zsl/cub_text.py[:sentence|clip]`.

--mode text_features encodes the articles with the encoder of the variant (CLIP needs
--config.text.encoder_path); --mode tfidf_report rebuilds TF-IDF and compares its vocabulary.
"""

import ml_collections

from configs.zsl import base


def get_config(encoder: str = 'sentence') -> ml_collections.ConfigDict:
    config = base.get_config()
    config.text.encoder = encoder
    return config
