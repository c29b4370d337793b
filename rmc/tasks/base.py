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
"""What every task has: a run's typed configuration, and the task's base.

A run is configured by one :class:`Config`: the task's hyperparameters (a
:class:`rmc.toolkit.hyperparameters.Hyperparameters` group of the task's
module), the optimiser's (:class:`rmc.toolkit.training.Optimizer`), the loop's
(:class:`rmc.toolkit.training.LoopConfig`) and each core's
(:mod:`rmc.toolkit.cores`), with the name of the core trained. Its flat form,
one key per hyperparameter named as its flag, is what ``config.json`` holds.

A task (:class:`Task`) owns its hyperparameters, its presets and its model;
:mod:`rmc.tasks` registers the tasks by name.
"""

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, Generic, Literal, Self, TypeVar

import haiku as hk
import jax
import jax.numpy as jnp

from rmc import models
from rmc.toolkit import cores
from rmc.toolkit.hyperparameters import hyperparameter
from rmc.toolkit.hyperparameters import Hyperparameters
from rmc.toolkit import training

CoreName = Literal['rmc', 'lstm', 'dnc']  # The keys of rmc.toolkit.cores.CORES.
TaskT = TypeVar('TaskT', bound=Hyperparameters)


def eval_batches(default: Any = dataclasses.MISSING) -> Any:
  """The ``eval_batches`` field of a task with a fixed held-out set."""
  return hyperparameter(
      'Batches of --batch_size in the fixed held-out set.',
      default=default,
      lower=1,
  )


# What every task's `smoke` preset (tiny, for tests) trains with.
SMOKE_LOOP = training.LoopConfig(
    num_steps=40,
    steps_per_chunk=5,
    log_every=10,
    eval_every=20,
    checkpoint_every=20,
    keep_checkpoints=2,
)
SMOKE_LSTM = cores.LSTM(hidden_size=16)
SMOKE_DNC = cores.DNC(
    memory_size=4, word_size=4, num_reads=2, num_writes=1, controller_size=8
)


@dataclasses.dataclass(frozen=True)
class Config(Generic[TaskT]):
  """Every hyperparameter of one run.

  Attributes:
    task: The task's hyperparameters.
    optimizer: The optimiser's, with the batch size.
    loop: The training loop's budget and cadences.
    rmc: The RMC's (used when ``core`` is ``'rmc'``).
    lstm: The LSTM's (``core`` ``'lstm'``).
    dnc: The DNC's (``core`` ``'dnc'``).
    core: The core trained: ``'rmc'``, ``'lstm'`` or ``'dnc'``.
    compute_dtype: The RMC's matrix products' operand dtype.
    preset: The preset the values came from (None: written out in full).
  """

  task: TaskT
  optimizer: training.Optimizer
  loop: training.LoopConfig
  rmc: cores.RMC
  lstm: cores.LSTM
  dnc: cores.DNC
  core: CoreName = 'rmc'
  compute_dtype: cores.ComputeDtype = 'float32'
  preset: str | None = None

  def __post_init__(self):
    if self.core not in cores.CORES:
      raise ValueError(
          f'--core must be one of {list(cores.CORES)}; got {self.core!r}.'
      )
    if self.compute_dtype not in ('float32', 'bfloat16'):
      raise ValueError(
          "--compute_dtype must be one of ['float32', 'bfloat16']; got "
          f'{self.compute_dtype!r}.'
      )
    if self.core != 'rmc' and self.compute_dtype != 'float32':
      raise ValueError(
          f'--compute_dtype={self.compute_dtype} applies to the RMC core '
          f'only; got --core={self.core}.'
      )

  @property
  def groups(self) -> tuple[Hyperparameters, ...]:
    """The typed groups, in the order of the flat form."""
    return (self.task, self.optimizer, self.loop, self.rmc, self.lstm, self.dnc)

  @property
  def core_hyperparameters(self) -> cores.RMC | cores.LSTM | cores.DNC:
    """The hyperparameters of the core trained (``core``)."""
    by_name: dict[str, cores.RMC | cores.LSTM | cores.DNC] = {
        'rmc': self.rmc,
        'lstm': self.lstm,
        'dnc': self.dnc,
    }
    return by_name[self.core]

  def flat(self) -> dict[str, Any]:
    """``{flag name: value}`` of every hyperparameter, as config.json has."""
    values: dict[str, Any] = {
        'preset': self.preset,
        'core': self.core,
        'compute_dtype': self.compute_dtype,
    }
    for group in self.groups:
      values.update(group.flat())
    return values

  @classmethod
  def from_flat(
      cls,
      task: type[TaskT],
      values: Mapping[str, Any],
      fallback: 'Config[TaskT] | None' = None,
  ) -> 'Config[TaskT]':
    """The configuration of flat ``{flag name: value}`` (e.g. config.json).

    Args:
      task: The task's hyperparameter group.
      values: The values; names of no group are ignored.
      fallback: Where a value missing from ``values`` comes from (for a
        config.json of a run from before that hyperparameter existed); by
        default the groups' defaults.

    Raises:
      ValueError: One line naming a value that is not allowed, or missing.
    """
    values = {**(fallback.flat() if fallback else {}), **values}
    return cls(
        task=task.from_flat(values),
        optimizer=training.Optimizer.from_flat(values),
        loop=training.LoopConfig.from_flat(values),
        rmc=cores.RMC.from_flat(values),
        lstm=cores.LSTM.from_flat(values),
        dnc=cores.DNC.from_flat(values),
        core=values.get('core', 'rmc'),
        compute_dtype=values.get('compute_dtype', 'float32'),
        preset=values.get('preset'),
    )

  def replace(self, **values: Any) -> Self:
    """A copy with hyperparameters replaced by flag name, checked.

    For example ``config.replace(core='lstm', mem_slots=8)``.

    Raises:
      ValueError: For a name that is no hyperparameter of the run, or a
        value that is not allowed.
    """
    flat = self.flat()
    unknown = sorted(set(values) - set(flat))
    if unknown:
      raise ValueError(
          f'No hyperparameter {", ".join(unknown)} in '
          f'{type(self.task).__name__} runs.'
      )
    task = type(self.task)
    return type(self).from_flat(task, {**flat, **values})  # type: ignore


class Task(abc.ABC, Generic[TaskT]):
  """A task: its hyperparameters, presets and model.

  Subclasses set the class attributes and the abstract methods; the rest
  (the core, the parameters' shapes and counts) follows from them.

  Attributes:
    name: The binary's module name, as config.json's ``binary`` gives it.
    hyperparameters: The task's group of hyperparameters.
    presets: The named configurations (``--preset``).
    default_preset: The preset used when ``--preset`` is not given.
    lstm_layers: LSTMs stacked with skip connections for ``core='lstm'``.
  """

  name: str
  hyperparameters: type[TaskT]
  presets: Mapping[str, Config[TaskT]]
  default_preset: str
  lstm_layers: int = 1

  def flag_names(self) -> tuple[str, ...]:
    """The flat names of the task's hyperparameters (as its flags).

    ``preset`` and ``compute_dtype`` are among them.
    """
    return tuple(self.presets[self.default_preset].flat())

  def config(self, values: Mapping[str, Any]) -> Config[TaskT]:
    """The configuration of a config.json's flat ``hyperparameters``.

    A hyperparameter that a run from before it existed lacks takes its
    preset's value (e.g. the DNC's, for a run of another core), or the
    default preset's if the preset is not one of the task's.
    """
    preset = self.presets.get(
        values.get('preset') or '', self.presets[self.default_preset]
    )
    return Config.from_flat(self.hyperparameters, values, preset)

  def make_core(
      self,
      config: Config[TaskT],
      name: str | None = None,
      **rmc_overrides: Any,
  ) -> hk.RNNCore:
    """The run's recurrent core (inside ``hk.transform``).

    Args:
      config: The run's configuration.
      name: Module name of an RMC or DNC (by default ``relational_memory``
        or ``dnc``).
      **rmc_overrides: Further arguments of an RMC (e.g.
        ``return_diagnostics=True``).

    Returns:
      :class:`rmc.RelationalMemory`; or a baseline: :class:`rmc.DNC`, or
      ``hk.LSTM`` (:attr:`lstm_layers` of them with skip connections).
    """
    core = config.core_hyperparameters
    if isinstance(core, cores.DNC):
      return core.make(name)
    if isinstance(core, cores.LSTM):
      return core.make(num_layers=self.lstm_layers)
    return core.make(name, config.compute_dtype, **rmc_overrides)

  @abc.abstractmethod
  def model(
      self, config: Config[TaskT], vocab_size: int | None = None
  ) -> hk.Transformed:
    """The task's model, ``hk.transform``-ed."""

  @abc.abstractmethod
  def core_input_size(
      self, config: Config[TaskT], vocab_size: int | None = None
  ) -> int:
    """The size of what the model feeds its core at each step."""

  @abc.abstractmethod
  def example_inputs(
      self, config: Config[TaskT], vocab_size: int | None = None
  ) -> tuple[Any, ...]:
    """``model.init``'s arguments after the key, as shapes (batch 1)."""

  def vocabulary(self, config: Config[TaskT], workdir: str) -> Any:
    """A trained run's vocabulary (its tokens' names), None if it has none.

    Args:
      config: The run's configuration.
      workdir: Its work directory (where a vocabulary built from the data
        is kept).
    """
    del config, workdir
    return None

  def num_cores(self, config: Config[TaskT]) -> int:
    """How many recurrent cores of the same arguments the model has."""
    del config
    return 1

  def initial_state(
      self, config: Config[TaskT], vocab_size: int | None = None
  ) -> hk.Transformed | None:
    """The core state's transform of a model that carries it, else None."""
    del config, vocab_size
    return None

  def params_shapes(
      self, config: Config[TaskT], vocab_size: int | None = None
  ) -> hk.Params:
    """The shapes and dtypes of the model's parameters (nothing computed)."""
    return jax.eval_shape(
        self.model(config, vocab_size).init,
        jax.random.key(0),
        *self.example_inputs(config, vocab_size),
    )

  def core_unroll(self, config: Config[TaskT]) -> hk.Transformed:
    """The core alone: ``apply(params, inputs [T, B, D_in])``.

    Unrolls the core (made by :meth:`make_core` at the top of the transform)
    over time-major inputs from its initial state and gives ``(outputs [T,
    B, D_out], final_state)``; no RNG.
    """

    def unroll(inputs):  # [T, B, D_in]
      core = self.make_core(config)
      return models.unroll(core, inputs, core.initial_state(inputs.shape[1]))

    return hk.without_apply_rng(hk.transform(unroll))

  def core_params_shapes(
      self, config: Config[TaskT], vocab_size: int | None = None
  ) -> hk.Params:
    """The shapes of one core's parameters, named as in the model."""
    return jax.eval_shape(
        self.core_unroll(config).init,
        jax.random.key(0),
        jax.ShapeDtypeStruct(
            (1, 1, self.core_input_size(config, vocab_size)), jnp.float32
        ),
    )

  def parameter_counts(
      self, config: Config[TaskT], vocab_size: int | None = None
  ) -> dict[str, int]:
    """``{'core': C, 'model': M}``, counted from the shapes alone.

    ``C`` counts every recurrent core of the model (:meth:`num_cores`), ``M``
    every parameter of the model, the cores included.
    """
    core = hk.data_structures.tree_size(
        self.core_params_shapes(config, vocab_size)
    )
    model = hk.data_structures.tree_size(self.params_shapes(config, vocab_size))
    return {'core': core * self.num_cores(config), 'model': model}
