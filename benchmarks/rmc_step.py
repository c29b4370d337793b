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
r"""Speed of the RMC unroll against the machine's own matmul throughput.

  python -m benchmarks.rmc_step --config=all

For each configuration and each way of unrolling the core
(``--implementations``: ``unroll``, the fast ``RelationalMemory.unroll``;
``dynamic_unroll``, ``hk.dynamic_unroll`` of the one-step core; and
``nnx_unroll``, the same fast unroll through the Flax NNX cell of
``rmc.nnx``), after
warm-up, the median over repeated calls of:

* ``forward``: the unroll over the whole sequence;
* ``forward_backward``: the gradient of the mean of the squared outputs of
  all steps with respect to the parameters and the inputs.

Each is given in ms per call and per time step, as achieved GFLOP/s from the
analytic count of :func:`step_flops`, and as a fraction of the dense float32
matmul throughput measured in the same run (a ``2048 x 2048`` ``jnp.dot``,
timed before and after the rest; the faster of the two is the yardstick).
Compile time of ``forward_backward`` is measured at several sequence lengths
(for the ``--compile_configs``): it must not grow with the length, since the
time loop is a scan. Also given:
the throughput of the loop's matrix products alone at the configuration's
sizes (:func:`loop_products_gflops`), the ceiling for work that must run one
step after another. One JSON object is printed.
"""

import dataclasses
import functools
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from absl import app
from absl import flags
import haiku as hk
import jax
import jax.numpy as jnp

import rmc


@dataclasses.dataclass(frozen=True)
class Config:
  """A benchmark configuration (``unit`` gating, 1 block).

  Attributes:
    mem_slots: Memory slots ``N``.
    num_heads: Heads ``H``.
    head_size: Per-head size; memory row size ``D = H * head_size``.
    input_size: Input features per step.
    batch_size: ``B``.
    num_steps: Sequence length ``T``.
    mlp_layers: Attention MLP layers.
  """

  mem_slots: int
  num_heads: int
  head_size: int
  input_size: int
  batch_size: int
  num_steps: int
  mlp_layers: int = 2


CONFIGS = {
    'small': Config(4, 4, 32, 40, 32, 8),
    'nth_farthest': Config(8, 8, 64, 40, 64, 8),
    'lm': Config(1, 4, 256, 256, 32, 100),
    'lm_paper': Config(1, 4, 625, 512, 8, 100, mlp_layers=5),
    'tiny': Config(2, 2, 4, 3, 2, 3),  # For the test of this command.
}
ALL = ('small', 'nth_farthest', 'lm', 'lm_paper')

_CONFIG = flags.DEFINE_list(
    'config',
    ['all'],
    f'Configurations: "all" ({", ".join(ALL)}) or names '
    f'from {sorted(CONFIGS)}.',
)
_COMPILE_LENGTHS = flags.DEFINE_list(
    'compile_lengths',
    ['10', '100', '1000'],
    'Sequence lengths at which the forward+backward compile time is timed.',
)
_COMPILE_CONFIGS = flags.DEFINE_list(
    'compile_configs',
    ['all'],
    'Configurations whose compile time is timed at --compile_lengths: "all" '
    '(every one measured), names from --config, or none (empty).',
)
_MATMUL_SIZE = flags.DEFINE_integer(
    'matmul_size',
    2048,
    'Side of the square float32 matmul yardstick.',
    lower_bound=1,
)
_MIN_TIME_S = flags.DEFINE_float(
    'min_time_s',
    1.0,
    'Repeat each measurement for at least this long.',
    lower_bound=0.0,
)
_IMPLEMENTATIONS = flags.DEFINE_list(
    'implementations',
    ['unroll', 'dynamic_unroll'],
    'Ways to unroll the core: "unroll" (RelationalMemory.unroll), '
    '"dynamic_unroll" (hk.dynamic_unroll of the one-step core) and '
    '"nnx_unroll" (the Flax NNX cell\'s unroll, rmc.nnx; needs Flax).',
)
_DTYPE = flags.DEFINE_enum(
    'dtype',
    'float32',
    ['float32', 'bfloat16'],
    "Operand dtype of the core's matrix products (its compute_dtype); "
    'parameters, state and accumulation stay float32. The yardstick matmul '
    'uses the same operand dtype.',
)
_MIN_REPEATS = flags.DEFINE_integer(
    'min_repeats',
    5,
    'Repeat each measurement at least this many times.',
    lower_bound=1,
)


def step_flops(config: Config) -> int:
  """Forward FLOPs of one time step: matrix products only, 2 per MAC.

  With ``D = H * v`` (``v`` the head size, keys of size ``k = v``), rows
  ``R = N + 1`` (the memory plus the projected input) and ``G = D`` gates:

  * input projection ``2 B d_in D``;
  * qkv projection of every row ``2 B R D H (2k + v)``;
  * attention logits and weighted values ``2 B H R^2 (k + v)``;
  * the attention MLP on every row ``2 L B R D^2``;
  * gates from the input and from every memory row ``2 B (1 + N) D 2G``.

  Element-wise work (LayerNorms, softmax, gating) is not counted. The
  backward pass of each product is two products of its size, so a
  forward+backward step is ``3 * step_flops``.
  """
  b, n, h, v = (
      config.batch_size,
      config.mem_slots,
      config.num_heads,
      config.head_size,
  )
  d, k, r = h * v, v, n + 1
  return (
      2 * b * config.input_size * d
      + 2 * b * r * d * h * (2 * k + v)
      + 2 * b * h * r * r * (k + v)
      + 2 * config.mlp_layers * b * r * d * d
      + 2 * b * (1 + n) * d * 2 * d
  )


def compile_lengths() -> list[int]:
  """``--compile_lengths`` as integers.

  Raises:
    app.UsageError: If one is not an integer.
  """
  try:
    return [int(n) for n in _COMPILE_LENGTHS.value]
  except ValueError as e:
    raise app.UsageError(
        f'--compile_lengths must be integers; got {_COMPILE_LENGTHS.value}.'
    ) from e


def gradient_compile_seconds(
    loss: Callable[[hk.Params, jax.Array], jax.Array],
    params: hk.Params,
    inputs_fn: Callable[[int], jax.Array],
    lengths: Sequence[int],
) -> dict[str, float]:
  """Compile time of ``grad(loss)`` w.r.t. params and inputs, per length.

  Args:
    loss: ``loss(params, inputs [T, B, d_in])``, a scalar.
    params: Its parameters.
    inputs_fn: ``inputs_fn(T)`` gives inputs of ``T`` steps.
    lengths: The sequence lengths ``T`` to compile at.

  Returns:
    ``{str(T): seconds}``, each from a fresh, uncached ``jax.jit``.
  """
  compile_s = {}
  for length in lengths:
    fresh = jax.jit(jax.grad(loss, argnums=(0, 1)))  # Not cached.
    begin = time.perf_counter()
    fresh.lower(params, inputs_fn(length)).compile()
    compile_s[str(length)] = time.perf_counter() - begin
  return compile_s


def median_seconds(fn: Callable[[], jax.Array]) -> float:
  """Median wall time of ``fn()`` (blocked on), after two warm-up calls."""
  for _ in range(2):
    jax.block_until_ready(fn())
  times: list[float] = []
  start = time.perf_counter()
  while (
      len(times) < _MIN_REPEATS.value
      or time.perf_counter() - start < _MIN_TIME_S.value
  ):
    begin = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - begin)
  return statistics.median(times)


def matmul_gflops(size: int, dtype: str = 'float32') -> float:
  """Dense ``size x size`` matmul throughput, GFLOP/s.

  Args:
    size: Side of the square matrices.
    dtype: Operand dtype; the product accumulates in float32.
  """
  keys = jax.random.split(jax.random.key(0))
  a = jax.random.normal(keys[0], (size, size), dtype)
  b = jax.random.normal(keys[1], (size, size), dtype)
  dot = jax.jit(functools.partial(jnp.dot, preferred_element_type=jnp.float32))
  return 2 * size**3 / median_seconds(lambda: dot(a, b)) / 1e9


def loop_product_shapes(config: Config) -> list[tuple[int, int, int]]:
  """``(M, K, N)`` of each product with a weight inside the time loop.

  The qkv projection and the MLP layers act on ``M = B (N + 1)`` rows, the
  gates from the memory on ``B N`` rows. (The input projection and the
  gates from the input do not depend on the memory: ``unroll`` does them for
  all steps at once.)
  """
  b, n, h, v = (
      config.batch_size,
      config.mem_slots,
      config.num_heads,
      config.head_size,
  )
  d, rows = h * v, b * (n + 1)
  return (
      [(rows, d, 3 * d)]
      + [(rows, d, d)] * config.mlp_layers
      + [(b * n, d, 2 * d)]
  )


def loop_products_gflops(config: Config, dtype: str = 'float32') -> float:
  """Throughput of the loop's products alone, one step after another.

  A ``lax.scan`` over ``T`` steps does each product of
  :func:`loop_product_shapes` on inputs that depend on the previous step, so
  nothing can be hoisted out of the loop. This is what the matrix products of
  the recurrence can reach at these sizes on this machine, with no other
  work: an upper bound for the forward pass.
  """
  shapes = loop_product_shapes(config)
  keys = jax.random.split(jax.random.key(2), 2 * len(shapes))
  xs = [
      jax.random.normal(k, (m, kk), dtype)
      for k, (m, kk, _) in zip(keys[::2], shapes, strict=True)
  ]
  ws = [
      jax.random.normal(k, (kk, nn), dtype)
      for k, (_, kk, nn) in zip(keys[1::2], shapes, strict=True)
  ]

  @jax.jit
  def products(xs, ws):
    def step(carry, _):
      outs = [
          jnp.dot(
              x + carry.astype(x.dtype), w, preferred_element_type=jnp.float32
          )
          for x, w in zip(xs, ws, strict=True)
      ]
      return carry + 1e-9 * sum(o[0, 0] for o in outs), None

    return jax.lax.scan(
        step, jnp.zeros([], jnp.float32), None, length=config.num_steps
    )[0]

  flops = config.num_steps * sum(2 * m * k * n for m, k, n in shapes)
  return flops / median_seconds(lambda: products(xs, ws)) / 1e9


def _core_arguments(config: Config, compute_dtype: str) -> dict[str, Any]:
  """The core's constructor arguments (Haiku's and the NNX cell's)."""
  return dict(
      mem_slots=config.mem_slots,
      head_size=config.head_size,
      num_heads=config.num_heads,
      attention_mlp_layers=config.mlp_layers,
      gate_style='unit',
      compute_dtype=None if compute_dtype == 'float32' else compute_dtype,
  )


def _functions(config: Config, implementation: str, compute_dtype: str):
  """``(params, inputs_fn, forward, forward_backward, loss)``."""
  if implementation == 'nnx_unroll':
    return _nnx_functions(config, compute_dtype)

  def unroll(inputs):  # [T, B, d_in] -> [T, B, N * D]
    core = rmc.RelationalMemory(**_core_arguments(config, compute_dtype))
    initial_state = core.initial_state(inputs.shape[1])
    if implementation == 'unroll':
      outputs, _ = core.unroll(inputs, initial_state)
    else:
      outputs, _ = hk.dynamic_unroll(core, inputs, initial_state)
    return outputs

  model: hk.Transformed = hk.without_apply_rng(hk.transform(unroll))

  def inputs_fn(num_steps):
    return jax.random.normal(
        jax.random.key(1), (num_steps, config.batch_size, config.input_size)
    )

  params = jax.jit(model.init)(jax.random.key(0), inputs_fn(config.num_steps))
  return _timed(model.apply, params, inputs_fn)


def _timed(apply: Callable[..., jax.Array], params, inputs_fn):
  """``(params, inputs_fn, forward, forward_backward, loss)`` of ``apply``.

  The loss is the mean of the squared outputs of all steps; its gradient is
  taken with respect to the parameters and the inputs.
  """

  def loss(params, inputs):
    return jnp.mean(jnp.square(apply(params, inputs)))

  forward = jax.jit(apply)
  forward_backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
  return params, inputs_fn, forward, forward_backward, loss


def _nnx_functions(config: Config, compute_dtype: str):
  """:func:`_functions` of the Flax NNX cell's fast unroll (``rmc.nnx``).

  The cell holds the Haiku core's initial parameters (converted), and its
  state is the differentiated argument, as an NNX training step takes it.
  """
  # Flax is an optional extra: imported only for this implementation.
  from flax import nnx  # pylint: disable=g-import-not-at-top
  import rmc.nnx  # pylint: disable=g-import-not-at-top

  haiku_params, inputs_fn, _, _, _ = _functions(config, 'unroll', compute_dtype)
  cell = rmc.nnx.RelationalMemory(
      config.input_size,
      **_core_arguments(config, compute_dtype),
      rngs=nnx.Rngs(0),
  )
  rmc.nnx.from_haiku(cell, haiku_params)
  graphdef, params = nnx.split(cell)

  def apply(params, inputs):  # [T, B, d_in] -> [T, B, N * D]
    return nnx.merge(graphdef, params).unroll(inputs, time_major=True)[1]

  return _timed(apply, params, inputs_fn)


def measure(
    name: str,
    implementation: str,
    compute_dtype: str,
    compile_lengths: Sequence[int],
) -> dict[str, object]:
  """Every figure of one configuration (see the module docstring)."""
  config = CONFIGS[name]
  params, inputs_fn, forward, forward_backward, loss = _functions(
      config, implementation, compute_dtype
  )
  inputs = inputs_fn(config.num_steps)
  flops = step_flops(config) * config.num_steps
  loop_products = loop_products_gflops(config, compute_dtype)
  result = {
      'config': name,
      'implementation': implementation,
      **dataclasses.asdict(config),
      'forward_gflop_per_call': flops / 1e9,
      'loop_products_gflops': loop_products,
  }
  for kind, fn, multiple in (
      ('forward', lambda: forward(params, inputs), 1),
      ('forward_backward', lambda: forward_backward(params, inputs), 3),
  ):
    seconds = median_seconds(fn)
    gflops = multiple * flops / seconds / 1e9
    result[kind] = {
        'ms': seconds * 1e3,
        'ms_per_step': seconds * 1e3 / config.num_steps,
        'gflops': gflops,
    }
  compile_s = gradient_compile_seconds(loss, params, inputs_fn, compile_lengths)
  if compile_s:
    result['forward_backward_compile_s'] = compile_s
  return result


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  names = ALL if _CONFIG.value == ['all'] else tuple(_CONFIG.value)
  for name in names:
    if name not in CONFIGS:
      raise app.UsageError(
          f'Unknown --config={name!r}; choose "all" or '
          f'from {sorted(CONFIGS)}.'
      )
  lengths = compile_lengths()
  for implementation in _IMPLEMENTATIONS.value:
    if implementation not in ('unroll', 'dynamic_unroll', 'nnx_unroll'):
      raise app.UsageError(
          f'Unknown --implementations entry {implementation!r}; choose from '
          f'unroll, dynamic_unroll, nnx_unroll.'
      )
  compile_configs = (
      names
      if _COMPILE_CONFIGS.value == ['all']
      else tuple(_COMPILE_CONFIGS.value)
  )
  for name in compile_configs:
    if name not in names:
      raise app.UsageError(
          f'--compile_configs entry {name!r} is not '
          f'measured; choose from {list(names)}.'
      )
  dtype = _DTYPE.value
  # The yardstick is timed before and after, and the faster of the two is
  # used: a slow moment of a shared machine must not flatter the fractions.
  matmul_before = matmul_gflops(_MATMUL_SIZE.value, dtype)
  results = [
      measure(
          name,
          implementation,
          dtype,
          lengths if name in compile_configs else [],
      )
      for name in names
      for implementation in _IMPLEMENTATIONS.value
  ]
  matmul_after = matmul_gflops(_MATMUL_SIZE.value, dtype)
  matmul = max(matmul_before, matmul_after)
  for result in results:
    result['loop_products_fraction_of_matmul'] = (
        result['loop_products_gflops'] / matmul
    )
    for kind in ('forward', 'forward_backward'):
      result[kind]['fraction_of_matmul'] = result[kind]['gflops'] / matmul
  print(
      json.dumps(
          {
              'device': str(jax.devices()[0]),
              'device_count': jax.device_count(),
              'compute_dtype': dtype,
              'matmul_size': _MATMUL_SIZE.value,
              'matmul_gflops': matmul,
              'matmul_gflops_before_and_after': [matmul_before, matmul_after],
              'results': results,
          },
          indent=1,
      )
  )


if __name__ == '__main__':
  app.run(main)
