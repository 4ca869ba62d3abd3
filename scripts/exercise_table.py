"""The results of one part of scripts/exercises_gpu.sh as JSON, a grid and a Markdown table for the README.

    python -m scripts.exercise_table PART RUN_DIR OUT

Reads the run folder as the modes left it: the newest training record (metrics.jsonl; metrics.json once training
finished), the newest sample grid (train/ or sample/ step folders), and the likelihood of the newest checkpoint:
likelihood.json when the whole split was evaluated, else the batches.jsonl streamed so far (marked partial, with
the count of images it covers). Writes OUT/summary.json, OUT/samples.png and OUT/<PART>.md. The ldm part's
RUN_DIR holds one folder per stage (notebook, exercise), each with vq/ and ldm/ runs: its table has a column per
stage (first-stage steps and reconstruction PSNR, UNet steps, the memorisation PSNRs) and a grid per stage,
OUT/<stage>_samples.png.
"""

import datetime
import glob
import json
import os
import platform
import shutil
import sys

import numpy as np

from sde_jax.likelihood_eval import mean_and_error


def _step_of(path: str) -> int:
    return int(path.split('step_')[-1].split(os.sep)[0])


def _newest(pattern: str) -> str | None:
    paths = sorted(glob.glob(pattern), key=_step_of)
    return paths[-1] if paths else None


def training_record(run_dir: str) -> dict:
    """The last logged training step with its loss and throughput, whether it is the run's last (`complete`:
    training.num_steps of its config.json), and metrics.json where the family writes one when training ends."""
    with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
        records = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(run_dir, 'config.json')) as f:
        num_steps = json.load(f)['training']['num_steps']
    logged = [r for r in records if 'loss' in r]
    record = {'step': records[-1]['step'], 'num_steps': num_steps, 'complete': records[-1]['step'] >= num_steps,
              'loss': logged[-1]['loss'] if logged else None,
              'steps_per_sec': next((r['steps_per_sec'] for r in reversed(records) if 'steps_per_sec' in r), None)}
    finished = os.path.join(run_dir, 'metrics.json')
    if os.path.exists(finished):
        with open(finished) as f:
            record['finished'] = json.load(f)
    return record


def likelihood_record(run_dir: str) -> dict | None:
    """likelihood.json of the newest evaluated checkpoint, or the summary of its streamed batches (partial)."""
    folder = _newest(os.path.join(run_dir, 'likelihood', 'step_*'))
    if folder is None:
        return None
    summary = os.path.join(folder, 'likelihood.json')
    if os.path.exists(summary):
        with open(summary) as f:
            return {**json.load(f), 'partial': False}
    batches_path = os.path.join(folder, 'batches.jsonl')
    if not os.path.exists(batches_path):
        return None
    with open(batches_path) as f:
        batches = [json.loads(line) for line in f if line.strip().endswith('}')]
    if not batches:
        return None
    count = sum(b['count'] for b in batches)
    mean, standard_error = mean_and_error(dict(enumerate(batches)), 'bpd', count)
    seconds = sum(b['seconds'] for b in batches)
    return {'step': _step_of(folder), 'bpd': mean, 'bpd_standard_error': standard_error,
            'num_examples': count, 'rtol': batches[0]['rtol'], 'atol': batches[0]['atol'],
            'mean_nfe_per_batch': float(np.mean([b['nfe'] for b in batches])), 'seconds': seconds,
            'seconds_per_example': seconds / count, 'partial': True}


def machine() -> str:
    import jax

    device = jax.devices()[0]
    kind = getattr(device, 'device_kind', device.platform)
    return f'{kind} ({jax.device_count()} x {device.platform}), jax {jax.__version__}, {platform.python_version()}'


def markdown(part: str, training: dict, likelihood: dict | None, grid: str | None) -> str:
    stopped = '' if training['complete'] else ' (stopped at its time limit)'
    loss, rate = training['loss'], training['steps_per_sec']
    lines = [f'| {part} | value |', '|---|---|', f"| training steps | {training['step']}{stopped} |",
             f'| last logged loss | {loss:.4g} |' if loss is not None else '| last logged loss | - |',
             f'| steps per second | {rate:.3g} |' if rate else '| steps per second | - |']
    if likelihood is None:
        lines.append('| bits/dim | not evaluated |')
    else:
        covered = f"{likelihood['num_examples']} test images" + (' (partial: the call resumes)' * likelihood['partial'])
        lines += [f"| bits/dim (dequantised, probability-flow ODE) | {likelihood['bpd']:.4f} +- "
                  f"{likelihood['bpd_standard_error']:.4f} over {covered} |",
                  f"| ODE tolerance, NFE per batch | rtol = atol = {likelihood['rtol']:g}, "
                  f"{likelihood['mean_nfe_per_batch']:.0f} |",
                  f"| seconds per image | {likelihood['seconds_per_example']:.4g} |"]
    lines.append(f"| samples | {'samples.png' if grid else 'none'} |")
    date = datetime.date.today().isoformat()
    return '\n'.join(lines) + f'\n\nMeasured {date} on {machine()}; `scripts/exercises_gpu.sh {part}`.\n'


def _json(pattern: str) -> dict | None:
    path = _newest(pattern)
    if path is None:
        return None
    with open(path) as f:
        return json.load(f)


def ldm_stage(stage_dir: str) -> dict:
    """One ldm stage: both trainings, the reconstruction metrics, the memorisation check and the grid."""
    return {'first_stage': training_record(os.path.join(stage_dir, 'vq')),
            'reconstruction': _json(os.path.join(stage_dir, 'vq', 'reconstruct', 'step_*', 'metrics.json')),
            'unet': training_record(os.path.join(stage_dir, 'ldm')),
            'memorization': _json(os.path.join(stage_dir, 'ldm', 'memorization', 'step_*', 'memorization.json')),
            'grid': _newest(os.path.join(stage_dir, 'ldm', 'sample', 'step_*', 'samples.png'))}


def ldm_markdown(stages: dict[str, dict]) -> str:
    def steps(record: dict) -> str:
        rate = f", {record['steps_per_sec']:.3g} steps/s" if record['steps_per_sec'] else ''
        return f"{record['step']}{'' if record['complete'] else ' (stopped at its time limit)'}{rate}"

    def value(record: dict | None, key: str) -> str:
        return f'{record[key]:.2f}' if record else '-'

    rows = [('first-stage training steps', lambda n, s: steps(s['first_stage'])),
            ('reconstruction PSNR (dB)', lambda n, s: value(s['reconstruction'], 'psnr')),
            ('UNet training steps', lambda n, s: steps(s['unet'])),
            ('UNet last logged loss',
             lambda n, s: f"{s['unet']['loss']:.4g}" if s['unet']['loss'] is not None else '-'),
            ('sample to nearest training face, PSNR (dB)',
             lambda n, s: value(s['memorization'], 'sample_to_nearest_training_psnr_mean')),
            ('training face to nearest other, PSNR (dB)',
             lambda n, s: value(s['memorization'], 'training_to_nearest_other_training_psnr_mean')),
            ('samples', lambda n, s: f'{n}_samples.png' if s['grid'] else 'none')]
    lines = ['| ldm | ' + ' | '.join(stages) + ' |', '|---|' + '---|' * len(stages)]
    for label, cell in rows:
        lines.append(f'| {label} | ' + ' | '.join(cell(name, stage) for name, stage in stages.items()) + ' |')
    date = datetime.date.today().isoformat()
    return '\n'.join(lines) + f'\n\nMeasured {date} on {machine()}; `scripts/exercises_gpu.sh ldm`.\n'


def main(argv: list[str]) -> None:
    part, run_dir, out = argv
    os.makedirs(out, exist_ok=True)
    if part == 'ldm':
        stages = {name: ldm_stage(os.path.join(run_dir, name)) for name in ('notebook', 'exercise')
                  if os.path.isdir(os.path.join(run_dir, name))}
        for name, stage in stages.items():
            if stage['grid']:
                shutil.copyfile(stage['grid'], os.path.join(out, f'{name}_samples.png'))
        with open(os.path.join(out, 'summary.json'), 'w') as f:
            json.dump({'part': part, 'stages': stages}, f, indent=2)
        table = ldm_markdown(stages)
        with open(os.path.join(out, 'ldm.md'), 'w') as f:
            f.write(table)
        print(table)
        return
    training = training_record(run_dir)
    likelihood = likelihood_record(run_dir)
    grid = _newest(os.path.join(run_dir, '*', 'step_*', 'samples.png'))
    if grid is not None:
        shutil.copyfile(grid, os.path.join(out, 'samples.png'))
    with open(os.path.join(out, 'summary.json'), 'w') as f:
        json.dump({'part': part, 'training': training, 'likelihood': likelihood, 'grid': grid}, f, indent=2)
    table = markdown(part, training, likelihood, grid)
    with open(os.path.join(out, f'{part}.md'), 'w') as f:
        f.write(table)
    print(table)


if __name__ == '__main__':
    main(sys.argv[1:])
