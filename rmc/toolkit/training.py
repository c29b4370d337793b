# Copyright 2026 The rmc Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""A training toolkit shared by the experiments.

* :class:`TrainState`: params, optimizer state, step and base PRNG key. The
  key of step ``s`` is ``fold_in(rng, s)``, so a restored run draws exactly
  the keys the uninterrupted run would have.
* :func:`make_optimizer`: Adam with Sonnet's exponential decay with a floor,
  and optional global-norm clipping; :class:`Optimizer` its typed
  hyperparameters (with the batch size), :class:`LoopConfig` the loop's
  (budget and cadences), from which the flags derive
  (:mod:`rmc.toolkit.hyperparameters`).
* :func:`make_train_chunk`: one jitted call runs ``K`` optimizer steps in a
  ``lax.scan``, so small models are not bound by per-step dispatch.
* :func:`make_evaluator`: mean metrics over a fixed held-out set.
* :func:`make_stream_evaluator`: exact negative log-likelihood of a token
  stream, carrying a recurrent state through its segments.
* :func:`train`: the loop. It logs to absl and ``<workdir>/metrics.jsonl``,
  evaluates (also before the first step of a fresh run) and checkpoints
  atomically at fixed cadences, resumes
  automatically from ``workdir`` (bitwise on CPU), stops on a NaN or Inf loss
  without overwriting the last good checkpoint, and on SIGINT or SIGTERM
  saves a checkpoint and returns.

All of it is data-parallel over a :class:`rmc.toolkit.parallel.DataParallel`
mesh (by default every device): parameters, optimizer state and PRNG key are
replicated, every batch and the ``carry`` are split along their batch axes,
and the jitted steps carry those shardings. With several processes, each
makes only its rows of the training batches, and only process 0 writes.
Checkpoints hold whole (gathered) arrays, so a run resumes on any number of
devices.
"""

import dataclasses
import functools
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from absl import logging
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rmc.toolkit import checkpoint
from rmc.toolkit.hyperparameters import hyperparameter
from rmc.toolkit.hyperparameters import Hyperparameters
from rmc.toolkit import metrics as metrics_lib
from rmc.toolkit import parallel as parallel_lib

Metrics = Mapping[str, jax.Array]


class HostData(Protocol):
  """Training data made on the host, with state that checkpoints keep.

  Batches must be a function of the step and of ``state()`` only, so that a
  resumed run sees exactly the data the uninterrupted run would have. With
  several processes, each process's ``HostData`` makes only that process's
  rows of every batch (:meth:`rmc.toolkit.parallel.DataParallel.process_rows`).
  """

  def batches(self, first_step: int, num_steps: int) -> Any:
    """This process's rows of the batches of steps ``first_step ..``.

    Returns:
      A pytree whose leaves are ``[num_steps, ...]``: one step's leaf with a
      leading step axis.
    """

  def state(self) -> dict[str, np.ndarray]:
    """The data's state (e.g. a curriculum level), saved in checkpoints."""

  def restore(self, state: dict[str, np.ndarray]) -> None:
    """Sets the state from a checkpoint."""

  def observe(self, record: dict[str, Any]) -> None:
    """Sees each logged training record (e.g. to advance a curriculum)."""


class SyntheticData:
  """One batch, held on the device, fed to every step (a ``HostData``).

  To measure what the input pipeline costs: train once with the real data and
  once with this, and compare steps per second. The batches of ``num_steps``
  steps are made and placed on the devices once per chunk size, then reused.
  """

  def __init__(
      self,
      batch: Any,
      parallel: parallel_lib.DataParallel | None = None,
      batch_axes: parallel_lib.BatchAxes = 0,
  ):
    """Holds ``batch`` on the devices.

    Args:
      batch: This process's rows of one step's batch (a pytree of arrays).
      parallel: The mesh the batches are split over; by default all devices.
      batch_axes: The batch axes of ``batch``'s leaves.
    """
    self._batch = jax.tree.map(np.asarray, batch)
    self._parallel = parallel or parallel_lib.DataParallel()
    self._axes = parallel_lib.shift_axes(batch_axes)
    self._stacked: dict[int, Any] = {}

  def batches(self, first_step: int, num_steps: int) -> Any:
    """The batch repeated ``num_steps`` times, leaves ``[num_steps, ...]``."""
    del first_step
    if num_steps not in self._stacked:
      stacked = jax.tree.map(
          lambda x: np.broadcast_to(x, (num_steps,) + x.shape), self._batch
      )
      self._stacked[num_steps] = self._parallel.put_local(stacked, self._axes)
    return self._stacked[num_steps]

  def state(self) -> dict[str, np.ndarray]:
    """What a checkpoint keeps of this data."""
    return {}

  def restore(self, state: dict[str, np.ndarray]) -> None:
    """Continues from what :meth:`state` returned."""
    del state

  def observe(self, record: dict[str, Any]) -> None:
    """Sees a logged training record (e.g. to advance a curriculum)."""
    del record


# loss_fn(params, rng, batch) -> (scalar loss, {name: scalar metric}); with
# a carry: loss_fn(params, rng, batch, carry) -> (loss, (metrics, carry)).
LossFn = Callable[..., tuple[jax.Array, Any]]


class TrainState(NamedTuple):
  """Everything a checkpoint holds.

  Attributes:
    step: Number of optimizer steps taken, int32 ``[]``.
    params: Model parameters.
    opt_state: Optimizer state.
    rng: Base PRNG key; step ``s`` uses ``jax.random.fold_in(rng, s)``.
    carry: What a stateful loss passes from one step to the next (e.g. a
      language model's recurrent state across truncated-BPTT segments);
      ``()`` when there is none. Every leaf is batch-leading ``[B, ...]``
      (split over the devices like the batch).
  """

  step: jax.Array
  params: hk.Params
  opt_state: optax.OptState
  rng: jax.Array
  carry: Any = ()


def init_state(
    params: hk.Params,
    optimizer: optax.GradientTransformation,
    rng: jax.Array,
    carry: Any = (),
) -> TrainState:
  """A step-0 :class:`TrainState`."""
  return TrainState(
      step=jnp.zeros([], jnp.int32),
      params=params,
      opt_state=optimizer.init(params),
      rng=rng,
      carry=carry,
  )


# Batch axes of a TrainState: all replicated but the batch-leading carry.
_STATE_AXES = TrainState(  # A tree of axes, not a state: hence the ignore.
    step=None, params=None, opt_state=None, rng=None, carry=0  # type: ignore[arg-type]
)


def make_optimizer(
    learning_rate: float,
    min_learning_rate: float,
    decay_steps: int,
    decay_rate: float = 0.9,
    max_grad_norm: float | None = None,
    warmup_steps: int = 0,
) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Adam with Sonnet's learning-rate schedule and optional clipping.

  The learning rate at step ``s`` is
  ``max(learning_rate * decay_rate ** (s / decay_steps), min_learning_rate)``
  (continuous, not staircase), as in Sonnet's RMC examples. With
  ``warmup_steps`` it is also multiplied by ``min(1, (s + 1) / warmup_steps)``:
  a linear warm-up over the first steps (not in Sonnet; off by default), on
  top of the same decay.

  Args:
    learning_rate: Initial learning rate.
    min_learning_rate: Floor of the decayed learning rate.
    decay_steps: Steps over which the rate is multiplied by ``decay_rate``.
    decay_rate: Decay factor, in (0, 1].
    max_grad_norm: If set, gradients are clipped to this global L2 norm.
    warmup_steps: Steps of linear warm-up; 0 for none.

  Returns:
    ``(optimizer, schedule)``.
  """
  if not 0 < min_learning_rate <= learning_rate:
    raise ValueError(
        f'Need 0 < min_learning_rate <= learning_rate; got '
        f'min_learning_rate={min_learning_rate}, '
        f'learning_rate={learning_rate}.'
    )
  if decay_steps < 1 or not 0 < decay_rate <= 1:
    raise ValueError(
        f'Need decay_steps >= 1 and 0 < decay_rate <= 1; got '
        f'{decay_steps} and {decay_rate}.'
    )
  if warmup_steps < 0:
    raise ValueError(f'Need warmup_steps >= 0; got {warmup_steps}.')

  # Written out rather than `optax.exponential_decay(..., end_value=...)`:
  # at decay_rate 1 that takes `end_value` as a ceiling, so a constant rate
  # above `min_learning_rate` would silently train at `min_learning_rate`.
  def decay(step):
    return jnp.maximum(
        learning_rate * decay_rate ** (step / decay_steps), min_learning_rate
    )

  if warmup_steps:

    def schedule(step):
      ramp = jnp.minimum(1.0, (step + 1) / warmup_steps)
      return decay(step) * ramp

  else:
    schedule = decay
  adam = optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)
  if max_grad_norm:
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), adam), schedule
  return adam, schedule


def make_train_chunk(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    *,
    with_carry: bool = False,
    parallel: parallel_lib.DataParallel | None = None,
    batch_axes: parallel_lib.BatchAxes = 0,
) -> Callable[[TrainState, Any, int], tuple[TrainState, Metrics]]:
  """Builds ``chunk(state, batches, num_steps) -> (state, metrics)``.

  The returned function runs ``num_steps`` optimizer steps in a
  ``lax.scan``, jitted (``num_steps`` static, ``state`` donated) with the
  data-parallel shardings: ``state`` replicated but for its batch-leading
  ``carry``, the batches split along their batch axes, the metrics
  replicated. The state must already be placed so (:func:`train` does it).
  ``batches`` is None when ``loss_fn`` makes its data from the step's key,
  or a pytree whose leaves have a leading axis of ``num_steps``: this
  process's rows (host arrays, assembled into global arrays here) or global
  ``jax.Array``s already split. ``metrics`` holds, per step (leading axis
  ``num_steps``), ``loss``, ``learning_rate`` and everything ``loss_fn``
  returned.

  ``parallel`` is the mesh (by default all devices) and ``batch_axes`` the batch
  axes of one step's batch (see :mod:`rmc.toolkit.parallel`). The function's
  ``lower(state, batches, num_steps)`` (arrays or ``jax.ShapeDtypeStruct``s of
  the global shapes) lowers the jitted function ahead of time, e.g. for
  ``.compile().memory_analysis()``.

  With ``with_carry``, ``loss_fn(params, key, batch, carry)`` returns
  ``(loss, (metrics, carry))`` and the new carry (with its gradient stopped)
  is kept in ``TrainState.carry`` for the next step: truncated
  backpropagation through time.
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def one_step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
    key = jax.random.fold_in(state.rng, state.step)
    carry = state.carry
    if with_carry:
      (loss, (step_metrics, carry)), grads = grad_fn(
          state.params, key, batch, state.carry
      )
      carry = jax.lax.stop_gradient(carry)
    else:
      (loss, step_metrics), grads = grad_fn(state.params, key, batch)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    step_metrics = dict(
        step_metrics, loss=loss, learning_rate=schedule(state.step)
    )
    return (
        state._replace(
            step=state.step + 1, params=params, opt_state=opt_state, carry=carry
        ),
        step_metrics,
    )

  def chunk(state: TrainState, batches: Any, num_steps: int):
    return jax.lax.scan(one_step, state, batches, length=num_steps)

  parallel = parallel or parallel_lib.DataParallel()
  step_axes = parallel_lib.shift_axes(batch_axes)  # [num_steps, ...] leaves.
  state_shardings = parallel.shardings(_STATE_AXES)
  jitted = jax.jit(
      chunk,
      static_argnums=2,
      donate_argnums=0,
      in_shardings=(state_shardings, parallel.shardings(step_axes)),
      out_shardings=(state_shardings, parallel.replicated),
  )

  def placed_chunk(state: TrainState, batches: Any, num_steps: int):
    if batches is not None:
      batches = parallel.put_local(batches, step_axes)
    return jitted(state, batches, num_steps)

  # Ahead of time (see the docstring); a function attribute mypy cannot see.
  placed_chunk.lower = jitted.lower  # type: ignore[attr-defined]
  return placed_chunk


def make_evaluator(
    metrics_fn: Callable[[hk.Params, Any], Metrics],
    eval_batches: Any,
    parallel: parallel_lib.DataParallel | None = None,
    batch_axes: parallel_lib.BatchAxes = 0,
) -> Callable[[hk.Params], dict[str, float]]:
  """Builds ``evaluate(params) -> {name: mean}`` over a fixed held-out set.

  Args:
    metrics_fn: ``(params, batch) -> {name: scalar mean over the batch}``.
    eval_batches: Held-out batches, every leaf with a leading axis of
      ``num_batches``; all batches must have the same size. Every process
      holds them whole.
    parallel: The mesh the batches are split over (along ``batch_axes``);
      by default all devices.
    batch_axes: The batch axes of one batch's leaves.
  """
  parallel = parallel or parallel_lib.DataParallel()
  eval_batches = parallel.put_global(
      eval_batches, parallel_lib.shift_axes(batch_axes)
  )

  @functools.partial(jax.jit, out_shardings=parallel.replicated)
  def mean_metrics(params, eval_batches):
    per_batch = jax.lax.map(
        lambda batch: metrics_fn(params, batch), eval_batches
    )
    return jax.tree.map(jnp.mean, per_batch)

  def evaluate(params):
    means = jax.device_get(mean_metrics(params, eval_batches))
    return {k: float(v) for k, v in means.items()}

  return evaluate


def make_stream_evaluator(
    apply_fn: Callable[
        [hk.Params, jax.Array, jax.Array, Any], tuple[jax.Array, Any]
    ],
    initial_state: Any,
    segments: Mapping[str, np.ndarray],
    parallel: parallel_lib.DataParallel | None = None,
) -> Callable[[hk.Params], dict[str, float]]:
  """Scores a token stream cut into segments, carrying the state through.

  The segments are evaluated in order in one ``lax.scan``; the negative
  log-likelihood is summed per segment on the device and in float64 on the
  host, so the result equals one pass over each column of the stream.

  The columns are split over the devices when their number divides evenly;
  otherwise (e.g. the paper's single column) every device scores all of
  them.

  Args:
    apply_fn: ``(params, inputs [T, B], targets [T, B], state) ->
      (log_probs [T, B], state)``.
    initial_state: The core state for the split's columns, every leaf
      batch-leading ``[B, ...]``.
    segments: ``inputs``, ``targets`` and ``mask`` (1 where a target is
      scored), each ``[S, T, B]``, e.g. from
      ``rmc.data.wikitext.eval_segments``; every process holds them whole.
    parallel: The mesh; by default all devices.

  Returns:
    ``evaluate(params) -> {loss, perplexity, tokens}``: mean negative
    log-likelihood (nats) over the scored targets, its ``exp``, and their
    number.
  """
  num_tokens = int(np.sum(segments['mask']))
  parallel = parallel or parallel_lib.DataParallel()
  split = parallel.divides(segments['mask'].shape[2])
  segments = parallel.put_global(dict(segments), 2 if split else None)
  initial_state = parallel.put_global(initial_state, 0 if split else None)

  @functools.partial(jax.jit, out_shardings=parallel.replicated)
  def segment_nlls(params, segments, initial_state):
    def body(state, segment):
      log_probs, state = apply_fn(
          params, segment['inputs'], segment['targets'], state
      )
      return state, -jnp.sum(log_probs * segment['mask'])

    _, nlls = jax.lax.scan(body, initial_state, segments)
    return nlls  # [S], so the host adds them in float64.

  def evaluate(params):
    nll = float(
        np.sum(
            np.asarray(
                segment_nlls(params, segments, initial_state), np.float64
            )
        )
    )
    loss = nll / num_tokens
    return {
        'loss': loss,
        'perplexity': math.exp(min(loss, 700.0)),
        'tokens': num_tokens,
    }

  return evaluate


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoopConfig(Hyperparameters):
  """The training loop's budget and cadences (:func:`train`), in steps."""

  num_steps: int = hyperparameter('Total optimizer steps.', lower=1)
  time_budget_s: float = hyperparameter(
      'Stop after this many seconds of training in this process '
      '(evaluating and checkpointing first); 0 means no budget.',
      default=0.0,
      lower=0.0,
  )
  steps_per_chunk: int = hyperparameter(
      'Optimizer steps per jitted call (one host round trip).',
      default=10,
      lower=1,
  )
  log_every: int = hyperparameter(
      'Steps between training-metric logs.', default=100, lower=1
  )
  eval_every: int = hyperparameter(
      'Steps between held-out evaluations.', default=1000, lower=1
  )
  checkpoint_every: int = hyperparameter(
      'Steps between checkpoints.', default=1000, lower=1
  )
  keep_checkpoints: int = hyperparameter(
      'Number of newest checkpoints kept.', default=3, lower=1
  )

  def __post_init__(self):
    super().__post_init__()
    for name, every in (
        ('log_every', self.log_every),
        ('eval_every', self.eval_every),
        ('checkpoint_every', self.checkpoint_every),
    ):
      if every % self.steps_per_chunk:
        raise ValueError(
            f'{name}={every} must be a multiple of '
            f'steps_per_chunk={self.steps_per_chunk}.'
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Optimizer(Hyperparameters):
  """The optimiser: Adam on batches of ``batch_size``, Sonnet's schedule.

  :meth:`make` gives :func:`make_optimizer`'s ``(optimizer, schedule)``.
  """

  batch_size: int = hyperparameter('Training batch size (sequences).', lower=1)
  learning_rate: float = hyperparameter(
      'Initial Adam learning rate.', lower=0.0
  )
  min_learning_rate: float = hyperparameter(
      'Floor of the exponentially decayed learning rate.', lower=0.0
  )
  decay_steps: int = hyperparameter(
      'Steps over which the learning rate is multiplied by --decay_rate '
      '(continuous decay, as Sonnet).',
      lower=1,
  )
  decay_rate: float = hyperparameter(
      'Learning-rate decay factor in (0, 1].', lower=0.0, upper=1.0
  )
  max_grad_norm: float = hyperparameter(
      'Clip gradients to this global L2 norm; 0 disables clipping.',
      default=0.0,
      lower=0.0,
  )
  warmup_steps: int = hyperparameter(
      'Optimizer steps of linear learning-rate warm-up: the rate at step s '
      'is multiplied by min(1, (s + 1) / warmup_steps); 0 for none (every '
      "preset but Nth Farthest's cpu, cpu_k3 and demo, which warm up over "
      '5000 steps).',
      default=0,
      lower=0,
  )

  def __post_init__(self):
    super().__post_init__()
    self.make()  # make_optimizer's checks, with their messages.

  @classmethod
  def constant(cls, batch_size: int, learning_rate: float) -> 'Optimizer':
    """An undecayed rate (the paper's Learning to Execute and LM)."""
    return cls(
        batch_size=batch_size,
        learning_rate=learning_rate,
        min_learning_rate=learning_rate,
        decay_steps=1,
        decay_rate=1.0,
    )

  def make(self) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """``(optimizer, schedule)`` (see :func:`make_optimizer`)."""
    return make_optimizer(
        learning_rate=self.learning_rate,
        min_learning_rate=self.min_learning_rate,
        decay_steps=self.decay_steps,
        decay_rate=self.decay_rate,
        max_grad_norm=self.max_grad_norm or None,
        warmup_steps=self.warmup_steps,
    )


class _StopRequest:
  """Turns SIGINT and SIGTERM into a flag while installed."""

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name

  def __exit__(self, *exc_info):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _mean_records(pending: list[Metrics]) -> dict[str, float]:
  """Means over the steps of fetched per-chunk metrics; rate is the last."""
  merged = {
      k: np.concatenate([np.asarray(m[k]) for m in pending]) for k in pending[0]
  }
  record = {k: float(v.mean()) for k, v in merged.items()}
  record['learning_rate'] = float(merged['learning_rate'][-1])
  return record


def peak_device_memory_mib() -> float | None:
  """The most memory any local device has held so far, MiB.

  From ``jax.Device.memory_stats()`` (``peak_bytes_in_use``), which GPUs and
  TPUs give; None where no device reports it (CPUs).
  """
  peaks = []
  for device in jax.local_devices():
    try:
      stats = device.memory_stats()
    except Exception:  # pylint: disable=broad-except
      stats = None  # Backends without memory statistics may raise.
    if stats and 'peak_bytes_in_use' in stats:
      peaks.append(stats['peak_bytes_in_use'])
  return max(peaks) / 2**20 if peaks else None


def train(
    *,
    workdir: str,
    state: TrainState,
    train_chunk: Callable[[TrainState, Any, int], tuple[TrainState, Metrics]],
    evaluate: Callable[[hk.Params], dict[str, float]],
    config: LoopConfig,
    data: HostData | None = None,
    final_evaluate: Callable[[hk.Params], dict[str, float]] | None = None,
    parallel: parallel_lib.DataParallel | None = None,
    tensorboard: bool = False,
    tokens_per_step: int | None = None,
) -> dict[str, Any]:
  """Trains, resuming from the newest checkpoint in ``workdir`` if any.

  Args:
    workdir: Directory for checkpoints and ``metrics.jsonl``.
    state: The initial (step 0) state; also the template for restoring.
    train_chunk: From :func:`make_train_chunk`.
    evaluate: ``params -> {name: float}``, e.g. from :func:`make_evaluator`;
      logged as ``eval_<name>``.
    config: Cadences.
    data: Training data made on the host, or None when ``train_chunk``'s
      loss makes its own data on the device.
    final_evaluate: If set, run once when training ends (however it ends)
      and logged as ``test_<name>`` with ``split: test``, e.g. a test set.
    parallel: The mesh ``train_chunk`` was built for; by default all
      devices. ``state`` is placed on it (replicated, the carry split); with
      several processes every process calls ``train`` alike, reads
      checkpoints from ``workdir`` (which all of them must see), and only
      process 0 writes there. The decision to stop early (time budget,
      signal) is process 0's.
    tensorboard: Also write every metrics record as TensorBoard scalars
      under ``<workdir>/tensorboard`` (see :mod:`rmc.toolkit.metrics`; needs
      ``tensorboardX``).
    tokens_per_step: If set, training logs also give ``tokens_per_sec``.

  Returns:
    A summary: ``step`` reached, ``stopped_by`` (``'num_steps'``,
    ``'time_budget'`` or a signal name), the last training record ``train``,
    the last evaluation ``eval``, the ``final_evaluate`` record ``test`` (or
    None) and the final :class:`TrainState` ``state``.

  Raises:
    FloatingPointError: If a training loss is NaN or Inf. Nothing is written
      after the last finite check, so the last checkpoint stays good.
  """
  parallel = parallel or parallel_lib.DataParallel()
  primary = parallel.is_primary
  if primary:
    os.makedirs(workdir, exist_ok=True)
  data_state = data.state() if data is not None else {}
  restored = checkpoint.restore_latest(
      workdir, (state, data_state), set_aside=primary
  )
  if restored is not None:
    start, (state, data_state) = restored
    if data is not None:
      data.restore(data_state)
    logging.info('Resuming from step %d in %s.', start, workdir)
  else:
    start = 0
  state = parallel.put_global(state, _STATE_AXES)
  writer = metrics_lib.MetricWriter(
      os.path.join(workdir, 'metrics.jsonl'),
      resume_step=start,
      write_file=primary,
      tensorboard_dir=(
          os.path.join(workdir, metrics_lib.TENSORBOARD_DIR)
          if tensorboard
          else None
      ),
  )
  logging.info(
      'Process %d of %d; training on %d devices: %s.',
      jax.process_index(),
      jax.process_count(),
      parallel.num_devices,
      parallel.mesh.devices.tolist(),
  )

  step = start
  summary: dict[str, Any] = {
      'step': step,
      'stopped_by': 'num_steps',
      'train': None,
      'eval': None,
      'test': None,
  }
  pending = []
  input_s = 0.0  # Host time spent making batches since the last log.
  first_chunk_s, logged_first_chunk = None, False
  started = last_log_time = time.monotonic()
  # Tells this process's records from those of the run's earlier processes.
  process_start_time = time.time()
  last_log_step = step
  last_checkpoint = (
      checkpoint.path_for_step(workdir, start) if restored is not None else None
  )

  def write_evaluation(at_step, params, elapsed_s):
    record = {
        'step': at_step,
        'split': 'eval',
        **{f'eval_{k}': v for k, v in evaluate(params).items()},
        'elapsed_s': elapsed_s,
        metrics_lib.PROCESS_START_TIME: process_start_time,
    }
    writer.write(record)
    return record

  if restored is None:  # Where a fresh run starts from.
    write_evaluation(0, state.params, 0.0)
  with _StopRequest() as stop_request:
    while step < config.num_steps:
      num = min(config.steps_per_chunk, config.num_steps - step)
      input_start = time.monotonic()
      batches = data.batches(step, num) if data is not None else None
      input_s += time.monotonic() - input_start
      chunk_start = time.monotonic()
      state, chunk_metrics = train_chunk(state, batches, num)
      pending.append(chunk_metrics)
      step += num
      jax.block_until_ready(chunk_metrics['loss'])  # One sync per chunk.
      now = time.monotonic()
      if first_chunk_s is None:  # Compilation included.
        first_chunk_s = now - chunk_start

      stopped_by = None
      if stop_request.signal_name:
        stopped_by = stop_request.signal_name
      elif config.time_budget_s and now - started >= config.time_budget_s:
        stopped_by = 'time_budget'
      # Every process stops at the same step: when process 0 does.
      if not parallel.agree(stopped_by is not None):
        stopped_by = None
      elif stopped_by is None:
        stopped_by = 'process_0'
      done = stopped_by is not None or step == config.num_steps
      do_log = done or step % config.log_every == 0
      do_eval = done or step % config.eval_every == 0
      do_checkpoint = done or step % config.checkpoint_every == 0
      if not (do_log or do_eval or do_checkpoint):
        continue

      # Everything since the last log, so each log averages its interval.
      fetched = jax.device_get(pending)
      losses = np.concatenate([np.asarray(m['loss']) for m in fetched])
      if not np.all(np.isfinite(losses)):
        first_bad = step - len(losses) + int(np.argmin(np.isfinite(losses)))
        raise FloatingPointError(
            f'Training loss is {losses[~np.isfinite(losses)][0]} at step '
            f'{first_bad + 1}; stopping. The last good checkpoint is '
            f'{last_checkpoint or "none (no checkpoint was written)"}.'
        )
      if do_log:
        rate = (step - last_log_step) / max(now - last_log_time, 1e-9)
        record = {
            'step': step,
            'split': 'train',
            **_mean_records(fetched),
            'steps_per_sec': rate,
            'devices': parallel.num_devices,
            'elapsed_s': now - started,
            metrics_lib.PROCESS_START_TIME: process_start_time,
            'eta_s': (config.num_steps - step) / rate,
        }
        if tokens_per_step:
          record['tokens_per_sec'] = rate * tokens_per_step
        if not logged_first_chunk:
          record['first_chunk_s'] = first_chunk_s
          logged_first_chunk = True
        peak_mib = peak_device_memory_mib()
        if peak_mib is not None:
          record['peak_memory_mib'] = peak_mib
        if data is not None:
          record['input_ms_per_step'] = 1e3 * input_s / (step - last_log_step)
          input_s = 0.0
        writer.write(record)
        summary['train'] = record
        if data is not None:
          data.observe(record)
        pending = []
        last_log_time, last_log_step = now, step
      if do_eval:
        summary['eval'] = write_evaluation(step, state.params, now - started)
        last_log_time = time.monotonic()  # Evaluation is not training time.
      if do_checkpoint:
        # Whole arrays, gathered from every process (a collective).
        whole = parallel.gather(
            (state, data.state() if data is not None else {})
        )
        last_checkpoint = checkpoint.path_for_step(workdir, step)
        if primary:
          checkpoint.save(workdir, step, whole, keep=config.keep_checkpoints)
        last_log_time = time.monotonic()
      if stopped_by is not None:
        logging.info('Stopping at step %d: %s.', step, stopped_by)
        summary['stopped_by'] = stopped_by
        break
  summary['step'] = step
  summary['state'] = state
  nothing_done = step == start and restored is not None
  if nothing_done:
    logging.info(
        'Nothing to do: the checkpoint in %s is at step %d.', workdir, step
    )
  if final_evaluate is not None:
    earlier = [
        r
        for r in metrics_lib.read_records(writer.path)
        if r.get('split') == 'test' and r['step'] == step
    ]
    if nothing_done and earlier:
      summary['test'] = earlier[-1]
    else:
      summary['test'] = {
          'step': step,
          'split': 'test',
          **{f'test_{k}': v for k, v in final_evaluate(state.params).items()},
      }
      writer.write(summary['test'])
  writer.close()
  return summary
