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
"""Tests for rmc.RelationalMemory.

The first group ports every test of Sonnet v1's `relational_memory_test.py`
(with the gate-shape assertion corrected to [B, N, G]); the rest check the
computation against an independent NumPy implementation, the parameter tree,
the Haiku integrations and the dtype policy.
"""

import functools
import itertools

from absl.testing import absltest
from absl.testing import parameterized
import chex
import haiku as hk
import jax
from jax.test_util import check_grads
import jax.numpy as jnp
import jmp
import numpy as np
import pytest
import rmc
from rmc import fast_unroll

jax.config.update('jax_numpy_rank_promotion', 'raise')

_PREFIX = 'relational_memory/'


# ---------------------------------------------------------------------------
# Independent NumPy implementation of one step, written from the spec
# (per-head slicing and explicit loops rather than the module's reshapes and
# einsums), in float64. It reads the module's parameters by name.
# ---------------------------------------------------------------------------


def _np_linear(params, name, x):
  p = params[_PREFIX + name]
  return x @ p['w'] + p['b']


def _np_layer_norm(params, name, x):
  p = params[_PREFIX + name]
  mean = x.mean(axis=-1, keepdims=True)
  var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
  return (x - mean) / np.sqrt(var + 1e-5) * p['scale'] + p['offset']


def _np_softmax(x):
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def numpy_step(params, inputs, memory, *, mem_slots, head_size, num_heads,
               num_blocks, key_size, gate_style, attention_mlp_layers,
               forget_bias, input_bias, attention_scale, matrix):
  """One RMC step; returns (output, new_memory, attention weights, i, f)."""
  params = jax.tree.map(lambda p: np.asarray(p, np.float64), params)
  x = np.asarray(inputs, np.float64)
  m = np.asarray(memory, np.float64)
  batch = x.shape[0]
  key_size = key_size or head_size
  x = x.reshape(batch, x.shape[1], -1) if matrix else x.reshape(batch, 1, -1)
  x = _np_linear(params, 'input_projection', x)  # [B, n, D]
  z = np.concatenate([m, x], axis=1)  # [B, R, D]

  def mlp(h):
    for layer in range(attention_mlp_layers):
      h = _np_linear(params, f'attention_mlp/~/linear_{layer}', h)
      if layer < attention_mlp_layers - 1:
        h = np.maximum(h, 0.0)
    return h

  per_head = 2 * key_size + head_size
  scale = (key_size if attention_scale == 'key_size' else per_head) ** -0.5
  all_weights = []
  for block in range(num_blocks):
    qkv = _np_linear(params, f'qkv_projection_{block}', z)
    qkv = _np_layer_norm(params, f'qkv_layer_norm_{block}', qkv)
    heads, weights = [], []
    for h in range(num_heads):
      chunk = qkv[..., h * per_head:(h + 1) * per_head]
      q = chunk[..., :key_size] * scale
      k = chunk[..., key_size:2 * key_size]
      v = chunk[..., 2 * key_size:]
      w = _np_softmax(np.matmul(q, np.swapaxes(k, 1, 2)))  # [B, R, R]
      weights.append(w)
      heads.append(np.matmul(w, v))  # [B, R, v]
    z = _np_layer_norm(params, f'attention_layer_norm_{block}',
                       z + np.concatenate(heads, axis=-1))
    z = _np_layer_norm(params, f'mlp_layer_norm_{block}', mlp(z) + z)
    all_weights.append(np.stack(weights, axis=1))  # [B, H, R, R]
  new = z[:, :mem_slots]
  i = f = None
  if gate_style is not None:
    gates = (_np_linear(params, 'gates_from_memory', np.tanh(m))
             + _np_linear(params, 'gates_from_input',
                          x.reshape(batch, -1))[:, None, :])
    g = gates.shape[-1] // 2
    i = _np_sigmoid(gates[..., :g] + input_bias)
    f = _np_sigmoid(gates[..., g:] + forget_bias)
    new = i * np.tanh(new) + f * m
  return new.reshape(batch, -1), new, all_weights, i, f


def _random_params(fn, *args, seed=0):
  """Random parameters for `hk.transform(fn)`, from shapes alone (no init).

  Weights are N(0, 1/fan_in); LayerNorm scales 1 + N(0, 0.3^2); biases,
  offsets and initial memories N(0, 0.3^2), so every parameter matters.
  """
  shapes = jax.eval_shape(hk.transform(fn).init, jax.random.key(0), *args)
  rng = np.random.default_rng(seed)

  def draw(path, shape):
    name = jax.tree_util.keystr(path[-1:])
    noise = rng.normal(size=shape.shape).astype(shape.dtype)
    if name == "['w']":
      return noise / np.sqrt(shape.shape[0])
    if name == "['scale']":
      return 1.0 + 0.3 * noise
    return 0.3 * noise

  return jax.tree.map_with_path(draw, shapes)


def _init_and_apply(fn, *args, transform=jax.jit):
  """Initialises `hk.transform(fn)` (jitted) and applies it under `transform`.

  Initialisation is always jitted: eager random initialisation compiles every
  primitive separately and is slow. The chex variant under test is `transform`,
  which wraps the computation itself.
  """
  f = hk.without_apply_rng(hk.transform(fn))
  params = jax.jit(f.init)(jax.random.key(0), *args)
  return params, transform(f.apply)(params, *args)


class SonnetModuleTest(chex.TestCase):
  """Ports of Sonnet v1's relational_memory_test.py."""

  @hk.testing.transform_and_run
  def test_state_and_output_size(self):
    core = rmc.RelationalMemory(mem_slots=4, head_size=32)
    self.assertEqual(core.state_size, (4, 32))
    self.assertEqual(core.output_size, (4 * 32,))
    self.assertEqual(core.mem_size, 32)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(False, True)
  def test_output_and_state_shapes(self, treat_input_as_matrix):
    def forward(x):
      core = rmc.RelationalMemory(mem_slots=4, head_size=32, num_heads=2)
      state = core.initial_state(5)
      return (state,) + core(
          x, state, treat_input_as_matrix=treat_input_as_matrix)

    _, (state, output, next_state) = _init_and_apply(
        forward, jnp.zeros([5, 3, 3]), transform=self.variant)
    chex.assert_shape(state, (5, 4, 64))
    chex.assert_shape(next_state, state.shape)
    chex.assert_shape(output, (5, 4 * 32 * 2))

  # The smallest core in the fast tier; every size in the slow.
  @chex.variants(with_jit=True, without_jit=True)
  def test_recurrence(self):
    self._recurrence(2, 2, 1)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters((4, 4, 2), (8, 8, 3), (16, 16, 4))
  @pytest.mark.slow
  def test_recurrence_larger(self, mem_slots, head_size, num_heads):
    self._recurrence(mem_slots, head_size, num_heads)

  def _recurrence(self, mem_slots, head_size, num_heads):
    def forward(x):
      core = rmc.RelationalMemory(
          mem_slots=mem_slots, head_size=head_size, num_heads=num_heads,
          num_blocks=5)
      _, state_1 = core(x, core.initial_state(5))
      _, state_2 = core(x, state_1)
      return state_1, state_2

    _, (state_1, state_2) = _init_and_apply(
        forward, jnp.ones([5, 3, 1]), transform=self.variant)
    chex.assert_shape(state_1, (5, mem_slots, head_size * num_heads))
    chex.assert_equal_shape([state_1, state_2])
    chex.assert_tree_all_finite((state_1, state_2))

  @parameterized.named_parameters(
      ('num_blocks', dict(num_blocks=0), 'num_blocks must be >= 1. Got: 0.'),
      ('attention_mlp_layers', dict(attention_mlp_layers=0),
       'attention_mlp_layers must be >= 1. Got: 0.'),
      ('gate_style', dict(gate_style='bad_gate'),
       "gate_style must be one of ['unit', 'memory', None]. Got: bad_gate."),
  )
  @hk.testing.transform_and_run
  def test_bad_arguments(self, kwargs, message):
    with self.assertRaises(ValueError) as cm:
      rmc.RelationalMemory(mem_slots=4, head_size=32, **kwargs)
    self.assertEqual(str(cm.exception), message)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.product(
      gate_style=('unit', 'memory'),
      # Sonnet's case (N == H hides a wrong shape assertion) and N != H.
      slots_and_heads=((4, 4), (3, 4)),
  )
  def test_gate_shapes(self, gate_style, slots_and_heads):
    mem_slots, num_heads = slots_and_heads

    def forward(x):
      core = rmc.RelationalMemory(
          mem_slots=mem_slots, head_size=32, num_heads=num_heads,
          gate_style=gate_style, return_diagnostics=True)
      return core(x, core.initial_state(4))[0]

    _, output = _init_and_apply(
        forward, jnp.zeros([4, 3, 3]), transform=self.variant)
    gate_size = 32 * num_heads if gate_style == 'unit' else 1
    chex.assert_shape(output.input_gate, (4, mem_slots, gate_size))
    chex.assert_shape(output.forget_gate, (4, mem_slots, gate_size))

  @chex.variants(with_jit=True, without_jit=True)
  def test_memory_updating(self):
    def forward(x):
      core = rmc.RelationalMemory(
          mem_slots=2, head_size=32, num_heads=4, gate_style=None)
      state = core.initial_state(5)
      return state, core(x, state)[1]

    _, (state, next_state) = _init_and_apply(
        forward, jnp.zeros([5, 3, 3]), transform=self.variant)
    self.assertTrue(np.any(np.asarray(state) != np.asarray(next_state)))

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters('unit', 'memory')
  def test_input_erasure(self, gate_style):
    def forward(x):
      core = rmc.RelationalMemory(
          mem_slots=2, head_size=32, num_heads=2, gate_style=gate_style,
          forget_bias=float('+inf'), input_bias=float('-inf'))
      state = core.initial_state(5)
      return state, core(x, state)[1]

    _, (state, next_state) = _init_and_apply(
        forward, jnp.ones([5, 3, 3]), transform=self.variant)
    np.testing.assert_array_equal(np.asarray(next_state), np.asarray(state))

  @chex.variants(with_jit=True, without_jit=True)
  def test_different_key_size(self):
    def forward(x):
      core = rmc.RelationalMemory(
          mem_slots=2, head_size=32, num_heads=2, key_size=128)
      state = core.initial_state(5)
      return state, core(x, state)[1]

    params, (state, next_state) = _init_and_apply(
        forward, jnp.ones([5, 3, 3]), transform=self.variant)
    self.assertTrue(np.any(np.asarray(state) != np.asarray(next_state)))
    # F = H * (2k + v) = 2 * (2 * 128 + 32).
    chex.assert_shape(params[_PREFIX + 'qkv_projection_0']['w'], (64, 576))


class ArgumentValidationTest(parameterized.TestCase):
  """Clear errors for what Sonnet v1 let through."""

  @parameterized.named_parameters(
      ('mem_slots_zero', dict(mem_slots=0), 'mem_slots must be an integer'),
      ('mem_slots_float', dict(mem_slots=2.5), 'mem_slots must be an integer'),
      ('head_size_negative', dict(head_size=-1),
       'head_size must be an integer'),
      ('num_heads_zero', dict(num_heads=0), 'num_heads must be an integer'),
      ('key_size_zero', dict(key_size=0), 'key_size must be an integer'),
      ('key_size_negative', dict(key_size=-3), 'key_size must be an integer'),
      ('num_blocks_bool', dict(num_blocks=True), 'num_blocks must be an'),
      ('num_blocks_string', dict(num_blocks='2'), 'num_blocks must be an'),
      ('mlp_layers_float', dict(attention_mlp_layers=1.5),
       'attention_mlp_layers must be an'),
      ('attention_scale', dict(attention_scale='sqrt'),
       r"attention_scale must be one of \['key_size', 'qkv_size'\]"),
  )
  @hk.testing.transform_and_run
  def test_rejects(self, kwargs, regex):
    config = dict(mem_slots=2, head_size=4) | kwargs
    with self.assertRaisesRegex(ValueError, regex):
      rmc.RelationalMemory(**config)

  @parameterized.named_parameters(
      ('vector_rank_1', (3,), (2, 4, 4), False, 'rank >= 2'),
      ('matrix_rank_2', (2, 5), (2, 4, 4), True, 'rank >= 3'),
      ('unbatched_scalar', (), (4, 4), False, 'rank >= 1'),
      ('unbatched_matrix_rank_1', (5,), (4, 4), True, 'rank >= 2'),
      ('batch_mismatch', (3, 5), (2, 4, 4), False, 'same batch size'),
      ('state_rows', (2, 5), (2, 5, 4), False, r'prev_state must have shape'),
      ('state_rank', (2, 5), (1, 2, 4, 4), False, 'prev_state must have shape'),
  )
  @hk.testing.transform_and_run
  def test_bad_call_shapes(self, input_shape, state_shape, matrix, regex):
    core = rmc.RelationalMemory(mem_slots=4, head_size=2, num_heads=2)
    with self.assertRaisesRegex(ValueError, regex):
      core(jnp.zeros(input_shape), jnp.zeros(state_shape),
           treat_input_as_matrix=matrix)

  @hk.testing.transform_and_run
  def test_integer_state_rejected(self):
    core = rmc.RelationalMemory(mem_slots=4, head_size=4)
    with self.assertRaisesRegex(ValueError, 'floating dtype'):
      core(jnp.zeros([2, 3]), jnp.zeros([2, 4, 4], jnp.int32))


class InitialStateTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('padded', 2, 3, 1),  # D = 3 > N = 2.
      ('square', 3, 3, 1),
      ('truncated', 4, 1, 2),  # D = 2 < N = 4: rows 2 and 3 are all zeros.
  )
  @hk.testing.transform_and_run
  def test_padded_or_truncated_identity(self, mem_slots, head_size, num_heads):
    core = rmc.RelationalMemory(mem_slots, head_size, num_heads=num_heads)
    mem_size = head_size * num_heads
    expected = np.zeros([mem_slots, mem_size], np.float32)
    for row in range(min(mem_slots, mem_size)):
      expected[row, row] = 1.0
    batched = core.initial_state(3)
    self.assertEqual(batched.dtype, jnp.float32)
    np.testing.assert_array_equal(batched, np.stack([expected] * 3))
    np.testing.assert_array_equal(core.initial_state(None), expected)
    self.assertEqual(core.initial_state(2, dtype=jnp.bfloat16).dtype,
                     jnp.bfloat16)

  @hk.testing.transform_and_run
  def test_truncated_rows_are_zero(self):
    state = rmc.RelationalMemory(mem_slots=6, head_size=4).initial_state(2)
    np.testing.assert_array_equal(state[:, 4:], 0.0)
    np.testing.assert_array_equal(state[:, :4], np.stack([np.eye(4)] * 2))

  def test_trainable_initial_state_is_learned(self):
    def loss(x):
      core = rmc.RelationalMemory(mem_slots=3, head_size=2, num_heads=2)
      state = core.initial_state(2, trainable=True)
      output, _ = core(x, state)
      return jnp.sum(output ** 2)

    f = hk.without_apply_rng(hk.transform(loss))
    x = jnp.ones([2, 5])
    params = jax.jit(f.init)(jax.random.key(0), x)
    initial = params['relational_memory']['initial_memory']
    np.testing.assert_array_equal(initial, np.eye(3, 4))
    grads = jax.jit(jax.grad(f.apply))(params, x)
    self.assertGreater(
        float(jnp.abs(grads['relational_memory']['initial_memory']).sum()), 0)

  @parameterized.parameters(None, False)
  def test_default_is_constant(self, trainable):
    f = hk.transform(lambda: rmc.RelationalMemory(3, 4).initial_state(
        2, trainable=trainable))
    self.assertEmpty(f.init(jax.random.key(0)))

  def test_reset_core_resets_to_learned_memory(self):
    def forward(x, should_reset):
      core = hk.ResetCore(rmc.RelationalMemory(
          mem_slots=2, head_size=2, num_heads=2,
          trainable_initial_state=True))
      state = core.initial_state(x.shape[1])
      return hk.dynamic_unroll(core, (x, should_reset), state)

    f = hk.without_apply_rng(hk.transform(forward))
    x = jnp.ones([3, 2, 5])
    reset = jnp.zeros([3, 2], bool)
    params = jax.jit(f.init)(jax.random.key(0), x, reset)
    params = hk.data_structures.to_mutable_dict(params)
    params['relational_memory']['initial_memory'] = jnp.full([2, 4], 0.25)
    apply = jax.jit(f.apply)
    # Resetting at t=2 for batch element 1 equals starting it afresh there.
    outputs, _ = apply(params, x, reset.at[2, 1].set(True))
    fresh, _ = apply(params, x[:1], reset[:1])
    np.testing.assert_allclose(outputs[2, 1], fresh[0, 1], atol=1e-6)
    self.assertFalse(np.allclose(outputs[2, 0], fresh[0, 0], atol=1e-3))


# Configurations of the NumPy comparison: every gate style, 1 and 3 blocks,
# key_size equal to and different from head_size, both attention scales and
# both input modes (the full product). Sizes are tiny: N=3, H=2, v=4 (D=8).
_REFERENCE_CASES = [
    dict(gate_style=gate_style, num_blocks=num_blocks, key_size=key_size,
         attention_scale=attention_scale, matrix=matrix)
    for gate_style, num_blocks, key_size, attention_scale, matrix
    in itertools.product(('unit', 'memory', None), (1, 3), (None, 3),
                         ('key_size', 'qkv_size'), (False, True))
]


def _reference_name(case):
  return '_'.join([
      f"gate_{case['gate_style']}", f"blocks_{case['num_blocks']}",
      f"key_{case['key_size'] or 'head'}", f"scale_{case['attention_scale']}",
      'matrix' if case['matrix'] else 'vector'])


def _covering(cases):
  """A few of ``cases`` that hold every pair of values of any two keys."""
  def pairs(case):
    items = sorted(case.items(), key=lambda kv: kv[0])
    return {(a, b) for a, b in itertools.combinations(
        [(k, repr(v)) for k, v in items], 2)}
  wanted, chosen = set().union(*map(pairs, cases)), []
  while wanted:  # Greedy: the case that covers most of what is left.
    best = max(cases, key=lambda case: len(pairs(case) & wanted))
    chosen.append(best)
    wanted -= pairs(best)
  return chosen


# Every pair of settings in the fast tier; the whole product in the full one.
_COVERING_CASES = _covering(_REFERENCE_CASES)
_OTHER_CASES = [c for c in _REFERENCE_CASES if c not in _COVERING_CASES]


class NumpyReferenceTest(parameterized.TestCase):
  """The module agrees with an independent NumPy implementation (float32)."""

  @parameterized.named_parameters(
      (_reference_name(case), case) for case in _COVERING_CASES)
  def test_step_and_unroll_match_numpy(self, case):
    self._step_and_unroll_match_numpy(case)

  @parameterized.named_parameters(
      (_reference_name(case), case) for case in _OTHER_CASES)
  @pytest.mark.slow
  def test_step_and_unroll_match_numpy_rest_of_product(self, case):
    self._step_and_unroll_match_numpy(case)

  def test_the_covering_cases_hold_every_pair(self):
    self.assertLess(len(_COVERING_CASES), len(_REFERENCE_CASES) // 4)
    for a, b in itertools.combinations(sorted(_REFERENCE_CASES[0]), 2):
      self.assertEqual(
          {(repr(c[a]), repr(c[b])) for c in _COVERING_CASES},
          {(repr(c[a]), repr(c[b])) for c in _REFERENCE_CASES}, msg=(a, b))

  def _step_and_unroll_match_numpy(self, case):
    config = dict(
        mem_slots=3, head_size=4, num_heads=2,
        num_blocks=case['num_blocks'], key_size=case['key_size'],
        gate_style=case['gate_style'],
        attention_mlp_layers=3 if case['num_blocks'] == 3 else 2,
        forget_bias=0.7, input_bias=-0.4,
        attention_scale=case['attention_scale'])
    matrix = case['matrix']

    def make_core():
      return rmc.RelationalMemory(**config, return_diagnostics=True)

    def step_and_unroll(x, memory, xs):
      """One step from `memory`, and an unroll over `xs` from the start."""
      core = make_core()
      step = core(x, memory, treat_input_as_matrix=matrix)
      unroll = hk.dynamic_unroll(
          functools.partial(core, treat_input_as_matrix=matrix), xs,
          core.initial_state(xs.shape[1]))
      return step, unroll

    rng = np.random.default_rng(1)
    xs = rng.normal(size=[3, 2, 3, 4]).astype(np.float32)  # [T, B, 3, 4]
    memory = rng.normal(size=[2, 3, 8]).astype(np.float32)  # [B, N, D]
    params = _random_params(step_and_unroll, xs[0], memory, xs)
    reference = functools.partial(
        numpy_step, params, mem_slots=3, head_size=4, num_heads=2,
        num_blocks=config['num_blocks'], key_size=config['key_size'],
        gate_style=config['gate_style'],
        attention_mlp_layers=config['attention_mlp_layers'],
        forget_bias=0.7, input_bias=-0.4,
        attention_scale=config['attention_scale'], matrix=matrix)
    apply = jax.jit(hk.without_apply_rng(hk.transform(step_and_unroll)).apply)
    results = jax.tree.map(np.asarray, apply(params, xs[0], memory, xs))
    (output, next_memory), (outputs, final) = results
    tolerance = dict(rtol=1e-5, atol=1e-5)

    # One step from an arbitrary memory, diagnostics included.
    np_output, np_memory, np_weights, np_i, np_f = reference(xs[0], memory)
    np.testing.assert_allclose(output.output, np_output, **tolerance)
    np.testing.assert_allclose(next_memory, np_memory, **tolerance)
    self.assertLen(output.attention_weights, config['num_blocks'])
    for weights, np_w in zip(output.attention_weights, np_weights):
      np.testing.assert_allclose(weights, np_w, **tolerance)
    if config['gate_style'] is None:
      self.assertIsNone(output.input_gate)
      self.assertIsNone(output.forget_gate)
    else:
      np.testing.assert_allclose(output.input_gate, np_i, **tolerance)
      np.testing.assert_allclose(output.forget_gate, np_f, **tolerance)

    # A 3-step unroll from the initial state.
    np_memory = np.stack([np.eye(3, 8)] * 2)
    for t in range(3):
      np_output, np_memory, _, _, _ = reference(xs[t], np_memory)
      np.testing.assert_allclose(outputs.output[t], np_output, **tolerance)
    np.testing.assert_allclose(final, np_memory, **tolerance)


def _unroll_fn(unroll, time_major, **config):
  """`hk.transform` of unrolling an RMC with `unroll`, without apply RNG."""
  def fn(xs):
    core = rmc.RelationalMemory(**config)
    batch_size = xs.shape[1] if time_major else xs.shape[0]
    return unroll(core, xs, core.initial_state(batch_size),
                  time_major=time_major)
  return hk.without_apply_rng(hk.transform(fn))


def _sequence(shape=(4, 2, 5)):
  """A fixed random float32 input sequence, time-major [T, B, d_in]."""
  return jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)


class HaikuIntegrationTest(chex.TestCase):
  """The core works wherever a Haiku core goes."""

  _CONFIG = dict(mem_slots=3, head_size=2, num_heads=2, num_blocks=2)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(True, False)
  def test_dynamic_unroll_equals_static_unroll(self, time_major):
    xs = _sequence()  # [T, B, 5]
    if not time_major:
      xs = jnp.swapaxes(xs, 0, 1)  # [B, T, 5]
    dynamic = _unroll_fn(hk.dynamic_unroll, time_major, **self._CONFIG)
    static = _unroll_fn(hk.static_unroll, time_major, **self._CONFIG)
    params = jax.jit(dynamic.init)(jax.random.key(0), xs)
    out_d, state_d = self.variant(dynamic.apply)(params, xs)
    out_s, state_s = self.variant(static.apply)(params, xs)
    chex.assert_shape(out_d, xs.shape[:2] + (3 * 4,))
    np.testing.assert_allclose(out_d, out_s, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state_d, state_s, rtol=1e-6, atol=1e-6)

  def test_time_major_equals_batch_major(self):
    xs = _sequence()
    time_major = _unroll_fn(hk.dynamic_unroll, True, **self._CONFIG)
    batch_major = _unroll_fn(hk.dynamic_unroll, False, **self._CONFIG)
    params = jax.jit(time_major.init)(jax.random.key(0), xs)
    out_t, state_t = jax.jit(time_major.apply)(params, xs)
    out_b, state_b = jax.jit(batch_major.apply)(params, jnp.swapaxes(xs, 0, 1))
    np.testing.assert_allclose(jnp.swapaxes(out_b, 0, 1), out_t, atol=1e-6)
    np.testing.assert_allclose(state_b, state_t, atol=1e-6)

  def test_reset_core(self):
    def forward(xs, should_reset):
      core = hk.ResetCore(rmc.RelationalMemory(**self._CONFIG))
      return hk.dynamic_unroll(
          core, (xs, should_reset), core.initial_state(xs.shape[1]))

    f = hk.without_apply_rng(hk.transform(forward))
    xs = _sequence()
    no_reset = jnp.zeros([4, 2], bool)
    params = jax.jit(f.init)(jax.random.key(0), xs, no_reset)
    apply = jax.jit(f.apply)
    outputs, _ = apply(params, xs, no_reset.at[2, 0].set(True))
    # Element 0 restarts from the initial state at t=2; element 1 does not.
    restarted, _ = apply(params, xs[2:], no_reset[2:])
    uninterrupted, _ = apply(params, xs, no_reset)
    np.testing.assert_allclose(outputs[2:, 0], restarted[:, 0], atol=1e-6)
    np.testing.assert_allclose(outputs[:, 1], uninterrupted[:, 1], atol=1e-6)
    np.testing.assert_allclose(outputs[:2], uninterrupted[:2], atol=1e-6)
    self.assertFalse(np.allclose(outputs[2, 0], uninterrupted[2, 0], atol=1e-3))

  def test_deep_rnn(self):
    def forward(xs):
      core = hk.DeepRNN([
          rmc.RelationalMemory(mem_slots=2, head_size=3, name='lower'),
          jax.nn.relu,
          rmc.RelationalMemory(mem_slots=4, head_size=2, num_heads=2,
                               name='upper'),
      ])
      return hk.dynamic_unroll(core, xs, core.initial_state(xs.shape[1]))

    f = hk.without_apply_rng(hk.transform(forward))
    xs = jnp.ones([3, 2, 5])
    params = jax.jit(f.init)(jax.random.key(0), xs)
    outputs, (lower_state, upper_state) = jax.jit(f.apply)(params, xs)
    chex.assert_shape(outputs, (3, 2, 4 * 4))
    chex.assert_shape(lower_state, (2, 2, 3))
    chex.assert_shape(upper_state, (2, 4, 4))
    # The upper core reads the lower core's flat output, [B, 2 * 3].
    chex.assert_shape(params['upper/input_projection']['w'], (6, 4))

  def test_vmap_of_unbatched_core_equals_batched(self):
    def forward(x, memory):
      return rmc.RelationalMemory(**self._CONFIG)(x, memory)

    rng = np.random.default_rng(0)
    x = rng.normal(size=[3, 5]).astype(np.float32)  # [B, d_in]
    memory = rng.normal(size=[3, 3, 4]).astype(np.float32)  # [B, N, D]
    f = hk.without_apply_rng(hk.transform(forward))
    params = _random_params(forward, x, memory)
    batched = jax.jit(f.apply)(params, x, memory)
    vmapped = jax.jit(jax.vmap(f.apply, in_axes=(None, 0, 0)))(
        params, x, memory)
    chex.assert_trees_all_close(vmapped, batched, atol=1e-6)
    # Unbatched initial state and step shapes.
    unbatched = hk.testing.transform_and_run(
        lambda: rmc.RelationalMemory(**self._CONFIG).initial_state(None))()
    chex.assert_shape(unbatched, (3, 4))

  @pytest.mark.slow
  def test_check_grads(self):
    def loss(xs):
      core = rmc.RelationalMemory(mem_slots=2, head_size=2, num_heads=2,
                                  key_size=3)
      state = core.initial_state(2, dtype=xs.dtype)
      outputs, _ = hk.dynamic_unroll(core, xs, state)
      return jnp.mean(outputs ** 2)

    f = hk.without_apply_rng(hk.transform(loss))
    xs = np.random.default_rng(0).normal(size=[2, 2, 3])
    with jax.enable_x64(True):
      xs = jnp.asarray(xs, jnp.float64)
      params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64),
                            _random_params(loss, xs))
      check_grads(jax.jit(f.apply), (params, xs), order=1,
                  modes=('fwd', 'rev'), eps=1e-4)


class ParameterTest(parameterized.TestCase):
  """The parameter tree: names, shapes, count and sharing."""

  @parameterized.named_parameters(
      ('unit', dict(gate_style='unit'), 1, 7),
      ('memory_3_blocks', dict(gate_style='memory', num_blocks=3), 1, 7),
      ('none_key_size', dict(gate_style=None, key_size=5), 1, 7),
      ('unit_matrix', dict(gate_style='unit', attention_mlp_layers=4), 3, 5),
      ('trainable', dict(trainable_initial_state=True), 1, 7),
  )
  def test_parameter_count_formula(self, kwargs, num_rows, row_size):
    config = dict(mem_slots=3, head_size=4, num_heads=2) | kwargs
    matrix = num_rows > 1

    def forward(x):
      core = rmc.RelationalMemory(**config)
      return core(x, core.initial_state(2), treat_input_as_matrix=matrix)

    shape = [2, num_rows, row_size] if matrix else [2, row_size]
    params = jax.eval_shape(hk.transform(forward).init, jax.random.key(0),
                            jnp.zeros(shape))
    # sonnet_rmc.md section 3.6, written out here independently.
    d = 8
    k = config.get('key_size') or 4
    f = 2 * (2 * k + 4)
    blocks = config.get('num_blocks', 1)
    layers = config.get('attention_mlp_layers', 2)
    g = {'unit': d, 'memory': 1, None: 0}[config.get('gate_style', 'unit')]
    expected = (row_size * d + d + blocks * (d * f + f + 2 * f + 4 * d)
                + layers * (d * d + d))
    if g:
      expected += (num_rows * d) * 2 * g + 2 * g + d * 2 * g + 2 * g
    if config.get('trainable_initial_state'):
      expected += 3 * d
    self.assertEqual(hk.data_structures.tree_size(params), expected)

  def test_parameter_names_and_shapes(self):
    # N=3, v=4, H=2 (D=8), k=5 (F=2*(10+4)=28), 2 blocks, 3 MLP layers, input 7.
    def forward(x):
      core = rmc.RelationalMemory(
          mem_slots=3, head_size=4, num_heads=2, key_size=5, num_blocks=2,
          attention_mlp_layers=3)
      return core(x, core.initial_state(2))

    params = jax.eval_shape(hk.transform(forward).init, jax.random.key(0),
                            jnp.zeros([2, 7]))
    shapes = {f'{module}/{name}': p.shape
              for module, values in params.items()
              for name, p in values.items()}
    expected = {
        'relational_memory/input_projection/w': (7, 8),
        'relational_memory/input_projection/b': (8,),
        'relational_memory/gates_from_input/w': (8, 16),
        'relational_memory/gates_from_input/b': (16,),
        'relational_memory/gates_from_memory/w': (8, 16),
        'relational_memory/gates_from_memory/b': (16,),
    }
    for layer in range(3):
      expected[f'relational_memory/attention_mlp/~/linear_{layer}/w'] = (8, 8)
      expected[f'relational_memory/attention_mlp/~/linear_{layer}/b'] = (8,)
    for block in range(2):
      prefix = 'relational_memory/'
      expected[f'{prefix}qkv_projection_{block}/w'] = (8, 28)
      expected[f'{prefix}qkv_projection_{block}/b'] = (28,)
      for norm, size in (('qkv', 28), ('attention', 8), ('mlp', 8)):
        expected[f'{prefix}{norm}_layer_norm_{block}/scale'] = (size,)
        expected[f'{prefix}{norm}_layer_norm_{block}/offset'] = (size,)
    self.assertEqual(shapes, expected)

  def test_repeated_calls_reuse_parameters(self):
    def encode(xs):
      core = rmc.RelationalMemory(mem_slots=2, head_size=4, num_blocks=2)
      _, state = hk.dynamic_unroll(core, xs, core.initial_state(2))
      return state

    def encode_decode(xs):
      # One core serves as encoder and decoder, as in Sonnet's LTE example.
      core = rmc.RelationalMemory(mem_slots=2, head_size=4, num_blocks=2)
      _, state = hk.dynamic_unroll(core, xs, core.initial_state(2))
      _, state = core(xs[0], state)
      outputs, _ = hk.dynamic_unroll(core, jnp.zeros_like(xs), state)
      return outputs

    xs = jnp.ones([3, 2, 5])
    once = jax.eval_shape(hk.transform(encode).init, jax.random.key(0), xs)
    twice = jax.eval_shape(hk.transform(encode_decode).init,
                           jax.random.key(0), xs)
    self.assertEqual(jax.tree.structure(once), jax.tree.structure(twice))
    chex.assert_trees_all_equal_shapes(once, twice)
    # One MLP shared by both blocks; one qkv projection per block.
    self.assertEqual(
        sorted(name for name in once if 'linear' in name or 'qkv_proj' in name),
        ['relational_memory/attention_mlp/~/linear_0',
         'relational_memory/attention_mlp/~/linear_1',
         'relational_memory/qkv_projection_0',
         'relational_memory/qkv_projection_1'])


def _assert_bfloat16_close(actual, expected):
  """bfloat16 vs float32 tolerance on O(1) outputs of a few steps.

  Measured on the 4-step unroll below over 5 seeds: max |difference|
  0.016 to 0.054, mean 0.0025 to 0.0047 (bfloat16 keeps 8 significant bits).
  """
  difference = np.abs(np.asarray(actual, np.float32) - np.asarray(expected))
  np.testing.assert_array_less(difference.max(), 0.1)
  np.testing.assert_array_less(difference.mean(), 0.01)


class DtypeTest(parameterized.TestCase):
  """float32 and bfloat16 inputs, bfloat16 state and mixed precision."""

  _CONFIG = dict(mem_slots=3, head_size=4, num_heads=2)

  def _xs(self):
    return _sequence().astype(jnp.bfloat16)  # Exactly representable values.

  def _unroll(self, state_dtype, fast=False):
    def fn(xs):
      core = rmc.RelationalMemory(**self._CONFIG)
      state = core.initial_state(xs.shape[1], dtype=state_dtype)
      if fast:
        return core.unroll(xs, state)
      return hk.dynamic_unroll(core, xs, state)
    return hk.without_apply_rng(hk.transform(fn))

  def test_bfloat16_inputs_with_float32_state_compute_in_float32(self):
    f = self._unroll(jnp.float32)
    xs = self._xs()
    params = jax.jit(f.init)(jax.random.key(0), xs.astype(jnp.float32))
    out_bf16, state_bf16 = jax.jit(f.apply)(params, xs)
    out_f32, state_f32 = jax.jit(f.apply)(params, xs.astype(jnp.float32))
    self.assertEqual(out_bf16.dtype, jnp.float32)
    self.assertEqual(state_bf16.dtype, jnp.float32)
    np.testing.assert_array_equal(out_bf16, out_f32)
    np.testing.assert_array_equal(state_bf16, state_f32)

  def test_bfloat16_state_computes_in_bfloat16(self):
    f = self._unroll(jnp.bfloat16)
    xs = self._xs()
    params = jax.jit(f.init)(jax.random.key(0), xs)
    self.assertEqual({p.dtype for p in jax.tree.leaves(params)},
                     {jnp.dtype(jnp.bfloat16)})
    outputs, state = jax.jit(f.apply)(params, xs)
    self.assertEqual(outputs.dtype, jnp.bfloat16)
    self.assertEqual(state.dtype, jnp.bfloat16)
    # Agreement with float32 compute from the same (bfloat16-valued) params.
    f32 = self._unroll(jnp.float32)
    params_f32 = jax.tree.map(lambda p: p.astype(jnp.float32), params)
    outputs_f32, _ = jax.jit(f32.apply)(params_f32, xs.astype(jnp.float32))
    _assert_bfloat16_close(outputs, outputs_f32)

  @parameterized.parameters(False, True)
  def test_mixed_precision_policy(self, fast):
    xs = self._xs().astype(jnp.float32)
    f32 = self._unroll(jnp.float32)
    params = jax.jit(f32.init)(jax.random.key(0), xs)
    outputs_f32, _ = jax.jit(f32.apply)(params, xs)

    policy = jmp.get_policy('params=float32,compute=bfloat16,output=float32')
    hk.mixed_precision.set_policy(rmc.RelationalMemory, policy)
    self.addCleanup(hk.mixed_precision.clear_policy, rmc.RelationalMemory)
    mixed = self._unroll(jnp.float32, fast=fast)
    mixed_params = jax.jit(mixed.init)(jax.random.key(0), xs)
    self.assertEqual({p.dtype for p in jax.tree.leaves(mixed_params)},
                     {jnp.dtype(jnp.float32)})
    outputs, state = jax.jit(mixed.apply)(params, xs)
    self.assertEqual(outputs.dtype, jnp.float32)
    self.assertEqual(state.dtype, jnp.float32)
    # Computed in bfloat16: close to, but not the same as, float32.
    _assert_bfloat16_close(outputs, outputs_f32)
    self.assertFalse(np.array_equal(outputs, outputs_f32))


class FastUnrollTest(parameterized.TestCase):
  """`RelationalMemory.unroll` equals `hk.dynamic_unroll`, gradients too."""

  def _outputs_and_grads(self, config, xs, *, fast, time_major=True,
                         matrix=False, trainable=False, lengths=None):
    """Outputs, final state and gradients of a loss of both w.r.t. all."""
    batch_size = xs.shape[1] if time_major else xs.shape[0]

    def forward(xs, memory):
      core = rmc.RelationalMemory(**config)
      initial = core.initial_state(batch_size, trainable=trainable) + memory
      if fast:
        return core.unroll(xs, initial, time_major=time_major,
                           treat_input_as_matrix=matrix, lengths=lengths)
      step = functools.partial(core, treat_input_as_matrix=matrix)
      if lengths is not None:
        return fast_unroll.masked_dynamic_unroll(step, xs, lengths, initial,
                                                 time_major=time_major)
      return hk.dynamic_unroll(step, xs, initial, time_major=time_major)

    f = hk.without_apply_rng(hk.transform(forward))
    memory = 0.3 * _sequence((batch_size, config['mem_slots'],
                              config['head_size'] * config['num_heads']))
    params = _random_params(forward, xs, memory)

    def loss(params, xs, memory):
      outputs, final = f.apply(params, xs, memory)
      return jnp.mean(jnp.square(outputs)) + jnp.mean(jnp.sin(final))

    result = jax.jit(f.apply)(params, xs, memory)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, xs, memory)
    return result, grads

  def _assert_same(self, config, xs, **kwargs):
    fast = self._outputs_and_grads(config, xs, fast=True, **kwargs)
    slow = self._outputs_and_grads(config, xs, fast=False, **kwargs)
    chex.assert_trees_all_equal_shapes_and_dtypes(fast, slow)
    chex.assert_trees_all_close(fast, slow, rtol=1e-5, atol=1e-6)
    return fast

  # Each gate style, and 3 blocks (the shared MLP used three times a step):
  # the memory gates here, the others in the full tier (make test-all).
  def test_equals_dynamic_unroll(self):
    self._equals_dynamic_unroll('memory', 1)

  @parameterized.parameters(('unit', 3), (None, 1))
  @pytest.mark.slow
  def test_equals_dynamic_unroll_other_gates(self, gate_style, num_blocks):
    self._equals_dynamic_unroll(gate_style, num_blocks)

  def _equals_dynamic_unroll(self, gate_style, num_blocks):
    config = dict(mem_slots=3, head_size=4, num_heads=2, key_size=3,
                  num_blocks=num_blocks, gate_style=gate_style,
                  attention_mlp_layers=3)
    (outputs, _), grads = self._assert_same(config, _sequence((5, 2, 7)))
    chex.assert_shape(outputs, (5, 2, 3 * 8))
    # Every parameter gets a gradient.
    for name, grad in jax.tree_util.tree_leaves_with_path(grads[0]):
      self.assertGreater(float(jnp.max(jnp.abs(grad))), 0.0, msg=name)

  # Per-sample lengths in the slow tier; the fast tier checks them in
  # models_test (FastSeq2SeqTest) and nnx_test.
  @pytest.mark.slow
  def test_lengths_equal_masked_dynamic_unroll(self):
    self._check_lengths(time_major=False)

  @pytest.mark.slow
  def test_lengths_equal_masked_dynamic_unroll_time_major(self):
    self._check_lengths(time_major=True)

  def _check_lengths(self, time_major):
    # Lengths 0 (all padding), 2, 5 (none) and 3 of 5 steps.
    lengths = jnp.array([0, 2, 5, 3])
    config = dict(mem_slots=3, head_size=4, num_heads=2, gate_style='memory')
    xs = _sequence((5, 4, 7) if time_major else (4, 5, 7))
    (outputs, final), grads = self._assert_same(
        config, xs, time_major=time_major, lengths=lengths)
    if not time_major:
      outputs = jnp.swapaxes(outputs, 0, 1)  # [T, B, N * D]
    padding = jnp.arange(5)[:, None] >= lengths[None, :]  # [T, B]
    np.testing.assert_array_equal(outputs[padding], 0.0)
    self.assertTrue(np.all(np.abs(outputs[~padding]).max(-1) > 0))
    # A sample of length 0 keeps its initial memory and gets no gradient
    # from its inputs; the padding of the others gets none either.
    memory = 0.3 * _sequence((4, 3, 8))
    np.testing.assert_allclose(final[0], jnp.eye(3, 8) + memory[0],
                               atol=1e-6)
    d_xs = grads[1] if time_major else jnp.swapaxes(grads[1], 0, 1)
    np.testing.assert_array_equal(d_xs[padding], 0.0)
    self.assertTrue(np.all(np.abs(d_xs[~padding]).max(-1) > 0))

  def test_lengths_must_be_integers_per_sample(self):
    def forward(xs, lengths):
      core = rmc.RelationalMemory(mem_slots=2, head_size=3)
      return core.unroll(xs, core.initial_state(2), lengths=lengths)

    f = hk.transform(forward)
    xs = jnp.zeros([4, 2, 5])
    for lengths in (jnp.array([1, 2, 3]), jnp.array([1.0, 2.0])):
      with self.assertRaisesRegex(ValueError, r'lengths must be integers'):
        f.init(jax.random.key(0), xs, lengths)

  def test_layouts_and_learned_initial_state(self):
    self._layouts_and_learned_initial_state(True, True)

  # Batch-major vector inputs in the full tier (make test-all).
  @pytest.mark.slow
  def test_layouts_and_learned_initial_state_batch_major(self):
    self._layouts_and_learned_initial_state(False, False)

  def _layouts_and_learned_initial_state(self, time_major, matrix):
    config = dict(mem_slots=2, head_size=3, num_heads=2)
    xs = _sequence((4, 2, 3, 5) if matrix else (4, 2, 5))
    if not time_major:
      xs = jnp.swapaxes(xs, 0, 1)
    self._assert_same(config, xs, time_major=time_major, matrix=matrix,
                      trainable=True)

  @pytest.mark.slow
  def test_bfloat16_compute_is_close_to_float32(self):
    config = dict(mem_slots=3, head_size=8, num_heads=2)
    xs = _sequence((6, 4, 5))
    (out32, final32), grads32 = self._outputs_and_grads(config, xs, fast=True)
    for fast in (True, False):
      (out16, final16), grads16 = self._outputs_and_grads(
          config | dict(compute_dtype=jnp.bfloat16), xs, fast=fast)
      self.assertEqual(out16.dtype, jnp.float32)
      self.assertEqual(final16.dtype, jnp.float32)
      # bfloat16 keeps 8 bits of mantissa: a relative error of 2^-8 per
      # operand; after a few products and six steps, 3% of the largest value.
      for bf16, f32 in zip(jax.tree.leaves((out16, final16, grads16)),
                           jax.tree.leaves((out32, final32, grads32))):
        scale = float(jnp.max(jnp.abs(f32)))
        np.testing.assert_allclose(bf16, f32, atol=0.03 * scale, rtol=0)
      self.assertFalse(np.array_equal(out16, out32))

  def test_parameters_are_those_of_the_step(self):
    def fast(xs):
      core = rmc.RelationalMemory(mem_slots=2, head_size=3, num_blocks=2)
      return core.unroll(xs, core.initial_state(xs.shape[1]))

    def slow(xs):
      core = rmc.RelationalMemory(mem_slots=2, head_size=3, num_blocks=2)
      return hk.dynamic_unroll(core, xs, core.initial_state(xs.shape[1]))

    xs = _sequence()
    init = lambda fn: jax.jit(hk.transform(fn).init)(jax.random.key(3), xs)
    chex.assert_trees_all_equal(init(fast), init(slow))

  def test_diagnostics_fall_back_to_dynamic_unroll(self):
    config = dict(mem_slots=2, head_size=3, num_heads=2,
                  return_diagnostics=True)
    def forward(xs):
      core = rmc.RelationalMemory(**config)
      return core.unroll(xs, core.initial_state(xs.shape[1]))
    xs = _sequence()
    f = hk.without_apply_rng(hk.transform(forward))
    outputs, _ = jax.jit(f.apply)(jax.jit(f.init)(jax.random.key(0), xs), xs)
    chex.assert_shape(outputs.attention_weights[0], (4, 2, 2, 3, 3))

  @parameterized.named_parameters(
      ('rank', (4, 2), (2, 2, 3), 'rank >= 3'),
      ('batch', (4, 3, 5), (2, 2, 3), 'same batch size'),
      ('unbatched_state', (4, 2, 5), (2, 3), 'initial_state must have shape'),
  )
  @hk.testing.transform_and_run
  def test_bad_shapes(self, input_shape, state_shape, regex):
    core = rmc.RelationalMemory(mem_slots=2, head_size=3)
    with self.assertRaisesRegex(ValueError, regex):
      core.unroll(jnp.zeros(input_shape), jnp.zeros(state_shape))


class DiagnosticsTest(parameterized.TestCase):

  # Batch-major in the fast tier, time-major in the slow.
  @parameterized.parameters('unit', 'memory', None)
  def test_unroll_stacks_diagnostics(self, gate_style):
    self._unroll_stacks_diagnostics(False, gate_style)

  @parameterized.parameters('unit', 'memory', None)
  @pytest.mark.slow
  def test_unroll_stacks_diagnostics_time_major(self, gate_style):
    self._unroll_stacks_diagnostics(True, gate_style)

  def _unroll_stacks_diagnostics(self, time_major, gate_style):
    config = dict(mem_slots=3, head_size=2, num_heads=2, num_blocks=2,
                  gate_style=gate_style)

    xs = jnp.ones([4, 2, 5] if time_major else [2, 4, 5])
    plain = _unroll_fn(hk.dynamic_unroll, time_major, **config)
    diagnosed = _unroll_fn(hk.dynamic_unroll, time_major, **config,
                           return_diagnostics=True)
    params = jax.jit(plain.init)(jax.random.key(0), xs)
    flat, _ = jax.jit(plain.apply)(params, xs)
    diagnostics, _ = jax.jit(diagnosed.apply)(params, xs)
    lead = xs.shape[:2]  # [T, B] or [B, T].
    np.testing.assert_array_equal(diagnostics.output, flat)
    self.assertLen(diagnostics.attention_weights, 2)
    for weights in diagnostics.attention_weights:
      chex.assert_shape(weights, lead + (2, 4, 4))  # [.., H, R, R], R = 3 + 1.
      np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    if gate_style is None:
      self.assertIsNone(diagnostics.input_gate)
      self.assertIsNone(diagnostics.forget_gate)
    else:
      g = 4 if gate_style == 'unit' else 1
      chex.assert_shape(diagnostics.input_gate, lead + (3, g))
      chex.assert_shape(diagnostics.forget_gate, lead + (3, g))


if __name__ == '__main__':
  absltest.main()
