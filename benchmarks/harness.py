"""The one harness every benchmark uses: ours against a PyTorch baseline, alternately, in one process.

`compare` times the first call of ours separately (JAX compile time), warms both up, then alternates
ours and the baseline `repeats` times on the same inputs and reports medians and the ratio
baseline/ours (> 1 means ours is faster). `matmul_peak` measures what this machine's float32 matmul
reaches under XLA and under torch, so each figure can be read against the limit. `same_network` checks,
before anything is timed, that both sides compute the same function (its outcome goes into every row).
`record` writes a JSON file and a Markdown table under benchmarks/results/ (or `results_dir`) and
refreshes that table in README.md between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; each table
names the machine (CPU model and ISA extensions, cores, GPU and driver), the library versions and the date.
`parse_arguments` adds the flags every benchmark takes: `--tiny` (seconds, for CI: README untouched),
`--out DIR` and `--no-readme`.
"""

import argparse
import functools
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import numpy as np

RESULTS_DIR = os.path.join(os.path.dirname(__file__), 'results')
README = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'README.md')


def _timed(fn: Callable[[], Any], sync: Callable[[Any], Any]) -> float:
    start = time.perf_counter()
    sync(fn())
    return time.perf_counter() - start


def jax_sync(result: Any) -> Any:
    """Blocks until a JAX result is computed."""
    import jax

    return jax.block_until_ready(result)


def torch_sync(result: Any) -> Any:
    """PyTorch CPU ops are synchronous; on CUDA this waits for the stream."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result


def compare(name: str, ours: Callable[[], Any], baseline: Callable[[], Any], *, repeats: int = 5,
            warmup: int = 1, ours_sync: Callable[[Any], Any] = jax_sync,
            baseline_sync: Callable[[Any], Any] = torch_sync, unit: str = 'call',
            work_per_call: float = 1.0, details: dict | None = None) -> dict:
    """Times `ours` and `baseline` alternately; returns medians (s), the ratio and throughput."""
    first_call = _timed(ours, ours_sync)
    for _ in range(warmup):
        _timed(ours, ours_sync)
        _timed(baseline, baseline_sync)
    ours_t, base_t = [], []
    for _ in range(repeats):
        ours_t.append(_timed(ours, ours_sync))
        base_t.append(_timed(baseline, baseline_sync))
    ours_med, base_med = statistics.median(ours_t), statistics.median(base_t)
    return {
        'name': name,
        'ours_median_s': ours_med,
        'baseline_median_s': base_med,
        'speedup': base_med / ours_med,
        'ours_per_s': work_per_call / ours_med,
        'baseline_per_s': work_per_call / base_med,
        'unit': unit,
        'ours_first_call_s': first_call,
        'repeats': repeats,
        'ours_all_s': ours_t,
        'baseline_all_s': base_t,
        **(details or {}),
    }


def matmul_peak(n: int = 1024, repeats: int = 5) -> dict:
    """Measured float32 matmul GFLOP/s of XLA (jax) and of torch on this machine."""
    import jax
    import jax.numpy as jnp
    import torch

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    ja = jnp.asarray(a)
    jmm = jax.jit(lambda x: x @ x)
    jax_sync(jmm(ja))
    ta = torch.from_numpy(a)
    flops = 2.0 * n**3
    jt = min(_timed(lambda: jmm(ja), jax_sync) for _ in range(repeats))
    tt = min(_timed(lambda: ta @ ta, torch_sync) for _ in range(repeats))
    return {'matmul_n': n, 'xla_gflops': flops / jt / 1e9, 'torch_gflops': flops / tt / 1e9}


# /proc/cpuinfo flags worth naming next to a speed figure (the vector and matrix units XLA and torch use).
ISA_FLAGS = {'avx2': 'AVX2', 'fma': 'FMA', 'avx512f': 'AVX-512', 'avx512_vnni': 'AVX-512 VNNI',
             'avx512_bf16': 'AVX-512 BF16', 'avx512_fp16': 'AVX-512 FP16', 'amx_tile': 'AMX', 'amx_bf16': 'AMX-BF16',
             'amx_int8': 'AMX-INT8', 'asimd': 'NEON', 'sve': 'SVE'}


def cpu_info(path: str = '/proc/cpuinfo') -> dict:
    """The CPU model and the ISA extensions of ISA_FLAGS it has (from /proc/cpuinfo; empty elsewhere)."""
    model, flags = '', set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(':')
                key = key.strip()
                if key in ('model name', 'Model', 'cpu model') and not model:
                    model = value.strip()
                elif key in ('flags', 'Features') and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {'cpu_model': model or platform.processor() or platform.machine(),
            'isa': [name for flag, name in ISA_FLAGS.items() if flag in flags]}


def gpu_info() -> list[str]:
    """'name, driver' of each NVIDIA GPU (nvidia-smi), else the accelerators jax sees, else []."""
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        gpus = [line.strip().replace(', ', ', driver ') for line in out.splitlines() if line.strip()]
        if gpus:
            return gpus
    except (OSError, subprocess.SubprocessError):
        pass
    import jax

    return [f'{d.device_kind} ({d.platform})' for d in jax.devices() if d.platform != 'cpu']


@functools.cache
def machine() -> dict:
    """What the numbers were measured on: CPU, cores, GPU, library versions."""
    import flax
    import jax
    import jaxlib
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        'platform': platform.platform(),
        'processor': platform.processor() or platform.machine(),
        **cpu_info(),
        'cpu_count': os.cpu_count(),
        'usable_cores': usable,
        'gpus': gpu_info(),
        'jax': jax.__version__,
        'jaxlib': jaxlib.__version__,
        'flax': flax.__version__,
        'jax_devices': [str(d) for d in jax.devices()],
        'torch': torch.__version__,
        'torch_cuda': torch.version.cuda or '',
        'torch_threads': torch.get_num_threads(),
    }


def machine_line(about: dict, date: str, command: str) -> str:
    """One sentence: when, on what (CPU model, ISA, cores, GPU), with which versions and which command."""
    isa = f"; {', '.join(about['isa'])}" if about.get('isa') else ''
    where = f"{about['cpu_model']} ({about['usable_cores']} cores{isa})"
    if about.get('gpus'):
        where += ' with ' + ', '.join(about['gpus'])
    return (f"Measured {date} on {where}; jax {about['jax']}, jaxlib {about['jaxlib']}, flax {about['flax']}, "
            f"torch {about['torch']}; `{command}`.")


def same_network(ours: Any, theirs: Any, *, rtol: float = 1e-3, what: str = 'outputs') -> dict:
    """Checks that ours and the baseline agree: max |ours - theirs| <= rtol * max(1, max |ours|).

    Raises AssertionError ('same network: max abs difference ...') otherwise; returns the record that goes
    into each result row (`details={'same_network': ...}`)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        raise AssertionError(f'same network: {what} of shapes {ours.shape} (ours) and {theirs.shape} (baseline)')
    difference = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    scale = float(np.max(np.abs(ours))) if ours.size else 0.0
    tolerance = rtol * max(1.0, scale)
    print(f'same network ({what}): max |ours - baseline| = {difference:.2e} (scale {scale:.3g}, '
          f'tolerance {tolerance:.2e})')
    if not difference <= tolerance:
        raise AssertionError(f'same network: max abs difference {difference:.3g} of {what} exceeds {tolerance:.3g}')
    return {'what': what, 'max_abs_difference': difference, 'scale': scale, 'tolerance': tolerance, 'passed': True}


def merge_checks(*checks: dict) -> dict:
    """Several `same_network` records as one (passed when all passed)."""
    return {'passed': all(c['passed'] for c in checks), 'checks': list(checks)}


def benchmark_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags every benchmark takes: --tiny, --out, --no-readme."""
    parser.add_argument('--tiny', action='store_true',
                        help='seconds-sized run for CI (checks still run; never writes the README)')
    parser.add_argument('--out', default='', help=f'folder for NAME.json and NAME.md (default {RESULTS_DIR})')
    parser.add_argument('--no-readme', action='store_true', help="leave README.md's table alone")
    return parser


def one_torch_thread_if_tiny(tiny: bool) -> None:
    """A --tiny run uses one torch thread: on a busy CI machine PyTorch's OpenMP threads wait on each other for
    the cores (measured under load: the tutorial U-Net's 10 Euler-Maruyama steps at batch 4 take 4.2 s on two
    threads, 0.045 s on one). `python -m benchmarks` restores the count after each benchmark."""
    if tiny:
        import torch

        torch.set_num_threads(1)


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parses argv with the standard flags added (see one_torch_thread_if_tiny for --tiny's threads)."""
    args = benchmark_arguments(parser).parse_args(argv)
    one_torch_thread_if_tiny(args.tiny)
    return args


def chosen_cases(parser: argparse.ArgumentParser, text: str, known: dict) -> list[str]:
    """The comma-separated names of a `--cases` flag, in their order; one usage error if any is unknown or none
    is given."""
    cases = [c for c in text.split(',') if c]
    unknown = sorted(set(cases) - set(known))
    if unknown or not cases:
        parser.error(f'unknown cases {unknown}; known: {", ".join(known)}')
    return cases


def record_from_args(name: str, results: list[dict], command: str, args: argparse.Namespace) -> str:
    """`record` as the standard flags say (a --tiny run never touches the README)."""
    return record(name, results, command + (' --tiny' if args.tiny and '--tiny' not in command else ''),
                  update_readme=not (args.tiny or args.no_readme), results_dir=args.out or None,
                  peak_n=256 if args.tiny else 1024)


def median_wall(fn: Callable[[], Any], sync: Callable[[Any], Any], calls: int) -> float:
    """Median seconds of `calls` calls of `fn`, each waited for with `sync` (no warm-up: warm `fn` up first)."""
    return float(np.median([_timed(fn, sync) for _ in range(calls)]))


def save_table(out_dir: str, name: str, record: dict, table: str) -> None:
    """Writes `record` to <out_dir>/<name>.json and `table` to <out_dir>/<name>.md, and prints the table (the
    benchmarks whose results are not `compare` rows: conv_kernels, profile_ops)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f'{name}.json'), 'w') as f:
        json.dump(record, f, indent=2)
    with open(os.path.join(out_dir, f'{name}.md'), 'w') as f:
        f.write(table + '\n')
    print(table)


def markdown_table(results: list[dict], peak: dict) -> str:
    """A Markdown table of `compare` results with the machine's matmul peak underneath."""
    lines = ['| benchmark | ours (median) | PyTorch (median) | speedup (PyTorch time / ours) | '
             'ours first call (compile) |', '|---|---|---|---|---|']
    for r in results:
        lines.append(f"| {r['name']} | {r['ours_median_s']:.4g} s ({r['ours_per_s']:.4g} {r['unit']}/s) | "
                     f"{r['baseline_median_s']:.4g} s ({r['baseline_per_s']:.4g} {r['unit']}/s) | "
                     f"{r['speedup']:.2f}x | {r['ours_first_call_s']:.3g} s |")
    lines.append('')
    lines.append(f"float32 matmul peak on this machine ({peak['matmul_n']}^2): XLA "
                 f"{peak['xla_gflops']:.1f} GFLOP/s, torch {peak['torch_gflops']:.1f} GFLOP/s.")
    return '\n'.join(lines)


def record(name: str, results: list[dict], command: str, update_readme: bool = True, results_dir: str | None = None,
           peak_n: int = 1024) -> str:
    """Writes <results_dir>/<name>.json and <name>.md (default RESULTS_DIR) and refreshes the README's table."""
    results_dir = results_dir or RESULTS_DIR
    peak = matmul_peak(peak_n)
    os.makedirs(results_dir, exist_ok=True)
    payload = {'name': name, 'command': command, 'machine': machine(), 'matmul_peak': peak,
               'results': results, 'date': time.strftime('%Y-%m-%d')}
    with open(os.path.join(results_dir, f'{name}.json'), 'w') as f:
        json.dump(payload, f, indent=2)
    table = markdown_table(results, peak)
    table += '\n\n' + machine_line(payload['machine'], payload['date'], command)
    with open(os.path.join(results_dir, f'{name}.md'), 'w') as f:
        f.write(table + '\n')
    if update_readme:
        replace_readme_table(name, table)
    print(table)
    return table


def replace_readme_table(name: str, table: str, readme: str | None = None) -> bool:
    """Puts `table` between README's `<!-- bench:NAME -->` markers (of README.md unless `readme` is given); False
    where the file or the markers are absent."""
    readme = readme or README
    if not os.path.exists(readme):
        return False
    with open(readme) as f:
        text = f.read()
    pattern = re.compile(rf'(<!-- bench:{re.escape(name)} -->\n).*?(<!-- /bench:{re.escape(name)} -->)', re.S)
    if not pattern.search(text):
        return False
    with open(readme, 'w') as f:
        f.write(pattern.sub(lambda m: m.group(1) + table + '\n' + m.group(2), text))
    return True
