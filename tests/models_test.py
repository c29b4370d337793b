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
"""Tests for the sequence-to-sequence parts of rmc.models."""

import random

from absl.testing import absltest
from absl.testing import parameterized
import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rmc
from rmc.data import learn_to_execute as lte
from rmc import models
from rmc.toolkit import cores

jax.config.update('jax_numpy_rank_promotion', 'raise')

_V = 7  # Vocabulary size of the toy sequences.


def _seq2seq(core='rmc', shared=True, teacher_forcing=False):
  def forward(inputs, input_lengths, decoder_inputs, target_lengths):
    if core == 'rmc':
      encoder = rmc.RelationalMemory(mem_slots=2, head_size=4, num_heads=2,
                                     gate_style='memory')
      decoder = encoder if shared else rmc.RelationalMemory(
          mem_slots=2, head_size=4, num_heads=2, gate_style='memory',
          name='decoder')
    else:
      encoder = decoder = cores.LSTM(hidden_size=8).make(num_layers=2)
    model = models.Seq2Seq(encoder, decoder, _V, mlp_sizes=(16, 16),
                           teacher_forcing=teacher_forcing)
    return model(inputs, input_lengths, decoder_inputs, target_lengths)
  return hk.without_apply_rng(hk.transform(forward))


def _tokens(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).integers(1, _V, shape),
                     jnp.int32)


class MaskedUnrollTest(parameterized.TestCase):

  @parameterized.parameters('rmc', 'lstm')
  def test_padding_does_not_change_the_final_state(self, core_name):
    def forward(inputs, lengths):
      core = (rmc.RelationalMemory(mem_slots=2, head_size=3) if core_name ==
              'rmc' else cores.LSTM(hidden_size=4).make(num_layers=2))
      return models.masked_unroll(core, inputs, lengths,
                                  core.initial_state(inputs.shape[1]))

    f = hk.without_apply_rng(hk.transform(forward))
    xs = jnp.asarray(np.random.default_rng(0).normal(size=[6, 2, 5]),
                     jnp.float32)  # [T, B, 5]
    lengths = jnp.array([3, 6])
    params = jax.jit(f.init)(jax.random.key(0), xs, lengths)
    outputs, state = jax.jit(f.apply)(params, xs, lengths)
    short_outputs, short_state = jax.jit(f.apply)(params, xs[:3, :1],
                                                  jnp.array([3]))
    for padded, alone in zip(jax.tree.leaves(state),
                             jax.tree.leaves(short_state)):
      np.testing.assert_allclose(padded[:1], alone, atol=1e-6)
    np.testing.assert_allclose(outputs[:3, :1], short_outputs, atol=1e-6)
    np.testing.assert_array_equal(outputs[3:, 0], 0.0)
    self.assertTrue(np.all(np.abs(outputs[3:, 1]) > 0))


class _Generic:
  """An RMC hidden from `masked_unroll`'s dispatch: the generic path."""

  def __init__(self, core):
    self._core = core

  def __call__(self, inputs, state):
    return self._core(inputs, state)

  def initial_state(self, batch_size):
    return self._core.initial_state(batch_size)


class FastSeq2SeqTest(parameterized.TestCase):
  """The RMC's fast masked unroll equals the generic masked one in Seq2Seq."""

  # Real padded batches of both tasks at the cpu preset's length and
  # nesting: their programs and answers have many lengths.
  # Control with separate cores in the fast tier; every case in the slow.
  def test_logits_loss_and_gradients_equal_the_generic_path(self):
    self._check('control', True)

  @parameterized.parameters(('addition', False), ('addition', True),
                            ('control', False))
  @pytest.mark.slow
  def test_logits_loss_and_gradients_equal_the_generic_path_slow(
      self, task, separate):
    self._check(task, separate)

  def _check(self, task, separate):
    vocabulary = lte.Vocabulary(True, 2)
    batch = lte.make_batch(random.Random(3), 6, task,
                           lte.MixCurriculum(2, 2), vocabulary)
    batch = {k: jnp.asarray(v) for k, v in vars(batch).items()}
    self.assertGreater(len(set(batch['input_lengths'].tolist())), 1)
    self.assertGreater(len(set(batch['target_lengths'].tolist())), 1)

    def model(fast):
      def forward(batch):
        encoder = rmc.RelationalMemory(mem_slots=2, head_size=4, num_heads=2,
                                       gate_style='memory')
        decoder = rmc.RelationalMemory(
            mem_slots=2, head_size=4, num_heads=2, gate_style='memory',
            name='decoder') if separate else encoder
        if not fast:
          encoder, decoder = _Generic(encoder), _Generic(decoder)
        logits = models.Seq2Seq(encoder, decoder, len(vocabulary),
                                mlp_sizes=(16,))(
                                    batch['inputs'], batch['input_lengths'],
                                    batch['decoder_inputs'],
                                    batch['target_lengths'])
        return logits, models.sequence_metrics(
            logits, batch['targets'], batch['target_lengths'])['loss']
      return hk.without_apply_rng(hk.transform(forward))

    fast, generic = model(True), model(False)
    params = jax.jit(fast.init)(jax.random.key(0), batch)
    chex.assert_trees_all_equal_structs(
        params, jax.eval_shape(generic.init, jax.random.key(0), batch))
    results = []
    for f in (fast, generic):  # One compilation each: (loss, logits), grads.
      loss = lambda params, f=f: f.apply(params, batch)[::-1]
      results.append(
          jax.jit(jax.value_and_grad(loss, has_aux=True))(params))
    chex.assert_trees_all_close(results[0], results[1], rtol=1e-5, atol=1e-5)
    # Every parameter has a gradient (the decoder's too, when separate),
    # except the weights of a separate decoder's inputs, which are zeros.
    zero_inputs = {('decoder/input_projection', 'w'),
                   ('decoder/gates_from_input', 'w')}
    for path, grad in jax.tree_util.tree_leaves_with_path(results[0][1]):
      name = (path[0].key, path[1].key)
      if name in zero_inputs:
        np.testing.assert_array_equal(grad, 0.0)
        continue
      self.assertGreater(float(jnp.max(jnp.abs(grad))), 0.0, msg=name)


class Seq2SeqTest(parameterized.TestCase):

  @parameterized.parameters('rmc', 'lstm')
  def test_padded_sample_has_the_same_logits_and_loss(self, core):
    f = _seq2seq(core)
    inputs, targets = _tokens([4, 1]), _tokens([3, 1], seed=1)
    in_len, out_len = jnp.array([4]), jnp.array([3])
    pad = jnp.zeros([5, 1], jnp.int32)
    padded_inputs = jnp.concatenate([inputs, pad])  # [9, 1]
    padded_targets = jnp.concatenate([targets, pad[:2]])  # [5, 1]
    params = jax.jit(f.init)(jax.random.key(0), inputs, in_len, targets,
                             out_len)
    logits = jax.jit(f.apply)(params, inputs, in_len, targets, out_len)
    padded = jax.jit(f.apply)(params, padded_inputs, in_len, padded_targets,
                              out_len)
    np.testing.assert_allclose(padded[:3], logits, atol=1e-5)
    loss = models.sequence_metrics(logits, targets, out_len)['loss']
    padded_loss = models.sequence_metrics(padded, padded_targets,
                                          out_len)['loss']
    np.testing.assert_allclose(padded_loss, loss, rtol=1e-6)

  def test_shared_core_has_one_set_of_weights(self):
    args = (_tokens([4, 2]), jnp.array([4, 2]), _tokens([3, 2]),
            jnp.array([3, 1]))
    shared = jax.eval_shape(_seq2seq(shared=True).init, jax.random.key(0),
                            *args)
    separate = jax.eval_shape(_seq2seq(shared=False).init, jax.random.key(0),
                              *args)
    cores = lambda p: sorted({k.split('/')[0] for k in p
                              if 'qkv_projection' in k})
    self.assertEqual(cores(shared), ['relational_memory'])
    self.assertEqual(cores(separate), ['decoder', 'relational_memory'])

  @parameterized.parameters(False, True)
  def test_decoder_inputs_matter_only_with_teacher_forcing(self, forcing):
    f = _seq2seq(teacher_forcing=forcing)
    inputs, lengths = _tokens([4, 2]), jnp.array([4, 3])
    out_len = jnp.array([3, 3])
    params = jax.jit(f.init)(jax.random.key(0), inputs, lengths,
                             _tokens([3, 2], 1), out_len)
    apply = jax.jit(f.apply)
    first = apply(params, inputs, lengths, _tokens([3, 2], 1), out_len)
    second = apply(params, inputs, lengths, _tokens([3, 2], 2), out_len)
    self.assertEqual(first.shape, (3, 2, _V))
    self.assertEqual(bool(np.allclose(first, second)), not forcing)

  @hk.testing.transform_and_run
  def test_lstm_baseline_concatenates_both_layers(self):
    core = cores.LSTM(hidden_size=8).make(num_layers=2)
    output, _ = core(jnp.zeros([2, 5]), core.initial_state(2))
    self.assertEqual(output.shape, (2, 16))
    other = cores.LSTM(hidden_size=8).make(num_layers=2)  # A second one gets its own names.
    other(jnp.zeros([2, 5]), other.initial_state(2))


class SequenceMetricsTest(absltest.TestCase):

  def test_values(self):
    # T=3, B=2, V=2; sample 0 has 3 valid tokens, sample 1 has 1.
    logits = jnp.array([[[2.0, 0.0], [0.0, 2.0]],
                        [[0.0, 2.0], [5.0, 0.0]],
                        [[2.0, 0.0], [5.0, 0.0]]])
    targets = jnp.array([[0, 1], [0, 1], [0, 1]])
    lengths = jnp.array([3, 1])
    result = models.sequence_metrics(logits, targets, lengths)
    small, large = np.log1p(np.exp(-2.0)), np.log1p(np.exp(2.0))
    # Valid: (t0,b0) right, (t1,b0) wrong, (t2,b0) right, (t0,b1) right.
    np.testing.assert_allclose(result['loss'], (3 * small + large) / 4,
                               rtol=1e-6)
    np.testing.assert_allclose(result['accuracy'], 3 / 4)
    np.testing.assert_allclose(result['solved'], 1 / 2)  # Only sample 1.
    sonnet = models.sequence_metrics(logits, targets, lengths,
                                     loss_average='all_positions')
    np.testing.assert_allclose(sonnet['loss'], (3 * small + large) / 6,
                               rtol=1e-6)
    with self.assertRaisesRegex(ValueError, 'loss_average'):
      models.sequence_metrics(logits, targets, lengths, loss_average='mean')


if __name__ == '__main__':
  absltest.main()
