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
"""Tests for rmc.data.nth_farthest."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
from rmc.data import nth_farthest

jax.config.update('jax_numpy_rank_promotion', 'raise')


def brute_force_labels(inputs: np.ndarray, num_features: int) -> np.ndarray:
  """Recomputes every label from the shuffled rows alone, in float64."""
  inputs = np.asarray(inputs, np.float64)
  _, num_objects, _ = inputs.shape
  labels = []
  for rows in inputs:
    vectors = rows[:, :num_features]
    ids = rows[:, num_features:num_features + num_objects].argmax(-1)
    reference = rows[0, num_features + num_objects:
                     num_features + 2 * num_objects].argmax()
    nth = rows[0, num_features + 2 * num_objects:].argmax()
    reference_vector = vectors[list(ids).index(reference)]
    distance = {int(i): float(np.linalg.norm(v - reference_vector))
                for i, v in zip(ids, vectors)}
    ranked = sorted(distance, key=distance.get)  # Ascending distance.
    labels.append(ranked[nth])
  return np.array(labels)


class NthFarthestDataTest(parameterized.TestCase):

  @parameterized.parameters((4, 4, 256), (8, 16, 256), (2, 3, 64))
  def test_labels_match_brute_force(self, num_objects, num_features, batch):
    generate = jax.jit(nth_farthest.generate, static_argnums=(1, 2, 3))
    data = generate(jax.random.key(7), batch, num_objects, num_features)
    self.assertEqual(data.inputs.shape, (
        batch, num_objects, nth_farthest.feature_size(num_objects,
                                                      num_features)))
    self.assertEqual(data.labels.dtype, np.int32)
    np.testing.assert_array_equal(
        data.labels, brute_force_labels(data.inputs, num_features))

  def test_row_structure(self):
    k, f = 5, 3
    data = nth_farthest.generate(jax.random.key(1), 512, k, f)
    inputs = np.asarray(data.inputs)
    vectors = inputs[..., :f]
    self.assertTrue(np.all((vectors >= -1) & (vectors < 1)))
    self.assertGreater(vectors.std(), 0.5)  # Uniform(-1, 1) has std 0.577.
    for start in (f, f + k, f + 2 * k):  # id, reference and nth one-hots.
      one_hots = inputs[..., start:start + k]
      np.testing.assert_array_equal(one_hots.sum(-1), 1.0)
      self.assertTrue(np.all((one_hots == 0) | (one_hots == 1)))
    ids = inputs[..., f:f + k].argmax(-1)  # [B, K]
    np.testing.assert_array_equal(np.sort(ids, axis=-1),
                                  np.broadcast_to(np.arange(k), ids.shape))
    # Reference and nth are the same on every row of a sequence.
    for start in (f + k, f + 2 * k):
      np.testing.assert_array_equal(
          inputs[..., start:start + k],
          np.broadcast_to(inputs[:, :1, start:start + k], (512, k, k)))
    # Rows are shuffled: ids are not in order for most sequences.
    in_order = np.all(ids == np.arange(k), axis=-1).mean()
    self.assertLess(in_order, 0.05)

  def test_nth_zero_is_reference_and_labels_cover_all_ids(self):
    k, f = 6, 4
    data = nth_farthest.generate(jax.random.key(3), 4096, k, f)
    inputs, labels = np.asarray(data.inputs), np.asarray(data.labels)
    reference = inputs[:, 0, f + k:f + 2 * k].argmax(-1)
    nth = inputs[:, 0, f + 2 * k:].argmax(-1)
    np.testing.assert_array_equal(labels[nth == 0], reference[nth == 0])
    self.assertTrue(np.all(labels[nth != 0] != reference[nth != 0]))
    counts = np.bincount(labels, minlength=k) / len(labels)
    np.testing.assert_allclose(counts, 1 / k, atol=0.03)

  def test_deterministic_in_key(self):
    first = nth_farthest.generate(jax.random.key(5), 8, 4, 4)
    again = nth_farthest.generate(jax.random.key(5), 8, 4, 4)
    other = nth_farthest.generate(jax.random.key(6), 8, 4, 4)
    np.testing.assert_array_equal(first.inputs, again.inputs)
    np.testing.assert_array_equal(first.labels, again.labels)
    self.assertFalse(np.array_equal(first.inputs, other.inputs))

  def test_num_ranks_restricts_the_queried_rank_only(self):
    k, f = 5, 3
    generate = jax.jit(nth_farthest.generate, static_argnums=(1, 2, 3))
    for num_ranks in (1, 2, 4):
      # Traced, as the curriculum passes it.
      data = generate(jax.random.key(2), 2048, k, f, jnp.int32(num_ranks))
      inputs = np.asarray(data.inputs)
      nth = inputs[:, 0, f + 2 * k:].argmax(-1)
      np.testing.assert_array_equal(np.unique(nth), np.arange(num_ranks))
      self.assertEqual(inputs.shape, (2048, k, f + 3 * k))  # Same encoding.
      np.testing.assert_array_equal(data.labels,
                                    brute_force_labels(inputs, f))
    # All ranks, as without num_ranks.
    full = nth_farthest.generate(jax.random.key(2), 64, k, f, num_ranks=k)
    default = nth_farthest.generate(jax.random.key(2), 64, k, f)
    np.testing.assert_array_equal(full.inputs, default.inputs)

  @parameterized.parameters(
      dict(batch_size=0, num_objects=4, num_features=4, regex='batch_size'),
      dict(batch_size=2, num_objects=1, num_features=4, regex='num_objects'),
      dict(batch_size=2, num_objects=4, num_features=0, regex='num_features'),
      dict(batch_size=2, num_objects=4, num_features=2, num_ranks=5,
           regex='num_ranks'),
      dict(batch_size=2, num_objects=4, num_features=2, num_ranks=0,
           regex='num_ranks'),
  )
  def test_bad_sizes(self, regex, **sizes):
    with self.assertRaisesRegex(ValueError, regex):
      nth_farthest.generate(jax.random.key(0), **sizes)


if __name__ == '__main__':
  absltest.main()
