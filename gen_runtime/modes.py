"""The run layer every family's `--mode` goes through: check everything, hold the workdir, then work.

A family declares its modes in `<family>/modes.py` as `MODES: dict[str, Mode]`, and the config fields that
may change between invocations on one workdir besides the shared ones as `RUN_INDEPENDENT_FIELDS` (e.g. its
sampling section; see gen_runtime.config.bind_workdir). `run_mode` does what every
mode needs, in this order, so that a mistake is refused before any work and before the workdir changes:
1. every field is in its domain (gen_runtime.domains: the DOMAINS of the config base files), before jax
   and the family load;
2. the mode exists (else the family's modes are listed), then `Mode.check(config)`: every setting the
   mode will read, through the family's own checks (sampling, evaluation and data settings included, so
   that nothing is refused after hours of training);
3. the workdir is created (refusing a file), locked for the run's whole life (gen_runtime.workdir_lock)
   and tied to the config (gen_runtime.config.bind_workdir);
4. `Mode.run(config, workdir)`, which writes its results as gen_runtime.outputs lays them out.
"""

import ast
import contextlib
import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

import ml_collections

from gen_runtime.config import CONFIG_FILE, bind_workdir, first_missing_folder, forget_refused_start, make_workdir
from gen_runtime.domains import FAMILIES, check_domains, check_family, family_defaults, family_domains
from gen_runtime.errors import ConfigError, UserError
from gen_runtime.workdir_lock import hold_workdir

ModeFn = Callable[[ml_collections.ConfigDict, str], None]


def no_check(config: ml_collections.ConfigDict) -> None:
    """For modes whose settings are all checked where they are read, before any work (e.g. file imports)."""


@dataclasses.dataclass(frozen=True)
class Mode:
    """One `--mode` of a family.

    run: (config, workdir) -> None, the work.
    summary: one line for `main.py --help`.
    check: config -> None, raising ConfigError for any setting `run` would refuse; cheap (no data, no
      weights, no compilation).
    """

    run: ModeFn
    summary: str
    check: Callable[[ml_collections.ConfigDict], None] = no_check


def family_table(family: str) -> ModuleType:
    """`<family>.modes`, which holds the family's MODES and RUN_INDEPENDENT_FIELDS."""
    check_family(family)
    return importlib.import_module(f'{family}.modes')


def family_modes(family: str) -> Mapping[str, Mode]:
    """The MODES table of `<family>.modes`."""
    return family_table(family).MODES


def mode_summaries(family: str) -> dict[str, str]:
    """{mode: summary} of `<family>/modes.py`'s MODES, read from its source without importing the family (so
    that `--help` loads neither jax nor any family, and a family that fails to import cannot break it). MODES
    is a dict literal of `Mode(run, 'summary', ...)` calls."""
    check_family(family)
    spec = importlib.util.find_spec(family)  # a top-level package: found, not executed
    source = Path(next(iter(spec.submodule_search_locations)), 'modes.py').read_text()
    table = next(node.value for node in ast.parse(source).body
                 if isinstance(node, ast.AnnAssign) and getattr(node.target, 'id', None) == 'MODES')
    return {ast.literal_eval(key): ast.literal_eval(call.args[1]) for key, call in zip(table.keys, table.values,
                                                                                       strict=True)}


def modes_help() -> str:
    """Each family's modes with their summaries, for `--mode`'s help."""
    lines = []
    for family in FAMILIES:
        lines.append(f'{family}:')
        lines.extend(f'  {name}: {summary}' for name, summary in mode_summaries(family).items())
    return '\n'.join(lines)


def run_mode(config: ml_collections.ConfigDict, workdir: str, name: str) -> None:
    """Checks `config` for mode `name` of its family, then runs it on `workdir`, holding the workdir."""
    check_domains(config, family_domains(config.get('family', '')))
    # Imported once the fields are in their domains, so that such a refusal comes before jax loads.
    import jax

    from gen_runtime.parallel import init_distributed
    from gen_runtime.precision import compute_dtype

    table = family_table(config.family)
    modes = table.MODES
    if name not in modes:
        raise ConfigError(f'unknown --mode {name!r} for family {config.family}; choose one of {", ".join(modes)}')
    mode = modes[name]
    init_distributed(config.runtime)
    compute_dtype(config.runtime.compute_dtype)
    mode.check(config)
    created = first_missing_folder(workdir)
    entries_before = set(os.listdir(workdir)) if os.path.isdir(workdir) else set()
    make_workdir(workdir)
    chief = jax.process_index() == 0
    new_run = not os.path.exists(os.path.join(workdir, CONFIG_FILE))
    try:
        with hold_workdir(workdir) if chief else contextlib.nullcontext():
            bind_workdir(config, workdir, write=chief, run_independent=table.RUN_INDEPENDENT_FIELDS,
                         defaults=family_defaults(config.family))
            mode.run(config, workdir)
    except UserError:  # a new run refused before it wrote anything leaves no trace
        if chief and new_run:
            forget_refused_start(workdir, entries_before, created)
        raise
