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
"""The Differentiable Neural Computer as a Flax NNX cell: ``rmc.nnx.DNC``.

On the functions of :mod:`rmc.dnc` (the interface, the memory's step, the
core's step), as the Haiku core :class:`rmc.DNC`, so the two give the same
numbers from the same parameters. The controller is Haiku's LSTM
(``hk.LSTM``, or ``hk.DeepRNN`` of them), written out here: its state is a
``hk.LSTMState`` (a tuple of them with several layers), so a state passes
between the two cores as it is.
"""

import math
from typing import Any

from flax import nnx
import haiku as hk
import jax
import jax.numpy as jnp

from rmc import dnc
from rmc.nnx import _weights


def _linear(
    weights: dict[str, jax.Array], module: str, x: jax.Array
) -> jax.Array:
  """``hk.Linear``'s map: ``x @ w + b``, ``[B, fan_in] -> [B, fan_out]``."""
  out = jnp.dot(x, weights[f'{module}/w'])
  return out + jnp.broadcast_to(weights[f'{module}/b'], out.shape)


def _lstm(
    weights: dict[str, jax.Array],
    layer: str,
    inputs: jax.Array,
    state: hk.LSTMState,
) -> tuple[jax.Array, hk.LSTMState]:
  """``hk.LSTM``'s step: gates ``i, g, f, o`` and a forget bias of 1.

  Args:
    weights: The cell's, with ``'<layer>/linear/w'`` ``[D + C, 4C]`` and
      ``'<layer>/linear/b'`` ``[4C]``.
    layer: The layer's module name (``lstm``, ``lstm_0``, ...).
    inputs: ``[B, D]``.
    state: ``hidden`` and ``cell``, each ``[B, C]``.

  Returns:
    ``(hidden [B, C], state)``.
  """
  x_and_h = jnp.concatenate([inputs, state.hidden], axis=-1)  # [B, D + C]
  gated = _linear(weights, f'{layer}/linear', x_and_h)  # [B, 4C]
  i, g, f, o = jnp.split(gated, 4, axis=-1)
  cell = jax.nn.sigmoid(f + 1) * state.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
  hidden = jax.nn.sigmoid(o) * jnp.tanh(cell)
  return hidden, hk.LSTMState(hidden, cell)


class DNC(nnx.RNNCellBase):
  """The DNC (an LSTM controller and the memory) as a Flax NNX cell.

  The equations, arguments, defaults and checks are those of the Haiku core
  :class:`rmc.DNC` (see its docstring and :class:`rmc.dnc.MemoryAccess`'s);
  what differs is the NNX contract:

  * the cell is built for a given input size (``in_features``), with its
    parameters;
  * ``__call__(carry, inputs)`` returns ``(carry, outputs)``, with a
    :class:`rmc.dnc.DNCState` as the carry (the Haiku core's state) and
    ``[*batch, output_size]`` as the output, for any number of leading batch
    axes (none included);
  * ``initialize_carry(input_shape)`` gives the Haiku core's initial state:
    zeros everywhere.

  Its parameters, ``weights``, are keyed ``'<module>/<name>'`` as the Haiku
  core's modules are named: ``'lstm/linear/w'`` (``'lstm_0/linear/w'``, ...
  with several layers), ``'memory_access/write_vectors/w'``, ...,
  ``'output_linear/w'``; they are initialised with the same distributions,
  from ``rngs.params``.
  """

  # The conversion to and from the Haiku core's parameters (_weights).
  HAIKU_NAME = 'dnc'
  HAIKU_ANCHOR = 'output_linear'

  def __init__(
      self,
      in_features: int,
      access_config: dict[str, Any],
      controller_config: dict[str, Any],
      output_size: int,
      clip_value: float | None = None,
      *,
      param_dtype: Any = jnp.float32,
      rngs: nnx.Rngs,
  ):
    """Constructs the cell and its parameters.

    Args:
      in_features: The size ``D_in`` of one input ``[*batch, D_in]``.
      access_config: As :class:`rmc.DNC`: ``memory_size``, ``word_size``,
        ``num_reads``, ``num_writes``, ``strength_activation``.
      controller_config: As :class:`rmc.DNC`: ``hidden_size``, and
        optionally ``num_layers``.
      output_size: As :class:`rmc.DNC`.
      clip_value: As :class:`rmc.DNC`.
      param_dtype: The parameters' dtype (and the initial state's).
      rngs: Their random numbers (``rngs.params``).

    Raises:
      ValueError: As :class:`rmc.DNC`, and if ``in_features`` is not a
        positive integer.
      TypeError: For an unknown ``access_config`` key, as :class:`rmc.DNC`.
    """
    access = dnc.access_settings(**access_config)
    self.memory_size, self.word_size, self.num_reads, self.num_writes = access[
        :4
    ]
    self._strength_op = access[4]
    self.hidden_size, self.num_layers = dnc.controller_sizes(controller_config)
    dnc._check_positive(in_features=in_features, output_size=output_size)  # pylint: disable=protected-access
    self.in_features = in_features
    self.output_size = output_size
    self.clip_value = dnc.check_clip_value(clip_value)
    self.param_dtype = param_dtype
    c = self.hidden_size
    reads = self.num_reads * self.word_size  # R * W
    shapes: dict[str, tuple[int, ...]] = {}
    fan_in = in_features + reads
    for layer in self._layers:
      shapes[f'{layer}/linear/w'] = (fan_in + c, 4 * c)
      shapes[f'{layer}/linear/b'] = (4 * c,)
      fan_in = c
    for name, shape in dnc.interface_shapes(
        self.num_reads, self.num_writes, self.word_size
    ).items():
      shapes[f'memory_access/{name}/w'] = (c, math.prod(shape))
      shapes[f'memory_access/{name}/b'] = (math.prod(shape),)
    shapes['output_linear/w'] = (c + reads, output_size)
    shapes['output_linear/b'] = (output_size,)
    self.weights = _weights.initial_weights(shapes, param_dtype, rngs)

  @property
  def _layers(self) -> list[str]:
    """The controller's layers' module names, as the Haiku core's."""
    if self.num_layers == 1:
      return ['lstm']
    return [f'lstm_{i}' for i in range(self.num_layers)]

  @property
  def num_feature_axes(self) -> int:
    """1: each input is ``[*batch, in_features]``."""
    return 1

  def initialize_carry(
      self,
      input_shape: tuple[int, ...],
      rngs: nnx.Rngs | nnx.RngStream | None = None,
      carry_init: Any = None,
  ) -> dnc.DNCState:
    """The initial state for inputs of ``input_shape``: zeros everywhere.

    Args:
      input_shape: One step's inputs' shape, ``[*batch, in_features]``.
      rngs: Unused (the state is not random).
      carry_init: Unused.

    Returns:
      A :class:`rmc.dnc.DNCState` whose leaves lead with ``batch``.
    """
    del rngs, carry_init
    batch = tuple(input_shape[:-1])

    def zeros(*shape):
      return jnp.zeros(batch + shape, self.param_dtype)

    lstm = [
        hk.LSTMState(zeros(self.hidden_size), zeros(self.hidden_size))
        for _ in self._layers
    ]
    return dnc.DNCState(
        access_output=zeros(self.num_reads, self.word_size),
        access_state=dnc.initial_access_state(
            self.memory_size,
            self.word_size,
            self.num_reads,
            self.num_writes,
            batch,
            self.param_dtype,
        ),
        controller_state=lstm[0] if self.num_layers == 1 else tuple(lstm),
    )

  def __call__(
      self, carry: dnc.DNCState, inputs: jax.Array
  ) -> tuple[dnc.DNCState, jax.Array]:
    """One time step.

    Args:
      carry: The state, a :class:`rmc.dnc.DNCState` (leaves
        ``[*batch, ...]``).
      inputs: ``[*batch, in_features]``.

    Returns:
      ``(state, output [*batch, output_size])``.

    Raises:
      ValueError: If ``inputs`` does not match the cell and the carry.
    """
    inputs = jnp.asarray(inputs)
    batch = carry.access_output.shape[:-2]
    if inputs.shape != batch + (self.in_features,):
      raise ValueError(
          f'inputs must be [*batch, in_features] = '
          f'{list(batch + (self.in_features,))} for this carry; got '
          f'{list(inputs.shape)}.'
      )
    size = math.prod(batch)
    state = jax.tree.map(
        lambda x: x.reshape((size,) + x.shape[len(batch) :]), carry
    )  # Leaves [B, ...].
    weights = _weights.values(self.weights)

    def controller(x, state):
      if self.num_layers == 1:
        return _lstm(weights, 'lstm', x, state)
      states = []
      for layer, layer_state in zip(self._layers, state, strict=True):
        x, layer_state = _lstm(weights, layer, x, layer_state)
        states.append(layer_state)
      return x, tuple(states)

    def linear(name, x, size):
      del size  # The weights' shape.
      return _linear(weights, f'memory_access/{name}', x)

    def access(x, state):
      controls = dnc.interface(
          x, linear, self.num_reads, self.num_writes, self.word_size
      )
      return dnc.access_step(controls, state, self._strength_op)

    output, state = dnc.dnc_step(
        inputs.reshape(size, self.in_features),
        state,
        controller,
        access,
        lambda x: _linear(weights, 'output_linear', x),
        self.clip_value,
    )  # [B, output_size]
    state = jax.tree.map(
        lambda x: x.reshape(batch + x.shape[1:]), state
    )  # Leaves [*batch, ...].
    return state, output.reshape(batch + (self.output_size,))

  @staticmethod
  def haiku_module(key: str) -> str:
    """The Haiku module below the core that holds the weight ``key``."""
    module = key.rsplit('/', 1)[0]
    # Made in the Haiku core's constructor (`~`), or in its __call__.
    return module if module == 'output_linear' else '~/' + module

  def haiku_extras(self) -> dict[str, nnx.Param]:
    """None: every parameter is in a module below the core's."""
    return {}
