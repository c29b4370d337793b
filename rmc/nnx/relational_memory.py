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
"""The Relational Memory Core as a Flax NNX cell: ``rmc.nnx.RelationalMemory``.

On the pure functions of :mod:`rmc.relational_memory` (the input projection,
the memory step, the attention) and the fast unroll of :mod:`rmc.fast_unroll`,
as the Haiku core :class:`rmc.RelationalMemory`, so the two give the same
numbers from the same parameters.
"""

import math
from typing import Any

from flax import nnx
import jax
import jax.numpy as jnp

from rmc import fast_unroll
from rmc import relational_memory as rm
from rmc.nnx import _weights

_DEFAULT_NAME = 'relational_memory'


def _parameter_shapes(
    config: rm._Config, row_size: int, num_rows: int
) -> dict[str, tuple[int, ...]]:  # pylint: disable=protected-access
  """Every parameter's shape, keyed ``'<module>/<name>'`` as the equations'.

  In the Haiku core's order of creation (``RelationalMemory._parameters``).
  """
  d = config.num_heads * config.head_size
  f = config.qkv_features
  gate_size = {'unit': d, 'memory': 1, None: 0}[config.gate_style]  # G
  g = 2 * gate_size
  shapes: dict[str, tuple[int, ...]] = {}

  def linear(name: str, fan_in: int, fan_out: int) -> None:
    shapes[f'{name}/w'] = (fan_in, fan_out)
    shapes[f'{name}/b'] = (fan_out,)

  def layer_norm(name: str, size: int) -> None:
    shapes[f'{name}/scale'] = (size,)
    shapes[f'{name}/offset'] = (size,)

  linear('input_projection', row_size, d)
  for block in range(config.num_blocks):
    linear(f'qkv_projection_{block}', d, f)
    layer_norm(f'qkv_layer_norm_{block}', f)
    layer_norm(f'attention_layer_norm_{block}', d)
    if block == 0:
      for layer in range(config.mlp_layers):
        linear(f'attention_mlp/linear_{layer}', d, d)
    layer_norm(f'mlp_layer_norm_{block}', d)
  if g:
    linear('gates_from_input', num_rows * d, g)
    linear('gates_from_memory', d, g)
  return shapes


class RelationalMemory(nnx.RNNCellBase):
  """The Relational Memory Core as a Flax NNX recurrent cell.

  The equations, arguments, defaults and checks are those of the Haiku core
  :class:`rmc.RelationalMemory` (see its docstring); what differs is the
  NNX contract:

  * the cell is built for a given input size (``in_features``), with its
    parameters, as NNX modules are; matrix inputs (the Haiku core's
    ``treat_input_as_matrix``) are chosen here by ``input_rows``;
  * ``__call__(carry, inputs)`` returns ``(carry, outputs)``, with the memory
    ``[*batch, N, D]`` as the carry and ``[*batch, N * D]`` as the output,
    for any number of leading batch axes (none included);
  * ``initialize_carry(input_shape)`` gives the identity memory (or the
    learned one, with ``trainable_initial_state``);
  * :meth:`unroll` runs a sequence with the Haiku core's fast unroll.

  Its parameters, ``weights``, are keyed ``'<module>/<name>'`` (e.g.
  ``'input_projection/w'``) as the Haiku core's are named
  (``'relational_memory/input_projection'``, ``'w'``); they are initialised
  with the same distributions, from ``rngs.params``.
  """

  def __init__(
      self,
      in_features: int,
      mem_slots: int,
      head_size: int,
      num_heads: int = 1,
      num_blocks: int = 1,
      forget_bias: float = 1.0,
      input_bias: float = 0.0,
      gate_style: rm.GateStyle = 'unit',
      attention_mlp_layers: int = 2,
      key_size: int | None = None,
      *,
      input_rows: int | None = None,
      attention_scale: rm.AttentionScale = 'key_size',
      trainable_initial_state: bool = False,
      return_diagnostics: bool = False,
      compute_dtype: Any = None,
      param_dtype: Any = jnp.float32,
      rngs: nnx.Rngs,
  ):
    """Constructs the cell and its parameters.

    Args:
      in_features: The size of one input: ``d_in`` (the input, flattened
        over its feature axes, is one row), or with ``input_rows`` the size of
        one row.
      mem_slots: As :class:`rmc.RelationalMemory`.
      head_size: As :class:`rmc.RelationalMemory`.
      num_heads: As :class:`rmc.RelationalMemory`.
      num_blocks: As :class:`rmc.RelationalMemory`.
      forget_bias: As :class:`rmc.RelationalMemory`.
      input_bias: As :class:`rmc.RelationalMemory`.
      gate_style: As :class:`rmc.RelationalMemory`.
      attention_mlp_layers: As :class:`rmc.RelationalMemory`.
      key_size: As :class:`rmc.RelationalMemory`.
      input_rows: None: each input ``[*batch, in_features]`` is one row. An
        integer ``n``: each input is ``[*batch, n, in_features]``, ``n`` rows
        that share the input projection (the Haiku core's
        ``treat_input_as_matrix``).
      attention_scale: As :class:`rmc.RelationalMemory`.
      trainable_initial_state: Learn the initial memory (a parameter
        ``initial_memory`` ``[N, D]``, initialised to the identity), which
        ``initialize_carry`` then gives.
      return_diagnostics: As :class:`rmc.RelationalMemory`: the outputs are
        :class:`rmc.RelationalMemoryOutput`.
      compute_dtype: As :class:`rmc.RelationalMemory`.
      param_dtype: The parameters' dtype (and the initial memory's).
      rngs: Their random numbers (``rngs.params``).

    Raises:
      ValueError: As :class:`rmc.RelationalMemory`, and if ``in_features``
        or ``input_rows`` is not a positive integer.
    """
    self.config = rm._make_config(  # pylint: disable=protected-access
        mem_slots=mem_slots,
        head_size=head_size,
        num_heads=num_heads,
        num_blocks=num_blocks,
        forget_bias=forget_bias,
        input_bias=input_bias,
        gate_style=gate_style,
        attention_mlp_layers=attention_mlp_layers,
        key_size=key_size,
        attention_scale=attention_scale,
        compute_dtype=compute_dtype,
    )
    rm._check_positive_int('in_features', in_features)  # pylint: disable=protected-access
    if input_rows is not None:
      rm._check_positive_int('input_rows', input_rows)  # pylint: disable=protected-access
    self.in_features = int(in_features)
    self.input_rows = input_rows
    self.mem_slots = self.config.mem_slots
    self.mem_size = self.config.num_heads * self.config.head_size
    self.return_diagnostics = return_diagnostics
    self.param_dtype = param_dtype
    self.weights = _weights.initial_weights(
        _parameter_shapes(self.config, self.in_features, input_rows or 1),
        param_dtype,
        rngs,
    )
    self.initial_memory = (
        nnx.Param(jnp.eye(self.mem_slots, self.mem_size, dtype=param_dtype))
        if trainable_initial_state
        else None
    )

  @property
  def num_feature_axes(self) -> int:
    """1, or 2 with ``input_rows`` (rows, then each row's features)."""
    return 1 if self.input_rows is None else 2

  @property
  def state_size(self) -> tuple[int, int]:
    """``(N, D)``: the memory's shape without its batch axes."""
    return (self.mem_slots, self.mem_size)

  def initialize_carry(
      self,
      input_shape: tuple[int, ...],
      rngs: nnx.Rngs | nnx.RngStream | None = None,
      carry_init: Any = None,
  ) -> jax.Array:
    """The initial memory for inputs of ``input_shape``: ``[*batch, N, D]``.

    The identity, padded or truncated to ``D`` (as the Haiku core's), or the
    learned ``initial_memory`` with ``trainable_initial_state``; the same for
    every batch element.

    Args:
      input_shape: One step's inputs' shape, ``[*batch, in_features]`` (or
        ``[*batch, n, in_features]`` with ``input_rows``).
      rngs: Unused (the memory is not random).
      carry_init: Unused.
    """
    del rngs, carry_init
    batch = tuple(input_shape[: len(input_shape) - self.num_feature_axes])
    if self.initial_memory is not None:
      memory = self.initial_memory[...]
    else:
      memory = jnp.eye(self.mem_slots, self.mem_size, dtype=self.param_dtype)
    return jnp.broadcast_to(memory, batch + memory.shape)  # [*batch, N, D]

  def _rows(self, inputs: jax.Array, dtype: Any, num_lead: int) -> jax.Array:
    """``inputs`` cast and shaped as rows ``[*lead, n, d_row]``, checked."""
    inputs = jnp.asarray(inputs)
    rows = rm._input_rows(inputs, dtype, self.input_rows is not None, num_lead)  # pylint: disable=protected-access
    expected = (self.input_rows or 1, self.in_features)
    if rows.shape[-2:] != expected:
      raise ValueError(
          f'inputs must end in {list(expected[-self.num_feature_axes:])} '
          f'(in_features={self.in_features}, input_rows={self.input_rows}); '
          f'got inputs of shape {inputs.shape}.'
      )
    return rows

  def __call__(
      self, carry: jax.Array, inputs: jax.Array
  ) -> tuple[jax.Array, Any]:
    """One time step.

    Args:
      carry: The memory ``[*batch, N, D]``.
      inputs: ``[*batch, in_features]``, or ``[*batch, n, in_features]`` with
        ``input_rows``.

    Returns:
      ``(memory [*batch, N, D], output [*batch, N * D])``; the output is a
      :class:`rmc.RelationalMemoryOutput` with ``return_diagnostics``.

    Raises:
      ValueError: If ``carry`` is not ``[*batch, N, D]`` of a floating
        dtype, or ``inputs`` does not match it and the cell.
    """
    memory = jnp.asarray(carry)
    self._check_memory(memory)
    batch = memory.shape[:-2]
    if tuple(jnp.shape(inputs)[: len(batch)]) != batch:
      raise ValueError(
          f'inputs and carry must have the same batch axes; got inputs of '
          f'shape {jnp.shape(inputs)} and carry of shape {memory.shape}.'
      )
    size = math.prod(batch)
    rows = self._rows(
        jnp.reshape(inputs, (size,) + jnp.shape(inputs)[len(batch) :]),
        memory.dtype,
        1,
    )  # [B, n, d_row]
    flat_memory = memory.reshape((size,) + self.state_size)  # [B, N, D]
    params = _weights.values(self.weights)
    projected, gates = rm._project_inputs(self.config, params, rows)  # pylint: disable=protected-access
    next_memory, (weights, input_gate, forget_gate) = rm._memory_step(  # pylint: disable=protected-access
        self.config,
        params,
        projected,
        gates,
        flat_memory,
        lambda _, x, w: self.config.dot(x, w),
    )
    output: Any = next_memory.reshape(batch + (-1,))  # [*batch, N * D]
    if self.return_diagnostics:

      def unflatten(x):
        return None if x is None else x.reshape(batch + x.shape[1:])

      output = rm.RelationalMemoryOutput(
          output=output,
          attention_weights=tuple(unflatten(w) for w in weights),
          input_gate=unflatten(input_gate),
          forget_gate=unflatten(forget_gate),
      )
    return next_memory.reshape(memory.shape), output

  def unroll(
      self,
      inputs: jax.Array,
      initial_carry: jax.Array | None = None,
      *,
      time_major: bool = False,
      seq_lengths: jax.Array | None = None,
  ) -> tuple[jax.Array, jax.Array]:
    """Runs a whole sequence with the Haiku core's fast unroll.

    Equal to ``nnx.RNN(cell, return_carry=True)(inputs, initial_carry=...,
    seq_lengths=...)`` within float rounding, but faster to differentiate
    (see :meth:`rmc.RelationalMemory.unroll`). A sample's steps past its
    length keep its memory and output zeros.

    Args:
      inputs: ``[B, T, in_features]`` (``[T, B, ...]`` if ``time_major``;
        ``[..., n, in_features]`` with ``input_rows``).
      initial_carry: The memory before the first step, ``[B, N, D]``; by
        default :meth:`initialize_carry`'s.
      time_major: Whether time is the leading axis of ``inputs`` and of the
        outputs.
      seq_lengths: None, or integer ``[B]``: each sample's valid steps.

    Returns:
      ``(final memory [B, N, D], outputs [B, T, N * D])`` (outputs
      ``[T, B, N * D]`` if ``time_major``).

    Raises:
      ValueError: If ``return_diagnostics`` is set (step with ``nnx.RNN``
        instead), or for shapes that do not match.
    """
    if self.return_diagnostics:
      raise ValueError(
          'unroll gives no diagnostics; run the cell with nnx.RNN for them.'
      )
    inputs = jnp.asarray(inputs)
    if not time_major:
      inputs = jnp.swapaxes(inputs, 0, 1)  # [T, B, ...]
    if initial_carry is None:
      initial_carry = self.initialize_carry(inputs.shape[1:])
    memory = jnp.asarray(initial_carry)
    self._check_memory(memory)
    if memory.ndim != 3 or inputs.shape[1] != memory.shape[0]:
      raise ValueError(
          f'unroll needs one batch axis, the same in inputs and carry; got '
          f'inputs of shape {inputs.shape} (time-major) and carry of shape '
          f'{memory.shape}.'
      )
    rows = self._rows(inputs, memory.dtype, 2)  # [T, B, n, d_row]
    valid = None
    if seq_lengths is not None:
      seq_lengths = jnp.asarray(seq_lengths)
      if seq_lengths.shape != (memory.shape[0],) or not jnp.issubdtype(
          seq_lengths.dtype, jnp.integer
      ):
        raise ValueError(
            f'seq_lengths must be integers of shape [B] = [{memory.shape[0]}];'
            f' got {seq_lengths.dtype} of shape {seq_lengths.shape}.'
        )
      valid = jnp.arange(rows.shape[0])[:, None] < seq_lengths[None, :]
    outputs, final = fast_unroll.unroll(
        self.config, _weights.values(self.weights), rows, memory, valid
    )  # [T, B, N * D], [B, N, D]
    if not time_major:
      outputs = jnp.swapaxes(outputs, 0, 1)  # [B, T, N * D]
    return final, outputs

  def _check_memory(self, memory: jax.Array) -> None:
    if memory.ndim < 2 or memory.shape[-2:] != self.state_size:
      raise ValueError(
          f'carry must have shape [*batch, {self.mem_slots}, '
          f'{self.mem_size}] ([*batch, mem_slots, mem_size]); got '
          f'{memory.shape}.'
      )
    if not jnp.issubdtype(memory.dtype, jnp.floating):
      raise ValueError(f'carry must have a floating dtype; got {memory.dtype}.')

  # The conversion to and from the Haiku core's parameters (_weights).
  HAIKU_NAME = _DEFAULT_NAME
  HAIKU_ANCHOR = 'input_projection'

  @staticmethod
  def haiku_module(key: str) -> str:
    """The Haiku module below the core that holds the weight ``key``."""
    return key.rsplit('/', 1)[0].replace('/', '/~/')

  def haiku_extras(self) -> dict[str, nnx.Param]:
    """The parameters of the core's own module: the learned memory."""
    if self.initial_memory is None:
      return {}
    return {'initial_memory': self.initial_memory}
