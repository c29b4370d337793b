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
"""The Differentiable Neural Computer's memory addressing, as pure functions.

Graves et al. (2016), "Hybrid computing using a neural network with dynamic
external memory", as DeepMind's reference computes it
(github.com/google-deepmind/dnc, ``dnc/addressing.py``; re-derived here, not
copied). Shapes: ``B`` batch, ``N`` memory slots, ``W`` word size, ``R`` read
heads, ``H`` write heads (``num_writes``), ``K`` heads of a content lookup.

* Content addressing: :func:`cosine_weights`, a softmax over the cosine
  similarity of keys and memory words, sharpened by strengths.
* Dynamic allocation: :func:`updated_usage` (written slots become used,
  read slots with a free gate become free) and :func:`write_allocation_weights`
  (the least used slots, from the usage sorted ascending).
* Temporal links: :func:`updated_linkage` (the link matrix of each write head
  and its precedence weights) and :func:`directional_read_weights` (following
  the links forward or backward from the previous read weights).

As in the reference, a small ``EPSILON`` keeps norms and products away from
zero, the usage update is not differentiated with respect to the write
weights, and the sort in the allocation is differentiated through the sorted
values (the permutation itself is a constant).
"""

from typing import NamedTuple
from collections.abc import Callable

import jax
import jax.numpy as jnp

EPSILON = 1e-6


class TemporalLinkageState(NamedTuple):
  """The temporal link state of the write heads.

  Attributes:
    link: ``[B, H, N, N]``: ``link[b, h, i, j]`` is how much slot ``i`` was
      written right after slot ``j`` by head ``h``; the diagonal is zero.
    precedence_weights: ``[B, H, N]``: how much each slot was the last one
      written by each head.
  """

  link: jax.Array
  precedence_weights: jax.Array


def oneplus(x: jax.Array) -> jax.Array:
  """``1 + softplus(x)``: the reference's activation of read strengths."""
  return 1 + jax.nn.softplus(x)


def vector_norms(m: jax.Array) -> jax.Array:
  """``sqrt(sum(m ** 2) + EPSILON)`` over the last axis, kept: ``[..., 1]``."""
  return jnp.sqrt(jnp.sum(m * m, axis=-1, keepdims=True) + EPSILON)


def weighted_softmax(
    activations: jax.Array,
    strengths: jax.Array,
    strength_op: Callable[[jax.Array], jax.Array],
) -> jax.Array:
  """``softmax(activations * strength_op(strengths))`` over the last axis.

  Args:
    activations: ``[B, K, N]``.
    strengths: ``[B, K]``.
    strength_op: Applied to the strengths first (e.g. ``jax.nn.softplus``).

  Returns:
    ``[B, K, N]``.
  """
  sharpened = activations * strength_op(strengths)[..., None]  # [B, K, N]
  return jax.nn.softmax(sharpened, axis=-1)


def cosine_weights(
    memory: jax.Array,
    keys: jax.Array,
    strengths: jax.Array,
    strength_op: Callable[[jax.Array], jax.Array] = jax.nn.softplus,
) -> jax.Array:
  """Content-based weights: softmax of sharpened cosine similarities.

  Args:
    memory: ``[B, N, W]``.
    keys: ``[B, K, W]``.
    strengths: ``[B, K]``, transformed by ``strength_op`` (softplus by
      default, as the reference's ``CosineWeights``).
    strength_op: The strengths' activation.

  Returns:
    ``[B, K, N]``, each row summing to 1.
  """
  dot = jnp.einsum('bkw,bnw->bkn', keys, memory)  # [B, K, N]
  norms = vector_norms(keys) * jnp.swapaxes(vector_norms(memory), 1, 2)
  similarity = dot / (norms + EPSILON)  # [B, K, N]
  return weighted_softmax(similarity, strengths, strength_op)


def precedence_weights(
    previous: jax.Array, write_weights: jax.Array
) -> jax.Array:
  """``(1 - sum(write_weights)) * previous + write_weights``, ``[B, H, N]``.

  A head that writes nothing keeps its precedence; one that writes fully
  replaces it.

  Args:
    previous: ``[B, H, N]``.
    write_weights: ``[B, H, N]``.
  """
  write_sum = jnp.sum(write_weights, axis=-1, keepdims=True)  # [B, H, 1]
  return (1 - write_sum) * previous + write_weights


@jax.custom_vjp
def updated_link(
    previous_link: jax.Array,
    previous_precedence: jax.Array,
    write_weights: jax.Array,
) -> jax.Array:
  """The link matrices after a write, with a zero diagonal.

  ``link[i, j] = (1 - w[i] - w[j]) * previous_link[i, j] + w[i] * p[j]``,
  where ``w`` are the write weights and ``p`` the previous precedence.

  The gradient is hand-written (`_updated_link_backward`): JAX's own sums
  the ``[B, H, N, N]`` products over their rows, which XLA:CPU does about 10
  times slower than the batched products used here (at Learning to
  Execute's paper size, 7.4 against 0.56 ms per step for this function's
  forward and backward).

  Args:
    previous_link: ``[B, H, N, N]``.
    previous_precedence: ``[B, H, N]``.
    write_weights: ``[B, H, N]``.

  Returns:
    ``[B, H, N, N]``.
  """
  previous_link = jnp.asarray(previous_link)
  write_weights = jnp.asarray(write_weights)
  w_i = write_weights[..., :, None]  # [B, H, N, 1]
  w_j = write_weights[..., None, :]  # [B, H, 1, N]
  link = (1 - w_i - w_j) * previous_link + w_i * jnp.asarray(
      previous_precedence
  )[
      ..., None, :
  ]  # [B, H, N, N]
  return link * _off_diagonal(link)


def _off_diagonal(link: jax.Array) -> jax.Array:
  """Ones but on the diagonal, ``[1, ..., 1, N, N]`` (no self-loops)."""
  n = link.shape[-1]
  off_diagonal = 1 - jnp.eye(n, dtype=link.dtype)
  return off_diagonal.reshape((1,) * (link.ndim - 2) + (n, n))


def _sum_over_rows(x: jax.Array) -> jax.Array:
  """``sum_i x[..., i, j]`` as a product with ones (see `updated_link`)."""
  ones = jnp.ones(x.shape[:-1], x.dtype)  # [..., N]
  return jnp.einsum('...i,...ij->...j', ones, x)


def _updated_link_forward(previous_link, previous_precedence, write_weights):
  link = updated_link(previous_link, previous_precedence, write_weights)
  return link, (previous_link, previous_precedence, write_weights)


def _updated_link_backward(residuals, d_link):
  """The gradient of `updated_link`, from ``g = d_link`` off the diagonal.

  ``d previous_link = g (1 - w_i - w_j)``,
  ``d p_j = sum_i g_ij w_i``,
  ``d w_k = sum_j g_kj (p_j - L_kj) - sum_i g_ik L_ik``.
  ``check_grads`` and a NumPy re-computation test it
  (``tests/dnc_addressing_test.py``).
  """
  previous_link, previous_precedence, write_weights = residuals
  d_link = d_link * _off_diagonal(d_link)  # [B, H, N, N]
  w_i = write_weights[..., :, None]  # [B, H, N, 1]
  w_j = write_weights[..., None, :]  # [B, H, 1, N]
  d_previous_link = d_link * (1 - w_i - w_j)
  d_times_link = d_link * previous_link  # [B, H, N, N]
  d_precedence = jnp.einsum('...ij,...i->...j', d_link, write_weights)
  d_write_weights = (
      jnp.einsum('...ij,...j->...i', d_link, previous_precedence)
      - jnp.sum(d_times_link, axis=-1)
      - _sum_over_rows(d_times_link)
  )  # [B, H, N]
  return d_previous_link, d_precedence, d_write_weights


updated_link.defvjp(_updated_link_forward, _updated_link_backward)


def updated_linkage(
    write_weights: jax.Array, previous: TemporalLinkageState
) -> TemporalLinkageState:
  """The temporal link state after the write heads' ``write_weights``.

  Args:
    write_weights: ``[B, H, N]``.
    previous: The state before the write.
  """
  return TemporalLinkageState(
      link=updated_link(
          previous.link, previous.precedence_weights, write_weights
      ),
      precedence_weights=precedence_weights(
          previous.precedence_weights, write_weights
      ),
  )


def directional_read_weights(
    link: jax.Array, previous_read_weights: jax.Array, forward: bool
) -> jax.Array:
  """Read weights one step along the links of every write head.

  Args:
    link: ``[B, H, N, N]``.
    previous_read_weights: ``[B, R, N]``.
    forward: Follow the writes' order (to the slot written after each read
      slot) or go back (to the one written before).

  Returns:
    ``[B, R, H, N]``: for each read head, one weighting per write head.
  """
  if forward:  # sum_j link[i, j] * r[j]
    return jnp.einsum('bhij,brj->brhi', link, previous_read_weights)
  return jnp.einsum('bhij,bri->brhj', link, previous_read_weights)


def usage_after_write(
    previous_usage: jax.Array, write_weights: jax.Array
) -> jax.Array:
  """``u + (1 - u) * (1 - prod_h (1 - w_h))``: written slots become used.

  Args:
    previous_usage: ``[B, N]``.
    write_weights: ``[B, H, N]``.
  """
  written = 1 - jnp.prod(1 - write_weights, axis=1)  # [B, N]
  return previous_usage + (1 - previous_usage) * written


def usage_after_read(
    previous_usage: jax.Array, free_gate: jax.Array, read_weights: jax.Array
) -> jax.Array:
  """``u * prod_r (1 - f_r * w_r)``: slots read with a free gate are freed.

  Args:
    previous_usage: ``[B, N]``.
    free_gate: ``[B, R]`` in [0, 1].
    read_weights: ``[B, R, N]``.
  """
  retention = jnp.prod(1 - free_gate[..., None] * read_weights, axis=1)
  return previous_usage * retention  # [B, N]


def updated_usage(
    write_weights: jax.Array,
    free_gate: jax.Array,
    read_weights: jax.Array,
    previous_usage: jax.Array,
) -> jax.Array:
  """The usage ``u_t`` after the previous step's writes and reads.

  As in the reference, the usage is not differentiated with respect to the
  write weights (their gradient is stopped here).

  Args:
    write_weights: ``[B, H, N]``, the previous step's.
    free_gate: ``[B, R]``.
    read_weights: ``[B, R, N]``, the previous step's.
    previous_usage: ``[B, N]`` in [0, 1].

  Returns:
    ``[B, N]`` in [0, 1].
  """
  usage = usage_after_write(
      previous_usage, jax.lax.stop_gradient(write_weights)
  )
  return usage_after_read(usage, free_gate, read_weights)


def allocation(usage: jax.Array) -> jax.Array:
  """Allocation weights of one write head: the least used slots first.

  With the slots sorted by usage ascending (``phi``), slot ``phi[k]`` gets
  ``(1 - u[phi[k]]) * prod_{l < k} u[phi[l]]``. The usage is first kept
  above ``EPSILON``; the gradient flows through the sorted values only.

  Args:
    usage: ``[B, N]`` in [0, 1].

  Returns:
    ``[B, N]``, summing to at most 1.
  """
  usage = EPSILON + (1 - EPSILON) * usage
  # Descending non-usage, ties by lower index, as the reference's top_k.
  sorted_nonusage, order = jax.lax.top_k(1 - usage, usage.shape[-1])
  sorted_usage = 1 - sorted_nonusage  # [B, N], ascending.
  before = jnp.concatenate(  # Exclusive cumulative product.
      [
          jnp.ones_like(sorted_usage[..., :1]),
          jnp.cumprod(sorted_usage[..., :-1], axis=-1),
      ],
      axis=-1,
  )
  sorted_allocation = sorted_nonusage * before  # [B, N]
  return batch_gather(sorted_allocation, batch_invert_permutation(order))


def batch_invert_permutation(permutations: jax.Array) -> jax.Array:
  """The inverse of each row's permutation: ``p[inverse[j]] == j``.

  Args:
    permutations: Integer ``[B, N]``, each row a permutation of ``0..N-1``.
  """
  return jnp.argsort(permutations, axis=-1)


def batch_gather(values: jax.Array, indices: jax.Array) -> jax.Array:
  """``values[b, indices[b, j]]`` for every row ``b``: ``[B, N]``."""
  return jnp.take_along_axis(values, indices, axis=-1)


def write_allocation_weights(
    usage: jax.Array, write_gates: jax.Array
) -> jax.Array:
  """Allocation weights of each write head, in turn.

  Each head allocates from the usage that the heads before it would leave:
  ``u <- u + (1 - u) * g_h * a_h``. The heads are a ``lax.scan``.

  Args:
    usage: ``[B, N]``.
    write_gates: ``[B, H]`` in [0, 1].

  Returns:
    ``[B, H, N]``, not scaled by the write gates.
  """

  def head(usage, gate):  # [B, N], [B]
    weights = allocation(usage)
    return usage + (1 - usage) * gate[:, None] * weights, weights

  _, weights = jax.lax.scan(head, usage, jnp.swapaxes(write_gates, 0, 1))
  return jnp.swapaxes(weights, 0, 1)  # [H, B, N] -> [B, H, N]
