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
"""Tests for the language model, exact stream evaluation and truncated BPTT."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import optax
from rmc.data import wikitext
from rmc import models
from rmc import relational_memory
from rmc.toolkit import training

jax.config.update('jax_numpy_rank_promotion', 'raise')

_VOCAB = 23


def _model(core='rmc', softmax='tied'):
  def make():
    if core == 'rmc':
      cell = relational_memory.RelationalMemory(mem_slots=2, head_size=4,
                                                num_heads=2)
    else:
      cell = hk.LSTM(8)
    return models.LanguageModel(cell, _VOCAB, embed_size=8, dropout_rate=0.5,
                                softmax=softmax, cutoffs=(5, 12))

  def forward(inputs, targets, state, reset, is_training):
    model = make()
    if state is None:
      state = model.initial_state(inputs.shape[1])
    return model(inputs, targets, state, reset, is_training)

  initial = hk.without_apply_rng(hk.transform(
      lambda batch_size: make().initial_state(batch_size)))
  return hk.transform(forward), initial


def _stream(size=61, seed=0):
  return np.random.default_rng(seed).integers(1, _VOCAB, size=size).astype(
      np.int32)


class LanguageModelTest(parameterized.TestCase):

  @parameterized.parameters(
      ('rmc', 'tied', 1, 7), ('rmc', 'adaptive', 3, 5), ('lstm', 'tied', 4, 6))
  def test_segmented_evaluation_equals_one_pass(self, core, softmax,
                                                batch_size, unroll):
    model, initial = _model(core, softmax)
    tokens = _stream()
    whole_inputs = jnp.asarray(np.concatenate([[0], tokens[:-1]]))[:, None]
    whole_targets = jnp.asarray(tokens)[:, None]  # [N, 1]
    params = jax.jit(model.init, static_argnums=(5,))(
        jax.random.key(0), whole_inputs, whole_targets, None, None, False)

    def apply(params, inputs, targets, state):
      return model.apply(params, None, inputs, targets, state, None, False)

    segments = wikitext.eval_segments(tokens, batch_size, unroll, eos_id=0)
    evaluate = training.make_stream_evaluator(
        apply, initial.apply(None, batch_size), segments)
    result = evaluate(params)
    self.assertEqual(result['tokens'], tokens.size)
    # Each column read in one pass from the initial state.
    column = -(-tokens.size // batch_size)
    total = 0.0
    for b in range(batch_size):
      part = slice(b * column, (b + 1) * column)
      log_probs, _ = jax.jit(apply)(
          params, whole_inputs[part], whole_targets[part],
          initial.apply(None, 1))
      total -= float(np.sum(np.asarray(log_probs, np.float64)))
    np.testing.assert_allclose(result['loss'], total / tokens.size,
                               rtol=1e-5)
    np.testing.assert_allclose(result['perplexity'],
                               np.exp(total / tokens.size), rtol=1e-5)

  def test_reset_starts_columns_afresh(self):
    model, initial = _model()
    inputs = jnp.asarray(_stream(24).reshape(8, 3))
    targets = jnp.asarray(_stream(24, seed=1).reshape(8, 3))
    params = jax.jit(functools.partial(model.init, is_training=False))(
        jax.random.key(0), inputs, targets, None, None)
    fresh = initial.apply(None, 3)
    other = jax.tree.map(lambda x: x + 0.5, fresh)
    reset = jnp.array([True, False, True])
    apply = jax.jit(functools.partial(model.apply, is_training=False))
    log_probs, _ = apply(params, None, inputs, targets, other, reset)
    from_fresh, _ = apply(params, None, inputs, targets, fresh, None)
    from_other, _ = apply(params, None, inputs, targets, other, None)
    expected = jnp.where(reset[None, :], from_fresh, from_other)
    np.testing.assert_allclose(log_probs, expected, rtol=1e-6)
    self.assertGreater(float(jnp.max(jnp.abs(from_fresh - from_other))),
                       1e-4)

  def test_tied_softmax_uses_the_embedding(self):
    model, _ = _model()
    inputs = jnp.zeros([4, 2], jnp.int32)
    params = jax.eval_shape(
        functools.partial(model.init, is_training=False), jax.random.key(0),
        inputs, inputs, None, None)
    names = {m + '/' + p for m in params for p in params[m]}
    self.assertIn('language_model/embed/embeddings', names)
    self.assertIn('language_model/softmax_bias', names)
    self.assertFalse(any('adaptive' in n for n in names))

  def test_dropout_only_in_training(self):
    model, _ = _model()
    inputs = jnp.asarray(_stream(24).reshape(8, 3))
    params = jax.jit(functools.partial(model.init, is_training=False))(
        jax.random.key(0), inputs, inputs, None, None)
    @functools.partial(jax.jit, static_argnums=0)
    def apply(is_training, keys):
      return jax.vmap(lambda key: model.apply(
          params, key, inputs, inputs, None, None, is_training)[0])(keys)
    keys = jnp.stack([jax.random.key(1), jax.random.key(2)])
    evals, trains = apply(False, keys), apply(True, keys)
    np.testing.assert_array_equal(evals[0], evals[1])
    self.assertGreater(float(jnp.max(jnp.abs(trains[0] - trains[1]))), 1e-4)

  def test_chunked_loss_equals_the_whole_segment(self):
    self._chunked_loss_equals_the_whole_segment('tied', 3)

  # The other softmax and chunk sizes in the full tier (make test-all).
  @parameterized.parameters(('tied', 1), ('adaptive', 3), ('adaptive', 7))
  @pytest.mark.slow
  def test_chunked_loss_equals_the_whole_segment_other_chunks(
      self, softmax, chunk_size):
    self._chunked_loss_equals_the_whole_segment(softmax, chunk_size)

  def _chunked_loss_equals_the_whole_segment(self, softmax, chunk_size):
    # 8 steps: chunks of 3 and 7 leave a padded last chunk. (The core does
    # not matter here; an LSTM compiles faster.)
    inputs = jnp.asarray(_stream(24).reshape(8, 3))
    targets = jnp.asarray(_stream(24, seed=1).reshape(8, 3))

    def transformed(loss_chunk_size):
      def forward(inputs, targets):
        model = models.LanguageModel(
            hk.LSTM(8), _VOCAB, embed_size=8, dropout_rate=0.0,
            softmax=softmax, cutoffs=(5, 12),
            loss_chunk_size=loss_chunk_size)
        return model(inputs, targets, model.initial_state(3))[0]
      return hk.without_apply_rng(hk.transform(forward))

    whole, chunked = transformed(None), transformed(chunk_size)
    params = whole.init(jax.random.key(0), inputs, targets)
    # The same parameters, created alike.
    chunked_params = chunked.init(jax.random.key(0), inputs, targets)
    jax.tree.map(np.testing.assert_array_equal, params, chunked_params)

    def loss(model):
      return jax.jit(jax.value_and_grad(
          lambda p: -jnp.mean(model.apply(p, inputs, targets))))
    np.testing.assert_allclose(jax.jit(chunked.apply)(params, inputs, targets),
                               jax.jit(whole.apply)(params, inputs, targets),
                               atol=1e-6)
    (value, grads), (expected_value, expected_grads) = (
        loss(chunked)(params), loss(whole)(params))
    np.testing.assert_allclose(value, expected_value, atol=1e-6)
    # Float32 rounding: within 1e-6, absolute and relative.
    jax.tree.map(functools.partial(np.testing.assert_allclose, atol=1e-6,
                                   rtol=1e-6), grads, expected_grads)

  def test_chunked_loss_needs_less_memory(self):
    vocab, steps, batch = 4000, 16, 8
    inputs = jnp.zeros([steps, batch], jnp.int32)

    def temp_bytes(loss_chunk_size):
      def loss(inputs):
        model = models.LanguageModel(
            hk.LSTM(8), vocab, embed_size=32, dropout_rate=0.0,
            loss_chunk_size=loss_chunk_size)
        return -jnp.mean(model(inputs, inputs, model.initial_state(batch))[0])
      model = hk.without_apply_rng(hk.transform(loss))
      params = jax.eval_shape(model.init, jax.random.key(0), inputs)
      compiled = jax.jit(jax.grad(model.apply)).lower(params, inputs).compile()
      return compiled.memory_analysis().temp_size_in_bytes

    logits_bytes = steps * batch * vocab * 4
    whole, chunked = temp_bytes(None), temp_bytes(2)
    # The whole segment holds at least all the logits; chunks of 2 steps
    # hold far less.
    self.assertGreater(whole, logits_bytes)
    self.assertLess(chunked, whole - logits_bytes / 2)

  @parameterized.parameters('tied', 'adaptive')
  def test_log_probs_are_the_full_distribution_of_call(self, softmax):
    inputs = jnp.asarray(_stream(24).reshape(8, 3))
    targets = jnp.asarray(_stream(24, seed=1).reshape(8, 3))

    def forward(inputs, targets):
      model = models.LanguageModel(
          hk.LSTM(8), _VOCAB, embed_size=8, dropout_rate=0.5,
          softmax=softmax, cutoffs=(5, 12), loss_chunk_size=3)
      state = model.initial_state(3)
      target_log_probs, final = model(inputs, targets, state)
      log_probs, log_probs_final = model.log_probs(inputs, state)
      return target_log_probs, final, log_probs, log_probs_final

    model = hk.without_apply_rng(hk.transform(forward))
    params = model.init(jax.random.key(0), inputs, targets)
    target_log_probs, final, log_probs, log_probs_final = model.apply(
        params, inputs, targets)
    self.assertEqual(log_probs.shape, (8, 3, _VOCAB))
    np.testing.assert_allclose(jax.nn.logsumexp(log_probs, axis=-1), 0,
                               atol=1e-5)
    np.testing.assert_allclose(
        jnp.take_along_axis(log_probs, targets[..., None], -1)[..., 0],
        target_log_probs, atol=1e-5)
    jax.tree.map(np.testing.assert_array_equal, final, log_probs_final)

  def test_bad_arguments(self):
    def build(**kwargs):
      hk.transform(lambda: models.LanguageModel(hk.LSTM(2), 5, **kwargs)
                   ).init(None)
    with self.assertRaisesRegex(ValueError, "softmax must be one of"):
      build(softmax='full')
    with self.assertRaisesRegex(ValueError, r'dropout_rate must be in \[0, 1'):
      build(dropout_rate=1.0)
    with self.assertRaisesRegex(ValueError, 'loss_chunk_size must be >= 0'):
      build(loss_chunk_size=-1)


class TruncatedBackpropTest(absltest.TestCase):

  @pytest.mark.slow
  def test_train_chunk_carries_the_state_between_segments(self):
    model, initial = _model()
    stream = wikitext.TrainStream(_stream(200), batch_size=2,
                                  unroll_length=6)
    batches = stream.batches(0, 3)
    params = jax.jit(functools.partial(model.init, is_training=False))(
        jax.random.key(0), batches['inputs'][0], batches['targets'][0], None,
        None)

    def loss_fn(params, key, batch, carry):
      log_probs, carry = model.apply(params, key, batch['inputs'],
                                     batch['targets'], carry, batch['reset'],
                                     True)
      return -jnp.mean(log_probs), ({}, carry)

    optimizer = optax.sgd(0.1)
    chunk = training.make_train_chunk(loss_fn, optimizer, lambda s: 0.1,
                                      with_carry=True)
    state0 = training.init_state(jax.tree.map(jnp.copy, params), optimizer,
                                 jax.random.key(3),
                                 carry=initial.apply(None, 2))
    state, metrics = chunk(state0, batches, 3)  # Donates state0.
    # By hand: each step starts from the previous step's final state.
    params_by_hand, carry = params, initial.apply(None, 2)
    grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    for step in range(3):
      batch = jax.tree.map(lambda x, s=step: x[s], batches)
      key = jax.random.fold_in(jax.random.key(3), step)
      (loss, (_, carry)), grads = grad_fn(params_by_hand, key, batch, carry)
      np.testing.assert_allclose(metrics['loss'][step], loss, rtol=1e-5)
      params_by_hand = jax.tree.map(lambda p, g: p - 0.1 * g,
                                    params_by_hand, grads)
    for got, want in zip(jax.tree.leaves(state.carry),
                         jax.tree.leaves(carry)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    self.assertEqual(int(state.step), 3)


if __name__ == '__main__':
  absltest.main()
