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
"""Trained runs: :func:`load_run` rebuilds a run's model and restores it.

The task's module (:mod:`rmc.tasks`) builds the model from the typed
configuration that the work directory's ``config.json`` holds
(:mod:`rmc.toolkit.run_config`), exactly as the binary built it::

  run = rmc.load_run('/tmp/nth_farthest')  # The newest checkpoint.
  logits = run.model.apply(run.params, inputs)  # The binary's model.
  run.hyperparameters.rmc.mem_slots  # Typed: tasks.Config.
  run.core_params  # The trained core's parameters, for a model of your own.
"""

import dataclasses
import os
from typing import Any

import haiku as hk
import jax

from rmc import tasks
from rmc.toolkit import checkpoint
from rmc.toolkit import cores
from rmc.toolkit import run_config


def core_description(config: tasks.Config) -> dict[str, Any]:
  """The ``core`` entry of config.json: the core's type and arguments."""
  core = config.core_hyperparameters
  if isinstance(core, cores.RMC):
    return {'type': 'rmc', 'kwargs': core.kwargs(config.compute_dtype)}
  if isinstance(core, cores.DNC):
    return {'type': 'dnc', 'kwargs': core.kwargs()}
  return {'type': 'lstm', 'hidden_size': core.hidden_size}


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained run of one of the experiment binaries.

  Attributes:
    workdir: Its work directory.
    config: Its ``config.json`` (see :mod:`rmc.toolkit.run_config`).
    hyperparameters: Its hyperparameters, typed (read from config.json's).
    step: The step of the checkpoint the parameters are from.
    params: The whole model's parameters.
    model: The task's model, ``hk.transform``-ed: for ``nth_farthest``
      ``apply(params, inputs [B, K, F + 3K])`` gives logits ``[B, K]``; for
      ``learn_to_execute`` ``apply(params, batch)`` gives logits
      ``[T_out, B, V]``; for ``wikitext103`` ``apply(params, rng,
      inputs [T, B], targets [T, B], state, reset, is_training)`` gives
      ``(log_probs [T, B], state)``.
    core_params: The core's part of ``params``, named as a core made by
      :meth:`make_core` at the top of a transform (Learning to Execute's
      encoder, which is also its decoder unless ``separate_cores``).
    core_input_size: The size of the core's input at each step.
    vocabulary: The task's vocabulary
      (:class:`rmc.data.learn_to_execute.Vocabulary` or
      :class:`rmc.data.wikitext.Vocabulary`), None for Nth Farthest.
    initial_state: The language model's ``initial_state`` transform
      (``apply(None, batch_size)``); None for the other tasks.
  """

  workdir: str
  config: dict[str, Any]
  hyperparameters: tasks.Config
  step: int
  params: hk.Params
  model: hk.Transformed
  core_params: hk.Params
  core_input_size: int
  vocabulary: Any = None
  initial_state: hk.Transformed | None = None

  @property
  def binary(self) -> str:
    """The binary that trained the run."""
    return self.config['binary']

  @property
  def seed(self) -> int:
    """The ``--seed`` it trained with."""
    return self.config['seed']

  @property
  def data(self) -> dict[str, Any]:
    """config.json's ``data`` section (where the training data came from)."""
    return self.config['data']

  @property
  def task(self) -> tasks.Task:
    """The run's task (:mod:`rmc.tasks`)."""
    return tasks.TASKS[self.binary]

  def make_core(self, **rmc_overrides: Any) -> hk.RNNCore:
    """A core with the trained core's arguments (inside ``hk.transform``).

    Made at the top of a transform, its parameters are named as
    :attr:`core_params`, so ``hk.data_structures.merge(params,
    run.core_params)`` puts the trained values in.

    Args:
      **rmc_overrides: Further arguments of an RMC core, e.g.
        ``return_diagnostics=True``.
    """
    return self.task.make_core(self.hyperparameters, **rmc_overrides)

  @property
  def core(self) -> hk.Transformed:
    """The core alone: ``apply(core_params, inputs [T, B, D_in])``.

    Unrolls the core over time-major inputs from its initial state and
    gives ``(outputs [T, B, D_out], final_state)``; no RNG.
    """
    return self.task.core_unroll(self.hyperparameters)


def restore_params(
    workdir: str, template: hk.Params, step: int | None = None
) -> tuple[int, hk.Params]:
  """The parameters held by a checkpoint of a run's training state.

  Args:
    workdir: The run's work directory.
    template: The parameters' structure, shapes and dtypes (arrays or
      ``jax.ShapeDtypeStruct``s, e.g. from :func:`params_shapes`).
    step: The checkpoint's step; None means the newest.

  Returns:
    ``(step, params)``, NumPy arrays.

  Raises:
    checkpoint.CheckpointError: If there is no such checkpoint, or it does
      not hold parameters of this structure.
  """
  newest = step is None
  for _ in range(3):
    steps = checkpoint.list_steps(workdir)
    if not steps:
      raise checkpoint.CheckpointError(
          f'No checkpoint in {workdir}: train first (--mode=train), or pass '
          'the work directory of a trained run.'
      )
    if newest:
      step = steps[-1]
    elif step not in steps:
      raise checkpoint.CheckpointError(
          f'No checkpoint of step {step} in {workdir}; it holds steps {steps}.'
      )
    path = checkpoint.path_for_step(workdir, step)
    try:
      # Checkpoints hold (TrainState, data state); the parameters are at
      # [0].params (see rmc.toolkit.training.train).
      return step, checkpoint.restore(path, template, prefix='[0].params')
    except checkpoint.CorruptCheckpointError:
      # A training beside us may have deleted the newest of a moment ago
      # (keep-last-k) between the listing and the read: list again.
      if not newest or os.path.exists(path):
        raise
  raise checkpoint.CheckpointError(
      f'The checkpoints in {workdir} changed under three reads in a row.'
  )


def load_run(workdir: str, step: int | None = None) -> Run:
  """Loads a trained run of an experiment binary from its work directory.

  Args:
    workdir: A work directory the binary trained in: it holds config.json
      and checkpoints (and, for the language model, vocab.txt).
    step: The checkpoint to load; None means the newest.

  Returns:
    The :class:`Run`: configuration, parameters and models.

  Raises:
    rmc.toolkit.run_config.ConfigError: If config.json is missing, unreadable or
      holds a value that is not allowed.
    rmc.toolkit.checkpoint.CheckpointError: If there is no such checkpoint, or
      it does not match the configuration's model.
    rmc.data.wikitext.DataError: If a language model's vocab.txt is missing
      or unreadable.
  """
  saved = run_config.read(workdir)
  binary = saved.get('binary')
  if binary not in tasks.TASKS:
    raise run_config.ConfigError(
        f'{run_config.path(workdir)} names the binary {binary!r}; expected '
        f'one of {list(tasks.TASKS)}.'
    )
  task = tasks.TASKS[binary]
  try:
    config = task.config(saved['hyperparameters'])
  except ValueError as e:
    raise run_config.ConfigError(f'{run_config.path(workdir)}: {e}') from e
  vocabulary = task.vocabulary(config, workdir)
  vocab_size = None if vocabulary is None else len(vocabulary)
  template = task.params_shapes(config, vocab_size)
  step, params = restore_params(workdir, template, step)
  core_shapes = task.core_params_shapes(config, vocab_size)
  core_params = {name: params[name] for name in core_shapes if name in params}
  if jax.tree.map(lambda x: (x.shape, x.dtype), core_shapes) != jax.tree.map(
      lambda x: (x.shape, x.dtype), core_params
  ):
    raise checkpoint.CheckpointError(
        f'The core parameters in {workdir} do not match its configuration.'
    )
  return Run(
      workdir=workdir,
      config=saved,
      hyperparameters=config,
      step=step,
      params=params,
      model=task.model(config, vocab_size),
      core_params=core_params,
      core_input_size=task.core_input_size(config, vocab_size),
      vocabulary=vocabulary,
      initial_state=task.initial_state(config, vocab_size),
  )
