"""The noise-conditional CIFAR-10 classifier that guides the cifar10_ddpm.py model (Dhariwal & Nichol 2021).

Train it:  python main.py --config configs/ldm/cifar10_classifier.py --workdir runs/cifar10_clf --mode train
Guide with it: python main.py --config configs/ldm/cifar10_ddpm.py --workdir runs/cifar10_ddpm --mode sample \
    --config.sampling.classifier_workdir=runs/cifar10_clf --config.sampling.classifier_scale=1.0
"""

import ml_collections

from configs.ldm import cifar10_ddpm


def get_config() -> ml_collections.ConfigDict:
    config = cifar10_ddpm.get_config()
    config.task = 'classifier'
    config.training.num_steps = 150_000
    config.optim.learning_rate = 3e-4
    config.optim.optimizer = 'adamw'
    config.optim.weight_decay = 0.05
    return config
