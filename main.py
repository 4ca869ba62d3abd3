"""Runs an experiment: `python main.py --config configs/<file>.py --workdir runs/<name> --mode train`.

The config's `family` field names the package that runs it (sde_jax, ldm_jax or zsl_jax); each
family's `modes.MODES` maps mode names to gen_runtime.modes.Mode, which gen_runtime.modes.run_mode checks
and runs. This file parses flags and turns the errors a user can fix into one `error:` line.
"""

import logging
import re
import sys
import warnings
from collections.abc import Sequence

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from gen_runtime.errors import Preempted, UserError

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, `path.py` or `path.py:variant`; fields can be '
    'overridden with --config.<section>.<field>=<value>.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder of the run: config, checkpoints, metrics, '
                               'samples. Rerunning with the same workdir resumes.')
HELP_FLAGS = ('--help', '--helpfull', '-h', '-?', '--helpshort')


def _mode_help() -> str:
    """Every family's modes for --help (read from their modes.py, not imported), else a pointer to them."""
    if not any(arg in HELP_FLAGS for arg in sys.argv):
        return 'What to do; the modes depend on the config\'s family (python main.py --help lists them).'
    from gen_runtime.modes import modes_help

    return 'What to do; the modes depend on the config\'s family:\n' + modes_help()


_MODE = flags.DEFINE_string('mode', 'train', _mode_help())

OUR_PACKAGES = ('gen_runtime', 'sde_jax', 'ldm_jax', 'zsl_jax')
EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 143  # 128 + SIGTERM, as if the signal had ended the process
EXIT_INTERRUPTED = 130  # 128 + SIGINT


def fail(message: str) -> None:
    """Prints a one-line error and exits with EXIT_USER_ERROR. A write the error interrupted (orbax's async
    checkpoint save, say) may leave a coroutine never awaited; Python would report it at shutdown, after the
    error line, so that warning is silenced on this path (the error line says what happened)."""
    print(f'error: {message}', file=sys.stderr)
    warnings.filterwarnings('ignore', message=r"coroutine '.*' was never awaited", category=RuntimeWarning)
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
    from gen_runtime.modes import run_mode  # jax loads here, after the flags are read

    try:
        run_mode(_CONFIG.value, _WORKDIR.value, _MODE.value)
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
