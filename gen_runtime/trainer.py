"""The training loop every family uses: jit-compiled, data-parallel, resumable, logged.

A family describes its model with a `TrainTask` (how to initialise the state, one pure update step,
where batches come from); `train` does the rest: one mesh over all devices, several steps per call
with `lax.scan`, checkpoints every K steps and on SIGTERM or SIGINT, resume from the newest readable
checkpoint, metrics to JSONL/TensorBoard and a progress bar, and a clear stop on NaN or Inf.
"""

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import flax.errors
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from gen_runtime import parallel
from gen_runtime.checkpoint import Checkpointer
from gen_runtime.config import CHECKPOINTS_FOLDER
from gen_runtime.data import Batch, prefetch_to_devices
from gen_runtime.errors import CheckpointError, ConfigError, NonFiniteError, Preempted
from gen_runtime.metric_writer import MetricWriter
from gen_runtime.pytree import PyTree
from gen_runtime.rng import stream
from gen_runtime.run_once import run_once

log = logging.getLogger(__name__)
CHECKPOINT_DIR = CHECKPOINTS_FOLDER
STEP_LOOPS = ('auto', 'scan', 'host')


@dataclasses.dataclass(frozen=True)
class TrainTask:
    """What a family hands the runtime to train a model.

    init_state: rng -> state (a pytree, e.g. a TrainState or a dict of them).
    update: (state, batch, rng) -> (state, metrics): one pure optimisation step; metrics is a dict
      of scalars and should hold 'loss'. The rng is derived from the seed and the global step.
    host_batches: (first_step, count) -> this host's rows of the global batches of steps
      first_step .. first_step+count-1, stacked on a leading axis (see data.TrainBatches).
    evaluate: optional (step, state) -> dict of scalars, run on every host after each step that
      is a multiple of `evaluate_every` (a multiple of training.steps_per_call) and after the last
      one; its values are logged with that step's training metrics.
    """

    init_state: Callable[[jax.Array], PyTree]
    update: Callable[[PyTree, Batch, jax.Array], tuple[PyTree, dict[str, jax.Array]]]
    host_batches: Callable[[int, int], Batch]
    evaluate: Callable[[int, PyTree], dict[str, float]] | None = None
    evaluate_every: int = 0


def check_training_config(training: ml_collections.ConfigDict) -> None:
    """Raises a ConfigError if the step counts of `training` do not fit together."""
    k = training.steps_per_call
    if training.step_loop not in STEP_LOOPS:
        raise ConfigError(f'training.step_loop={training.step_loop!r} must be one of {", ".join(STEP_LOOPS)}')
    if k < 1:
        raise ConfigError(f'training.steps_per_call={k} must be at least 1')
    for name in ('num_steps', 'log_every', 'checkpoint_every'):
        value = training[name]
        if value < 1 or value % k:
            raise ConfigError(f'training.{name}={value} must be a positive multiple of '
                              f'training.steps_per_call={k}')


def check_train_settings(config: ml_collections.ConfigDict) -> None:
    """Raises a ConfigError for any `training` or `optim` setting `train` would refuse (before any work)."""
    check_training_config(config.training)
    parallel.check_batch_size(config.training.batch_size)


def _uses_host_loop(step_loop: str) -> bool:
    """Whether the steps of one call are dispatched from the host (see configs/common.py).

    XLA:CPU runs convolution gradients inside a loop (a scan, even of length 1) and with donated state
    buffers an order of magnitude slower (a small conv net: 0.6-1.8 s against 0.07 s a step).
    """
    return step_loop == 'host' or (step_loop == 'auto' and jax.default_backend() == 'cpu')


def step_rng(seed: int, step: jax.Array) -> jax.Array:
    """The training noise of global step `step`: the same whatever the device count or resumes."""
    return stream(seed, 'training', step)


Initialiser = Callable[[jax.Array], PyTree]


def init_state(initialiser: Initialiser, seed: int, mesh: jax.sharding.Mesh) -> PyTree:
    """The initial state `initialiser(key(seed))`, replicated over the mesh."""
    return run_once(initialiser, jax.random.key(seed), out_shardings=parallel.replicated(mesh))


def abstract_state(initialiser: Initialiser, seed: int, mesh: jax.sharding.Mesh) -> PyTree:
    """Shapes, dtypes and (replicated) shardings of the initial state, computing nothing.

    A restore target that costs a trace instead of compiling and running the initialiser.
    """
    shapes = jax.eval_shape(initialiser, jax.random.key(seed))
    rep = parallel.replicated(mesh)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep), shapes)


def check_builds(initialiser: Initialiser, section: str) -> None:
    """Traces `initialiser` (shapes only, no compute); a model that cannot be built is a ConfigError.

    Catches widths, head counts or resolutions that do not fit together before any work, with the
    library's own message, instead of a traceback from inside the network's first call.
    """
    try:
        jax.eval_shape(initialiser, jax.random.key(0))
    except (ValueError, TypeError, ArithmeticError, flax.errors.FlaxError) as e:
        first = ' '.join(str(e).split('\n')[0].split())[:300]
        raise ConfigError(f'the {section} settings describe a network that cannot be built ({type(e).__name__}: '
                          f'{first}); change the {section} section') from e


def load_trained_state(config: ml_collections.ConfigDict, workdir: str,
                       initialiser: Initialiser) -> tuple[int, PyTree]:
    """(step, state) of the newest readable checkpoint in `workdir`, for sampling and evaluation.

    `initialiser` is the `init_state` of the family's TrainTask (rng -> state): only its shapes are
    traced, so restoring needs neither data nor an update step.
    """
    mesh = parallel.make_mesh()
    ckpt = Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), config.training.keep_checkpoints)
    try:
        restored = ckpt.restore_latest(abstract_state(initialiser, config.seed, mesh))
    finally:
        ckpt.close()
    if restored is None:
        raise CheckpointError(f'no checkpoint in {workdir}; train first with --mode train '
                              'and the same --workdir')
    return restored


def trained_params(config: ml_collections.ConfigDict, workdir: str, initialiser: Initialiser, use_ema: bool,
                   network: str | None = None) -> tuple[int, PyTree, PyTree]:
    """(step, params, state) of the newest readable checkpoint of the run `config` describes in `workdir`: the
    parameters of its network (the state's TrainState, or the TrainState at `state[network]`), the EMA ones if
    `use_ema` (every mode passes `eval.use_ema`) else the raw ones; and the whole state, for what else it holds."""
    step, state = load_trained_state(config, workdir, initialiser)
    train_state = state if network is None else state[network]
    return step, train_state.ema_params if use_ema else train_state.params, state


class StopSignal:
    """Records SIGTERM or SIGINT (Ctrl-C) instead of dying, so the loop can save a checkpoint first."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.name = ''
        self._previous: dict[int, Any] = {}

    @property
    def raised(self) -> bool:
        return bool(self.name)

    def __enter__(self) -> 'StopSignal':
        try:
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = {}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.name = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _summarise(pending: list[dict[str, jax.Array]]) -> dict[str, np.ndarray]:
    """Per-step metric values since the last summary, fetched to the host: {name: (steps,)}."""
    fetched = parallel.to_host(pending)
    return {name: np.concatenate([np.reshape(m[name], -1) for m in fetched]) for name in fetched[0]}


StepFn = Callable[[PyTree, Batch, np.int32], tuple[PyTree, list[dict[str, jax.Array]]]]


def compile_steps(task: TrainTask, training: ml_collections.ConfigDict, seed: int,
                  mesh: jax.sharding.Mesh) -> StepFn:
    """(state, k stacked batches, first step) -> (state, [metrics]): `training.steps_per_call` updates.

    One jitted `lax.scan` over the k steps (state buffers donated), or, where the backend runs such loops
    slowly (see `_uses_host_loop`), k dispatches of one jitted step.
    """
    k = training.steps_per_call

    def one_step(state: PyTree, batches: Batch, first_step: jax.Array, offset: jax.Array) -> tuple[PyTree, dict]:
        batch = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, offset, keepdims=False), batches)
        return task.update(state, batch, step_rng(seed, first_step + offset))

    def multi_step(state: PyTree, batches: Batch, first_step: jax.Array) -> tuple[PyTree, dict]:
        def body(state: PyTree, offset: jax.Array) -> tuple[PyTree, dict]:
            return one_step(state, batches, first_step, offset)

        return jax.lax.scan(body, state, jnp.arange(k))

    rep = parallel.replicated(mesh)
    stacked = parallel.batch_sharded(mesh, 1)
    if _uses_host_loop(training.step_loop):
        single = jax.jit(one_step, in_shardings=(rep, stacked, rep, rep), out_shardings=(rep, rep))

        def host_loop(state: PyTree, batches: Batch, first_step: np.int32) -> tuple[PyTree, list[dict]]:
            per_step = []
            for offset in range(k):
                state, metrics = single(state, batches, first_step, np.int32(offset))
                per_step.append(metrics)
            return state, per_step

        return host_loop
    fused = jax.jit(multi_step, in_shardings=(rep, stacked, rep), out_shardings=(rep, rep), donate_argnums=0)

    def scanned(state: PyTree, batches: Batch, first_step: np.int32) -> tuple[PyTree, list[dict]]:
        state, metrics = fused(state, batches, first_step)
        return state, [metrics]

    return scanned


def check_finite(values: dict[str, np.ndarray], done: int, last_saved: int | None, directory: str) -> None:
    """Raises NonFiniteError naming the first metric that became NaN/Inf, its steps and the last good checkpoint."""
    bad = [name for name, v in values.items() if not np.all(np.isfinite(v))]
    if not bad:
        return
    where = f'step {last_saved} in {directory}' if last_saved is not None else 'none (no checkpoint was saved yet)'
    raise NonFiniteError(
        f'{bad[0]} became NaN/Inf between steps {done - len(values[bad[0]]) + 1} and {done}; training stopped, '
        f'the last good checkpoint is {where}; lower optim.learning_rate, enable optim.grad_clip or check the data')


def _restore_or_init(task: TrainTask, seed: int, mesh: jax.sharding.Mesh,
                     ckpt: Checkpointer) -> tuple[int, PyTree, bool]:
    """(first step, state, whether it was restored): the newest readable checkpoint, else the initial one."""
    state = init_state(task.init_state, seed, mesh)
    restored = ckpt.restore_latest(state)
    if restored is None:
        return 0, state, False
    log.info('resuming from the checkpoint at step %d', restored[0])
    return restored[0], restored[1], True


def train(config: ml_collections.ConfigDict, workdir: str, task: TrainTask) -> PyTree:
    """Trains `task` for `config.training.num_steps` steps in `workdir`, resuming if possible.

    Returns the final state. Raises NonFiniteError on a NaN/Inf metric (nothing is saved after the
    last finite one) and Preempted after saving a checkpoint on SIGTERM or SIGINT. The settings are checked
    by the mode's check (`check_train_settings`, before any work); only the task's evaluation interval,
    which the config alone does not give, is checked here.
    """
    training = config.training
    k, num_steps = training.steps_per_call, training.num_steps
    if task.evaluate is not None and (task.evaluate_every < 1 or task.evaluate_every % k):
        raise ConfigError(f'the evaluation interval {task.evaluate_every} must be a positive multiple of '
                          f'training.steps_per_call={k}')
    mesh = parallel.make_mesh()
    is_chief = jax.process_index() == 0
    ckpt = Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), training.keep_checkpoints)
    start, state, resumed = _restore_or_init(task, config.seed, mesh, ckpt)
    writer = MetricWriter(workdir, tensorboard=config.runtime.tensorboard, enabled=is_chief)
    writer.truncate_after(start)
    step_fn = compile_steps(task, training, config.seed, mesh)
    batches = prefetch_to_devices((task.host_batches(s, k) for s in range(start, num_steps, k)),
                                  mesh, leading_axes=1)
    last_saved = start if resumed else None
    pending: list[dict[str, jax.Array]] = []
    bar = tqdm(total=num_steps, initial=start, desc='train', unit='step', dynamic_ncols=True,
               disable=not (is_chief and config.runtime.progress_bar))
    clock, clock_step = time.perf_counter(), start
    first_call: dict[str, float] = {}
    try:
        with StopSignal() as stop:
            for step in range(start, num_steps, k):
                state, metrics = step_fn(state, next(batches), np.int32(step))
                if step == start:
                    jax.block_until_ready(metrics)
                    first_call = {'compile_and_first_call_seconds': time.perf_counter() - clock}
                    clock, clock_step = time.perf_counter(), step + k
                pending.extend(metrics)
                done = step + k
                bar.update(k)
                finished = done == num_steps
                # Read once: a signal that lands later in this iteration is seen (and saved) at the next one.
                stopping = stop.raised
                do_eval = task.evaluate is not None and (done % task.evaluate_every == 0 or finished)
                do_log = done % training.log_every == 0 or finished or stopping or do_eval
                do_save = done % training.checkpoint_every == 0 or finished or stopping
                if not (do_log or do_save):
                    continue
                values = _summarise(pending)
                pending = []
                check_finite(values, done, last_saved, ckpt.directory)
                if do_log:
                    now = time.perf_counter()
                    summary = {name: float(np.mean(v)) for name, v in values.items()}
                    summary['steps_per_sec'] = (done - clock_step) / max(now - clock, 1e-9)
                    if do_eval:
                        summary.update(task.evaluate(done, state))
                    clock, clock_step = time.perf_counter(), done
                    writer.write(done, {**summary, **first_call})
                    first_call = {}
                    if 'loss' in summary:
                        bar.set_postfix(loss=f'{summary["loss"]:.4g}')
                if do_save:
                    ckpt.save(done, state)
                    last_saved = done
                if stopping:
                    ckpt.wait()
                    raise Preempted(f'stopped by {stop.name} at step {done}; a checkpoint was saved in '
                                    f'{ckpt.directory}; run the same command to resume')
    finally:
        bar.close()
        batches.close()
        ckpt.close()
        writer.close()
    return state
