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
"""The fast unroll behind ``RelationalMemory.unroll``.

A ``lax.scan`` whose recurrent weights get their gradient after the loop.

Why. ``hk.dynamic_unroll`` differentiated by JAX sums the gradient of every
weight used inside the time loop step by step, in the backward loop: each
step adds ``x_t^T dy_t`` for a small ``x_t`` (``B * (N + n)`` rows) and reads
and writes the whole weight matrix and its gradient. Such small products make
poor use of the hardware. The sum over steps is one product,
``[d, T * rows] x [T * rows, d']``, once the loop's ``x_t`` and ``dy_t`` are
all known.

How. :func:`unroll` is a ``jax.custom_vjp``:

* The forward pass is ``jax.vjp`` of the scan with the recurrent weights
  behind ``stop_gradient`` (so the backward loop does not accumulate their
  gradient) and with one extra input per product with such a weight: zeros
  ``[T, *product shape]``, differentiated as if added to the product's result
  (:func:`_with_tangent`; their value is never read). The gradient of those
  zeros is the gradient of the product's result, ``dy_t``; the scan also
  returns each product's input ``x_t`` as an auxiliary output.
* The backward pass runs the backward loop for everything else (the other
  parameters, the inputs, the initial state and the zeros), then forms each
  recurrent weight's gradient as one product of the stacked ``x`` and ``dy``.
* The differentiated step is under ``jax.checkpoint`` with the policy
  ``dots_with_no_batch_dims_saveable``: only the products with weights are
  kept for the backward loop and the cheap rest (LayerNorms, attention,
  gates) is recomputed. Fewer per-step arrays are stored: about 10% faster on
  Nth Farthest.
* Work that depends on no earlier step (``Recurrence.prepare``: for the RMC
  the input projection and the gates' input part) runs for all ``T`` steps
  at once before the loop. Each step's slice of it reaches the step through
  the carry (:func:`_shift`), not as a scanned input that XLA:CPU would slice
  inside the step's elementwise work, which made that work several times
  slower.

Per-sample lengths (``valid``, as ``tf.nn.dynamic_rnn``'s
``sequence_length``) are applied inside the loop: where a step is not valid
for a sample, its carry is kept and its output is zero. The products of such
steps are still computed and recorded (the batch is one array), but their
``dy_t`` is zero, so they add nothing to the weights' gradient. A step valid
for no sample of the batch is skipped (``lax.cond``), forward and backward:
padding to a fixed length costs almost nothing.
:func:`masked_dynamic_unroll` gives any Haiku core the same semantics through
``hk.dynamic_unroll``.

Forward-mode differentiation (``jax.jvp``) is not supported, as for any
``jax.custom_vjp``; ``hk.dynamic_unroll`` supports it.

The recurrence is described by a :class:`Recurrence`, a hashable object
(``RelationalMemory``'s frozen configuration) whose ``step`` calls
``matmul(use, x, w)`` for every product with a recurrent weight; this module
knows nothing else of the RMC.
"""

from collections.abc import Callable, Sequence
import functools
from typing import Any, Protocol

import haiku as hk
import jax
import jax.numpy as jnp

# matmul(use, x [..., d], w [d, d']) -> [..., d']: one product with a weight.
Matmul = Callable[[str, jax.Array, jax.Array], jax.Array]
Params = dict[str, jax.Array]


class Recurrence(Protocol):
  """What :func:`unroll` needs of a recurrence; hashable (a static argument).

  Attributes:
    compute_dtype: Dtype of the operands of the weight gradients' products,
      or None for the operands' own dtype.
  """

  @property
  def compute_dtype(self) -> Any:
    """See the class docstring."""

  def recurrent_weights(self) -> Sequence[tuple[str, str]]:
    """``(use, parameter name)`` of every product with a weight in ``step``.

    A ``use`` names one product of one step, the string ``step`` passes to
    ``matmul``; a weight used twice per step has two uses.
    """

  def dot(self, x: jax.Array, w: jax.Array) -> jax.Array:
    """The product ``x @ w`` as the step computes it."""

  def prepare(self, params: Params, inputs: jax.Array) -> Any:
    """Per-step inputs for all steps at once, every leaf ``[T, ...]``."""

  def step(
      self, params: Params, prepared: Any, carry: jax.Array, matmul: Matmul
  ) -> tuple[jax.Array, jax.Array]:
    """One step from its slice of ``prepare``'s result: ``(carry, output)``."""


def unroll(
    recurrence: Recurrence,
    params: Params,
    inputs: jax.Array,
    carry: jax.Array,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Runs ``recurrence`` over all steps of ``inputs``.

  Equal to a ``lax.scan`` of ``recurrence.step`` (outputs within float
  rounding), with the gradient formed as the module docstring says.

  Args:
    recurrence: The computation.
    params: The parameters, keyed by name; ``recurrence.recurrent_weights()``
      names those used inside the loop.
    inputs: The inputs of all steps, ``[T, ...]``.
    carry: The state before the first step (for the RMC, ``[B, N, D]``).
    valid: None, or bool ``[T, B]``: where ``valid[t, b]`` is False, step
      ``t`` keeps sample ``b``'s carry and its output is zero (the carry's
      and the outputs' leading axis, after ``T`` for the outputs, is ``B``).

  Returns:
    ``(outputs [T, ...], final carry)``.
  """
  return _unroll(recurrence, params, inputs, carry, valid)


def select_valid(valid: jax.Array, new: Any, old: Any) -> Any:
  """``new`` where ``valid [B]``, else ``old``; leaves batch-leading."""

  def select(new, old):
    return jnp.where(valid.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

  return jax.tree.map(select, new, old)


def masked_dynamic_unroll(
    core: Callable[[Any, Any], tuple[Any, Any]],
    inputs: Any,
    lengths: jax.Array,
    initial_state: Any,
    time_major: bool = True,
) -> tuple[Any, Any]:
  """``hk.dynamic_unroll`` with ``tf.nn.dynamic_rnn``'s ``sequence_length``.

  At steps ``t >= lengths[b]`` sample ``b``'s state is carried unchanged and
  its output is zero, so its final state is the state after its own last
  valid step.

  Args:
    core: An ``hk.RNNCore`` or a function ``(inputs, state) -> (output,
      state)``; call inside ``hk.transform``.
    inputs: ``[T, B, ...]`` (``[B, T, ...]`` if not ``time_major``) leaves.
    lengths: ``[B]`` valid steps per sample.
    initial_state: The core's state, batch-leading leaves.
    time_major: Layout of ``inputs`` and of the outputs.

  Returns:
    ``(outputs [T, B, ...] or [B, T, ...], final_state)``.
  """

  def step(inputs_and_time, state):
    x, t = inputs_and_time
    output, next_state = core(x, state)
    valid = t < lengths  # [B]
    zeros = jax.tree.map(jnp.zeros_like, output)
    return (
        select_valid(valid, output, zeros),
        select_valid(valid, next_state, state),
    )

  num_steps = jax.tree.leaves(inputs)[0].shape[0 if time_major else 1]
  steps = jnp.arange(num_steps)  # [T]
  if not time_major:
    steps = jnp.broadcast_to(steps, (lengths.shape[0], num_steps))  # [B, T]
  return hk.dynamic_unroll(
      step, (inputs, steps), initial_state, time_major=time_major
  )


def _scan(
    recurrence: Recurrence,
    params: Params,
    inputs: jax.Array,
    carry: jax.Array,
    valid: jax.Array | None,
    matmul_outputs: dict[str, jax.Array] | None,
) -> tuple[tuple[jax.Array, jax.Array], dict[str, jax.Array]]:
  """The unroll as one ``lax.scan``.

  Args:
    recurrence: The computation.
    params: The parameters.
    inputs: The inputs of all steps, ``[T, ...]``.
    carry: The state before the first step.
    valid: None, or bool ``[T, B]``; see :func:`unroll`.
    matmul_outputs: None, or zeros added to the result of every product with
      a recurrent weight, keyed by use, each ``[T, *product shape]``: their
      gradient is the gradient of that product's result.

  Returns:
    ``((outputs [T, ...], final carry), matmul_inputs)``: with
    ``matmul_outputs``, the input of every such product, keyed by use, each
    ``[T, *input shape]``; otherwise an empty dict.
  """
  prepared = recurrence.prepare(params, inputs)  # Every leaf [T, ...].

  def step(carry_and_now, following):
    # `now` (step t's slice of `prepared` and `valid`) comes in the carry, and
    # step t + 1's slice leaves in it: see `_shift`.
    carry, (prepared, valid_now) = carry_and_now
    added = None if matmul_outputs is None else following[1]

    def compute(carry):
      recorded = {}

      def matmul(use, x, w):
        product = recurrence.dot(x, w)
        if added is None:
          return product
        recorded[use] = x
        return _with_tangent(product, added[use])

      next_carry, output = recurrence.step(params, prepared, carry, matmul)
      if valid_now is not None:  # [B]
        next_carry = select_valid(valid_now, next_carry, carry)
        output = select_valid(valid_now, output, jnp.zeros_like(output))
      return next_carry, (output, recorded)

    if valid_now is None:
      next_carry, per_step_out = compute(carry)
    else:

      def skip(carry):  # No sample is valid: what `compute` would give.
        _, per_step_out = jax.eval_shape(compute, carry)
        zeros = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), per_step_out
        )
        return carry, zeros

      next_carry, per_step_out = jax.lax.cond(
          jnp.any(valid_now), compute, skip, carry
      )
    return (next_carry, following[0]), per_step_out

  if matmul_outputs is not None:
    step = jax.checkpoint(
        step, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable
    )
  now, following = _shift((prepared, valid))
  (final, _), (outputs, matmul_inputs) = jax.lax.scan(
      step, (carry, now), (following, matmul_outputs)
  )
  return (outputs, final), matmul_inputs


def _shift(xs: Any) -> tuple[Any, Any]:
  """``(xs[0], xs[1:] + xs[-1:])`` for every leaf ``[T, ...]`` of ``xs``.

  The scan takes step ``t``'s slice of the per-step inputs in its carry, and
  gets step ``t + 1``'s as its own per-step input, which it only passes on to
  the carry. XLA:CPU fuses the slicing of a scanned input into the
  elementwise work that reads it, and such a fusion runs several times slower
  than the same work on an array that is a whole loop variable (the gates of
  the RMC at the Nth Farthest size: 1.6 against 0.35 ms per step). The copy
  of the slice into the carry is a fusion of its own.
  """
  now = jax.tree.map(lambda x: x[0], xs)
  following = jax.tree.map(
      lambda x: jnp.concatenate([x[1:], x[-1:]]), xs
  )  # [T, ...]
  return now, following


@jax.custom_jvp
def _with_tangent(product: jax.Array, added: jax.Array) -> jax.Array:
  """``product``, differentiated as ``product + added``.

  ``added`` is all zeros (see :func:`_scan`): its value is never read, so the
  forward scan neither slices nor adds it, and its cotangent is the
  product's.
  """
  del added
  return product


@_with_tangent.defjvp
def _with_tangent_jvp(primals, tangents):
  product, _ = primals
  d_product, d_added = tangents
  return product, d_product + d_added


def _product_shapes(
    recurrence: Recurrence, params: Params, inputs: jax.Array, carry: jax.Array
) -> dict[str, jax.ShapeDtypeStruct]:
  """Shape and dtype of the result of each use in one step, traced only."""
  uses = {use for use, _ in recurrence.recurrent_weights()}
  shapes = {}

  def one_step(params, inputs, carry):
    first = jax.tree.map(lambda x: x[0], recurrence.prepare(params, inputs))

    def matmul(use, x, w):
      product = recurrence.dot(x, w)
      shapes[use] = jax.ShapeDtypeStruct(product.shape, product.dtype)
      return product

    return recurrence.step(params, first, carry, matmul)

  jax.eval_shape(one_step, params, inputs, carry)
  if set(shapes) != uses:
    raise ValueError(
        f'The step multiplies by recurrent weights in uses {sorted(shapes)}, '
        f'but recurrent_weights() names {sorted(uses)}.'
    )
  return shapes


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unroll(
    recurrence: Recurrence,
    params: Params,
    inputs: jax.Array,
    carry: jax.Array,
    valid: jax.Array | None,
) -> tuple[jax.Array, jax.Array]:
  """``(outputs [T, ...], final carry)``; see :func:`unroll`."""
  return _scan(recurrence, params, inputs, carry, valid, None)[0]


def _unroll_forward(
    recurrence: Recurrence,
    params: Params,
    inputs: jax.Array,
    carry: jax.Array,
    valid: jax.Array | None,
) -> tuple[tuple[jax.Array, jax.Array], Any]:
  """Runs the scan, keeping what the backward pass needs."""
  weight_names = {name for _, name in recurrence.recurrent_weights()}
  weights = {name: params[name] for name in weight_names}
  others = {name: p for name, p in params.items() if name not in weight_names}

  def scan(others, inputs, carry, matmul_outputs):
    # The weights' gradient is formed after the scan, from what it records.
    all_params = others | jax.lax.stop_gradient(weights)
    return _scan(recurrence, all_params, inputs, carry, valid, matmul_outputs)

  num_steps = inputs.shape[0]
  matmul_outputs = {
      use: jnp.zeros((num_steps,) + shape.shape, shape.dtype)
      for use, shape in _product_shapes(
          recurrence, params, inputs, carry
      ).items()
  }  # [T, *product shape]
  result, backward, matmul_inputs = jax.vjp(
      scan, others, inputs, carry, matmul_outputs, has_aux=True
  )
  return result, (backward, matmul_inputs, weights)


def _unroll_backward(
    recurrence: Recurrence,
    residuals: Any,
    cotangents: tuple[jax.Array, jax.Array],
) -> tuple[Params, jax.Array, jax.Array, None]:
  """Backward scan, then one product per recurrent weight for its gradient."""
  backward, matmul_inputs, weights = residuals
  d_others, d_inputs, d_carry, d_matmul_outputs = backward(cotangents)
  d_params = dict(d_others)
  compute_dtype = recurrence.compute_dtype
  for use, name in recurrence.recurrent_weights():
    x = matmul_inputs[use]  # [T, *lead, d]
    dy = d_matmul_outputs[use]  # [T, *lead, d']
    x = x.reshape(-1, x.shape[-1])  # [T * rows, d]
    dy = dy.reshape(-1, dy.shape[-1])  # [T * rows, d']
    if compute_dtype is not None:
      x, dy = x.astype(compute_dtype), dy.astype(compute_dtype)
    dw = jnp.dot(x.T, dy, preferred_element_type=weights[name].dtype)
    d_params[name] = d_params[name] + dw if name in d_params else dw
  return d_params, d_inputs, d_carry, None  # No gradient for `valid`.


_unroll.defvjp(_unroll_forward, _unroll_backward)
