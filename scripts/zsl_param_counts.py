"""Parameter counts of the published presets at the benchmarks' sizes: `python -m scripts.zsl_param_counts`."""

from configs.zsl import cizsl_cub, cizsl_nab, gazsl_cub, gazsl_gbu, gazsl_nab
from zsl_jax.protocol import parameter_counts

# (preset, config, visual feature dim, class-text dim, seen classes) of the published settings.
SIZES = [
    ('GAZSL CUB-wiki easy', gazsl_cub.get_config('easy'), 3584, 7551, 150),
    ('GAZSL CUB-wiki hard', gazsl_cub.get_config('hard'), 3584, 7551, 160),
    ('GAZSL NABirds-wiki', gazsl_nab.get_config('easy'), 3584, 13217, 323),
    ('CIZSL CUB-wiki easy', cizsl_cub.get_config('easy'), 3584, 7551, 150),
    ('CIZSL NABirds-wiki', cizsl_nab.get_config('easy'), 3584, 13217, 323),
    ('GAZSL xlsa17 AWA2 (attributes)', gazsl_gbu.get_config('AWA2'), 2048, 85, 40),
    ('GAZSL xlsa17 CUB (attributes)', gazsl_gbu.get_config('CUB'), 2048, 312, 150),
    ('GAZSL xlsa17 SUN (attributes)', gazsl_gbu.get_config('SUN'), 2048, 102, 645),
]


def main() -> None:
    print('| preset | generator | discriminator |\n|---|---|---|')
    for name, config, feature_dim, text_dim, num_seen in SIZES:
        counts = parameter_counts(config, feature_dim, text_dim, num_seen)
        print(f"| {name} | {counts['generator']:,} | {counts['discriminator']:,} |")


if __name__ == '__main__':
    main()
