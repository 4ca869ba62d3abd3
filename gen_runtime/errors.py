"""Errors a user can fix: each message says what went wrong and what to do."""


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
