"""Where the time goes in the convolutional networks: ours per HLO instruction (XLA:CPU's own trace events)
beside PyTorch's profiler per aten operator, on the same network and step, grouped into the same categories.

    python -m benchmarks.profile_ops [--cases tutorial_forward,tutorial_training,latent_forward,latent_training]
        [--calls 5] [--tiny] [--out DIR]

Cases (the networks and steps of the README's convolutional rows, built by those benchmarks, so the same
weights and inputs, checked equal before anything is timed):
- tutorial_forward: the MNIST tutorial U-Net's forward pass at batch 16 (one step of the sde_sampling row).
- tutorial_training: its training step at batch 32 (the sde_training row).
- latent_forward: the 5M latent UNet's forward pass at batch 4, 64x64x3 (one step of the ldm_unet DDIM row).
- latent_training: its training step at batch 8 (the ldm_unet training row).

Ours: `jax.profiler.trace` around `--calls` calls of the jitted step, compiled with XLA's YNNPACK convolutions
(its default; the library selects Eigen's, gen_runtime.xla_cpu, whose work runs on Eigen's thread pool outside
XLA's trace events, so for the library's step only the wall time is given), after a warm-up; XLA:CPU records one event
per executed instruction (thunk) under its own names (`ynn_fusion.20`, `concatenate.8`), which the optimised
HLO (`compiled.as_text()`) maps to an opcode and, for fusions, to what they contain. Theirs:
`torch.profiler.profile` around the same number of calls, self CPU time per aten operator. Both are grouped into
convolution (with its backward), matmul, normalisation and reductions, elementwise, data movement (copies,
concatenation, padding, slicing, transposes, broadcasts) and other. XLA's flop count of the step
(`cost_analysis`) divided by each side's time gives its GFLOP/s, read against the measured matmul peak.
Writes DIR/profile_ops.json and DIR/profile_ops.md (default benchmarks/results); `--tiny` (CI) runs every
case at the smallest sizes, one call each.
"""

import argparse
import collections
import functools
import glob
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks.conv_kernels import XLA_PATHS
from benchmarks.harness import (
    RESULTS_DIR,
    chosen_cases,
    jax_sync,
    machine,
    machine_line,
    matmul_peak,
    median_wall,
    save_table,
    torch_sync,
)

CATEGORIES = ('convolution', 'matmul', 'normalisation and reductions', 'elementwise', 'data movement', 'other')
# Instructions that only run others (their events would count their children's time twice).
CONTROL = {'while', 'call', 'conditional', 'parameter', 'constant', 'tuple', 'get-tuple-element', 'bitcast'}
MOVEMENT = {'copy', 'transpose', 'concatenate', 'pad', 'slice', 'dynamic-slice', 'dynamic-update-slice',
            'broadcast', 'reshape', 'gather', 'scatter', 'reverse', 'iota'}
_INSTRUCTION = re.compile(r'^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*.*?\s([a-z][a-z0-9\-]*)\((.*)$')
_COMPUTATION = re.compile(r'^\s*(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$')


def hlo_categories(hlo_text: str) -> dict[str, str]:
    """Instruction name -> category, from the optimised HLO: a fusion is a convolution or matmul if it
    contains one, a reduction if it reduces, data movement if it only moves data, else elementwise."""
    computations: dict[str, list[tuple[str, str, str]]] = collections.defaultdict(list)
    current = ''
    for line in hlo_text.splitlines():
        head = _COMPUTATION.match(line)
        if head and '=' not in line.split('{')[0]:
            current = head.group(1)
            continue
        match = _INSTRUCTION.match(line)
        if match:
            computations[current].append(match.groups())

    def opcodes(computation: str, seen: frozenset = frozenset()) -> set[str]:
        found = set()
        for _, opcode, rest in computations.get(computation, []):
            found.add(opcode)
            for called in re.findall(r'(?:calls|to_apply|body|condition)=%?([\w.\-]+)', rest):
                if called not in seen:
                    found |= opcodes(called, seen | {computation})
        return found

    def category(opcode: str, inside: set[str]) -> str:
        ops = inside | {opcode}
        if 'convolution' in ops:
            return 'convolution'
        if 'dot' in ops:
            return 'matmul'
        if ops & {'reduce', 'reduce-window'}:
            return 'normalisation and reductions'
        if opcode in MOVEMENT or (opcode == 'fusion' and inside - {'parameter', 'constant', 'tuple', 'bitcast'}
                                  <= MOVEMENT):
            return 'data movement'
        if opcode in {'fusion', 'add', 'multiply', 'subtract', 'divide', 'exponential', 'logistic', 'tanh',
                      'maximum', 'minimum', 'select', 'compare', 'sqrt', 'rsqrt', 'convert', 'negate', 'power'}:
            return 'elementwise'
        return 'other'

    names = {}
    for instructions in computations.values():
        for name, opcode, rest in instructions:
            if opcode in CONTROL:
                continue
            inside = set()
            for called in re.findall(r'calls=%?([\w.\-]+)', rest):
                inside |= opcodes(called)
            names[name] = category(opcode, inside)
    return names


def torch_category(op: str) -> str:
    """The category of an aten operator by its name."""
    name = op.split('::')[-1]
    if 'conv' in name:
        return 'convolution'
    if name in {'mm', 'addmm', 'bmm', 'baddbmm', 'matmul', 'linear', 'dot', 'scaled_dot_product_attention',
                '_scaled_dot_product_flash_attention_for_cpu'}:
        return 'matmul'
    if any(k in name for k in ('norm', 'sum', 'mean', 'var', 'std', 'softmax', 'max', 'min')):
        return 'normalisation and reductions'
    if any(k in name for k in ('cat', 'copy', 'clone', 'contiguous', 'permute', 'pad', 'slice', 'index', 'to',
                               'empty', 'zero', 'expand', 'view', 'reshape', 'transpose', 'upsample', 'stack',
                               'narrow', 'select', 'as_strided', 'fill', 'resize', 'split', 'chunk', 'unsqueeze')):
        return 'data movement'
    if any(k in name for k in ('silu', 'mul', 'add', 'div', 'sub', 'exp', 'sqrt', 'sigmoid', 'pow', 'foreach', 'neg',
                               'sin', 'cos', 'rsub', 'lerp', 'where', 'abs', 'randn', 'rand', 'normal', 'sign')):
        return 'elementwise'
    return 'other'


def profile_ours(step: Callable[[], Any], calls: int) -> dict[str, float]:
    """Seconds per call by instruction name (XLA:CPU's trace events under jax.profiler)."""
    jax_sync(step())
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(calls):
                jax_sync(step())
        path = glob.glob(os.path.join(folder, '**', '*.xplane.pb'), recursive=True)[0]
        data = jax.profiler.ProfileData.from_file(path)
    seconds: collections.Counter = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            if line.name.startswith('tf_XLA'):  # the threads that run XLA's thunks
                for event in line.events:
                    seconds[event.name] += event.duration_ns * 1e-9 / calls
    return dict(seconds)


def profile_theirs(step: Callable[[], Any], calls: int) -> dict[str, float]:
    """Self CPU seconds per call by aten operator (torch.profiler)."""
    torch_sync(step())
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            torch_sync(step())
    return {e.key: e.self_cpu_time_total * 1e-6 / calls for e in prof.key_averages() if e.key.startswith('aten::')}


def profile_case(name: str, ours: Callable[[], Any], theirs: Callable[[], Any], lowered: Any, args: tuple,
                 calls: int, check: dict) -> dict:
    """One case: per-category and top-instruction times of both sides, walls, flops and GFLOP/s. Ours is
    profiled with its convolutions on YNNPACK (`lowered` compiled so, called on `args`): the library's Eigen
    convolutions run on Eigen's thread pool outside XLA's trace events, so only their wall time is known."""
    compiled = lowered.compile(compiler_options=XLA_PATHS['YNNPACK'])
    categories = hlo_categories(compiled.as_text())
    cost = compiled.cost_analysis()
    flops = float((cost[0] if isinstance(cost, list) else cost).get('flops', 0.0))
    ours_ynn = functools.partial(compiled, *args)
    ours_ops, theirs_ops = profile_ours(ours_ynn, calls), profile_theirs(theirs, calls)
    ours_wall, ynn_wall = median_wall(ours, jax_sync, calls), median_wall(ours_ynn, jax_sync, calls)
    theirs_wall = median_wall(theirs, torch_sync, calls)
    by_ours: collections.Counter = collections.Counter()
    for op, s in ours_ops.items():
        if op in categories:
            by_ours[categories[op]] += s
    by_theirs: collections.Counter = collections.Counter()
    for op, s in theirs_ops.items():
        by_theirs[torch_category(op)] += s
    top = sorted(((s, op) for op, s in ours_ops.items() if op in categories), reverse=True)[:10]
    top_theirs = sorted(((s, op) for op, s in theirs_ops.items()), reverse=True)[:10]
    return {'name': name, 'calls': calls, 'same_network': check, 'flops': flops,
            'ours_wall_s': ours_wall, 'ours_ynnpack_wall_s': ynn_wall, 'theirs_wall_s': theirs_wall,
            'ours_gflops': flops / ours_wall / 1e9, 'ours_ynnpack_gflops': flops / ynn_wall / 1e9,
            'theirs_gflops': flops / theirs_wall / 1e9,
            'ours_categories_s': {c: by_ours.get(c, 0.0) for c in CATEGORIES},
            'theirs_categories_s': {c: by_theirs.get(c, 0.0) for c in CATEGORIES},
            'ours_top': [(op, categories[op], s) for s, op in top],
            'theirs_top': [(op, torch_category(op), s) for s, op in top_theirs]}


def _tutorial_forward(tiny: bool) -> tuple:
    from benchmarks.sde_sampling import tutorial_pair

    batch = 2 if tiny else 16
    exp, params, torch_model, check, (x, label) = tutorial_pair(batch)
    fn = jax.jit(lambda p, v, s: exp.model.apply({'params': p}, v, s))
    xj, lj = jnp.asarray(x), jnp.asarray(label)
    xt, lt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(label)

    def theirs() -> torch.Tensor:
        with torch.no_grad():
            return torch_model(xt, lt)

    return (f'tutorial U-Net forward, batch {batch}', lambda: fn(params, xj, lj), theirs, fn.lower(params, xj, lj),
            (params, xj, lj), check)


def _tutorial_training(tiny: bool) -> tuple:
    from benchmarks.sde_training import training_pair

    batch = 2 if tiny else 32
    ours, theirs, check, _ = training_pair(batch)
    return (f'tutorial U-Net training step, batch {batch}', ours, theirs, *ours.lowered_with_args(), check)


def _latent_config(tiny: bool) -> Any:
    from configs.ldm import celebahq_ldm_small

    config = celebahq_ldm_small.get_config()
    if tiny:
        config.model.channel_mult = (1, 2)
    return config


def _latent_forward(tiny: bool) -> tuple:
    from benchmarks.ldm_unet import forward_check, training_step_pair

    batch, shape = (1, (16, 16, 3)) if tiny else (4, (64, 64, 3))
    _, _, _, (net, holder, baseline) = training_step_pair(_latent_config(tiny), batch, shape)
    params = holder['state'].params
    check = forward_check(net, params, baseline, batch, shape)
    baseline.eval()
    x = np.random.default_rng(4).standard_normal((batch, *shape)).astype(np.float32)
    t = np.full((batch,), 500, np.int32)
    fn = jax.jit(lambda p, v, s: net.apply({'params': p}, v, s))
    xj, tj = jnp.asarray(x), jnp.asarray(t)
    xt, tt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(t.astype(np.int64))

    def theirs() -> torch.Tensor:
        with torch.no_grad():
            return baseline(xt, tt).sample

    return (f'latent UNet forward, batch {batch}, {shape[0]}x{shape[1]}x3', lambda: fn(params, xj, tj), theirs,
            fn.lower(params, xj, tj), (params, xj, tj), check)


def _latent_training(tiny: bool) -> tuple:
    from benchmarks.ldm_unet import training_step_pair

    batch, shape = (1, (16, 16, 3)) if tiny else (8, (64, 64, 3))
    ours, theirs, _, (_, holder, _) = training_step_pair(_latent_config(tiny), batch, shape)
    return (f'latent UNet training step, batch {batch}, {shape[0]}x{shape[1]}x3', ours, theirs,
            *ours.lowered_with_args(),
            {'what': 'the networks are checked equal by the latent_forward case and benchmarks.ldm_unet'})


CASES = {'tutorial_forward': _tutorial_forward, 'tutorial_training': _tutorial_training,
         'latent_forward': _latent_forward, 'latent_training': _latent_training}


def markdown(rows: list[dict], peak: dict, about: dict, command: str) -> str:
    """The category table (ms per call, both sides) and each case's ten costliest operations."""
    lines = ['| case | side | wall | GFLOP/s | ' + ' | '.join(CATEGORIES) + ' |',
             '|---|---|---|---|' + '---|' * len(CATEGORIES)]
    untraced = ' | '.join(['not traced'] + ['-'] * (len(CATEGORIES) - 1))
    for r in rows:
        lines.append(f"| {r['name']} | ours (XLA, Eigen convolutions: the library's) | {1e3 * r['ours_wall_s']:.1f} "
                     f"ms | {r['ours_gflops']:.0f} | {untraced} |")
        for side, label in (('ours', 'ours (XLA, YNNPACK convolutions), profiled'), ('theirs', 'PyTorch')):
            total = sum(r[f'{side}_categories_s'].values()) or 1.0
            spent = r[f'{side}_categories_s']
            cells = ' | '.join(f'{1e3 * spent[c]:.1f} ({100 * spent[c] / total:.0f}%)' for c in CATEGORIES)
            walls = 'ours_ynnpack' if side == 'ours' else side
            lines.append(f"| {r['name']} | {label} | {1e3 * r[f'{walls}_wall_s']:.1f} ms | "
                         f"{r[f'{walls}_gflops']:.0f} | {cells} |")
    lines += ['', 'Per call and category: milliseconds of operator time (profiled, summed over the threads that ran '
              'the operators: XLA runs independent instructions on both cores at once, so its sum can exceed the '
              'wall time) and the share of that side\'s total. The wall column is unprofiled. GFLOP/s: XLA\'s flop '
              'count of the step over each side\'s wall time; the float32 matmul peak of this machine is XLA '
              f"{peak['xla_gflops']:.0f}, torch {peak['torch_gflops']:.0f} GFLOP/s. Ours is profiled with XLA's "
              'YNNPACK convolutions (its default): the Eigen convolutions the library selects (gen_runtime.xla_cpu) '
              'run on Eigen\'s thread pool outside XLA\'s trace events, so for them only the wall time is given; '
              'the other instructions are the same in both.', '']
    for r in rows:
        lines.append(f"Costliest operations, {r['name']} (ms per call): ours "
                     + ', '.join(f'`{op}` ({cat}) {1e3 * s:.2f}' for op, cat, s in r['ours_top']) + '; PyTorch '
                     + ', '.join(f'`{op}` {1e3 * s:.2f}' for op, _, s in r['theirs_top']) + '.')
        lines.append('')
    lines.append(machine_line(about, time.strftime('%Y-%m-%d'), command))
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', default=','.join(CASES), help=f'comma-separated (default {",".join(CASES)})')
    parser.add_argument('--calls', type=int, default=5, help='profiled calls per side (after one warm-up)')
    parser.add_argument('--tiny', action='store_true', help='smallest sizes, one call (CI)')
    parser.add_argument('--out', default=RESULTS_DIR)
    args = parser.parse_args(argv)
    cases = chosen_cases(parser, args.cases, CASES)
    calls = 1 if args.tiny else args.calls
    rows = []
    for case in cases:
        name, ours, theirs, lowered, case_args, check = CASES[case](args.tiny)
        rows.append(profile_case(name, ours, theirs, lowered, case_args, calls, check))
        print(f"{name}: ours {1e3 * rows[-1]['ours_wall_s']:.1f} ms (YNNPACK convolutions "
              f"{1e3 * rows[-1]['ours_ynnpack_wall_s']:.1f} ms), PyTorch {1e3 * rows[-1]['theirs_wall_s']:.1f} ms",
              flush=True)
    peak, about = matmul_peak(), machine()
    command = ' '.join(['python -m benchmarks.profile_ops', *(argv if argv is not None else sys.argv[1:])])
    save_table(args.out, 'profile_ops', {'command': command, 'machine': about, 'matmul_peak': peak, 'results': rows},
               markdown(rows, peak, about, command))
    return rows


if __name__ == '__main__':
    main(sys.argv[1:])
