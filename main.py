"""Runs an experiment: `python main.py --config configs/<file>.py --workdir runs/<name> --mode train`.

The config's `family` field names the package that runs it (sde_jax, ldm_jax or zsl_jax); each
family's `modes.MODES` maps mode names to functions of (config, workdir). This file only parses
flags, checks the config against the workdir and dispatches.
"""

import contextlib
import importlib
import logging
import re
import sys
from collections.abc import Callable, Sequence

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from gen_runtime.config import bind_workdir, make_workdir
from gen_runtime.errors import ConfigError, Preempted, UserError
from gen_runtime.parallel import init_distributed
from gen_runtime.workdir_lock import hold_workdir

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, `path.py` or `path.py:variant`; fields can be '
    'overridden with --config.<section>.<field>=<value>.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder of the run: config, checkpoints, metrics, '
                               'samples. Rerunning with the same workdir resumes.')
_MODE = flags.DEFINE_string('mode', 'train', 'What to do; the modes depend on the family '
                            '(sde_jax: train, sample, likelihood, eval).')

OUR_PACKAGES = ('gen_runtime', 'sde_jax', 'ldm_jax', 'zsl_jax')
EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 143  # 128 + SIGTERM, as if the signal had ended the process
EXIT_INTERRUPTED = 130  # 128 + SIGINT


def fail(message: str) -> None:
    """Prints a one-line error and exits with EXIT_USER_ERROR."""
    print(f'error: {message}', file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def _unknown_field_message(error: AttributeError | KeyError) -> str:
    """One line for ml_collections' error on a field that a locked config does not have."""
    text = str(error).replace('\\n', ' ').replace('\\', '')
    key = re.search(r'Key "([^"]+)" does not exist', text) or re.search(r"'([\w.]+)'", text)
    hint = re.search(r'Did you mean "([^"]+)"', text)
    name = key.group(1) if key else '?'
    return (f'config field {name!r} does not exist (in the config file or a --config.* flag)'
            + (f'; did you mean {hint.group(1)!r}?' if hint else '; see the family base config for the fields'))


def _config_path(argv: Sequence[str]) -> str:
    """The --config value as written on the command line (before flags are parsed)."""
    for i, arg in enumerate(argv):
        if arg == '--config' and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith('--config='):
            return arg.split('=', 1)[1]
    return '?'


def parse_flags(argv: Sequence[str]) -> list[str]:
    """absl flag parsing with every mistake reported on one line."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        if 'Error whilst parsing config file' in lines[0] and len(lines) > 1:
            fail(f'{lines[0].split(": Error whilst")[0]}: the config file raised {lines[-1]}')
        fail(' '.join(lines[0].split()) + ' (see --helpfull)')
    except (AttributeError, KeyError) as e:
        if "has no attribute 'get_config'" in str(e):
            fail(f'the config file {_config_path(argv)} defines no get_config(); a config file defines '
                 'get_config() returning its ConfigDict (start from a family base, e.g. configs/sde/base.py)')
        fail(_unknown_field_message(e))
    except SyntaxError as e:
        fail(f'the config file {e.filename} has a syntax error at line {e.lineno}: {e.msg}; fix the file')


def family_modes(config: ml_collections.ConfigDict) -> dict[str, Callable[[ml_collections.ConfigDict, str], None]]:
    """The MODES table of the package the config's `family` names."""
    family = config.get('family', '')
    if not family:
        raise ConfigError("the config sets no 'family'; configs must start from a family base file")
    try:
        module = importlib.import_module(f'{family}.modes')
    except ModuleNotFoundError as e:
        raise ConfigError(f'family {family!r} is not installed ({e}); expected sde_jax, ldm_jax or zsl_jax') from e
    return module.MODES


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> None:
    """Dispatches `mode` of the config's family on `workdir`."""
    modes = family_modes(config)
    if mode not in modes:
        raise ConfigError(f'unknown --mode {mode!r} for family {config.family}; choose one of '
                          f'{", ".join(sorted(modes))}')
    init_distributed(config.runtime)
    import jax

    make_workdir(workdir)
    chief = jax.process_index() == 0
    with hold_workdir(workdir) if chief else contextlib.nullcontext():
        bind_workdir(config, workdir, write=chief)
        modes[mode](config, workdir)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        fail(f'unexpected arguments {" ".join(argv[1:])}; flags are written --name=value')
    if _CONFIG.value is None or not isinstance(_CONFIG.value, ml_collections.ConfigDict):
        path = config_flags.get_config_filename(flags.FLAGS['config']) if _CONFIG.value is not None else None
        fail(f'config file {path!r} does not exist; pass --config configs/<file>.py' if path else
             '--config is required: pass --config configs/<file>.py')
    if not _WORKDIR.value:
        fail('--workdir is required: the folder that holds (or will hold) this run')
    logging.getLogger().setLevel(logging.WARNING)  # libraries (orbax, tfds) only warn
    for package in OUR_PACKAGES:
        logging.getLogger(package).setLevel(logging.INFO)
    try:
        run(_CONFIG.value, _WORKDIR.value, _MODE.value)
    except Preempted as e:
        print(str(e), file=sys.stderr)
        sys.exit(EXIT_PREEMPTED)
    except KeyboardInterrupt:
        print('error: interrupted (Ctrl-C); what was saved is kept, and the same command resumes', file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except UserError as e:
        fail(' '.join(str(e).split()))
    except OSError as e:  # the machine's, not the run's: disk full, permissions, a vanished file
        where = f' ({e.filename})' if e.filename else ''
        fail(f'{e.strerror or e}{where}; free disk space or fix the path and permissions, then run the same '
             'command again (it resumes from the last checkpoint)')


if __name__ == '__main__':
    app.run(main, flags_parser=parse_flags)
