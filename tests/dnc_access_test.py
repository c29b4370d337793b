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
"""The reference's access_test.py re-expressed for rmc.dnc.MemoryAccess."""

from absl.testing import absltest
import haiku as hk
import jax
import jax.test_util  # pylint: disable=unused-import
import jax.numpy as jnp
import numpy as np
import pytest
import optax
from rmc import dnc

jax.config.update('jax_numpy_rank_promotion', 'raise')

BATCH_SIZE = 2
MEMORY_SIZE = 20
WORD_SIZE = 6
NUM_READS = 2
NUM_WRITES = 3
TIME_STEPS = 4
INPUT_SIZE = 10


def _module():
  return dnc.MemoryAccess(MEMORY_SIZE, WORD_SIZE, NUM_READS, NUM_WRITES)


def _one_hot(size, index):
  result = np.zeros(size)
  result[index] = 1
  return result


class MemoryAccessTest(absltest.TestCase):

  @pytest.mark.slow
  def test_build_and_train(self):
    def unroll(inputs):
      module = _module()
      return hk.dynamic_unroll(module, inputs,
                               module.initial_state(BATCH_SIZE))[0]
    model = hk.without_apply_rng(hk.transform(unroll))
    inputs = jax.random.normal(jax.random.key(0),
                               [TIME_STEPS, BATCH_SIZE, INPUT_SIZE])
    targets = jax.random.uniform(
        jax.random.key(1), [TIME_STEPS, BATCH_SIZE, NUM_READS, WORD_SIZE])
    params = jax.jit(model.init)(jax.random.key(2), inputs)

    @jax.jit
    def loss(params):
      return jnp.mean((model.apply(params, inputs) - targets) ** 2)

    optimizer = optax.sgd(1.0)
    before = loss(params)
    grads = jax.jit(jax.grad(loss))(params)
    updates, _ = optimizer.update(grads, optimizer.init(params))
    after = loss(optax.apply_updates(params, updates))
    self.assertTrue(np.isfinite(after))
    self.assertNotEqual(float(after), float(before))

  def test_valid_read_mode(self):
    def linear(name, x, size):
      return hk.Linear(size, name=name)(x)

    interface = hk.without_apply_rng(hk.transform(
        lambda x: dnc.interface(x, linear, NUM_READS, NUM_WRITES, WORD_SIZE)))
    inputs = jax.random.normal(jax.random.key(3), [BATCH_SIZE, INPUT_SIZE])
    controls = interface.apply(interface.init(jax.random.key(4), inputs),
                               inputs)
    np.testing.assert_allclose(controls['read_mode'].sum(2), 1, rtol=1e-6)
    self.assertGreaterEqual(float(controls['read_mode'].min()), 0)
    self.assertEqual(controls['read_mode'].shape,
                     (BATCH_SIZE, NUM_READS, 1 + 2 * NUM_WRITES))

  def test_write_weights(self):
    rng = np.random.RandomState(5)
    memory = 10 * (rng.rand(BATCH_SIZE, MEMORY_SIZE, WORD_SIZE) - 0.5)
    usage = rng.rand(BATCH_SIZE, MEMORY_SIZE)
    allocation_gate = rng.rand(BATCH_SIZE, NUM_WRITES)
    write_gate = rng.rand(BATCH_SIZE, NUM_WRITES)
    # A full allocation gate writes where the usage is 0.
    usage[:, 3] = 0
    allocation_gate[:, 0] = 1
    write_gate[:, 0] = 1
    controls = {
        'allocation_gate': allocation_gate, 'write_gate': write_gate,
        'write_keys': rng.rand(BATCH_SIZE, NUM_WRITES, WORD_SIZE),
        'write_strengths': rng.rand(BATCH_SIZE, NUM_WRITES)}
    weights = np.asarray(dnc.compute_write_weights(controls, memory, usage))
    np.testing.assert_allclose(weights.sum(2), write_gate, atol=5e-2)
    np.testing.assert_allclose(weights[0, 0], _one_hot(MEMORY_SIZE, 3),
                               atol=1e-3)

  def test_read_weights(self):
    rng = np.random.RandomState(6)
    memory = 10 * (rng.rand(BATCH_SIZE, MEMORY_SIZE, WORD_SIZE) - 0.5)
    previous = rng.rand(BATCH_SIZE, NUM_READS, MEMORY_SIZE)
    previous /= previous.sum(2, keepdims=True) + 1
    link = rng.rand(BATCH_SIZE, NUM_WRITES, MEMORY_SIZE, MEMORY_SIZE)
    link /= np.maximum(link.sum(2, keepdims=True), 1)
    link /= np.maximum(link.sum(3, keepdims=True), 1)
    # A query of slot 3 with a large strength, in content mode.
    read_keys = rng.rand(BATCH_SIZE, NUM_READS, WORD_SIZE)
    read_keys[0, 0] = memory[0, 3]
    read_mode = rng.rand(BATCH_SIZE, NUM_READS, 1 + 2 * NUM_WRITES)
    read_mode[0, 0] = _one_hot(1 + 2 * NUM_WRITES, 2 * NUM_WRITES)
    controls = {'read_keys': read_keys,
                'read_strengths': np.full([BATCH_SIZE, NUM_READS], 100.0),
                'read_mode': read_mode}
    with jax.enable_x64():
      weights = np.asarray(dnc.compute_read_weights(controls, memory,
                                                    previous, link))
    np.testing.assert_allclose(weights[0, 0], _one_hot(MEMORY_SIZE, 3),
                               atol=1e-3)

  @pytest.mark.slow
  def test_gradients(self):
    # With respect to the inputs and the initial memory, read weights,
    # precedence weights and links (as the reference's test).
    module = hk.without_apply_rng(hk.transform(
        lambda x, s: jnp.sum(_module()(x, s)[0])))
    with jax.enable_x64():
      inputs = jnp.asarray(np.random.RandomState(7).randn(BATCH_SIZE,
                                                          INPUT_SIZE))
      state = hk.without_apply_rng(hk.transform(
          lambda: _module().initial_state(BATCH_SIZE))).apply({})
      state = jax.tree.map(lambda x: x.astype(jnp.float64), state)
      params = module.init(jax.random.key(8), inputs, state)

      def loss(inputs, memory, read_weights, precedence, link):
        linkage = state.linkage._replace(link=link,
                                         precedence_weights=precedence)
        return module.apply(params, inputs, state._replace(
            memory=memory, read_weights=read_weights, linkage=linkage))

      jax.test_util.check_grads(
          jax.jit(loss), (inputs, state.memory, state.read_weights,
                 state.linkage.precedence_weights, state.linkage.link),
          order=1, modes=('rev',), eps=1e-6, atol=1e-4, rtol=1e-4)


if __name__ == '__main__':
  absltest.main()
