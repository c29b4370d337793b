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
"""Tests for rmc.checkpoint."""

import os

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import optax
from rmc import checkpoint

jax.config.update('jax_numpy_rank_promotion', 'raise')


def _tree(seed=0):
  params = {'linear': {'w': jnp.full([3, 2], float(seed)),
                       'b': jnp.zeros([2], jnp.bfloat16)}}
  return {'params': params,
          'opt_state': optax.adam(1e-3).init(params),
          'step': jnp.asarray(seed, jnp.int32),
          'rng': jax.random.key(seed)}


class CheckpointTest(absltest.TestCase):

  def test_round_trip_is_exact(self):
    directory = self.create_tempdir().full_path
    tree = _tree(5)
    tree['params']['linear']['w'] = jnp.asarray(
        np.random.default_rng(0).normal(size=[3, 2]), jnp.float32)
    checkpoint.save(directory, 7, tree)
    step, restored = checkpoint.restore_latest(directory, _tree(0))
    self.assertEqual(step, 7)
    self.assertEqual(jax.tree.structure(restored), jax.tree.structure(tree))
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(tree)):
      if jax.dtypes.issubdtype(b.dtype, jax.dtypes.prng_key):
        a, b = jax.random.key_data(a), jax.random.key_data(b)
      self.assertEqual(np.asarray(a).dtype, np.asarray(b).dtype)
      np.testing.assert_array_equal(a, b)

  def test_keeps_last_k_and_leaves_no_temporary_files(self):
    directory = self.create_tempdir().full_path
    for step in (10, 20, 30, 40):
      checkpoint.save(directory, step, _tree(step), keep=2)
    self.assertEqual(checkpoint.list_steps(directory), [30, 40])
    self.assertEqual(sorted(os.listdir(directory)),
                     [os.path.basename(checkpoint.path_for_step(directory, s))
                      for s in (30, 40)])

  def test_empty_directory(self):
    directory = self.create_tempdir().full_path
    self.assertIsNone(checkpoint.restore_latest(directory, _tree()))
    self.assertIsNone(checkpoint.restore_latest(
        os.path.join(directory, 'missing'), _tree()))

  def test_mismatched_template_is_a_clear_error(self):
    directory = self.create_tempdir().full_path
    path = checkpoint.save(directory, 1, _tree())
    other = _tree()
    other['params']['linear']['w'] = jnp.zeros([4, 2])
    with self.assertRaisesRegex(checkpoint.CheckpointError,
                                r"\['linear'\]\['w'\].*\(3, 2\)"):
      checkpoint.restore(path, other)
    del other['params']['linear']['b']
    with self.assertRaisesRegex(checkpoint.CheckpointError, 'missing'):
      checkpoint.restore(path, other)

  def test_unreadable_file_is_named(self):
    directory = self.create_tempdir().full_path
    path = checkpoint.path_for_step(directory, 3)
    with open(path, 'wb') as f:
      f.write(b'not a checkpoint')
    with self.assertRaisesRegex(checkpoint.CheckpointError,
                                'Cannot read checkpoint .*0003'):
      checkpoint.restore(path, _tree())

  def test_failed_write_keeps_previous_checkpoint(self):
    directory = self.create_tempdir().full_path
    checkpoint.save(directory, 1, _tree(1))

    class Unsaveable:

      def __array__(self, dtype=None, copy=None):
        raise RuntimeError('disk full')

    with self.assertRaisesRegex(RuntimeError, 'disk full'):
      checkpoint.save(directory, 2, {'x': Unsaveable()})
    self.assertEqual(os.listdir(directory), [os.path.basename(
        checkpoint.path_for_step(directory, 1))])


if __name__ == '__main__':
  absltest.main()
