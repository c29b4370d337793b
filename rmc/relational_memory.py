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
parameter sharing. Deliberate differences are listed in docs/core.md.

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
import dataclasses
import functools
import math
import numbers
from typing import Any, Literal, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from rmc import fast_unroll

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
  if (
      isinstance(value, bool)
      or not isinstance(value, (int, np.integer))
      or value < 1
  ):
    raise ValueError(f'{name} must be an integer >= 1. Got: {value!r}.')


def _make_config(
    *,
    mem_slots: int,
    head_size: int,
    num_heads: int,
    num_blocks: int,
    forget_bias: float,
    input_bias: float,
    gate_style: GateStyle,
    attention_mlp_layers: int,
    key_size: int | None,
    attention_scale: AttentionScale,
    compute_dtype: Any,
) -> '_Config':
  """The computation of a core of these arguments, checked.

  The checks and messages of :class:`RelationalMemory`'s constructor (which
  the Flax NNX cell, ``rmc.nnx.RelationalMemory``, shares).

  Raises:
    ValueError: As :class:`RelationalMemory`.
  """
  # Sonnet v1's three checks, in its order and with its messages (values of
  # other types fall through to the integer checks below).
  if isinstance(num_blocks, numbers.Real) and num_blocks < 1:
    raise ValueError(f'num_blocks must be >= 1. Got: {num_blocks}.')
  if gate_style not in _GATE_STYLES:
    raise ValueError(
        f"gate_style must be one of ['unit', 'memory', None]. Got: "
        f'{gate_style}.'
    )
  if (
      isinstance(attention_mlp_layers, numbers.Real)
      and attention_mlp_layers < 1
  ):
    raise ValueError(
        f'attention_mlp_layers must be >= 1. Got: {attention_mlp_layers}.'
    )
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
        f'{attention_scale!r}.'
    )

  head_size = int(head_size)
  key_size = int(key_size) if key_size is not None else head_size
  scale_size = (
      key_size if attention_scale == 'key_size' else 2 * key_size + head_size
  )
  return _Config(
      mem_slots=int(mem_slots),
      num_heads=int(num_heads),
      head_size=head_size,
      key_size=key_size,
      num_blocks=int(num_blocks),
      mlp_layers=int(attention_mlp_layers),
      gate_style=gate_style,
      input_bias=input_bias,
      forget_bias=forget_bias,
      query_scale=1.0 / math.sqrt(scale_size),
      compute_dtype=(
          None if compute_dtype is None else jnp.dtype(compute_dtype)
      ),
  )


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
  ``initial_state(..., dtype=...)`` says otherwise. ``compute_dtype`` (e.g.
  bfloat16) changes only the operands of the matrix products. For all-bfloat16
  compute with float32 parameters use Haiku's mixed precision, e.g.
  ``hk.mixed_precision.set_policy(rmc.RelationalMemory,
  jmp.get_policy('params=float32,compute=bfloat16,output=float32'))``.

  ``unroll`` runs a whole sequence like ``hk.dynamic_unroll``, faster.
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
      compute_dtype: Any = None,
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
      compute_dtype: Dtype of the operands of every matrix product (e.g.
        ``jnp.bfloat16`` for accelerators' fast paths), or None for the
        state's dtype. Products accumulate and return in the state's dtype,
        and everything else (LayerNorms, softmax, gating, the state) stays in
        it; parameters keep their dtype.

    Raises:
      ValueError: If ``num_blocks``, ``attention_mlp_layers``, ``mem_slots``,
        ``head_size``, ``num_heads`` or ``key_size`` is not a positive integer,
        or ``gate_style`` or ``attention_scale`` is not one of its options.
    """
    super().__init__(name=name)
    self._config = _make_config(
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
    self._mem_slots = self._config.mem_slots
    self._head_size = self._config.head_size
    self._num_heads = self._config.num_heads
    self._mem_size = self._head_size * self._num_heads
    self._num_blocks = self._config.num_blocks
    self._gate_style = gate_style
    self._attention_mlp_layers = self._config.mlp_layers
    self._key_size = self._config.key_size
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
          'initial_memory',
          [n, d],
          jnp.float32,
          init=lambda shape, dt: jnp.eye(shape[0], shape[1], dtype=dt),
      )  # [N, D]
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
    self._check_state(memory, 'prev_state', batched_only=False)
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
          f'{memory.shape}; got inputs of shape {inputs.shape}.'
      )
    if not batched:
      output, next_state = self._step(
          inputs[None], memory[None], treat_input_as_matrix
      )
      return jax.tree.map(lambda x: x[0], output), next_state[0]
    if inputs.shape[0] != memory.shape[0]:
      raise ValueError(
          f'inputs and prev_state must have the same batch size; got inputs '
          f'of shape {inputs.shape} and prev_state of shape {memory.shape}.'
      )
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
    inputs = _input_rows(inputs, memory.dtype, treat_input_as_matrix, 1)
    num_rows, row_size = inputs.shape[-2:]  # n, d_row
    params = self._parameters(row_size, num_rows, memory.dtype)
    projected, gates_from_input = _project_inputs(
        self._config, params, inputs
    )  # [B, n, D], [B, 2G] or None
    next_memory, (attention_weights, input_gate, forget_gate) = _memory_step(
        self._config,
        params,
        projected,
        gates_from_input,
        memory,
        lambda _, x, w: self._config.dot(x, w),
    )
    flat = next_memory.reshape(batch_size, -1)  # [B, N * D]
    output: jax.Array | RelationalMemoryOutput = flat
    if self._return_diagnostics:
      output = RelationalMemoryOutput(
          output=flat,
          attention_weights=attention_weights,
          input_gate=input_gate,
          forget_gate=forget_gate,
      )
    return output, next_memory

  @hk.name_like('__call__')
  def unroll(
      self,
      inputs: jax.Array,
      initial_state: jax.Array,
      *,
      time_major: bool = True,
      treat_input_as_matrix: bool = False,
      lengths: jax.Array | None = None,
  ) -> tuple[jax.Array | RelationalMemoryOutput, jax.Array]:
    """Runs the core over a whole sequence: a fast ``hk.dynamic_unroll``.

    Equal to ``hk.dynamic_unroll(core, inputs, initial_state)`` (same
    parameters, outputs within float rounding), but faster, above all to
    differentiate:

    * the input projection and the gate pre-activations from the input
      depend on no earlier step, so they are computed for all ``T`` steps at
      once, outside the time loop;
    * the gradients of the weight matrices used inside the loop (qkv
      projections, attention MLP, gates from the memory) are not summed step
      by step in the backward loop, but formed after it, by one
      ``[d, T * rows] x [T * rows, d']`` product per matrix.

    The time loop is a ``lax.scan``; :mod:`rmc.fast_unroll` has the design.
    With ``lengths``, a sample's steps past its length keep its memory and
    output zeros, as ``tf.nn.dynamic_rnn`` with ``sequence_length``: its final
    state is the memory after its own last step (the padding has no effect,
    on the outputs or on the gradients, and a step that no sample needs is
    skipped).

    With ``return_diagnostics=True`` this method is ``hk.dynamic_unroll``
    itself (:func:`rmc.fast_unroll.masked_dynamic_unroll` with ``lengths``).
    Forward-mode differentiation (``jax.jvp``) is not supported here
    (the backward pass is a ``jax.custom_vjp``); use ``hk.dynamic_unroll`` for
    it.

    Args:
      inputs: ``[T, B, ...]`` (``[B, T, ...]`` if not ``time_major``); with
        ``treat_input_as_matrix``, ``[T, B, n, ...]`` (or ``[B, T, n, ...]``).
      initial_state: The memory before the first step, ``[B, N, D]``.
      time_major: Whether time is the leading axis of ``inputs`` and of the
        returned outputs.
      treat_input_as_matrix: As in ``__call__``.
      lengths: None, or integer ``[B]``: the number of valid steps of each
        sample (steps ``t >= lengths[b]`` are padding).

    Returns:
      ``(outputs, final_state)``: ``outputs`` is ``[T, B, N * D]`` (or
      ``[B, T, N * D]``), or a :class:`RelationalMemoryOutput` of such stacked
      arrays with ``return_diagnostics``; ``final_state`` is ``[B, N, D]``.

    Raises:
      ValueError: If ``initial_state`` is not ``[B, N, D]`` of a floating
        dtype, ``inputs`` has too few dimensions or another batch size, or
        ``lengths`` is not an integer ``[B]``.
    """
    if lengths is not None:
      lengths = jnp.asarray(lengths)
      batch_size = jnp.shape(initial_state)[0]
      if lengths.shape != (batch_size,) or not jnp.issubdtype(
          lengths.dtype, jnp.integer
      ):
        raise ValueError(
            f'lengths must be integers of shape [B] = [{batch_size}]; got '
            f'{lengths.dtype} of shape {lengths.shape}.'
        )
    if self._return_diagnostics:
      core = functools.partial(
          self, treat_input_as_matrix=treat_input_as_matrix
      )
      if lengths is not None:
        return fast_unroll.masked_dynamic_unroll(
            core, inputs, lengths, initial_state, time_major=time_major
        )
      return hk.dynamic_unroll(
          core, inputs, initial_state, time_major=time_major
      )
    memory = jnp.asarray(initial_state)
    inputs = jnp.asarray(inputs)
    self._check_state(memory, 'initial_state', batched_only=True)
    min_rank = 3 + int(treat_input_as_matrix)
    if inputs.ndim < min_rank:
      raise ValueError(
          f'inputs must have rank >= {min_rank} ([T, B, '
          f'{"n, " if treat_input_as_matrix else ""}...]) with '
          f'treat_input_as_matrix={treat_input_as_matrix}; got inputs of '
          f'shape {inputs.shape}.'
      )
    if not time_major:
      inputs = jnp.swapaxes(inputs, 0, 1)  # [T, B, ...]
    if inputs.shape[1] != memory.shape[0]:
      raise ValueError(
          f'inputs and initial_state must have the same batch size; got '
          f'inputs of shape {inputs.shape} (time-major) and initial_state of '
          f'shape {memory.shape}.'
      )
    inputs = _input_rows(inputs, memory.dtype, treat_input_as_matrix, 2)
    num_rows, row_size = inputs.shape[-2:]  # n, d_row
    params = self._parameters(row_size, num_rows, memory.dtype)
    valid = None
    if lengths is not None:
      valid = jnp.arange(inputs.shape[0])[:, None] < lengths[None, :]  # [T, B]
    outputs, final = fast_unroll.unroll(
        self._config, params, inputs, memory, valid
    )
    if not time_major:
      outputs = jnp.swapaxes(outputs, 0, 1)  # [B, T, N * D]
    return outputs, final

  @hk.name_like('__call__')
  def _parameters(
      self, row_size: int, num_rows: int, dtype: Any
  ) -> dict[str, jax.Array]:
    """Gets (or creates) every parameter, keyed ``'<module>/<name>'``.

    Names, shapes and initialisers are those of the ``hk.Linear``,
    ``hk.LayerNorm`` and ``hk.nets.MLP`` modules of Sonnet's layout, and they
    are created in that order (so random initialisation is unchanged).

    Args:
      row_size: Size of one input row (``d_in``, or ``d_row`` in matrix mode).
      num_rows: Number of input rows ``n``.
      dtype: Parameter dtype.
    """
    d, f, g = self._mem_size, self._config.qkv_features, 2 * self.gate_size
    params = {}

    def linear(name, fan_in, fan_out, module=None):
      module = module or _Affine(fan_in, fan_out, dtype, name=name)
      params[f'{name}/w'], params[f'{name}/b'] = module()

    def layer_norm(name, size):
      params[f'{name}/scale'], params[f'{name}/offset'] = _LayerNormParams(
          size, dtype, name=name
      )()

    linear('input_projection', row_size, d)
    mlp = _AffineStack(
        d, self._attention_mlp_layers, dtype, name='attention_mlp'
    )
    for block in range(self._num_blocks):
      linear(f'qkv_projection_{block}', d, f)
      layer_norm(f'qkv_layer_norm_{block}', f)
      layer_norm(f'attention_layer_norm_{block}', d)
      if block == 0:
        for layer, module in enumerate(mlp.layers):
          linear(f'attention_mlp/linear_{layer}', d, d, module)
      layer_norm(f'mlp_layer_norm_{block}', d)
    if g:
      linear('gates_from_input', num_rows * d, g)  # Flattened input rows.
      linear('gates_from_memory', d, g)
    return params

  def _check_state(
      self, memory: jax.Array, name: str, batched_only: bool
  ) -> None:
    """Raises a ValueError unless the state ``name`` is valid."""
    ranks = (3,) if batched_only else (2, 3)
    if memory.ndim not in ranks or memory.shape[-2:] != self.state_size:
      shapes = f'[B, {self._mem_slots}, {self._mem_size}]'
      if not batched_only:
        shapes += f' or [{self._mem_slots}, {self._mem_size}]'
      raise ValueError(
          f'{name} must have shape {shapes} ([B, mem_slots, mem_size]); '
          f'got {memory.shape}.'
      )
    if not jnp.issubdtype(memory.dtype, jnp.floating):
      raise ValueError(
          f'{name} must have a floating dtype; got {memory.dtype}.'
      )


class _Affine(hk.Module):
  """The parameters of an ``hk.Linear``: ``w`` [in, out] and ``b`` [out]."""

  def __init__(
      self, fan_in: int, fan_out: int, dtype: Any, name: str | None = None
  ):
    super().__init__(name=name)
    self._shape = (fan_in, fan_out)
    self._dtype = dtype

  def __call__(self) -> tuple[jax.Array, jax.Array]:
    stddev = 1.0 / math.sqrt(self._shape[0])  # hk.Linear's default.
    w = hk.get_parameter(
        'w',
        self._shape,
        self._dtype,
        init=hk.initializers.TruncatedNormal(stddev),
    )
    b = hk.get_parameter('b', self._shape[1:], self._dtype, init=jnp.zeros)
    return w, b


class _AffineStack(hk.Module):
  """The layers of an ``hk.nets.MLP`` of equal widths (named ``linear_i``)."""

  def __init__(
      self, size: int, num_layers: int, dtype: Any, name: str | None = None
  ):
    super().__init__(name=name)
    self.layers = [
        _Affine(size, size, dtype, name=f'linear_{i}')
        for i in range(num_layers)
    ]


class _LayerNormParams(hk.Module):
  """The parameters of an ``hk.LayerNorm``: ``scale`` and ``offset``."""

  def __init__(self, size: int, dtype: Any, name: str | None = None):
    super().__init__(name=name)
    self._size = size
    self._dtype = dtype

  def __call__(self) -> tuple[jax.Array, jax.Array]:
    scale = hk.get_parameter('scale', [self._size], self._dtype, init=jnp.ones)
    offset = hk.get_parameter(
        'offset', [self._size], self._dtype, init=jnp.zeros
    )
    return scale, offset


# ---------------------------------------------------------------------------
# The computation, as pure functions of a parameter dict (keys
# '<module>/<name>', as made by RelationalMemory._parameters).
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Config:
  """Static description of the computation.

  Hashable, and a `fast_unroll.Recurrence`: the static argument of the fast
  unroll's ``jax.custom_vjp``.
  """

  mem_slots: int
  num_heads: int
  head_size: int
  key_size: int
  num_blocks: int
  mlp_layers: int
  gate_style: GateStyle
  input_bias: float
  forget_bias: float
  query_scale: float
  compute_dtype: Any

  @property
  def qkv_features(self) -> int:
    """``F = H * (2k + v)``."""
    return self.num_heads * (2 * self.key_size + self.head_size)

  def recurrent_weights(self) -> list[tuple[str, str]]:
    """``(use, parameter)`` of every product with a weight inside the loop.

    A ``use`` names one product of one step; the attention MLP, shared by the
    blocks, has one use per block and layer.
    """
    uses = []
    for block in range(self.num_blocks):
      uses.append((f'qkv_projection_{block}', f'qkv_projection_{block}/w'))
      uses.extend(
          (
              f'attention_mlp/linear_{layer}@{block}',
              f'attention_mlp/linear_{layer}/w',
          )
          for layer in range(self.mlp_layers)
      )
    if self.gate_style is not None:
      uses.append(('gates_from_memory', 'gates_from_memory/w'))
    return uses

  # The rest makes this configuration a `fast_unroll.Recurrence`.

  def dot(self, x: jax.Array, w: jax.Array) -> jax.Array:
    """One product with a weight, as a step computes it."""
    return _dot(x, w, self.compute_dtype)

  def prepare(
      self, params: dict[str, jax.Array], inputs: jax.Array
  ) -> tuple[jax.Array, jax.Array | None]:
    """The work of all steps that needs no memory; see `_project_inputs`."""
    return _project_inputs(self, params, inputs)

  def step(
      self,
      params: dict[str, jax.Array],
      prepared: tuple[jax.Array, jax.Array | None],
      memory: jax.Array,
      matmul: fast_unroll.Matmul,
  ) -> tuple[jax.Array, jax.Array]:
    """``(M_t [B, N, D], output [B, N * D])`` from one step of `prepare`."""
    projected, gates_from_input = prepared  # [B, n, D], [B, 2G] or None
    next_memory, _ = _memory_step(
        self, params, projected, gates_from_input, memory, matmul
    )
    return next_memory, next_memory.reshape(next_memory.shape[0], -1)


def _dot(x: jax.Array, w: jax.Array, compute_dtype: Any) -> jax.Array:
  """``x @ w`` with operands in ``compute_dtype``, result in ``x.dtype``."""
  if compute_dtype is None:
    return jnp.dot(x, w.astype(x.dtype))
  return jnp.dot(
      x.astype(compute_dtype),
      w.astype(compute_dtype),
      preferred_element_type=x.dtype,
  )


def _input_rows(
    inputs: jax.Array, dtype: Any, matrix: bool, num_lead: int
) -> jax.Array:
  """Casts and flattens inputs to rows ``[*lead, n, d_row]``."""
  inputs = inputs.astype(dtype)
  lead = inputs.shape[:num_lead]
  if matrix:
    return inputs.reshape(inputs.shape[: num_lead + 1] + (-1,))
  return inputs.reshape(lead + (1, -1))


def _broadcast(vector: jax.Array, like: jax.Array) -> jax.Array:
  """``vector`` [d] broadcast to the shape and dtype of ``like`` [..., d]."""
  return jnp.broadcast_to(vector.astype(like.dtype), like.shape)


def _layer_norm(
    params: dict[str, jax.Array], name: str, x: jax.Array
) -> jax.Array:
  """``hk.LayerNorm`` over the last axis with Sonnet v1's epsilon."""
  mean = jnp.mean(x, axis=-1, keepdims=True)
  variance = jnp.var(x, axis=-1, keepdims=True)
  inv = _broadcast(params[f'{name}/scale'], x) * jax.lax.rsqrt(
      variance + _LAYER_NORM_EPS
  )
  return inv * (x - mean) + _broadcast(params[f'{name}/offset'], x)


def _project_inputs(
    config: _Config, params: dict[str, jax.Array], inputs: jax.Array
) -> tuple[jax.Array, jax.Array | None]:
  """The input rows' projection and their part of the gates.

  Args:
    config: The computation.
    params: The parameters.
    inputs: Input rows ``[*lead, n, d_row]`` (lead: ``[B]`` or ``[T, B]``).

  Returns:
    ``(projected [*lead, n, D], gates_from_input [*lead, 2G])``; the second is
    None without gating.
  """
  projected = _dot(inputs, params['input_projection/w'], config.compute_dtype)
  projected += _broadcast(params['input_projection/b'], projected)
  if config.gate_style is None:
    return projected, None
  flat = projected.reshape(projected.shape[:-2] + (-1,))  # [*lead, n * D]
  gates = _dot(flat, params['gates_from_input/w'], config.compute_dtype)
  gates += _broadcast(params['gates_from_input/b'], gates)
  return projected, gates


def _memory_step(
    config: _Config,
    params: dict[str, jax.Array],
    projected: jax.Array,
    gates_from_input: jax.Array | None,
    memory: jax.Array,
    matmul: fast_unroll.Matmul,
) -> tuple[
    jax.Array, tuple[tuple[jax.Array, ...], jax.Array | None, jax.Array | None]
]:
  """The part of a step that depends on the previous memory.

  Args:
    config: The computation.
    params: The parameters.
    projected: Projected input rows ``[B, n, D]``.
    gates_from_input: ``[B, 2G]``, or None without gating.
    memory: ``M_{t-1}``, ``[B, N, D]``.
    matmul: Computes each product with a recurrent weight.

  Returns:
    ``(M_t [B, N, D], (attention weights, input gate, forget gate))`` with one
    ``[B, H, R, R]`` array of weights per block and gates ``[B, N, G]``.
  """
  dtype = memory.dtype

  def affine(use, name, x):
    y = matmul(use, x, params[f'{name}/w'])
    return y + _broadcast(params[f'{name}/b'], y)

  rows = jnp.concatenate([memory, projected], axis=1)  # [B, R, D]
  all_weights = []
  for block in range(config.num_blocks):
    qkv = affine(f'qkv_projection_{block}', f'qkv_projection_{block}', rows)
    qkv = _layer_norm(params, f'qkv_layer_norm_{block}', qkv)  # [B, R, F]
    attended, weights = _attention(config, qkv)  # [B, R, D], [B, H, R, R]
    rows = _layer_norm(
        params, f'attention_layer_norm_{block}', rows + attended
    )  # [B, R, D]
    hidden = rows
    for layer in range(config.mlp_layers):
      if layer:
        hidden = jax.nn.relu(hidden)
      hidden = affine(
          f'attention_mlp/linear_{layer}@{block}',
          f'attention_mlp/linear_{layer}',
          hidden,
      )  # [B, R, D]
    rows = _layer_norm(params, f'mlp_layer_norm_{block}', hidden + rows)
    all_weights.append(weights)
  next_memory = rows[:, : config.mem_slots]  # [B, N, D]

  input_gate = forget_gate = None
  if config.gate_style is not None:
    gates = affine(
        'gates_from_memory', 'gates_from_memory', jnp.tanh(memory)
    )  # [B, N, 2G]
    assert gates_from_input is not None  # Projected whenever gating is on.
    gates += gates_from_input[:, None, :]
    input_gate, forget_gate = jnp.split(gates, 2, axis=-1)  # [B, N, G] each
    input_gate = jax.nn.sigmoid(input_gate + config.input_bias)
    forget_gate = jax.nn.sigmoid(forget_gate + config.forget_bias)
    next_memory = input_gate * jnp.tanh(next_memory) + forget_gate * memory
  # Keep the state's dtype even if weak-typed constants promoted it.
  next_memory = next_memory.astype(dtype)
  return next_memory, (tuple(all_weights), input_gate, forget_gate)


def _attention(config: _Config, qkv: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Multi-head dot-product attention of every row over every row.

  Args:
    config: The computation.
    qkv: The normalised fused projection ``[B, R, F]``; head ``h`` owns
      features ``[h (2k + v), (h + 1)(2k + v))``: query, then key, value.

  Returns:
    The attended values with heads concatenated, ``[B, R, H * v = D]`` (no
    output projection), and the attention weights ``[B, H, R, R]``.
  """
  batch_size, num_rows, _ = qkv.shape
  k, h = config.key_size, config.num_heads
  qkv = qkv.reshape(batch_size, num_rows, h, -1)  # [B, R, H, 2k + v]
  query, key, value = jnp.split(qkv, [k, 2 * k], axis=-1)
  # query, key: [B, R, H, k]; value: [B, R, H, v].
  query = query * config.query_scale
  cast = (
      (lambda x: x)
      if config.compute_dtype is None
      else (lambda x: x.astype(config.compute_dtype))
  )
  logits = jnp.einsum(
      'brhk,bshk->bhrs',
      cast(query),
      cast(key),
      preferred_element_type=qkv.dtype,
  )  # [B, H, R, R]
  weights = jax.nn.softmax(logits, axis=-1)  # [B, H, R, R]
  attended = jnp.einsum(
      'bhrs,bshv->brhv',
      cast(weights),
      cast(value),
      preferred_element_type=qkv.dtype,
  )  # [B, R, H, v]
  return attended.reshape(batch_size, num_rows, -1), weights


__all__: Sequence[str] = (
    'RelationalMemory',
    'RelationalMemoryOutput',
)
