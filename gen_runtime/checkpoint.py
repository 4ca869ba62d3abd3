"""Checkpoints with orbax: periodic atomic saves, keep-N, resume from the newest readable one.

A newest checkpoint that cannot be read (a partial copy, a truncated file) is moved aside into
`<directory>.unreadable/` with a warning, and the previous one is used: nothing is deleted. A failed
read or write leaves TensorStore operations in flight whose callbacks land on orbax's closed event
loop; their "Event loop is closed" and "exception was never retrieved" reports (hundreds of
tracebacks) are dropped, so the fallback prints one warning line and nothing else.

A save that fails for a reason of the machine (disk full, file too large, permissions) raises an
OSError naming the errno and the folder, and orbax's own error records of it are not printed (they are
many tracebacks from its background threads); the checkpoints already on disk are untouched, and a
partial save is removed when the folder is next opened.
"""

import contextlib
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from gen_runtime.errors import CheckpointError

log = logging.getLogger(__name__)


def _is_abandoned_read_report(exc: BaseException | None, message: str = '') -> bool:
    text = f'{message} {exc}'
    return any(mark in text for mark in ('Event loop is closed', 'DATA_LOSS', 'os_error_code'))


class _AbandonedReadFilter(logging.Filter):
    """Drops asyncio's 'exception was never retrieved' records of reads a failed restore abandoned."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        return not ('never retrieved' in message and _is_abandoned_read_report(exc, message))


def _quiet_abandoned_reads() -> None:
    """Once per process: drop the reports that reads and writes abandoned by a failed restore or save make
    later, from TensorStore's threads (only those: every other unraisable exception is reported)."""
    if getattr(sys.unraisablehook, 'quiet_abandoned_reads', False):
        return
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not _is_abandoned_read_report(unraisable.exc_value):
            previous(unraisable)

    hook.quiet_abandoned_reads = True
    sys.unraisablehook = hook
    logging.getLogger('asyncio').addFilter(_AbandonedReadFilter())


class _OrbaxErrorFilter(logging.Filter):
    """Drops orbax's error records (background-thread tracebacks): the Checkpointer raises their errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and f'{os.sep}orbax{os.sep}' in record.pathname)


def _quiet_orbax_errors() -> None:
    absl = logging.getLogger('absl')
    if not any(isinstance(f, _OrbaxErrorFilter) for f in absl.filters):
        absl.addFilter(_OrbaxErrorFilter())


def _machine_error(e: BaseException, directory: str) -> OSError | None:
    """The OSError behind a failed orbax write (TensorStore reports it as `os_error_code=N`), if any."""
    if isinstance(e, OSError):
        return e
    code = re.search(r"os_error_code='?(\d+)", str(e))
    return OSError(int(code.group(1)), os.strerror(int(code.group(1))), directory) if code else None


class Checkpointer:
    """Saves and restores `{'step': int, 'state': pytree}` under one directory."""

    def __init__(self, directory: str, keep: int = 3) -> None:
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self._failed = False
        _quiet_orbax_errors()
        _quiet_abandoned_reads()
        self._manager = self._open()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turns a failed write into the OSError of the machine, once; later calls do nothing."""
        try:
            yield
        except Exception as e:
            error = _machine_error(e, self.directory)
            if error is None:
                raise
            self._failed = True
            with contextlib.suppress(Exception):
                self._manager.close()
            raise error from e

    def _open(self) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True,
                                               cleanup_tmp_directories=True)
        return ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """Steps that have a checkpoint on disk, oldest first."""
        return list(self._manager.all_steps())

    def save(self, step: int, state: Any) -> None:
        """Saves `state` at `step` (asynchronously; `wait` or `close` to be sure it is written)."""
        if step in self._manager.all_steps():
            return
        with self._writing():
            self._manager.save(step, args=ocp.args.StandardSave({'state': state}), force=True)

    def restore_latest(self, target: Any) -> tuple[int, Any] | None:
        """The newest readable checkpoint as (step, state), or None if there is none.

        `target` is a state of the right structure, shapes and shardings (e.g. a freshly
        initialised one). Unreadable newer checkpoints are moved aside with a warning.
        """
        steps = self.steps()
        unreadable, reason = [], ''
        for step in reversed(steps):
            try:
                restored = self._manager.restore(step, args=ocp.args.StandardRestore({'state': target}))
            except Exception as e:  # noqa: BLE001 - any failure to read means: try the previous one
                reason = reason or f'{type(e).__name__}: ' + ' '.join(str(e).split())[:160]
                unreadable.append(step)
                continue
            if unreadable:
                self._move_aside(unreadable)
                log.warning('checkpoint at step %s in %s is unreadable (%s); moved to %s.unreadable/, using the '
                            'previous good checkpoint, step %d', ', '.join(map(str, unreadable)), self.directory,
                            reason, self.directory, step)
            return step, restored['state']
        if steps:
            raise CheckpointError(
                f'none of the checkpoints {steps} in {self.directory} can be read ({reason}); move the folder '
                'away to start over, or restore a good copy')
        return None

    def _move_aside(self, steps: list[int]) -> None:
        self._manager.close()
        if jax.process_index() == 0:
            quarantine = self.directory + '.unreadable'
            os.makedirs(quarantine, exist_ok=True)
            for step in steps:
                dest = os.path.join(quarantine, f'{step}-{time.strftime("%Y%m%d-%H%M%S")}')
                shutil.move(os.path.join(self.directory, str(step)), dest)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices('checkpoint_move_aside')
        self._manager = self._open()

    def wait(self) -> None:
        """Blocks until pending saves are on disk."""
        if self._failed:
            return
        with self._writing():
            self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        if self._failed:
            return
        with self._writing():
            self._manager.wait_until_finished()
            self._manager.close()
