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

How. :func:`unroll` is a ``jax.custom_vjp`` with its own backward loop:

* Work that depends on no earlier step (``Recurrence.prepare``: for the RMC
  the input projection and the gates' input part) runs for all ``T`` steps
  at once before the loop, and is differentiated by JAX.
* The forward loop records, for every step, the carry it starts from and
  the input ``x_t`` and result ``y_t`` of every product with a recurrent
  weight.
* The backward loop runs backwards over the steps: each step is computed
  again from its carry, with every product with a recurrent weight replaced
  by its recorded result (:func:`_replayed_product`, differentiated as
  ``x @ w + y`` with ``w`` held constant), and ``jax.vjp`` of that step gives
  the gradients of the carry before it, of its prepared inputs, of the other
  parameters (summed over the steps) and of every product's result,
  ``dy_t``. So only the cheap rest of a step (LayerNorms, attention, gates)
  is computed twice, and the backward loop adds no weight gradients.
* Each recurrent weight's gradient is then one product of the stacked ``x``
  and ``dy``.
* Both loops take step ``t``'s slices of their per-step arrays through their
  carry (:func:`_step_slices`), not as scanned inputs that XLA:CPU would
  slice inside the step's elementwise work, which made that work several
  times slower.

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


def _step_slices(stacked: Any, index: jax.Array) -> Any:
  """Step ``index``'s slice of every leaf ``[T, ...]`` of ``stacked``.

  The scans below take step ``t``'s slices of their per-step arrays in their
  carry, and take step ``t + 1``'s (or ``t - 1``'s, backward) with this
  function, which only passes them on to the carry. XLA:CPU fuses the
  slicing of an array into the elementwise work that reads the slice, and
  such a fusion runs several times slower than the same work on a whole
  loop variable (the RMC's gates at the Nth Farthest size: 1.6 against 0.35
  ms per step); the copy into the carry is a fusion of its own.
  """
  return jax.tree.map(
      lambda x: jax.lax.dynamic_index_in_dim(x, index, keepdims=False),
      stacked,
  )


def _apply_valid(
    valid_now: jax.Array | None,
    carry: Any,
    next_carry: Any,
    output: jax.Array,
) -> tuple[Any, jax.Array]:
  """``(next_carry, output)``; ``(carry, 0)`` where ``valid_now`` is False."""
  if valid_now is None:
    return next_carry, output
  return (
      select_valid(valid_now, next_carry, carry),
      select_valid(valid_now, output, jnp.zeros_like(output)),
  )


def _if_any_valid(
    valid_now: jax.Array | None,
    compute: Callable[[Any], Any],
    skip: Callable[[Any], Any],
    operand: Any,
) -> Any:
  """``compute(operand)``, or ``skip(operand)`` where no sample is valid."""
  if valid_now is None:
    return compute(operand)
  return jax.lax.cond(jnp.any(valid_now), compute, skip, operand)


def _zeros_like_result(function: Callable[[Any], Any], operand: Any) -> Any:
  """Zeros of the shapes and dtypes of ``function(operand)``."""
  shapes = jax.eval_shape(function, operand)
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _scan(
    recurrence: Recurrence,
    params: Params,
    prepared: Any,
    carry: Any,
    valid: jax.Array | None,
    record: bool,
) -> tuple[jax.Array, Any, dict[str, Any]]:
  """The time loop, as one ``lax.scan``.

  Args:
    recurrence: The computation.
    params: The parameters.
    prepared: ``recurrence.prepare``'s result, every leaf ``[T, ...]``.
    carry: The state before the first step.
    valid: None, or bool ``[T, B]``; see :func:`unroll`.
    record: Whether to return what the backward pass needs.

  Returns:
    ``(outputs [T, ...], final carry, recorded)``: with ``record``,
    ``recorded`` has the carry before every step (``carries``) and the input
    (``x``) and result (``y``) of every product with a recurrent weight,
    keyed by use, each stacked over ``T``; otherwise it is empty.
  """
  per_step = (prepared, valid)
  num_steps = jax.tree.leaves(prepared)[0].shape[0]

  def step(carry_and_now, t):
    carry, (prepared_now, valid_now) = carry_and_now

    def compute(carry):
      x, y = {}, {}

      def matmul(use, inputs, w):
        x[use] = inputs
        y[use] = recurrence.dot(inputs, w)
        return y[use]

      next_carry, output = recurrence.step(params, prepared_now, carry, matmul)
      next_carry, output = _apply_valid(valid_now, carry, next_carry, output)
      recorded = {'carries': carry, 'x': x, 'y': y} if record else {}
      return next_carry, (output, recorded)

    def skip(carry):  # No sample is valid: what `compute` would give.
      return carry, _zeros_like_result(lambda c: compute(c)[1], carry)

    next_carry, per_step_out = _if_any_valid(valid_now, compute, skip, carry)
    following = _step_slices(per_step, jnp.minimum(t + 1, num_steps - 1))
    return (next_carry, following), per_step_out

  (final, _), (outputs, recorded) = jax.lax.scan(
      step,
      (carry, _step_slices(per_step, jnp.asarray(0))),
      jnp.arange(num_steps),
  )
  return outputs, final, recorded


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _replayed_product(
    recurrence: Recurrence, x: jax.Array, w: jax.Array, y: jax.Array
) -> jax.Array:
  """``y``, the product ``x @ w`` recorded in the forward pass.

  Differentiated as ``x @ w + y`` with ``w`` held constant: the backward
  step gets the gradient of ``x`` and of the product's result (that of
  ``y``) without computing the product again. ``w``'s gradient is formed
  after the loop.
  """
  del recurrence, x, w
  return y


@_replayed_product.defjvp
def _replayed_product_jvp(recurrence, primals, tangents):
  x, w, y = primals
  d_x, _, d_y = tangents
  return y, recurrence.dot(d_x, w) + d_y


def _unroll_forward(
    recurrence: Recurrence,
    params: Params,
    inputs: jax.Array,
    carry: jax.Array,
    valid: jax.Array | None,
) -> tuple[tuple[jax.Array, jax.Array], Any]:
  """Runs the scan, keeping what the backward pass needs."""
  prepared, prepare_backward = jax.vjp(recurrence.prepare, params, inputs)
  outputs, final, recorded = _scan(
      recurrence, params, prepared, carry, valid, record=True
  )
  return (outputs, final), (params, prepared, valid, recorded, prepare_backward)


def _unroll_backward(
    recurrence: Recurrence,
    residuals: Any,
    cotangents: tuple[jax.Array, jax.Array],
) -> tuple[Params, jax.Array, jax.Array, None]:
  """Backward scan, then one product per recurrent weight for its gradient."""
  params, prepared, valid, recorded, prepare_backward = residuals
  d_outputs, d_final = cotangents
  weight_names = {name for _, name in recurrence.recurrent_weights()}
  weights = jax.lax.stop_gradient({name: params[name] for name in weight_names})
  others = {name: p for name, p in params.items() if name not in weight_names}
  per_step = (
      recorded['carries'],
      prepared,
      recorded['y'],
      d_outputs,
      valid,
  )
  num_steps = d_outputs.shape[0]

  def step_backward(carry, t):
    d_carry, d_others, now = carry
    carry_now, prepared_now, products, d_output, valid_now = now

    def one_step(others, carry, prepared, products):
      def matmul(use, x, w):
        return _replayed_product(recurrence, x, w, products[use])

      next_carry, output = recurrence.step(
          others | weights, prepared, carry, matmul
      )
      return _apply_valid(valid_now, carry, next_carry, output)

    def compute(d_carry):
      _, backward = jax.vjp(one_step, others, carry_now, prepared_now, products)
      d_others_now, d_carry_before, d_prepared, d_products = backward(
          (d_carry, d_output)
      )
      return d_carry_before, (d_others_now, (d_prepared, d_products))

    def skip(d_carry):  # No sample is valid: the step kept the carry.
      return d_carry, _zeros_like_result(lambda c: compute(c)[1], d_carry)

    d_carry, (d_others_now, per_step_out) = _if_any_valid(
        valid_now, compute, skip, d_carry
    )
    d_others = jax.tree.map(jnp.add, d_others, d_others_now)
    following = _step_slices(per_step, jnp.maximum(t - 1, 0))
    return (d_carry, d_others, following), per_step_out

  initial = (
      d_final,
      jax.tree.map(jnp.zeros_like, others),
      _step_slices(per_step, jnp.asarray(num_steps - 1)),
  )
  (d_carry, d_others, _), (d_prepared, d_products) = jax.lax.scan(
      step_backward, initial, jnp.arange(num_steps), reverse=True
  )
  d_params, d_inputs = prepare_backward(d_prepared)
  d_params = dict(d_params)
  for name, d in d_others.items():
    d_params[name] = d_params[name] + d
  compute_dtype = recurrence.compute_dtype
  for use, name in recurrence.recurrent_weights():
    x = recorded['x'][use]  # [T, *lead, d]
    dy = d_products[use]  # [T, *lead, d']
    x = x.reshape(-1, x.shape[-1])  # [T * rows, d]
    dy = dy.reshape(-1, dy.shape[-1])  # [T * rows, d']
    if compute_dtype is not None:
      x, dy = x.astype(compute_dtype), dy.astype(compute_dtype)
    dw = jnp.dot(x.T, dy, preferred_element_type=params[name].dtype)
    d_params[name] = d_params[name] + dw
  return d_params, d_inputs, d_carry, None  # No gradient for `valid`.


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unroll(
    recurrence: Recurrence,
    params: Params,
    inputs: jax.Array,
    carry: jax.Array,
    valid: jax.Array | None,
) -> tuple[jax.Array, jax.Array]:
  """``(outputs [T, ...], final carry)``; see :func:`unroll`."""
  prepared = recurrence.prepare(params, inputs)
  outputs, final, _ = _scan(
      recurrence, params, prepared, carry, valid, record=False
  )
  return outputs, final


_unroll.defvjp(_unroll_forward, _unroll_backward)
