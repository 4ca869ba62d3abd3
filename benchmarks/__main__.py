"""All the speed benchmarks in one process, one after another, each ours against its PyTorch baseline side by
side; each rewrites its table in README.md (between `<!-- bench:NAME -->` markers) and benchmarks/results/.

    python -m benchmarks [--tiny] [--only sde_sampling,ldm_unet] [--out DIR] [--no-readme]
        [--score-sde-pytorch PATH]

The sizes are those of the README's tables (ARGUMENTS). `--tiny` runs every benchmark at seconds-sized inputs,
same-network checks included, and never writes the README (the CI check, tests/runtime/test_benchmarks.py).
sde_likelihood_original runs only with `--score-sde-pytorch PATH` (a yang-song/score_sde_pytorch checkout; not
at --tiny). A benchmark that fails is reported and the others still run; the exit status is 1 if any failed.
Each table records the machine, the library versions and the date: the ratios move with the machine.
"""

import argparse
import importlib
import sys
import time
import traceback

# Benchmark module -> the arguments of the README's table.
ARGUMENTS = {
    'sde_sampling': ['--steps', '1000', '--batch', '16', '--repeats', '3'],
    'sde_likelihood': ['--batch', '4', '--tol', '1e-4', '--repeats', '1'],
    'sde_training': ['--batch', '32', '--ddpmpp-batch', '8', '--repeats', '5'],
    'ldm_unet': ['--batch', '8', '--sample-batch', '4', '--repeats', '2'],
    'zsl_cizsl': ['--iterations', '1', '--repeats', '3'],
    'inception': ['--batch', '8', '--repeats', '3'],
}
ORIGINAL_ARGUMENTS = ['--nf', '32', '--tol', '1e-3', '--batch', '8']


def main(argv: list[str] | None = None) -> dict[str, str]:
    """Runs the benchmarks; returns {name: 'ok' | 'skipped' | 'failed: ...'} (and exits 1 if any failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tiny', action='store_true', help='seconds-sized runs (CI); the README is left alone')
    parser.add_argument('--only', default='', help='comma-separated benchmark names (default: all)')
    parser.add_argument('--out', default='', help='folder for the results (default benchmarks/results)')
    parser.add_argument('--no-readme', action='store_true', help="leave README.md's tables alone")
    parser.add_argument('--score-sde-pytorch', default='', help='a score_sde_pytorch checkout, for '
                        'sde_likelihood_original')
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(',') if n] or [*ARGUMENTS, 'sde_likelihood_original']
    unknown = set(names) - {*ARGUMENTS, 'sde_likelihood_original'}
    if unknown:
        parser.error(f'unknown benchmarks {sorted(unknown)}; known: {", ".join(ARGUMENTS)}, sde_likelihood_original')
    common = (['--tiny'] if args.tiny else []) + (['--out', args.out] if args.out else []) + \
        (['--no-readme'] if args.no_readme else [])

    import torch

    threads = torch.get_num_threads()
    status = {}
    for name in names:
        if name == 'sde_likelihood_original':
            if args.tiny or not args.score_sde_pytorch:
                status[name] = 'skipped'
                print(f'== {name}: skipped (needs --score-sde-pytorch PATH; not run at --tiny)', flush=True)
                continue
            argv_of = [args.score_sde_pytorch, *ORIGINAL_ARGUMENTS, *common]
        else:
            argv_of = ([] if args.tiny else ARGUMENTS[name]) + common
        print(f'== {name}: python -m benchmarks.{name} {" ".join(argv_of)}', flush=True)
        start = time.perf_counter()
        try:
            ran = importlib.import_module(f'benchmarks.{name}').main(argv_of)
            status[name] = 'skipped' if ran is False else 'ok'
        except Exception as error:  # noqa: BLE001 (one broken benchmark must not hide the others)
            traceback.print_exc()
            status[name] = f'failed: {type(error).__name__}: {error}'
        finally:
            torch.set_num_threads(threads)
        print(f'== {name}: {status[name]} ({time.perf_counter() - start:.0f} s)', flush=True)
    print('\n'.join(f'{name}: {s}' for name, s in status.items()))
    if any(s.startswith('failed') for s in status.values()):
        raise SystemExit(1)
    return status


if __name__ == '__main__':
    main(sys.argv[1:])
