"""Errors a user can fix: each message says what went wrong and what to do.

Math modules (SDEs, samplers, schedules, losses, networks) raise plain ValueError worded in their own
parameter names (`num_steps=1000 is more DDIM steps than the 100 timesteps`); the code that reads the
config calls them inside `config_terms(section_name, section)`, which turns that into a ConfigError
naming the config field (`sampling.num_steps=1000 ...`).
"""

import contextlib
import re
from collections.abc import Container, Iterator


class UserError(Exception):
    """A problem with the user's input (config, files, data); `main.py` prints it on one line."""


class ConfigError(UserError):
    """A config that cannot run: an unknown key, a bad value, a workdir of another run."""


class DataError(UserError):
    """A data file or folder that is missing or not in the expected format."""


class CheckpointError(UserError):
    """No readable checkpoint where one is needed."""


class NonFiniteError(UserError):
    """A loss or metric became NaN or Inf during training."""


class Preempted(Exception):
    """Training stopped on SIGTERM after saving a checkpoint; the same command resumes it."""


@contextlib.contextmanager
def config_terms(section_name: str, fields: Container[str]) -> Iterator[None]:
    """Inside the block, a ValueError becomes a ConfigError whose `name=` words that are fields of the
    section (e.g. a config section's ConfigDict) read `section_name.name=`."""
    try:
        yield
    except ValueError as e:
        def qualify(match: re.Match) -> str:
            return f'{section_name}.{match.group(1)}=' if match.group(1) in fields else match.group(0)

        raise ConfigError(re.sub(r'(?<![\w.])([a-z_][a-z0-9_]*)=', qualify, str(e))) from e
