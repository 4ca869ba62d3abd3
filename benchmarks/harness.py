"""The one harness every benchmark uses: ours against a PyTorch baseline, alternately, in one process.

`compare` times the first call of ours separately (JAX compile time), warms both up, then alternates
ours and the baseline `repeats` times on the same inputs and reports medians and the ratio
baseline/ours (> 1 means ours is faster). `matmul_peak` measures what this machine's float32 matmul
reaches under XLA and under torch, so each figure can be read against the limit. `record` writes a
JSON file and a Markdown table under benchmarks/results/ and refreshes that table in README.md
between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`.
"""

import json
import os
import platform
import re
import statistics
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


def machine() -> dict:
    """What the numbers were measured on."""
    import jax
    import torch

    return {
        'platform': platform.platform(),
        'processor': platform.processor() or platform.machine(),
        'cpu_count': os.cpu_count(),
        'jax': jax.__version__,
        'jax_devices': [str(d) for d in jax.devices()],
        'torch': torch.__version__,
        'torch_threads': torch.get_num_threads(),
    }


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


def record(name: str, results: list[dict], command: str, update_readme: bool = True) -> str:
    """Writes results/<name>.json and results/<name>.md and refreshes the README's table."""
    peak = matmul_peak()
    os.makedirs(RESULTS_DIR, exist_ok=True)
    payload = {'name': name, 'command': command, 'machine': machine(), 'matmul_peak': peak,
               'results': results, 'date': time.strftime('%Y-%m-%d')}
    with open(os.path.join(RESULTS_DIR, f'{name}.json'), 'w') as f:
        json.dump(payload, f, indent=2)
    table = markdown_table(results, peak)
    table += f"\n\nMeasured {payload['date']} on {payload['machine']['cpu_count']} CPU cores " \
             f"({payload['machine']['processor']}) with `{command}`."
    with open(os.path.join(RESULTS_DIR, f'{name}.md'), 'w') as f:
        f.write(table + '\n')
    if update_readme and os.path.exists(README):
        with open(README) as f:
            text = f.read()
        pattern = re.compile(rf'(<!-- bench:{re.escape(name)} -->\n).*?(<!-- /bench:{re.escape(name)} -->)', re.S)
        if pattern.search(text):
            text = pattern.sub(lambda m: m.group(1) + table + '\n' + m.group(2), text)
            with open(README, 'w') as f:
                f.write(text)
    print(table)
    return table
