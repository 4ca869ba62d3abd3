"""Checkpoints with orbax: periodic atomic saves, keep-N, resume from the newest readable one.

A newest checkpoint that cannot be read (a partial copy, a truncated file) is moved aside into
`<directory>.unreadable/` with a warning, and the previous one is used: nothing is deleted.
"""

import logging
import os
import shutil
import time
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from gen_runtime.errors import CheckpointError

log = logging.getLogger(__name__)


class Checkpointer:
    """Saves and restores `{'step': int, 'state': pytree}` under one directory."""

    def __init__(self, directory: str, keep: int = 3) -> None:
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self._manager = self._open()

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
        self._manager.save(step, args=ocp.args.StandardSave({'state': state}), force=True)

    def restore_latest(self, target: Any) -> tuple[int, Any] | None:
        """The newest readable checkpoint as (step, state), or None if there is none.

        `target` is a state of the right structure, shapes and shardings (e.g. a freshly
        initialised one). Unreadable newer checkpoints are moved aside with a warning.
        """
        steps = self.steps()
        unreadable = []
        for step in reversed(steps):
            try:
                restored = self._manager.restore(step, args=ocp.args.StandardRestore({'state': target}))
            except Exception as e:  # noqa: BLE001 - any failure to read means: try the previous one
                reason = ' '.join(str(e).split())[:200]
                log.warning('checkpoint at step %d in %s is unreadable (%s: %s)', step,
                            self.directory, type(e).__name__, reason)
                unreadable.append(step)
                continue
            if unreadable:
                self._move_aside(unreadable)
                log.warning('resumed from the previous good checkpoint, step %d; unreadable ones '
                            'were moved to %s.unreadable/', step, self.directory)
            return step, restored['state']
        if steps:
            raise CheckpointError(
                f'none of the checkpoints {steps} in {self.directory} can be read; move the folder '
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
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
