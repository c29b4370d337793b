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
"""Tests for rmc/nnx/: the Flax NNX cells, equal to the Haiku cores."""

import collections
import contextlib
import io
import os
import re
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import rmc
import rmc.nnx

import binary_testing
from benchmarks import rmc_step
from experiments import nth_farthest
from rmc import dnc

jax.config.update('jax_numpy_rank_promotion', 'raise')

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The Haiku core's test configurations: gate styles, blocks, key sizes,
# attention scales, matrix inputs, a learned initial memory.
_CONFIGS = (
    ('unit', dict(mem_slots=3, head_size=4, num_heads=2)),
    ('memory_3_blocks', dict(mem_slots=2, head_size=4, num_heads=2,
                             num_blocks=3, gate_style='memory')),
    ('no_gate_key_size', dict(mem_slots=4, head_size=3, num_heads=1,
                              gate_style=None, key_size=5,
                              attention_mlp_layers=3)),
    ('qkv_scale_biases', dict(mem_slots=2, head_size=6, num_heads=3,
                              attention_scale='qkv_size', forget_bias=2.0,
                              input_bias=-1.0)),
    ('matrix_inputs', dict(mem_slots=3, head_size=4, num_heads=2,
                           input_rows=3)),
    ('trainable_initial_memory', dict(mem_slots=5, head_size=2, num_heads=2,
                                      trainable_initial_state=True)),
)
_T, _B, _D_IN = 5, 3, 7


def _inputs(kwargs, seed=0):
  rows = kwargs.get('input_rows')
  shape = (_B, _T, rows, _D_IN) if rows else (_B, _T, _D_IN)
  return jax.random.normal(jax.random.key(seed), shape)  # Batch-major.


def _haiku(kwargs):
  """The Haiku core's transformed unroll, and its parameters."""
  inputs = _inputs(kwargs)
  kwargs = dict(kwargs)
  matrix = kwargs.pop('input_rows', None) is not None
  trainable = kwargs.get('trainable_initial_state', False)

  def unroll(inputs, lengths=None, fast=True):  # [B, T, ...]
    core = rmc.RelationalMemory(**kwargs)
    memory = core.initial_state(inputs.shape[0], trainable=trainable)
    if fast:
      return core.unroll(inputs, memory, time_major=False, lengths=lengths,
                         treat_input_as_matrix=matrix)
    return hk.dynamic_unroll(
        lambda x, m: core(x, m, treat_input_as_matrix=matrix), inputs,
        memory, time_major=False)

  model = hk.without_apply_rng(hk.transform(unroll))
  params = model.init(jax.random.key(1), inputs)
  return model, params


def _cell(kwargs, params):
  cell = rmc.nnx.RelationalMemory(_D_IN, **kwargs, rngs=nnx.Rngs(7))
  rmc.nnx.from_haiku(cell, params)
  return cell


def _assert_close(test, got, expected):
  for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected),
                  strict=True):
    scale = max(float(np.max(np.abs(e))), 1e-30)
    np.testing.assert_allclose(g, e, rtol=0, atol=1e-6 * scale)
  test.assertEqual(jax.tree.structure(got), jax.tree.structure(expected))


class ParityTest(parameterized.TestCase):

  # The outputs: vector and matrix inputs and a learned memory in the fast
  # tier, every configuration in the slow.
  @parameterized.named_parameters(_CONFIGS[0], *_CONFIGS[4:])
  def test_nnx_rnn_equals_the_haiku_core(self, kwargs):
    self._check_outputs(kwargs)

  @parameterized.named_parameters(*_CONFIGS[1:4])
  @pytest.mark.slow
  def test_nnx_rnn_equals_the_haiku_core_slow(self, kwargs):
    self._check_outputs(kwargs)

  def _check_outputs(self, kwargs):
    model, params = _haiku(kwargs)
    inputs = _inputs(kwargs)
    (outputs, final) = model.apply(params, inputs, fast=False)
    cell = _cell(kwargs, params)
    carry, got = nnx.RNN(cell, return_carry=True)(inputs)
    _assert_close(self, (got, carry), (outputs, final))

  # Gradients: one configuration in the fast tier, every one in the slow.
  @parameterized.named_parameters(*_CONFIGS[:1])
  def test_gradients_equal_the_haiku_cores(self, kwargs):
    self._check_gradients(kwargs)

  @parameterized.named_parameters(*_CONFIGS[1:])
  @pytest.mark.slow
  def test_gradients_equal_the_haiku_cores_slow(self, kwargs):
    self._check_gradients(kwargs)

  def _check_gradients(self, kwargs):
    model, params = _haiku(kwargs)
    inputs = _inputs(kwargs)
    lengths = jnp.array([_T, 2, 4])

    def haiku_loss(params):
      outputs, final = model.apply(params, inputs, lengths)
      return jnp.sum(outputs ** 2) + jnp.sum(jnp.sin(final))

    def nnx_loss(cell):
      final, outputs = cell.unroll(inputs, seq_lengths=lengths)
      return jnp.sum(outputs ** 2) + jnp.sum(jnp.sin(final))

    expected = jax.grad(haiku_loss)(params)
    cell = _cell(kwargs, params)
    self.assertAlmostEqual(float(nnx_loss(cell)), float(haiku_loss(params)),
                           delta=1e-6 * abs(float(haiku_loss(params))))
    grads = nnx.grad(nnx_loss)(cell)
    converted = rmc.nnx.to_haiku(nnx.merge(nnx.graphdef(cell), grads))
    _assert_close(self, converted, expected)

  def test_fast_unroll_equals_the_step_by_step_one(self):
    kwargs = dict(_CONFIGS[1][1])
    model, params = _haiku(kwargs)
    cell = _cell(kwargs, params)
    inputs = _inputs(kwargs)
    final, outputs = cell.unroll(jnp.swapaxes(inputs, 0, 1), time_major=True)
    carry, stepped = nnx.RNN(cell, return_carry=True, time_major=True)(
        jnp.swapaxes(inputs, 0, 1))
    _assert_close(self, (outputs, final), (stepped, carry))

  def test_per_sample_lengths(self):
    kwargs = dict(_CONFIGS[0][1])
    model, params = _haiku(kwargs)
    cell = _cell(kwargs, params)
    inputs, lengths = _inputs(kwargs), jnp.array([2, _T, 3])
    outputs, final = model.apply(params, inputs, lengths)
    got_final, got = cell.unroll(inputs, seq_lengths=lengths)
    _assert_close(self, (got, got_final), (outputs, final))
    # nnx.RNN: the carry after each sample's own last step.
    carry, stepped = nnx.RNN(cell, return_carry=True)(inputs,
                                                      seq_lengths=lengths)
    _assert_close(self, carry, final)
    for b, length in enumerate(lengths):
      _assert_close(self, stepped[b, :length], outputs[b, :length])

  def test_compute_dtype_bfloat16(self):
    kwargs = dict(_CONFIGS[0][1], compute_dtype=jnp.bfloat16)
    model, params = _haiku(kwargs)
    cell = _cell(kwargs, params)
    inputs = _inputs(kwargs)
    outputs, final = model.apply(params, inputs)
    got_final, got = cell.unroll(inputs)
    self.assertEqual(got.dtype, jnp.float32)
    _assert_close(self, (got, got_final), (outputs, final))

  def test_the_core_of_a_trained_run_loads(self):
    workdir, _ = binary_testing.shared_run(
        nth_farthest, '--preset=smoke', '--core=rmc')
    run = rmc.load_run(workdir)
    config = run.hyperparameters.rmc
    cell = rmc.nnx.RelationalMemory(
        run.core_input_size, config.mem_slots, config.head_size,
        config.num_heads, rngs=nnx.Rngs(0))
    rmc.nnx.from_haiku(cell, run.core_params)
    inputs = jax.random.normal(jax.random.key(2), (4, 3, run.core_input_size))
    outputs, final = run.core.apply(run.core_params, inputs)  # Time-major.
    got_final, got = cell.unroll(inputs, time_major=True)
    _assert_close(self, (got, got_final), (outputs, final))
    _assert_close(self, rmc.nnx.to_haiku(cell), run.core_params)


class SpeedTest(absltest.TestCase):

  @pytest.mark.slow
  def test_the_fast_unroll_compiles_to_the_haiku_cores_program(self):
    # benchmarks.rmc_step's `small` forward+backward: the NNX cell's unroll
    # compiles to as many operations of each kind as the Haiku core's, so
    # it runs as fast (docs/benchmarks.md has the timings side by side).
    config = rmc_step.CONFIGS['small']
    counts = []
    for implementation in ('unroll', 'nnx_unroll'):
      params, inputs_fn, _, forward_backward, _ = rmc_step._functions(  # pylint: disable=protected-access
          config, implementation, 'float32')
      text = forward_backward.lower(
          params, inputs_fn(config.num_steps)).compile().as_text()
      counts.append(collections.Counter(
          re.findall(r'= \S+ (\w[\w-]*)\(', text)))
    self.assertGreater(sum(counts[0].values()), 1000)
    self.assertEqual(counts[1], counts[0])


class CellTest(parameterized.TestCase):

  def _cell(self, **kwargs):
    return rmc.nnx.RelationalMemory(
        _D_IN, mem_slots=3, head_size=4, num_heads=2, rngs=nnx.Rngs(0),
        **kwargs)

  def test_parameters_are_the_haiku_cores(self):
    _, params = _haiku(dict(mem_slots=3, head_size=4, num_heads=2,
                            num_blocks=2))
    cell = rmc.nnx.RelationalMemory(_D_IN, 3, 4, 2, num_blocks=2,
                                    rngs=nnx.Rngs(0))
    converted = rmc.nnx.to_haiku(cell)
    self.assertEqual(jax.tree.map(jnp.shape, converted),
                     jax.tree.map(jnp.shape, params))
    # The same initial distributions: hk.Linear's truncated normal of
    # stddev 1/sqrt(fan_in), zero biases, unit LayerNorm scales.
    big = rmc.nnx.RelationalMemory(400, 3, 64, 2, rngs=nnx.Rngs(0))
    w = big.weights['input_projection/w'][...]
    self.assertAlmostEqual(float(jnp.std(w)), 1 / 20, delta=0.002)
    self.assertLessEqual(float(jnp.max(jnp.abs(w))), 2 / 20 * 1.14 + 1e-6)
    np.testing.assert_array_equal(big.weights['input_projection/b'][...], 0)
    np.testing.assert_array_equal(big.weights['qkv_layer_norm_0/scale'][...], 1)

  def test_the_nnx_cell_contract(self):
    cell = self._cell()
    self.assertIsInstance(cell, nnx.RNNCellBase)
    self.assertEqual(cell.num_feature_axes, 1)
    carry = cell.initialize_carry((2, 5, _D_IN))  # Two batch axes.
    self.assertEqual(carry.shape, (2, 5, 3, 8))
    np.testing.assert_array_equal(carry[1, 4], jnp.eye(3, 8))
    carry, output = cell(carry, jnp.ones((2, 5, _D_IN)))
    self.assertEqual((carry.shape, output.shape), ((2, 5, 3, 8), (2, 5, 24)))
    unbatched, out = cell(cell.initialize_carry((_D_IN,)), jnp.ones(_D_IN))
    np.testing.assert_allclose(unbatched, carry[0, 0], atol=1e-6)
    self.assertEqual(out.shape, (24,))
    matrix = self._cell(input_rows=3)
    self.assertEqual(matrix.num_feature_axes, 2)
    self.assertEqual(matrix.initialize_carry((4, 3, _D_IN)).shape, (4, 3, 8))

  def test_rnn_layouts_reverse_and_bidirectional(self):
    cell = self._cell()
    inputs = jax.random.normal(jax.random.key(0), (_B, _T, _D_IN))
    lengths = jnp.array([_T, 2, 4])
    batch_major = nnx.RNN(cell)(inputs)
    time_major = nnx.RNN(cell, time_major=True)(jnp.swapaxes(inputs, 0, 1))
    _assert_close(self, jnp.swapaxes(time_major, 0, 1), batch_major)
    reverse = nnx.RNN(cell, reverse=True, keep_order=True)(
        inputs, seq_lengths=lengths)
    # Each sample's valid steps, reversed: the last valid step read first.
    flipped = nnx.RNN(cell)(
        nnx.nn.recurrent.flip_sequences(inputs, lengths, 1, False))
    for b, length in enumerate(lengths):
      _assert_close(self, reverse[b, :length],
                    jnp.flip(flipped[b, :length], axis=0))
    both = nnx.Bidirectional(nnx.RNN(cell), nnx.RNN(self._cell(),
                                                   reverse=True))(inputs)
    self.assertEqual(both.shape, (_B, _T, 48))

  def test_jit_grad_vmap_scan_and_an_optimizer(self):
    cell = self._cell()
    inputs = jax.random.normal(jax.random.key(0), (_B, _T, _D_IN))
    targets = jax.random.normal(jax.random.key(1), (_B, 24))

    def loss_fn(cell, inputs, targets):
      _, outputs = cell.unroll(inputs)
      return jnp.mean((outputs[:, -1] - targets) ** 2)

    optimizer = nnx.Optimizer(cell, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def train_step(cell, optimizer, inputs, targets):
      loss, grads = nnx.value_and_grad(loss_fn)(cell, inputs, targets)
      optimizer.update(cell, grads)
      return loss

    losses = [float(train_step(cell, optimizer, inputs, targets))
              for _ in range(30)]
    self.assertLess(losses[-1], 0.7 * losses[0])
    # vmap over samples without batch axes equals the batched step.
    carry = cell.initialize_carry((_B, _D_IN))
    batched, _ = cell(carry, inputs[:, 0])
    mapped, _ = nnx.vmap(lambda c, m, x: c(m, x), in_axes=(None, 0, 0))(
        cell, carry, inputs[:, 0])
    _assert_close(self, mapped, batched)

    # nnx.scan over time with the cell as a broadcast argument.
    @nnx.scan(in_axes=(None, nnx.Carry, 1), out_axes=(nnx.Carry, 1))
    def scan(cell, memory, x):
      return cell(memory, x)

    final, outputs = scan(cell, carry, inputs)
    expected_final, expected = cell.unroll(inputs)
    _assert_close(self, (outputs, final), (expected, expected_final))

  def test_diagnostics(self):
    cell = self._cell(return_diagnostics=True, num_blocks=2)
    carry = cell.initialize_carry((_B, _D_IN))
    _, output = cell(carry, jnp.ones((_B, _D_IN)))
    self.assertIsInstance(output, rmc.RelationalMemoryOutput)
    self.assertLen(output.attention_weights, 2)
    self.assertEqual(output.attention_weights[0].shape, (_B, 2, 4, 4))
    self.assertEqual(output.input_gate.shape, (_B, 3, 8))
    with self.assertRaisesRegex(ValueError, 'no diagnostics'):
      cell.unroll(jnp.ones((_B, _T, _D_IN)))

  @parameterized.parameters(
      (dict(mem_slots=0), 'mem_slots must be an integer >= 1'),
      (dict(gate_style='row'), 'gate_style must be one of'),
      (dict(num_blocks=0), 'num_blocks must be >= 1'),
      (dict(attention_scale='x'), 'attention_scale must be one of'),
      (dict(input_rows=0), 'input_rows must be an integer >= 1'),
  )
  def test_the_haiku_cores_checks(self, kwargs, message):
    arguments = dict(mem_slots=3, head_size=4) | kwargs
    with self.assertRaisesRegex(ValueError, message):
      rmc.nnx.RelationalMemory(_D_IN, **arguments, rngs=nnx.Rngs(0))
    if 'input_rows' not in kwargs:
      with self.assertRaisesRegex(ValueError, message):
        hk.transform(lambda: rmc.RelationalMemory(**arguments)).init(None)

  def test_shape_errors(self):
    cell = self._cell()
    with self.assertRaisesRegex(ValueError, r'inputs must end in \[7\]'):
      cell(cell.initialize_carry((2, _D_IN)), jnp.ones((2, 6)))
    with self.assertRaisesRegex(ValueError, r'carry must have shape'):
      cell(jnp.ones((2, 3, 7)), jnp.ones((2, _D_IN)))
    with self.assertRaisesRegex(ValueError, 'seq_lengths must be integers'):
      cell.unroll(jnp.ones((2, _T, _D_IN)), seq_lengths=jnp.ones(2))
    with self.assertRaisesRegex(ValueError, 'one RelationalMemory core'):
      rmc.nnx.from_haiku(cell, {'linear': {'w': jnp.ones(2)}})


# The Haiku DNC's test configurations: the reference's sizes, a deep
# controller with the reference code's strengths, one head of each without
# clipping.
_DNC_CONFIGS = (
    ('reference', dict(
        access_config=dict(memory_size=6, word_size=4, num_reads=2,
                           num_writes=2),
        controller_config=dict(hidden_size=8), output_size=3,
        clip_value=20.0)),
    ('deep_softplus', dict(
        access_config=dict(memory_size=5, word_size=3, num_reads=2,
                           num_writes=1, strength_activation='softplus'),
        controller_config=dict(hidden_size=6, num_layers=2), output_size=4,
        clip_value=0.5)),
    ('one_head_each_no_clip', dict(
        access_config=dict(memory_size=4, word_size=5, num_reads=1,
                           num_writes=1),
        controller_config=dict(hidden_size=7), output_size=2)),
)


def _haiku_dnc(kwargs):
  """The Haiku DNC's transformed unroll (batch-major), and its parameters."""

  def unroll(inputs):  # [B, T, D_in]
    core = dnc.DNC(**kwargs)
    return hk.dynamic_unroll(core, inputs, core.initial_state(inputs.shape[0]),
                             time_major=False)

  model = hk.without_apply_rng(hk.transform(unroll))
  return model, jax.jit(model.init)(jax.random.key(1), _inputs({}))


def _dnc_cell(kwargs, params=None):
  cell = rmc.nnx.DNC(_D_IN, **kwargs, rngs=nnx.Rngs(7))
  if params is not None:
    rmc.nnx.from_haiku(cell, params)
  return cell


class DNCTest(parameterized.TestCase):

  # The outputs: two layers, softplus and clipping in the fast tier, every
  # configuration in the slow.
  @parameterized.named_parameters(_DNC_CONFIGS[1])
  def test_nnx_rnn_equals_the_haiku_core(self, kwargs):
    self._check_outputs(kwargs)

  @parameterized.named_parameters(_DNC_CONFIGS[0], _DNC_CONFIGS[2])
  @pytest.mark.slow
  def test_nnx_rnn_equals_the_haiku_core_slow(self, kwargs):
    self._check_outputs(kwargs)

  def _check_outputs(self, kwargs):
    model, params = _haiku_dnc(kwargs)
    inputs = _inputs({})
    outputs, final = model.apply(params, inputs)
    cell = _dnc_cell(kwargs, params)
    carry, got = nnx.RNN(cell, return_carry=True)(inputs)
    _assert_close(self, (got, carry), (outputs, final))
    time_major = nnx.RNN(cell, time_major=True)(jnp.swapaxes(inputs, 0, 1))
    _assert_close(self, jnp.swapaxes(time_major, 0, 1), outputs)

  # Gradients in the slow tier (make test-all): about 20 s each on 2 cores.
  @parameterized.named_parameters(*_DNC_CONFIGS)
  @pytest.mark.slow
  def test_gradients_equal_the_haiku_cores(self, kwargs):
    self._check_gradients(kwargs)

  def _check_gradients(self, kwargs):
    model, params = _haiku_dnc(kwargs)
    inputs = _inputs({})

    def haiku_loss(params):
      outputs, final = model.apply(params, inputs)
      return jnp.sum(outputs ** 2) + jnp.sum(jnp.sin(final.access_state.memory))

    def nnx_loss(cell):
      final, outputs = nnx.RNN(cell, return_carry=True)(inputs)
      return jnp.sum(outputs ** 2) + jnp.sum(jnp.sin(final.access_state.memory))

    cell = _dnc_cell(kwargs, params)
    self.assertAlmostEqual(float(nnx_loss(cell)), float(haiku_loss(params)),
                           delta=1e-6 * abs(float(haiku_loss(params))))
    grads = nnx.grad(nnx_loss)(cell)
    _assert_close(self, rmc.nnx.to_haiku(nnx.merge(nnx.graphdef(cell), grads)),
                  jax.grad(haiku_loss)(params))

  @pytest.mark.slow
  def test_parameters_are_the_haiku_cores(self):
    for _, kwargs in _DNC_CONFIGS:
      _, params = _haiku_dnc(kwargs)
      self.assertEqual(
          jax.tree.map(jnp.shape, rmc.nnx.to_haiku(_dnc_cell(kwargs))),
          jax.tree.map(jnp.shape, params))
    big = rmc.nnx.DNC(400, dict(word_size=4), dict(hidden_size=8), 3,
                      rngs=nnx.Rngs(0))
    w = big.weights['lstm/linear/w'][...]  # fan_in 400 + 4 + 8.
    self.assertAlmostEqual(float(jnp.std(w)), 412 ** -0.5, delta=0.002)
    np.testing.assert_array_equal(big.weights['output_linear/b'][...], 0)

  @pytest.mark.slow
  def test_the_core_of_a_trained_run_loads(self):
    workdir, _ = binary_testing.shared_run(
        nth_farthest, '--preset=smoke', '--core=dnc')
    run = rmc.load_run(workdir)
    cell = rmc.nnx.DNC(run.core_input_size, **run.hyperparameters.dnc.kwargs(),
                       rngs=nnx.Rngs(0))
    rmc.nnx.from_haiku(cell, run.core_params)
    inputs = jax.random.normal(jax.random.key(2), (4, 3, run.core_input_size))
    outputs, final = run.core.apply(run.core_params, inputs)  # Time-major.
    carry, got = nnx.RNN(cell, return_carry=True, time_major=True)(inputs)
    _assert_close(self, (got, carry), (outputs, final))
    _assert_close(self, rmc.nnx.to_haiku(cell), run.core_params)

  @pytest.mark.slow
  def test_the_nnx_cell_contract_and_transforms(self):
    kwargs = dict(_DNC_CONFIGS[0][1])
    cell = _dnc_cell(kwargs)
    self.assertIsInstance(cell, nnx.RNNCellBase)
    self.assertEqual(cell.num_feature_axes, 1)
    carry = cell.initialize_carry((2, 5, _D_IN))  # Two batch axes.
    self.assertEqual(carry.access_state.linkage.link.shape, (2, 5, 2, 6, 6))
    self.assertEqual(carry.controller_state.hidden.shape, (2, 5, 8))
    inputs = jax.random.normal(jax.random.key(0), (2, 5, _D_IN))
    carry, output = cell(carry, inputs)
    self.assertEqual(output.shape, (2, 5, 3))
    unbatched, out = cell(cell.initialize_carry((_D_IN,)), inputs[1, 4])
    _assert_close(self, out, output[1, 4])
    # vmap over samples without batch axes equals the batched step.
    flat = cell.initialize_carry((_B, _D_IN))
    batched, _ = cell(flat, inputs[0, :_B])
    mapped, _ = nnx.vmap(lambda c, s, x: c(s, x), in_axes=(None, 0, 0))(
        cell, flat, inputs[0, :_B])
    _assert_close(self, mapped, batched)
    del unbatched
    sequence = jax.random.normal(jax.random.key(1), (_B, _T, _D_IN))
    # nnx.scan over time equals nnx.RNN; reverse and Bidirectional run.
    scan = nnx.scan(lambda c, s, x: c(s, x), in_axes=(None, nnx.Carry, 1),
                    out_axes=(nnx.Carry, 1))
    final, outputs = scan(cell, flat, sequence)
    expected_final, expected = nnx.RNN(cell, return_carry=True)(sequence)
    _assert_close(self, (outputs, final), (expected, expected_final))
    both = nnx.Bidirectional(nnx.RNN(cell), nnx.RNN(_dnc_cell(kwargs),
                                                   reverse=True))(sequence)
    self.assertEqual(both.shape, (_B, _T, 6))
    # nnx.jit, nnx.value_and_grad and an optax optimizer train it.
    targets = jax.random.normal(jax.random.key(2), (_B, 3))
    optimizer = nnx.Optimizer(cell, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def train_step(cell, optimizer, inputs, targets):
      def loss_fn(cell):
        outputs = nnx.RNN(cell)(inputs)
        return jnp.mean((outputs[:, -1] - targets) ** 2)

      loss, grads = nnx.value_and_grad(loss_fn)(cell)
      optimizer.update(cell, grads)
      return loss

    losses = [float(train_step(cell, optimizer, sequence, targets))
              for _ in range(30)]
    self.assertLess(losses[-1], 0.7 * losses[0])

  @parameterized.parameters(
      (dict(controller_config=dict(hidden_size=8, layers=2)),
       'Unknown controller_config keys'),
      (dict(controller_config=dict(hidden_size=0)),
       'hidden_size must be a positive integer'),
      (dict(access_config=dict(memory_size=0)),
       'memory_size must be a positive integer'),
      (dict(access_config=dict(strength_activation='exp')),
       'strength_activation must be one of'),
      (dict(clip_value=-1.0), 'clip_value must be >= 0 or None'),
      (dict(output_size=0), 'output_size must be a positive integer'),
  )
  def test_the_haiku_cores_checks(self, overrides, message):
    arguments = dict(access_config={}, controller_config=dict(hidden_size=8),
                     output_size=3) | overrides
    with self.assertRaisesRegex(ValueError, message):
      rmc.nnx.DNC(_D_IN, **arguments, rngs=nnx.Rngs(0))
    with self.assertRaisesRegex(ValueError, message):
      hk.transform(lambda: dnc.DNC(**arguments)).init(None)

  def test_input_and_conversion_errors(self):
    cell = _dnc_cell(dict(_DNC_CONFIGS[0][1]))
    with self.assertRaisesRegex(ValueError, 'in_features must be a positive'):
      rmc.nnx.DNC(0, {}, dict(hidden_size=8), 3, rngs=nnx.Rngs(0))
    with self.assertRaisesRegex(ValueError, r'inputs must be \[\*batch'):
      cell(cell.initialize_carry((2, _D_IN)), jnp.ones((2, 6)))
    # A RelationalMemory's parameters are not a DNC's, and the other way.
    _, rmc_params = _haiku(dict(_CONFIGS[0][1]))
    with self.assertRaisesRegex(ValueError, 'one DNC core'):
      rmc.nnx.from_haiku(cell, rmc_params)
    with self.assertRaisesRegex(ValueError, 'one RelationalMemory core'):
      rmc.nnx.from_haiku(
          rmc.nnx.RelationalMemory(_D_IN, 3, 4, 2, rngs=nnx.Rngs(0)),
          rmc.nnx.to_haiku(cell))


class DocsTest(parameterized.TestCase):

  @parameterized.parameters(
      ('nnx', ['(10, 4, 2048) (4, 8, 256)', '605184']),
      ('nnx-dnc', ['(4, 12, 10) (4, 16, 8)']),
  )
  def test_the_pages_snippets_run(self, tag, expected):
    with open(os.path.join(_ROOT, 'docs', 'flax.md'), encoding='utf-8') as f:
      text = f.read()
    snippet = re.search(rf'<!-- tested: {tag} -->\n```python\n(.*?)```', text,
                        re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
      exec(snippet, {})  # pylint: disable=exec-used
    self.assertEqual(printed.getvalue().splitlines(), expected)


class ExampleTest(absltest.TestCase):

  @pytest.mark.slow
  def test_the_nnx_training_script_trains_and_evaluates(self):
    completed = subprocess.run(
        [sys.executable, os.path.join(_ROOT, 'examples', 'nnx_nth_farthest.py'),
         '--preset=smoke', '--num_steps=40', '--seed=3'],
        cwd=_ROOT, capture_output=True, text=True, timeout=600, check=False)
    self.assertEqual(completed.returncode, 0, completed.stderr[-2000:])
    lines = completed.stdout.splitlines()
    self.assertIn('preset smoke, seed 3, 3 objects, 32 held-out', lines[0])
    evaluations = [line for line in lines if line.startswith('step ')]
    self.assertEqual([line.split(':')[0] for line in evaluations],
                     ['step 20', 'step 40'])
    accuracy = float(re.search(r'held-out accuracy ([\d.]+)',
                               evaluations[-1]).group(1))
    self.assertBetween(accuracy, 0.0, 1.0)
    self.assertTrue(lines[-1].startswith('Done at step 40.'))


class PackagingTest(absltest.TestCase):

  def test_rmc_works_without_flax(self):
    # Flax blocked: every module of rmc but rmc.nnx imports and the Haiku
    # core runs. (With Flax installed, Haiku itself imports it, for its
    # haiku.experimental.flax interoperation; rmc does not.)
    code = (
        'import sys; sys.modules["flax"] = None\n'
        'import pkgutil, importlib, haiku as hk, jax, rmc, rmc.tasks\n'
        'for m in pkgutil.walk_packages(rmc.__path__, "rmc."):\n'
        '  if not m.name.startswith("rmc.nnx"): importlib.import_module(m.name)\n'
        'f = hk.transform(lambda x: rmc.RelationalMemory(2, 4)(\n'
        '    x, rmc.RelationalMemory(2, 4).initial_state(1)))\n'
        'print(f.init(jax.random.key(0), jax.numpy.ones((1, 3))) is not None)')
    out = subprocess.run([sys.executable, '-c', code], cwd=_ROOT, check=True,
                         capture_output=True, text=True).stdout
    self.assertEqual(out.strip(), 'True')

  def test_without_flax_one_line_names_the_extra(self):
    code = 'import sys; sys.modules["flax"] = None; import rmc.nnx'
    completed = subprocess.run([sys.executable, '-c', code], cwd=_ROOT,
                               capture_output=True, text=True)
    self.assertNotEqual(completed.returncode, 0)
    self.assertEqual(completed.stderr.strip().splitlines()[-1],
                     "ImportError: rmc.nnx needs Flax NNX: pip install "
                     "'rmc[flax]'.")


if __name__ == '__main__':
  absltest.main()
