"""Imported weights as step 0 of a workdir, with a record of where they came from (`import.json`)."""

import os

import jax
import ml_collections

from gen_runtime.checkpoint import Checkpointer
from gen_runtime.errors import CheckpointError, ConfigError
from gen_runtime.outputs import write_json
from gen_runtime.trainer import CHECKPOINT_DIR, Initialiser

IMPORT_RECORD = 'import.json'


def _layout(tree: object) -> list[tuple[str, tuple[int, ...], str]]:
    return [(jax.tree_util.keystr(path), tuple(leaf.shape), str(leaf.dtype))
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def refuse_existing_checkpoints(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Imports go into a workdir without checkpoints (checked before any file is read)."""
    if not os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)):
        return
    ckpt = Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), config.training.keep_checkpoints)
    steps = ckpt.steps()
    ckpt.close()
    if steps:
        raise ConfigError(f'{workdir} already has checkpoints {steps}; import into a new --workdir')


def save_imported_state(config: ml_collections.ConfigDict, workdir: str, initialiser: Initialiser, state: object,
                        record: dict) -> None:
    """Checks `state` against the state `initialiser` (a TrainTask's init_state) builds, saves it as step 0
    and writes `record` to import.json."""
    expected, got = _layout(jax.eval_shape(initialiser, jax.random.key(0))), _layout(state)
    if got != expected:
        first = next((g, e) for g, e in zip(got + [None], expected + [None], strict=False) if g != e)
        raise CheckpointError(f'the imported state differs from what this config trains ({first[0]} where '
                              f'{first[1]} is expected); check the config against the checkpoint')
    refuse_existing_checkpoints(config, workdir)
    ckpt = Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), config.training.keep_checkpoints)
    ckpt.save(0, state)
    ckpt.close()
    write_json(os.path.join(workdir, IMPORT_RECORD), record)
    print(f'imported {record.get("path")} ({record.get("layout")} layout) as step 0 of {workdir}')
