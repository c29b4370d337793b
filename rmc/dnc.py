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
"""The Differentiable Neural Computer (Graves et al., 2016) as Haiku cores.

What DeepMind's reference computes (github.com/google-deepmind/dnc,
``dnc/access.py`` and ``dnc/dnc.py``; re-derived here, not copied), with the
addressing in :mod:`rmc.dnc_addressing`:

* :class:`MemoryAccess`: reads the interface from the controller output by
  linear maps (write and erase vectors, free, allocation and write gates,
  read modes, keys and strengths), updates the usage, writes (a mix of
  allocation and content weights, gated), updates the temporal links and
  reads (a mix of content weights and the links followed backward and
  forward).
* :class:`DNC`: an LSTM controller fed the input and the previous read
  words, ``clip_value`` on the controller's output and state, the access
  module, and a linear map of ``[controller output; read words]``.

Content strengths: the paper specifies ``oneplus`` (``1 + softplus``, a
strength of at least 1), which is the default; the reference's code applies
``softplus`` (a strength that may approach 0, a content weighting that may
flatten to uniform), which ``strength_activation='softplus'`` selects. The
addressing functions themselves take the activation as an argument, with the
reference's ``softplus`` as their default.
"""

from collections.abc import Callable
import math
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp

from rmc import dnc_addressing as addressing

_STRENGTH_ACTIVATIONS = {
    'softplus': jax.nn.softplus,
    'oneplus': addressing.oneplus,
}


class AccessState(NamedTuple):
  """The memory and its addressing state.

  Attributes:
    memory: ``[B, N, W]``.
    read_weights: ``[B, R, N]``.
    write_weights: ``[B, H, N]``.
    linkage: The temporal links, :class:`rmc.dnc_addressing.
      TemporalLinkageState`.
    usage: ``[B, N]`` in [0, 1].
  """

  memory: jax.Array
  read_weights: jax.Array
  write_weights: jax.Array
  linkage: addressing.TemporalLinkageState
  usage: jax.Array


class DNCState(NamedTuple):
  """The DNC's state.

  Attributes:
    access_output: ``[B, R, W]``, the words read at the previous step.
    access_state: The :class:`AccessState`.
    controller_state: The controller's state.
  """

  access_output: jax.Array
  access_state: AccessState
  controller_state: Any


def _check_positive(**sizes: int) -> None:
  for name, value in sizes.items():
    if not isinstance(value, int) or value < 1:
      raise ValueError(f'{name} must be a positive integer; got {value!r}.')


@jax.custom_vjp
def erase_and_write(
    memory: jax.Array,
    write_weights: jax.Array,
    erase_vectors: jax.Array,
    write_vectors: jax.Array,
) -> jax.Array:
  """``M * prod_h (1 - w_h e_h^T) + sum_h w_h v_h^T``: erase, then add.

  The gradient is hand-written (`_erase_and_write_backward`), with every sum
  over slots as a product: JAX's own sums ``[B, H, N, W]`` products over
  the slots, which XLA:CPU does several times slower.

  Args:
    memory: ``[B, N, W]``.
    write_weights: ``[B, H, N]``.
    erase_vectors: ``[B, H, W]`` in [0, 1].
    write_vectors: ``[B, H, W]``.

  Returns:
    ``[B, N, W]``.
  """
  erase = jnp.prod(_keep_factors(write_weights, erase_vectors), axis=1)
  return memory * erase + jnp.einsum(
      'bhn,bhw->bnw', write_weights, write_vectors
  )


def _keep_factors(
    write_weights: jax.Array, erase_vectors: jax.Array
) -> jax.Array:
  """``1 - w_h e_h^T`` of every write head, ``[B, H, N, W]``."""
  return 1 - write_weights[..., None] * erase_vectors[:, :, None, :]


def _erase_and_write_forward(*args):
  return erase_and_write(*args), args


def _erase_and_write_backward(residuals, d_result):
  """The gradient of `erase_and_write`, from ``g = d_result`` ``[B, N, W]``.

  With ``K_h = 1 - w_h e_h^T`` and ``P_h`` the product of the other heads'
  ``K``: ``dM = g prod_h K_h``, ``dv_h = sum_n w_hn g_n``,
  ``dw_hn = g_n . v_h - (g_n M_n P_hn) . e_h``,
  ``de_h = -sum_n w_hn g_n M_n P_hn``. ``check_grads`` and a NumPy
  re-computation test it (``tests/dnc_test.py``).
  """
  memory, write_weights, erase_vectors, write_vectors = residuals
  keep = _keep_factors(write_weights, erase_vectors)  # [B, H, N, W]
  num_heads = keep.shape[1]
  d_memory = d_result * jnp.prod(keep, axis=1)  # [B, N, W]
  d_erase = d_result * memory  # [B, N, W]: the gradient of prod_h K_h.
  d_keep = jnp.stack(
      [
          d_erase
          * jnp.prod(
              keep[:, [other for other in range(num_heads) if other != h]],
              axis=1,
          )
          for h in range(num_heads)
      ],
      axis=1,
  )  # [B, H, N, W]
  d_write_vectors = jnp.einsum('bhn,bnw->bhw', write_weights, d_result)
  d_write_weights = jnp.einsum(
      'bnw,bhw->bhn', d_result, write_vectors
  ) - jnp.einsum('bhnw,bhw->bhn', d_keep, erase_vectors)
  d_erase_vectors = -jnp.einsum('bhnw,bhn->bhw', d_keep, write_weights)
  return d_memory, d_write_weights, d_erase_vectors, d_write_vectors


erase_and_write.defvjp(_erase_and_write_forward, _erase_and_write_backward)


def compute_write_weights(
    controls: dict[str, jax.Array],
    memory: jax.Array,
    usage: jax.Array,
    strength_op: Callable[[jax.Array], jax.Array] = jax.nn.softplus,
) -> jax.Array:
  """Where each write head writes: allocation or content, gated.

  ``w = g_w * (g_a * allocation + (1 - g_a) * content)``.

  Args:
    controls: ``allocation_gate`` and ``write_gate`` ``[B, H]``,
      ``write_keys`` ``[B, H, W]`` and ``write_strengths`` ``[B, H]``.
    memory: ``[B, N, W]``, before the write.
    usage: ``[B, N]``.
    strength_op: The content strengths' activation.

  Returns:
    ``[B, H, N]``.
  """
  content = addressing.cosine_weights(
      memory, controls['write_keys'], controls['write_strengths'], strength_op
  )  # [B, H, N]
  allocation = addressing.write_allocation_weights(
      usage, controls['allocation_gate'] * controls['write_gate']
  )
  allocation_gate = controls['allocation_gate'][..., None]  # [B, H, 1]
  return controls['write_gate'][..., None] * (
      allocation_gate * allocation + (1 - allocation_gate) * content
  )


def compute_read_weights(
    controls: dict[str, jax.Array],
    memory: jax.Array,
    prev_read_weights: jax.Array,
    link: jax.Array,
    strength_op: Callable[[jax.Array], jax.Array] = jax.nn.softplus,
) -> jax.Array:
  """Where each read head reads: content, and the links back and forward.

  Args:
    controls: ``read_keys`` ``[B, R, W]``, ``read_strengths`` ``[B, R]``
      and ``read_mode`` ``[B, R, 2H + 1]`` (``H`` backward, ``H`` forward,
      then content; each row summing to 1).
    memory: ``[B, N, W]``, after the write.
    prev_read_weights: ``[B, R, N]``.
    link: ``[B, H, N, N]``, after the write.
    strength_op: The content strengths' activation.

  Returns:
    ``[B, R, N]``.
  """
  mode = controls['read_mode']  # [B, R, 2H + 1]
  h = link.shape[1]
  content = addressing.cosine_weights(
      memory, controls['read_keys'], controls['read_strengths'], strength_op
  )  # [B, R, N]
  forward = addressing.directional_read_weights(
      link, prev_read_weights, forward=True
  )  # [B, R, H, N]
  backward = addressing.directional_read_weights(
      link, prev_read_weights, forward=False
  )
  return (
      mode[..., 2 * h :] * content
      + jnp.einsum('brh,brhn->brn', mode[..., h : 2 * h], forward)
      + jnp.einsum('brh,brhn->brn', mode[..., :h], backward)
  )


def strength_op(activation: str) -> Callable[[jax.Array], jax.Array]:
  """The content strengths' activation named ``activation``.

  Args:
    activation: ``'oneplus'`` (the paper's) or ``'softplus'`` (the reference
      code's).

  Raises:
    ValueError: For another name.
  """
  if activation not in _STRENGTH_ACTIVATIONS:
    raise ValueError(
        f'strength_activation must be one of {sorted(_STRENGTH_ACTIVATIONS)}'
        f'; got {activation!r}.'
    )
  return _STRENGTH_ACTIVATIONS[activation]


def access_settings(
    memory_size: int = 128,
    word_size: int = 20,
    num_reads: int = 1,
    num_writes: int = 1,
    strength_activation: str = 'oneplus',
) -> tuple[int, int, int, int, Callable[[jax.Array], jax.Array]]:
  """:class:`MemoryAccess`'s arguments, with its defaults, checked.

  Returns:
    ``(memory_size, word_size, num_reads, num_writes, strength_op)``.

  Raises:
    ValueError: For a size that is not a positive integer, or an unknown
      strength activation.
  """
  _check_positive(
      memory_size=memory_size,
      word_size=word_size,
      num_reads=num_reads,
      num_writes=num_writes,
  )
  return (
      memory_size,
      word_size,
      num_reads,
      num_writes,
      strength_op(strength_activation),
  )


def interface_shapes(
    num_reads: int, num_writes: int, word_size: int
) -> dict[str, tuple[int, ...]]:
  """Each control's shape per example, in the order its map is made.

  Args:
    num_reads: Read heads ``R``.
    num_writes: Write heads ``H``.
    word_size: Width ``W`` of a memory slot.

  Returns:
    ``{name: shape}``; ``read_mode`` is ``(R, 2H + 1)``: per read head,
    ``H`` backward, ``H`` forward, then content.
  """
  h, r, w = num_writes, num_reads, word_size
  return {
      'write_vectors': (h, w),
      'erase_vectors': (h, w),
      'free_gate': (r,),
      'allocation_gate': (h,),
      'write_gate': (h,),
      'read_mode': (r, 1 + 2 * h),
      'write_keys': (h, w),
      'write_strengths': (h,),
      'read_keys': (r, w),
      'read_strengths': (r,),
  }


# The controls squashed after their linear map; the others are used as made.
_INTERFACE_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'erase_vectors': jax.nn.sigmoid,  # In [0, 1].
    'free_gate': jax.nn.sigmoid,
    'allocation_gate': jax.nn.sigmoid,
    'write_gate': jax.nn.sigmoid,
    'read_mode': lambda x: jax.nn.softmax(x, -1),  # Each head's sums to 1.
}


def interface(
    inputs: jax.Array,
    linear: Callable[[str, jax.Array, int], jax.Array],
    num_reads: int,
    num_writes: int,
    word_size: int,
) -> dict[str, jax.Array]:
  """The controls read from the controller output by linear maps.

  Args:
    inputs: ``[B, D]``, the controller output.
    linear: ``linear(name, inputs, size)`` gives ``[B, size]``, the linear
      map ``name`` of ``inputs`` (each name its own parameters).
    num_reads: Read heads ``R``.
    num_writes: Write heads ``H``.
    word_size: Width ``W`` of a memory slot.

  Returns:
    ``{name: [B, *shape]}`` for :func:`interface_shapes`, the gates and
    erase vectors squashed to [0, 1] and the read modes to a distribution.
  """
  batch_size = inputs.shape[0]
  controls = {}
  for name, shape in interface_shapes(num_reads, num_writes, word_size).items():
    control = linear(name, inputs, math.prod(shape))
    control = control.reshape((batch_size,) + shape)
    controls[name] = _INTERFACE_ACTIVATIONS.get(name, lambda x: x)(control)
  return controls


def access_step(
    controls: dict[str, jax.Array],
    prev_state: AccessState,
    strength_activation: Callable[[jax.Array], jax.Array],
) -> tuple[jax.Array, AccessState]:
  """One step of the memory: update the usage, write, link, read.

  Args:
    controls: The :func:`interface`'s.
    prev_state: The previous :class:`AccessState`.
    strength_activation: The content strengths' activation.

  Returns:
    ``(read_words [B, R, W], state)``.
  """
  usage = addressing.updated_usage(
      prev_state.write_weights,
      controls['free_gate'],
      prev_state.read_weights,
      prev_state.usage,
  )  # [B, N]
  write_weights = compute_write_weights(
      controls, prev_state.memory, usage, strength_activation
  )  # [B, H, N]
  memory = erase_and_write(
      prev_state.memory,
      write_weights,
      controls['erase_vectors'],
      controls['write_vectors'],
  )  # [B, N, W]
  linkage = addressing.updated_linkage(write_weights, prev_state.linkage)
  read_weights = compute_read_weights(
      controls,
      memory,
      prev_state.read_weights,
      linkage.link,
      strength_activation,
  )  # [B, R, N]
  read_words = jnp.einsum('brn,bnw->brw', read_weights, memory)
  return read_words, AccessState(
      memory=memory,
      read_weights=read_weights,
      write_weights=write_weights,
      linkage=linkage,
      usage=usage,
  )


def initial_access_state(
    memory_size: int,
    word_size: int,
    num_reads: int,
    num_writes: int,
    batch_shape: tuple[int, ...] = (),
    dtype: Any = None,
) -> AccessState:
  """Zeros everywhere (an empty, unused memory), as the reference.

  Args:
    memory_size: Memory slots ``N``.
    word_size: Width ``W`` of each slot.
    num_reads: Read heads ``R``.
    num_writes: Write heads ``H``.
    batch_shape: The leading axes of every leaf, e.g. ``(B,)``.
    dtype: The leaves' dtype; None for JAX's default float.
  """
  n, w = memory_size, word_size

  def zeros(*shape):
    return jnp.zeros(batch_shape + shape, dtype)

  return AccessState(
      memory=zeros(n, w),
      read_weights=zeros(num_reads, n),
      write_weights=zeros(num_writes, n),
      linkage=addressing.TemporalLinkageState(
          link=zeros(num_writes, n, n),
          precedence_weights=zeros(num_writes, n),
      ),
      usage=zeros(n),
  )


def controller_sizes(controller_config: dict[str, Any]) -> tuple[int, int]:
  """``(hidden_size, num_layers)`` of a DNC's ``controller_config``, checked.

  Raises:
    ValueError: For another key, or a size that is not a positive integer.
  """
  config = dict(controller_config)
  hidden_size = config.pop('hidden_size', None)
  num_layers = config.pop('num_layers', 1)
  if config:
    raise ValueError(
        f'Unknown controller_config keys: {sorted(config)}; expected '
        'hidden_size and num_layers.'
    )
  _check_positive(hidden_size=hidden_size, num_layers=num_layers)
  return hidden_size, num_layers


def check_clip_value(clip_value: float | None) -> float:
  """``clip_value`` as a bound (0: no clipping), checked.

  Raises:
    ValueError: If it is negative (or NaN).
  """
  if clip_value is not None and not clip_value >= 0:
    raise ValueError(f'clip_value must be >= 0 or None; got {clip_value}.')
  return clip_value or 0


def dnc_step(
    inputs: jax.Array,
    prev_state: DNCState,
    controller: Callable[[jax.Array, Any], tuple[jax.Array, Any]],
    access: Callable[[jax.Array, AccessState], tuple[jax.Array, AccessState]],
    output_linear: Callable[[jax.Array], jax.Array],
    clip_value: float,
) -> tuple[jax.Array, DNCState]:
  """One step of the DNC, given its three parts.

  Args:
    inputs: ``[B, ...]`` (flattened to ``[B, D_in]``).
    prev_state: The previous :class:`DNCState`.
    controller: ``controller(x, state) -> (output [B, C], state)``, the
      controller fed ``[inputs; previous read words]``.
    access: ``access(controller_output, state) -> (read_words [B, R, W],
      state)``, the memory.
    output_linear: The linear map to the core's output.
    clip_value: The bound of the clipped values, or 0 for none.

  Returns:
    ``(output [B, output_size], state)``.
  """

  def clip(x: jax.Array) -> jax.Array:
    return jnp.clip(x, -clip_value, clip_value) if clip_value > 0 else x

  batch_size = inputs.shape[0]
  controller_input = jnp.concatenate(
      [
          inputs.reshape(batch_size, -1),
          prev_state.access_output.reshape(batch_size, -1),
      ],
      axis=-1,
  )  # [B, D_in + R * W]
  controller_output, controller_state = controller(
      controller_input, prev_state.controller_state
  )
  controller_output = clip(controller_output)  # [B, C]
  controller_state = jax.tree.map(clip, controller_state)
  access_output, access_state = access(
      controller_output, prev_state.access_state
  )  # [B, R, W]
  output = jnp.concatenate(
      [controller_output, access_output.reshape(batch_size, -1)], axis=-1
  )  # [B, C + R * W]
  output = clip(output_linear(output))
  return output, DNCState(
      access_output=access_output,
      access_state=access_state,
      controller_state=controller_state,
  )


class MemoryAccess(hk.RNNCore):
  """The DNC's memory with its read and write heads (the reference's)."""

  def __init__(
      self,
      memory_size: int = 128,
      word_size: int = 20,
      num_reads: int = 1,
      num_writes: int = 1,
      strength_activation: str = 'oneplus',
      name: str = 'memory_access',
  ):
    """Constructs the access module.

    Args:
      memory_size: Memory slots ``N``.
      word_size: Width ``W`` of each slot.
      num_reads: Read heads ``R``.
      num_writes: Write heads ``H`` (1 in the paper).
      strength_activation: ``'oneplus'`` (the paper's) or ``'softplus'``
        (the reference code's) on the content strengths.
      name: Module name.

    Raises:
      ValueError: For a size that is not a positive integer, or an unknown
        strength activation.
    """
    super().__init__(name=name)
    (
        self._memory_size,
        self._word_size,
        self._num_reads,
        self._num_writes,
        self._strength_op,
    ) = access_settings(
        memory_size, word_size, num_reads, num_writes, strength_activation
    )

  @property
  def output_shape(self) -> tuple[int, int]:
    """``(R, W)``: the words read at each step, per example."""
    return self._num_reads, self._word_size

  def __call__(
      self, inputs: jax.Array, prev_state: AccessState
  ) -> tuple[jax.Array, AccessState]:
    """One step: update the usage, write, link, read.

    Args:
      inputs: ``[B, D]``, the controller output.
      prev_state: The previous :class:`AccessState`.

    Returns:
      ``(read_words [B, R, W], state)``.
    """

    def linear(name: str, x: jax.Array, size: int) -> jax.Array:
      return hk.Linear(size, name=name)(x)

    controls = interface(
        inputs, linear, self._num_reads, self._num_writes, self._word_size
    )
    return access_step(controls, prev_state, self._strength_op)

  def initial_state(self, batch_size: int | None) -> AccessState:
    """Zeros everywhere (an empty, unused memory), as the reference.

    Args:
      batch_size: ``B``, or None for unbatched leaves.
    """
    return initial_access_state(
        self._memory_size,
        self._word_size,
        self._num_reads,
        self._num_writes,
        () if batch_size is None else (batch_size,),
    )


class DNC(hk.RNNCore):
  """The DNC core: an LSTM controller and the memory access module."""

  def __init__(
      self,
      access_config: dict[str, Any],
      controller_config: dict[str, Any],
      output_size: int,
      clip_value: float | None = None,
      name: str = 'dnc',
  ):
    """Constructs the DNC.

    Args:
      access_config: Arguments of :class:`MemoryAccess` (``memory_size``,
        ``word_size``, ``num_reads``, ``num_writes``,
        ``strength_activation``).
      controller_config: ``hidden_size`` of the LSTM controller, and
        optionally ``num_layers`` (1, as the reference, by default; more
        stack ``hk.LSTM``s in an ``hk.DeepRNN``).
      output_size: Size of the core's output.
      clip_value: If set, the controller's output and state and the core's
        output are clipped to ``[-clip_value, clip_value]``.
      name: Module name.

    Raises:
      ValueError: For a bad size or configuration key.
    """
    super().__init__(name=name)
    hidden_size, num_layers = controller_sizes(controller_config)
    _check_positive(output_size=output_size)
    self._clip_value = check_clip_value(clip_value)
    if num_layers == 1:
      self._controller = hk.LSTM(hidden_size)
    else:
      self._controller = hk.DeepRNN(
          [hk.LSTM(hidden_size, name=f'lstm_{i}') for i in range(num_layers)]
      )
    self._access = MemoryAccess(**access_config)
    self._output_size = output_size

  def __call__(
      self, inputs: jax.Array, prev_state: DNCState
  ) -> tuple[jax.Array, DNCState]:
    """One step.

    Args:
      inputs: ``[B, ...]`` (flattened to ``[B, D_in]``).
      prev_state: The previous :class:`DNCState`.

    Returns:
      ``(output [B, output_size], state)``.
    """
    return dnc_step(
        inputs,
        prev_state,
        self._controller,
        self._access,
        hk.Linear(self._output_size, name='output_linear'),
        self._clip_value,
    )

  def initial_state(self, batch_size: int | None) -> DNCState:
    """Zero read words, an empty memory and the controller's initial state.

    Args:
      batch_size: ``B``, or None for unbatched leaves.
    """
    reads = self._access.output_shape
    return DNCState(
        access_output=jnp.zeros(
            reads if batch_size is None else (batch_size,) + reads
        ),
        access_state=self._access.initial_state(batch_size),
        controller_state=self._controller.initial_state(batch_size),
    )
