"""Sample-quality metrics with the FID InceptionV3 (TF graph 'inception-2015-12-05') in Flax.

`evaluate_samples(config, workdir, sample_batches)` is the one entry point the families' `eval` modes
call: FID (Heusel et al. 2017), KID (Bińkowski et al. 2018), Inception Score (Salimans et al. 2016)
and improved precision/recall (Kynkäänniemi et al. 2019) of streamed samples against cached
reference statistics. Commands: `python -m gen_runtime.sample_quality.convert` (weights, once) and
`python -m gen_runtime.sample_quality.reference_stats` (statistics of a data set). See
docs/sample_quality.md.
"""

from gen_runtime.sample_quality.evaluate import evaluate_samples

__all__ = ['evaluate_samples']
