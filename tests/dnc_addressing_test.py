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
"""Tests for rmc/dnc_addressing.py.

The reference's ``addressing_test.py`` and ``util_test.py`` re-expressed
(every test), plus a NumPy re-computation of each function in float64 and
gradient checks.
"""

from absl.testing import absltest
import jax
import jax.test_util  # pylint: disable=unused-import
import jax.numpy as jnp
import numpy as np
from rmc import dnc_addressing as addressing

jax.config.update('jax_numpy_rank_promotion', 'raise')


def _one_hot(size, index):
  result = np.zeros(size)
  result[index] = 1
  return result


def _softplus(x):
  return np.log1p(np.exp(x))


class WeightedSoftmaxTest(absltest.TestCase):

  def test_unit_strengths_with_identity_are_a_softmax(self):
    activations = np.random.RandomState(0).randn(5, 3, 7)
    observed = addressing.weighted_softmax(activations, np.ones([5, 3]),
                                           lambda x: x)
    np.testing.assert_allclose(observed, jax.nn.softmax(activations, -1),
                               rtol=1e-6)


class CosineWeightsTest(absltest.TestCase):

  def test_shape(self):
    weights = addressing.cosine_weights(
        jnp.zeros([5, 7, 2]), jnp.ones([5, 3, 2]), jnp.zeros([5, 3]))
    self.assertEqual(weights.shape, (5, 3, 7))

  def test_values_against_numpy(self):
    rng = np.random.RandomState(1)
    memory = rng.randn(5, 10, 2)
    memory[0, :3] = [[1, 2], [3, 4], [5, 6]]
    keys = rng.randn(5, 4, 2)
    keys[0] = [[5, 6], [1, 2], [5, 6], [3, 4]]
    strengths = rng.randn(5, 4)
    with jax.enable_x64():
      result = np.asarray(addressing.cosine_weights(memory, keys, strengths))
    for b in range(5):
      for h in range(4):
        key = keys[b, h]
        similarity = np.array([
            key @ row / (np.linalg.norm(key) * np.linalg.norm(row))
            for row in memory[b]])
        expected = np.exp(similarity * _softplus(strengths[b, h]))
        np.testing.assert_allclose(result[b, h], expected / expected.sum(),
                                   rtol=1e-5, atol=1e-6)
    # A key equal to a memory word attends to it most.
    self.assertEqual(np.argmax(result[0, 1]), 0)

  def test_zero_memory_rows_give_no_nan_values_or_gradients(self):
    keys = jax.random.normal(jax.random.key(0), [5, 4, 2])
    strengths = jax.random.normal(jax.random.key(1), [5, 4])
    memory = jnp.concatenate([jnp.ones([5, 1, 2]), jnp.zeros([5, 9, 2])], 1)
    output = addressing.cosine_weights(memory, keys, strengths)
    gradients = jax.grad(
        lambda *a: jnp.sum(addressing.cosine_weights(*a)), argnums=(0, 1, 2))(
            memory, keys, strengths)
    self.assertFalse(np.any(np.isnan(output)))
    for gradient in gradients:
      self.assertFalse(np.any(np.isnan(gradient)))


class TemporalLinkageTest(absltest.TestCase):

  def test_links_record_the_order_of_writes(self):
    batch_size, memory_size, num_reads, num_writes = 7, 4, 11, 5
    rng = np.random.RandomState(2)
    state = addressing.TemporalLinkageState(
        link=np.zeros([batch_size, num_writes, memory_size, memory_size]),
        precedence_weights=np.zeros([batch_size, num_writes, memory_size]))
    num_steps = 5
    for i in range(num_steps):
      write_weights = rng.rand(batch_size, num_writes, memory_size)
      write_weights /= write_weights.sum(2, keepdims=True) + 1
      # In the last steps: 0 -> 1 in head 0 and 3 -> 2 in head 1.
      if i == num_steps - 2:
        write_weights[0, 0] = _one_hot(memory_size, 0)
        write_weights[0, 1] = _one_hot(memory_size, 3)
      elif i == num_steps - 1:
        write_weights[0, 0] = _one_hot(memory_size, 1)
        write_weights[0, 1] = _one_hot(memory_size, 2)
      state = jax.tree.map(np.asarray,
                           addressing.updated_linkage(write_weights, state))
    link = state.link
    self.assertGreaterEqual(link.min(), 0)
    self.assertLessEqual(link.max(), 1)
    np.testing.assert_array_equal(
        link[:, :, range(memory_size), range(memory_size)], 0)
    self.assertLessEqual(link.sum(2).max(), 1 + 1e-6)
    self.assertLessEqual(link.sum(3).max(), 1 + 1e-6)
    np.testing.assert_array_equal(link[0, 0, :, 0], _one_hot(memory_size, 1))
    np.testing.assert_array_equal(link[0, 1, :, 3], _one_hot(memory_size, 2))

    previous_read = rng.rand(batch_size, num_reads, memory_size)
    previous_read[0, 5] = _one_hot(memory_size, 0)
    previous_read[0, 6] = _one_hot(memory_size, 2)
    forward = addressing.directional_read_weights(link, previous_read, True)
    backward = addressing.directional_read_weights(link, previous_read, False)
    self.assertEqual(forward.shape,
                     (batch_size, num_reads, num_writes, memory_size))
    np.testing.assert_array_equal(forward[0, 5, 0], _one_hot(memory_size, 1))
    np.testing.assert_array_equal(backward[0, 6, 1], _one_hot(memory_size, 3))
    # Against NumPy: forward is link @ r, backward link^T @ r, per head.
    for b, r, h in ((1, 2, 3), (4, 10, 0)):
      np.testing.assert_allclose(forward[b, r, h],
                                 link[b, h] @ previous_read[b, r], rtol=1e-5)
      np.testing.assert_allclose(backward[b, r, h],
                                 link[b, h].T @ previous_read[b, r],
                                 rtol=1e-5)

  def test_link_against_numpy(self):
    rng = np.random.RandomState(3)
    link = rng.rand(2, 3, 4, 4)
    precedence = rng.rand(2, 3, 4) / 4
    writes = rng.rand(2, 3, 4) / 4
    with jax.enable_x64():
      got = np.asarray(addressing.updated_link(link, precedence, writes))
    for b in range(2):
      for h in range(3):
        for i in range(4):
          for j in range(4):
            want = 0.0 if i == j else (
                (1 - writes[b, h, i] - writes[b, h, j]) * link[b, h, i, j]
                + writes[b, h, i] * precedence[b, h, j])
            self.assertAlmostEqual(got[b, h, i, j], want, places=12)

  def test_link_gradient_against_numpy_and_check_grads(self):
    # The hand-written VJP of updated_link.
    rng = np.random.RandomState(5)
    link = rng.rand(2, 3, 5, 5)
    precedence = rng.rand(2, 3, 5) / 5
    writes = rng.rand(2, 3, 5) / 5
    d_link = rng.randn(2, 3, 5, 5)
    with jax.enable_x64():
      _, vjp = jax.vjp(addressing.updated_link, link, precedence, writes)
      got = [np.asarray(g) for g in vjp(d_link)]
      jax.test_util.check_grads(
          addressing.updated_link, (link, precedence, writes), order=2,
          modes=['rev'])
    want_link = np.zeros_like(link)
    want_precedence = np.zeros_like(precedence)
    want_writes = np.zeros_like(writes)
    for b in range(2):
      for h in range(3):
        for i in range(5):
          for j in range(5):
            if i == j:
              continue
            g = d_link[b, h, i, j]
            want_link[b, h, i, j] = g * (
                1 - writes[b, h, i] - writes[b, h, j])
            want_writes[b, h, i] += g * (
                precedence[b, h, j] - link[b, h, i, j])
            want_writes[b, h, j] -= g * link[b, h, i, j]
            want_precedence[b, h, j] += g * writes[b, h, i]
    for got_one, want in zip(got, (want_link, want_precedence, want_writes)):
      np.testing.assert_allclose(got_one, want, rtol=1e-12, atol=1e-12)

  def test_precedence_weights(self):
    rng = np.random.RandomState(4)
    previous = rng.rand(7, 5, 3)
    writes = rng.rand(7, 5, 3)
    writes /= writes.sum(2, keepdims=True) + 1
    previous /= previous.sum(2, keepdims=True) + 1
    writes[0, 1] = 0  # Batch 0, head 1: no writing.
    writes[1, 2] /= writes[1, 2].sum()  # Batch 1, head 2: all writing.
    with jax.enable_x64():
      weights = np.asarray(addressing.precedence_weights(previous, writes))
    self.assertGreaterEqual(weights.min(), 0)
    self.assertLessEqual(weights.max(), 1)
    np.testing.assert_allclose(weights[0, 1], previous[0, 1])
    np.testing.assert_allclose(weights[1, 2], writes[1, 2])
    np.testing.assert_allclose(
        weights, (1 - writes.sum(2, keepdims=True)) * previous + writes)


class FreenessTest(absltest.TestCase):

  def test_usage(self):
    batch_size, memory_size, num_reads, num_writes = 5, 11, 3, 7
    rng = np.random.RandomState(5)
    free_gate = rng.rand(batch_size, num_reads)
    read = rng.rand(batch_size, num_reads, memory_size)
    read[1, :, 3] = 0  # No read at batch 1, slot 3.
    read /= read.sum(2, keepdims=True)
    write = rng.rand(batch_size, num_writes, memory_size)
    write /= write.sum(2, keepdims=True)
    previous = rng.rand(batch_size, memory_size)
    write[1, 2, 3] = 1  # A full write at batch 1, head 2, slot 3.
    read[2, 0, 4] = 1  # A full read at batch 2, head 0, slot 4...
    free_gate[2, 0] = 1  # ...which may be freed.
    with jax.enable_x64():
      usage = np.asarray(
          addressing.updated_usage(write, free_gate, read, previous))
    self.assertGreaterEqual(usage.min(), 0)
    self.assertLessEqual(usage.max(), 1)
    self.assertEqual(usage[1, 3], 1)
    self.assertEqual(usage[2, 4], 0)
    # Against NumPy.
    written = 1 - np.prod(1 - write, axis=1)
    expected = (previous + (1 - previous) * written) * np.prod(
        1 - free_gate[..., None] * read, axis=1)
    np.testing.assert_allclose(usage, expected, rtol=1e-12)

  def test_usage_is_not_differentiated_by_the_write_weights(self):
    args = [jnp.full([2, 3, 4], 0.2), jnp.full([2, 2], 0.5),
            jnp.full([2, 2, 4], 0.25), jnp.full([2, 4], 0.3)]
    grads = jax.grad(lambda *a: jnp.sum(addressing.updated_usage(*a)),
                     argnums=(0, 1, 2, 3))(*args)
    np.testing.assert_array_equal(grads[0], 0)
    for grad in grads[1:]:
      self.assertGreater(np.abs(grad).max(), 0)

  def test_write_allocation_weights(self):
    batch_size, memory_size, num_writes = 7, 23, 5
    rng = np.random.RandomState(6)
    usage = rng.rand(batch_size, memory_size)
    gates = rng.rand(batch_size, num_writes)
    # Batch 0: heads 1 and 3 do not write, so they leave the usage as it was
    # and the next heads get the same weights; 0 and 2 write fully.
    gates[0, 1] = gates[0, 3] = 0
    gates[0, 0] = gates[0, 2] = 1
    # Batch 1: slot 4 is unused and slot 3 almost, for heads 0 and 1.
    usage[1] = usage[1] * 0.9 + 0.1
    usage[1, 4] = 0
    usage[1, 3] = 1e-4
    gates[1, 0] = gates[1, 1] = 1
    weights = np.asarray(addressing.write_allocation_weights(usage, gates))
    self.assertEqual(weights.shape, (batch_size, num_writes, memory_size))
    self.assertGreaterEqual(weights.min(), 0)
    self.assertLessEqual(weights.max(), 1)
    np.testing.assert_allclose(weights.sum(2), 1, atol=1e-3)
    self.assertGreater(np.abs(weights[0, 0] - weights[0, 1]).max(), 0.1)
    np.testing.assert_array_equal(weights[0, 1], weights[0, 2])
    self.assertGreater(np.abs(weights[0, 2] - weights[0, 3]).max(), 0.1)
    np.testing.assert_array_equal(weights[0, 3], weights[0, 4])
    np.testing.assert_allclose(weights[1, 0], _one_hot(memory_size, 4),
                               atol=1e-3)
    np.testing.assert_allclose(weights[1, 1], _one_hot(memory_size, 3),
                               atol=1e-3)

  def test_allocation(self):
    usage = np.random.RandomState(7).rand(7, 13)
    allocation = np.asarray(addressing.allocation(usage))
    np.testing.assert_array_equal(np.argmin(usage, 1), np.argmax(allocation, 1))
    np.testing.assert_array_equal(np.argmax(usage, 1), np.argmin(allocation, 1))
    np.testing.assert_allclose(allocation.sum(1), 1, atol=0.01)

  def test_allocation_against_numpy(self):
    usage = np.random.RandomState(8).rand(3, 6)
    with jax.enable_x64():
      got = np.asarray(addressing.allocation(usage))
    for b in range(3):
      u = addressing.EPSILON + (1 - addressing.EPSILON) * usage[b]
      expected = np.zeros(6)
      product = 1.0
      for slot in np.argsort(u, kind='stable'):
        expected[slot] = (1 - u[slot]) * product
        product *= u[slot]
      np.testing.assert_allclose(got[b], expected, rtol=1e-12)

  def test_gradients(self):
    rng = np.random.RandomState(9)
    with jax.enable_x64():
      usage = jnp.asarray(rng.rand(1, 5))
      jax.test_util.check_grads(jax.jit(addressing.allocation), (usage,),
                                order=1,
                                modes=('rev',), eps=1e-5)
      gates = jnp.asarray(rng.rand(7, 3))
      usage = jnp.asarray(rng.rand(7, 5))
      jax.test_util.check_grads(jax.jit(addressing.write_allocation_weights),
                                (usage, gates), order=1, modes=('rev',),
                                eps=1e-5)
      memory = jnp.asarray(rng.randn(2, 5, 3))
      keys = jnp.asarray(rng.randn(2, 2, 3))
      strengths = jnp.asarray(rng.randn(2, 2))
      jax.test_util.check_grads(jax.jit(addressing.cosine_weights),
                                (memory, keys, strengths), order=1,
                                modes=('fwd', 'rev'), eps=1e-5)

  def test_oneplus(self):
    np.testing.assert_allclose(addressing.oneplus(np.array([-50.0, 0.0, 3.0])),
                               [1.0, 1 + np.log(2), 1 + _softplus(3.0)],
                               rtol=1e-6)



class UtilTest(absltest.TestCase):
  """The reference's util_test.py (its batch helpers)."""

  def test_batch_invert_permutation(self):
    rng = np.random.RandomState(10)
    permutations = np.stack([rng.permutation(7) for _ in range(5)])
    inverse = np.asarray(addressing.batch_invert_permutation(permutations))
    for i in range(5):
      for j in range(7):
        self.assertEqual(permutations[i][inverse[i][j]], j)

  def test_batch_gather(self):
    values = np.array([[3, 1, 4, 1], [5, 9, 2, 6], [5, 3, 5, 7]])
    indices = np.array([[1, 2, 0, 3], [3, 0, 1, 2], [0, 2, 1, 3]])
    np.testing.assert_array_equal(
        addressing.batch_gather(values, indices),
        [[1, 4, 3, 1], [6, 5, 9, 2], [5, 5, 3, 7]])


if __name__ == '__main__':
  absltest.main()
