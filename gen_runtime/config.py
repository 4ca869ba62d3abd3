"""Loading configs, checking them, and tying a workdir to the config of the run it holds."""

import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_collections

from gen_runtime.errors import ConfigError
from gen_runtime.workdir_lock import LOCK_FILE

log = logging.getLogger(__name__)

# Fields of the shared sections (configs/common.py) that may differ between invocations on one workdir
# without making it another run: how long to train, how often to log, where the data lies, the runtime,
# and the evaluation of samples. Each family adds its own (its modes' RUN_INDEPENDENT_FIELDS).
RUN_INDEPENDENT_FIELDS = (
    'training.num_steps',
    'training.steps_per_call',
    'training.step_loop',
    'training.log_every',
    'training.checkpoint_every',
    'training.keep_checkpoints',
    'data.root',
    'data.eval_split',
    'data.tfds_dir',
    'runtime',
    'eval',
)

CONFIG_FILE = 'config.json'
# The trainer's checkpoint folder name (gen_runtime.trainer.CHECKPOINT_DIR).
CHECKPOINTS_FOLDER = 'checkpoints'


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """Loads `path.py[:arg]` the way `--config` does: calls its `get_config(arg)`."""
    path, _, arg = spec.partition(':')
    if not os.path.isfile(path):
        raise ConfigError(f'config file {path!r} does not exist; pass --config configs/<file>.py')
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    try:
        return module.get_config(arg) if arg else module.get_config()
    except AttributeError as e:
        raise ConfigError(f'{spec}: {_one_line(e)}') from e


def flatten(config: ml_collections.ConfigDict | dict, prefix: str = '') -> dict[str, Any]:
    """`{'a.b': value}` for every leaf field of a (nested) config."""
    items = config.items() if isinstance(config, dict) else config.to_dict().items()
    out = {}
    for key, value in items:
        name = f'{prefix}{key}'
        if isinstance(value, (dict, ml_collections.ConfigDict)):
            out.update(flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def _is_run_independent(name: str, fields: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + '.') for f in fields)


def _has_checkpoints(workdir: str) -> bool:
    """Whether any `checkpoints` folder under `workdir` (a run's, or a zsl seed's) holds anything."""
    for folder, subfolders, _ in os.walk(workdir):
        if os.path.basename(folder) == CHECKPOINTS_FOLDER:
            if os.listdir(folder):
                return True
            subfolders.clear()
    return False


def make_workdir(workdir: str) -> None:
    """Creates the workdir (and its parents), refusing a path that is or lies under a file."""
    try:
        os.makedirs(workdir, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise ConfigError(f'--workdir {workdir} is {"a file" if os.path.isfile(workdir) else "under a file"}; '
                          'pass a folder (new or of this run)') from e
    except OSError as e:
        raise ConfigError(f'--workdir {workdir} cannot be created ({e.strerror}); pass a writable folder') from e


def _only_empty_folders(path: str) -> bool:
    """Whether `path` is a folder holding nothing but (nested) empty folders."""
    return os.path.isdir(path) and all(not files for _, _, files in os.walk(path))


def first_missing_folder(workdir: str) -> str | None:
    """The outermost folder of `workdir`'s path that does not exist yet (None when the workdir exists):
    what `make_workdir` will create, and a refused start removes again."""
    path, missing = os.path.abspath(workdir), None
    while not os.path.exists(path):
        path, missing = os.path.dirname(path), path
    return missing


def forget_refused_start(workdir: str, entries_before: set[str], created: str | None) -> None:
    """Undoes what a refused start wrote into `workdir`, where it wrote nothing else.

    `entries_before` is the workdir's listing before the run started, `created` the outermost folder the
    run created for it (`first_missing_folder`; None if the workdir existed). A new run refused before any
    work leaves its config.json and empty folders (an empty `checkpoints/` from looking for a checkpoint,
    say): those go, and the folders it created, so the next start there is not taken for a resumption of
    this one. Where the run wrote anything else (a metric, a sample, a checkpoint), nothing is removed.
    """
    new = set(os.listdir(workdir)) - entries_before
    removable = {CONFIG_FILE, LOCK_FILE}
    if not all(name in removable or _only_empty_folders(os.path.join(workdir, name)) for name in new):
        return
    for name in new:
        path = os.path.join(workdir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    if created is not None and _only_empty_folders(created):
        shutil.rmtree(created)


def bind_workdir(config: ml_collections.ConfigDict, workdir: str, write: bool = True,
                 run_independent: tuple[str, ...] = (), defaults: Mapping[str, Any] | None = None) -> None:
    """Writes the resolved config into `workdir`, or checks it against the run already there.

    A workdir holds one run. If it already holds a config that differs in a field that defines the
    run (model, data, optimiser, seed, ...) and a checkpoint of it, this raises instead of mixing two
    runs' checkpoints; a config that never produced a checkpoint (a start that failed) is replaced.
    `run_independent` names the family's fields (or sections) that may change besides
    RUN_INDEPENDENT_FIELDS. With `defaults` (the family base's flattened fields), a run saved by an earlier
    version of the library stays the same run: a field it lacks that this config leaves at its default (a field
    added since, whose default keeps the old behaviour) and a field this version no longer has are set aside,
    with a warning that names them.
    """
    independent = RUN_INDEPENDENT_FIELDS + tuple(run_independent)
    make_workdir(workdir)
    path = os.path.join(workdir, CONFIG_FILE)
    new = json.loads(config.to_json_best_effort())
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f'{path} is unreadable ({_one_line(e)}); move it away or use a new --workdir') from e
        old_flat, new_flat = flatten(old), flatten(new)
        differing = sorted(
            name for name in set(old_flat) | set(new_flat)
            if not _is_run_independent(name, independent) and old_flat.get(name) != new_flat.get(name)
        )
        if defaults is not None:
            differing = _set_aside_version_changes(differing, old_flat, new_flat, defaults, workdir)
        if differing and _has_checkpoints(workdir):
            if old.get('family') != new.get('family'):
                raise ConfigError(f'--workdir {workdir} holds a run of another family ({old.get("family")!r}; this '
                                  f'config is {new.get("family")!r}); use a new --workdir')
            name = differing[0]
            raise ConfigError(
                f'--workdir {workdir} holds a run of a different config ({name}: '
                f'{old_flat.get(name)!r} there, {new_flat.get(name)!r} now'
                f'{f", and {len(differing) - 1} more fields" if len(differing) > 1 else ""}); '
                'use a new --workdir or the same config'
            )
    if not write:
        return
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(new, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _set_aside_version_changes(differing: list[str], old: dict[str, Any], new: dict[str, Any],
                               defaults: Mapping[str, Any], workdir: str) -> list[str]:
    """`differing` without the fields added since the saved run (at their defaults) or removed since."""
    added = [n for n in differing if n not in old and n in defaults and new.get(n) == defaults[n]]
    removed = [n for n in differing if n not in new]
    if added or removed:
        log.warning('%s was saved by another version of the library: %s; the run continues as the same run',
                    os.path.join(workdir, CONFIG_FILE), '; '.join(
                        part for part in (f'new fields at their defaults: {", ".join(added)}' if added else '',
                                          f'fields no longer read: {", ".join(removed)}' if removed else '') if part))
    return [n for n in differing if n not in added and n not in removed]


def data_root(config: ml_collections.ConfigDict) -> str:
    """The data root: `config.data.root`, else $JAXGEN_DATA_ROOT, else ''."""
    return config.data.root or os.environ.get('JAXGEN_DATA_ROOT', '')


def resolve_data_path(config: ml_collections.ConfigDict, path: str) -> str:
    """Resolves a data path against the data root; relative paths need a root."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    root = data_root(config)
    if not root:
        raise ConfigError(
            f'data path {path!r} is relative and no data root is set; set JAXGEN_DATA_ROOT or '
            '--config.data.root to the folder that holds it'
        )
    return os.path.join(root, path)


def _one_line(e: BaseException) -> str:
    return ' '.join(str(e).split())
