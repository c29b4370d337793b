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
"""The Relational Memory Core (Santoro et al., 2018) as a Haiku RNN core.

This module mirrors Sonnet v1's ``snt.RelationalMemory`` (tag v1.36): the same
constructor arguments and defaults, the same computation, and the same
parameter sharing. Deliberate differences are listed in the README.

Shape glossary (used in comments throughout):

* ``B``: batch size.
* ``N``: number of memory slots (``mem_slots``).
* ``H``: number of attention heads (``num_heads``).
* ``k``: query and key size per head (``key_size``).
* ``v``: value size per head (``head_size``).
* ``D``: size of one memory row, ``H * v`` (``mem_size``).
* ``n``: number of input rows; 1, or ``inputs.shape[1]`` in matrix mode.
* ``R``: rows attended over, ``N + n``.
* ``F``: size of the fused query/key/value projection, ``H * (2k + v)``.
* ``G``: gate size per memory row; ``D`` for ``'unit'`` gating, 1 for
  ``'memory'`` gating.
"""

from collections.abc import Sequence
import math
import numbers
from typing import Any, Literal, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

GateStyle = Literal['unit', 'memory'] | None
AttentionScale = Literal['key_size', 'qkv_size']

_GATE_STYLES = ('unit', 'memory', None)
_ATTENTION_SCALES = ('key_size', 'qkv_size')
_LAYER_NORM_EPS = 1e-5  # Sonnet v1's LayerNorm epsilon (added to the variance).


class RelationalMemoryOutput(NamedTuple):
  """Per-step output of a core built with ``return_diagnostics=True``.

  Every leaf is batch-leading, so ``hk.dynamic_unroll`` stacks it over time in
  both time-major (``[T, B, ...]``) and batch-major (``[B, T, ...]``) mode.

  Attributes:
    output: The new memory flattened row-major, ``[B, N * D]``; the same array
      the core returns when diagnostics are off.
    attention_weights: One array per attention block, each ``[B, H, R, R]``:
      the softmax weights of every query row (memory rows first, then input
      rows) over every key row.
    input_gate: Input gate ``[B, N, G]`` after the sigmoid, or ``None`` when
      ``gate_style`` is ``None``.
    forget_gate: Forget gate ``[B, N, G]`` after the sigmoid, or ``None`` when
      ``gate_style`` is ``None``.
  """
  output: jax.Array
  attention_weights: tuple[jax.Array, ...]
  input_gate: jax.Array | None
  forget_gate: jax.Array | None


def _check_positive_int(name: str, value: Any) -> None:
  """Raises a ValueError unless ``value`` is an integer >= 1 (not a bool)."""
  if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
      or value < 1):
    raise ValueError(f'{name} must be an integer >= 1. Got: {value!r}.')


class RelationalMemory(hk.RNNCore):
  r"""Relational Memory Core: multi-head attention over a recurrent memory.

  At each time step the input is projected to ``n`` rows of size ``D`` and
  appended to the ``N`` memory rows. ``num_blocks`` post-LayerNorm Transformer
  blocks (without an attention output projection) then update all ``R = N + n``
  rows, the input rows are dropped, and an LSTM-style gate mixes the result
  with the previous memory:

  .. math::

      \hat{x} &= W_x \operatorname{flatten}(x_t) + b_x
          &\in \mathbb{R}^{n \times D} \\
      Z &= [M_{t-1}; \hat{x}] &\in \mathbb{R}^{R \times D} \\
      Z &\leftarrow \operatorname{LN}(Z + \operatorname{MHA}(Z)),\;
      Z \leftarrow \operatorname{LN}(Z + \operatorname{MLP}(Z))
          &\text{(repeated num\_blocks times)} \\
      \tilde{M} &= Z_{1:N} \\
      [p_i; p_f] &= U \tanh(M_{t-1}) + b_U + W \operatorname{flatten}(\hat{x})
          + b_W \\
      i &= \sigma(p_i + \text{input\_bias}),\quad
      f = \sigma(p_f + \text{forget\_bias}) \\
      M_t &= i \odot \tanh(\tilde{M}) + f \odot M_{t-1}

  With ``gate_style=None`` the last three lines become :math:`M_t=\tilde{M}`.
  The output is :math:`M_t` flattened to ``[B, N * D]``; the state is
  :math:`M_t` itself, ``[B, N, D]``.

  Multi-head attention takes queries, keys and values from every row of ``Z``
  through one fused projection ``D -> F`` followed by a LayerNorm over all
  ``F`` features; per head, the query is scaled by ``key_size ** -0.5`` (or
  ``(2 * key_size + head_size) ** -0.5``, see ``attention_scale``). The row-wise
  MLP is shared by all blocks; each block has its own qkv projection and three
  LayerNorms. Every further call of the same instance (each time step, or an
  encoder and a decoder) reuses the same parameters.

  Dtype policy: a step computes in the dtype of the memory it is given
  (``prev_state``); inputs are cast to that dtype, and the output and the new
  state have it too, so the state's dtype is stable under ``hk.dynamic_unroll``.
  Parameters are created in that dtype. The initial state is float32 unless
  ``initial_state(..., dtype=...)`` says otherwise. For bfloat16 compute with
  float32 parameters use Haiku's mixed precision, e.g.
  ``hk.mixed_precision.set_policy(rmc.RelationalMemory,
  jmp.get_policy('params=float32,compute=bfloat16,output=float32'))``.
  """

  def __init__(
      self,
      mem_slots: int,
      head_size: int,
      num_heads: int = 1,
      num_blocks: int = 1,
      forget_bias: float = 1.0,
      input_bias: float = 0.0,
      gate_style: GateStyle = 'unit',
      attention_mlp_layers: int = 2,
      key_size: int | None = None,
      name: str | None = 'relational_memory',
      *,
      attention_scale: AttentionScale = 'key_size',
      trainable_initial_state: bool = False,
      return_diagnostics: bool = False,
  ):
    r"""Constructs a Relational Memory Core.

    Args:
      mem_slots: Number of memory rows ``N``.
      head_size: Value size ``v`` of each attention head; also the key size
        when ``key_size`` is None. The memory row size is
        ``D = head_size * num_heads``.
      num_heads: Number of attention heads ``H``.
      num_blocks: Rounds of attention + MLP per time step.
      forget_bias: Constant added to the forget-gate pre-activation.
      input_bias: Constant added to the input-gate pre-activation.
      gate_style: ``'unit'`` (a gate per memory element, ``G = D``),
        ``'memory'`` (one scalar gate per memory row, ``G = 1``) or ``None``
        (no gating: the new memory is the attention output).
      attention_mlp_layers: Number of affine layers, each of width ``D``, in
        the row-wise MLP (ReLU between layers, none after the last).
      key_size: Query and key size ``k`` per head. None means ``head_size``.
      name: Module name.
      attention_scale: Factor applied to the queries. ``'key_size'``
        multiplies by ``key_size ** -0.5`` (Sonnet >= v1.27, the paper's
        :math:`1/\sqrt{d_k}`); ``'qkv_size'`` multiplies by
        ``(2 * key_size + head_size) ** -0.5`` (Sonnet v1.23 to v1.26, the code
        public when the paper was written).
      trainable_initial_state: Default for ``initial_state(trainable=None)``;
        set it to make ``hk.ResetCore`` (which calls ``initial_state(B)``)
        reset to the learned initial memory.
      return_diagnostics: If True, each step returns a
        :class:`RelationalMemoryOutput` with the attention weights and gates
        instead of the flat ``[B, N * D]`` output array.

    Raises:
      ValueError: If ``num_blocks``, ``attention_mlp_layers``, ``mem_slots``,
        ``head_size``, ``num_heads`` or ``key_size`` is not a positive integer,
        or ``gate_style`` or ``attention_scale`` is not one of its options.
    """
    super().__init__(name=name)
    # Sonnet v1's three checks, in its order and with its messages (values of
    # other types fall through to the integer checks below).
    if isinstance(num_blocks, numbers.Real) and num_blocks < 1:
      raise ValueError(f'num_blocks must be >= 1. Got: {num_blocks}.')
    if gate_style not in _GATE_STYLES:
      raise ValueError(
          f"gate_style must be one of ['unit', 'memory', None]. Got: "
          f'{gate_style}.')
    if (isinstance(attention_mlp_layers, numbers.Real)
        and attention_mlp_layers < 1):
      raise ValueError(
          f'attention_mlp_layers must be >= 1. Got: {attention_mlp_layers}.')
    # What Sonnet let through.
    _check_positive_int('num_blocks', num_blocks)
    _check_positive_int('attention_mlp_layers', attention_mlp_layers)
    _check_positive_int('mem_slots', mem_slots)
    _check_positive_int('head_size', head_size)
    _check_positive_int('num_heads', num_heads)
    if key_size is not None:
      _check_positive_int('key_size', key_size)
    if attention_scale not in _ATTENTION_SCALES:
      raise ValueError(
          f'attention_scale must be one of {list(_ATTENTION_SCALES)}. Got: '
          f'{attention_scale!r}.')

    self._mem_slots = int(mem_slots)
    self._head_size = int(head_size)
    self._num_heads = int(num_heads)
    self._mem_size = self._head_size * self._num_heads
    self._num_blocks = int(num_blocks)
    self._forget_bias = forget_bias
    self._input_bias = input_bias
    self._gate_style = gate_style
    self._attention_mlp_layers = int(attention_mlp_layers)
    self._key_size = int(key_size) if key_size is not None else self._head_size
    self._attention_scale = attention_scale
    self._trainable_initial_state = trainable_initial_state
    self._return_diagnostics = return_diagnostics

  @property
  def mem_slots(self) -> int:
    """Number of memory rows ``N``."""
    return self._mem_slots

  @property
  def mem_size(self) -> int:
    """Size of one memory row, ``D = head_size * num_heads``."""
    return self._mem_size

  @property
  def gate_size(self) -> int:
    """Gate size ``G`` per memory row: ``D``, 1, or 0 without gating."""
    return {'unit': self._mem_size, 'memory': 1, None: 0}[self._gate_style]

  @property
  def state_size(self) -> tuple[int, int]:
    """Shape of one sample's state, ``(N, D)``."""
    return (self._mem_slots, self._mem_size)

  @property
  def output_size(self) -> tuple[int]:
    """Shape of one sample's (default, flat) output, ``(N * D,)``."""
    return (self._mem_slots * self._mem_size,)

  def initial_state(
      self,
      batch_size: int | None,
      trainable: bool | None = None,
      dtype: Any = jnp.float32,
  ) -> jax.Array:
    """Returns the initial memory: the identity, padded or truncated to D.

    Row ``i`` is the one-hot vector ``e_i`` of size ``D`` when ``i < D`` and
    all zeros otherwise: with ``D > N`` zero columns are appended, with
    ``D < N`` only the first ``D`` columns of the ``N x N`` identity are kept.

    Args:
      batch_size: Batch size ``B``, or None for one unbatched memory.
      trainable: If True, the initial memory is a parameter
        ``initial_memory`` of shape ``[N, D]`` initialised to the padded
        identity (call this inside ``hk.transform``). Sonnet v1 accepted and
        ignored this flag. None means the constructor's
        ``trainable_initial_state``.
      dtype: Dtype of the returned memory.

    Returns:
      The initial memory, ``[B, N, D]``, or ``[N, D]`` when ``batch_size`` is
      None. All batch elements are the same.
    """
    if trainable is None:
      trainable = self._trainable_initial_state
    n, d = self._mem_slots, self._mem_size
    if trainable:
      memory = hk.get_parameter(
          'initial_memory', [n, d], jnp.float32,
          init=lambda shape, dt: jnp.eye(*shape, dtype=dt))  # [N, D]
      memory = memory.astype(dtype)
    else:
      memory = jnp.eye(n, d, dtype=dtype)  # [N, D]
    if batch_size is None:
      return memory
    return jnp.broadcast_to(memory, (batch_size, n, d))  # [B, N, D]

  def __call__(
      self,
      inputs: jax.Array,
      prev_state: jax.Array,
      treat_input_as_matrix: bool = False,
  ) -> tuple[jax.Array | RelationalMemoryOutput, jax.Array]:
    """Runs one time step.

    Whether the step is batched is decided by the rank of ``prev_state``
    (``[B, N, D]`` or unbatched ``[N, D]``, e.g. inside ``jax.vmap``).

    Args:
      inputs: Batched ``[B, ...]`` (flattened to ``[B, d_in]``, one input row)
        or, with ``treat_input_as_matrix``, ``[B, n, ...]`` (flattened to
        ``[B, n, d_row]``, ``n`` input rows sharing one projection). Unbatched
        inputs drop the leading ``B``.
      prev_state: The previous memory, ``[B, N, D]`` or ``[N, D]``.
      treat_input_as_matrix: Whether the second input dimension indexes input
        rows. To use it under ``hk.dynamic_unroll``, unroll
        ``functools.partial(core, treat_input_as_matrix=True)``.

    Returns:
      ``(output, next_state)``: ``output`` is the new memory flattened to
      ``[B, N * D]`` (a :class:`RelationalMemoryOutput` when the core was
      built with ``return_diagnostics=True``); ``next_state`` is the new
      memory ``[B, N, D]``. Unbatched calls drop the leading ``B``.

    Raises:
      ValueError: If ``prev_state`` is not ``[B, N, D]`` or ``[N, D]`` of a
        floating dtype, if ``inputs`` has too few dimensions, or if the batch
        sizes of ``inputs`` and ``prev_state`` differ.
    """
    memory = jnp.asarray(prev_state)
    inputs = jnp.asarray(inputs)
    if memory.ndim not in (2, 3) or memory.shape[-2:] != self.state_size:
      raise ValueError(
          f'prev_state must have shape [B, {self._mem_slots}, '
          f'{self._mem_size}] or [{self._mem_slots}, {self._mem_size}] '
          f'([B, mem_slots, mem_size]); got {memory.shape}.')
    if not jnp.issubdtype(memory.dtype, jnp.floating):
      raise ValueError(
          f'prev_state must have a floating dtype; got {memory.dtype}.')
    batched = memory.ndim == 3
    min_rank = 1 + int(treat_input_as_matrix) + int(batched)
    if inputs.ndim < min_rank:
      expected = '[n, ...]' if treat_input_as_matrix else '[d_in, ...]'
      if batched:
        expected = '[B, ' + expected[1:]
      raise ValueError(
          f'inputs must have rank >= {min_rank} ({expected}) with '
          f'treat_input_as_matrix={treat_input_as_matrix} and a '
          f'{"batched" if batched else "unbatched"} state of shape '
          f'{memory.shape}; got inputs of shape {inputs.shape}.')
    if not batched:
      output, next_state = self._step(
          inputs[None], memory[None], treat_input_as_matrix)
      return jax.tree.map(lambda x: x[0], output), next_state[0]
    if inputs.shape[0] != memory.shape[0]:
      raise ValueError(
          f'inputs and prev_state must have the same batch size; got inputs '
          f'of shape {inputs.shape} and prev_state of shape {memory.shape}.')
    return self._step(inputs, memory, treat_input_as_matrix)

  @hk.name_like('__call__')
  def _step(
      self,
      inputs: jax.Array,
      memory: jax.Array,
      treat_input_as_matrix: bool,
  ) -> tuple[jax.Array | RelationalMemoryOutput, jax.Array]:
    """One batched step; see ``__call__``."""
    batch_size = memory.shape[0]
    inputs = inputs.astype(memory.dtype)
    if treat_input_as_matrix:
      inputs = inputs.reshape(inputs.shape[:2] + (-1,))  # [B, n, d_row]
    else:
      inputs = inputs.reshape(batch_size, 1, -1)  # [B, 1, d_in]
    inputs = hk.Linear(self._mem_size, name='input_projection')(inputs)
    # inputs: [B, n, D]

    rows = jnp.concatenate([memory, inputs], axis=1)  # [B, R, D]
    rows, attention_weights = self._attend_over_memory(rows)
    next_memory = rows[:, :self._mem_slots]  # [B, N, D]

    input_gate = forget_gate = None
    if self._gate_style is not None:
      input_gate, forget_gate = self._create_gates(inputs, memory)
      next_memory = (input_gate * jnp.tanh(next_memory)
                     + forget_gate * memory)  # [B, N, D]

    # Keep the state's dtype even if parameters of another dtype promoted it.
    next_memory = next_memory.astype(memory.dtype)
    output = next_memory.reshape(batch_size, -1)  # [B, N * D]
    if self._return_diagnostics:
      output = RelationalMemoryOutput(
          output=output,
          attention_weights=attention_weights,
          input_gate=input_gate,
          forget_gate=forget_gate)
    return output, next_memory

  @hk.name_like('__call__')
  def _layer_norm(self, name: str) -> hk.LayerNorm:
    """A LayerNorm over the last axis with Sonnet v1's settings."""
    return hk.LayerNorm(
        axis=-1, create_scale=True, create_offset=True, eps=_LAYER_NORM_EPS,
        name=name)

  @hk.name_like('__call__')
  def _attend_over_memory(
      self, rows: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Applies ``num_blocks`` attention + MLP blocks to ``rows`` [B, R, D].

    Returns:
      The updated rows ``[B, R, D]`` and each block's attention weights
      ``[B, H, R, R]``.
    """
    # Built once per step, before the blocks: one MLP shared by all blocks.
    mlp = hk.nets.MLP(
        [self._mem_size] * self._attention_mlp_layers, name='attention_mlp')
    all_weights = []
    for block in range(self._num_blocks):
      attended, weights = self._multihead_attention(rows, block)
      rows = self._layer_norm(f'attention_layer_norm_{block}')(
          rows + attended)  # [B, R, D]
      rows = self._layer_norm(f'mlp_layer_norm_{block}')(
          mlp(rows) + rows)  # [B, R, D]
      all_weights.append(weights)
    return rows, tuple(all_weights)

  @hk.name_like('__call__')
  def _multihead_attention(
      self, rows: jax.Array, block: int) -> tuple[jax.Array, jax.Array]:
    """Multi-head dot-product attention of every row over every row.

    Args:
      rows: ``[B, R, D]``.
      block: Index of the block, which names its parameters.

    Returns:
      The attended values with heads concatenated, ``[B, R, H * v = D]``
      (no output projection), and the attention weights ``[B, H, R, R]``.
    """
    batch_size, num_rows, _ = rows.shape
    k, v, h = self._key_size, self._head_size, self._num_heads
    qkv_size = 2 * k + v
    qkv = hk.Linear(h * qkv_size, name=f'qkv_projection_{block}')(rows)
    qkv = self._layer_norm(f'qkv_layer_norm_{block}')(qkv)  # [B, R, F]
    # Head h owns features [h * qkv_size, (h + 1) * qkv_size): q, then k, v.
    qkv = qkv.reshape(batch_size, num_rows, h, qkv_size)  # [B, R, H, 2k + v]
    query, key, value = jnp.split(qkv, [k, 2 * k], axis=-1)
    # query, key: [B, R, H, k]; value: [B, R, H, v].
    scale_size = k if self._attention_scale == 'key_size' else qkv_size
    query = query * (1.0 / math.sqrt(scale_size))
    logits = jnp.einsum('brhk,bshk->bhrs', query, key)  # [B, H, R, R]
    weights = jax.nn.softmax(logits, axis=-1)  # [B, H, R, R]
    attended = jnp.einsum('bhrs,bshv->brhv', weights, value)  # [B, R, H, v]
    return attended.reshape(batch_size, num_rows, h * v), weights

  @hk.name_like('__call__')
  def _create_gates(
      self, inputs: jax.Array, memory: jax.Array
  ) -> tuple[jax.Array, jax.Array]:
    """Input and forget gates from the projected input and previous memory.

    Args:
      inputs: The projected input rows, ``[B, n, D]``.
      memory: The previous memory ``M_{t-1}``, ``[B, N, D]``.

    Returns:
      ``(input_gate, forget_gate)``, each ``[B, N, G]``, after the sigmoid.
    """
    num_gates = 2 * self.gate_size
    batch_size = inputs.shape[0]
    from_inputs = hk.Linear(num_gates, name='gates_from_input')(
        inputs.reshape(batch_size, -1))[:, None, :]  # [B, 1, 2G]
    from_memory = hk.Linear(num_gates, name='gates_from_memory')(
        jnp.tanh(memory))  # [B, N, 2G]
    gates = from_memory + from_inputs  # [B, N, 2G]
    input_gate, forget_gate = jnp.split(gates, 2, axis=-1)  # [B, N, G] each
    input_gate = jax.nn.sigmoid(input_gate + self._input_bias)
    forget_gate = jax.nn.sigmoid(forget_gate + self._forget_bias)
    return input_gate, forget_gate


__all__: Sequence[str] = (
    'RelationalMemory',
    'RelationalMemoryOutput',
)
