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
"""Tests for rmc.toolkit.checkpoint (and the full-disk error of rmc.toolkit.atomic_file)."""

import errno
import os
from unittest import mock

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import optax
from rmc.toolkit import atomic_file
from rmc.toolkit import checkpoint

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

  def test_restores_a_subtree_into_shapes(self):
    directory = self.create_tempdir().full_path
    tree = (_tree(3), {'curriculum': np.ones([2], np.int32)})
    path = checkpoint.save(directory, 3, tree)
    shapes = jax.eval_shape(lambda: tree[0]['params'])
    params = checkpoint.restore(path, shapes, prefix="[0]['params']")
    for got, want in zip(jax.tree.leaves(params),
                         jax.tree.leaves(tree[0]['params'])):
      self.assertEqual(got.dtype, want.dtype)
      np.testing.assert_array_equal(got, want)
    wrong = dict(shapes, linear=dict(
        shapes['linear'], w=jax.ShapeDtypeStruct((2, 2), jnp.float32)))
    with self.assertRaisesRegex(
        checkpoint.CheckpointError,
        r"\[0\]\['params'\]\['linear'\]\['w'\] has shape \(3, 2\)"):
      checkpoint.restore(path, wrong, prefix="[0]['params']")
    with self.assertRaisesRegex(checkpoint.CheckpointError,
                                r"missing \[\"\[1\]\['other'\]\"\]"):
      checkpoint.restore(path, {'other': shapes['linear']['b']},
                         prefix='[1]')

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

  def test_damaged_checkpoints_are_set_aside_and_an_older_one_restored(self):
    directory = self.create_tempdir().full_path
    for step in (10, 20, 30):
      checkpoint.save(directory, step, _tree(step), keep=3)
    cut = checkpoint.path_for_step(directory, 30)
    with open(cut, 'r+b') as f:  # A copy cut short.
      f.truncate(os.path.getsize(cut) // 2)
    garbled = checkpoint.path_for_step(directory, 20)
    with open(garbled, 'r+b') as f:  # Bytes flipped inside an array.
      data = bytearray(f.read())
      data[len(data) // 3] ^= 0xFF
      data[len(data) // 2] ^= 0xFF
      f.seek(0)
      f.write(data)
    with self.assertLogs(level='WARNING') as logs:
      step, restored = checkpoint.restore_latest(directory, _tree())
    self.assertEqual(step, 10)
    np.testing.assert_array_equal(restored['params']['linear']['w'],
                                  np.full([3, 2], 10.0))
    self.assertTrue(any('Skipping checkpoint ' + cut in m
                        for m in logs.output))
    self.assertTrue(any('Resuming from the older checkpoint' in m
                        for m in logs.output))
    self.assertEqual(checkpoint.list_steps(directory), [10])
    self.assertTrue(os.path.exists(cut + '.corrupt'))
    # Keep-last-k counts only readable checkpoints: the good one survives.
    checkpoint.save(directory, 40, _tree(40), keep=2)
    self.assertEqual(checkpoint.list_steps(directory), [10, 40])

  def test_garbled_checkpoint_is_unreadable_not_a_mismatch(self):
    directory = self.create_tempdir().full_path
    path = checkpoint.save(directory, 1, _tree())
    with open(path, 'r+b') as f:
      data = bytearray(f.read())
    for i in range(len(data) // 4, len(data) // 2, 7):
      data[i] ^= 0x5A
    with open(path, 'wb') as f:
      f.write(data)
    with self.assertRaises(checkpoint.CorruptCheckpointError):
      checkpoint.restore(path, _tree())

  def test_set_aside_false_leaves_files_alone(self):
    directory = self.create_tempdir().full_path
    checkpoint.save(directory, 1, _tree())
    with open(checkpoint.path_for_step(directory, 2), 'wb') as f:
      f.write(b'cut')
    step, _ = checkpoint.restore_latest(directory, _tree(), set_aside=False)
    self.assertEqual(step, 1)
    self.assertEqual(checkpoint.list_steps(directory), [1, 2])

  def test_nothing_readable_is_an_error_listing_every_checkpoint(self):
    directory = self.create_tempdir().full_path
    for step in (1, 2):
      with open(checkpoint.path_for_step(directory, step), 'wb') as f:
        f.write(b'not a checkpoint')
    with self.assertRaisesRegex(
        checkpoint.CheckpointError,
        'None of the 2 checkpoints .* can be read: Cannot read checkpoint '
        '.*0002.npz.*; Cannot read checkpoint .*0001.npz'):
      checkpoint.restore_latest(directory, _tree())
    self.assertEqual(checkpoint.list_steps(directory), [1, 2])

  def test_another_model_is_an_error_not_a_skip(self):
    directory = self.create_tempdir().full_path
    checkpoint.save(directory, 1, _tree())
    checkpoint.save(directory, 2, _tree())
    other = _tree()
    other['params']['linear']['w'] = jnp.zeros([4, 2])
    with self.assertRaisesRegex(checkpoint.CheckpointError, '0002.npz'):
      checkpoint.restore_latest(directory, other)
    self.assertEqual(checkpoint.list_steps(directory), [1, 2])

  def test_full_disk_names_the_path_and_the_bytes(self):
    directory = self.create_tempdir().full_path
    size = os.path.getsize(checkpoint.save(directory, 1, _tree(1)))

    def no_space(fd):
      del fd
      raise OSError(errno.ENOSPC, 'No space left on device')

    with mock.patch.object(os, 'fsync', no_space):
      with self.assertRaisesRegex(
          atomic_file.DiskFullError,
          r'No space left on the device to write .*0002.npz: it needs '
          r'[\d,]+ bytes; [\d,]+ bytes are free there.$') as cm:
        checkpoint.save(directory, 2, _tree(2))
    # The estimate covers the file (an equal tree's checkpoint), not much more.
    self.assertBetween(cm.exception.needed, size, 2 * size)
    self.assertEqual(cm.exception.errno, errno.ENOSPC)
    self.assertEqual(os.listdir(directory), [os.path.basename(
        checkpoint.path_for_step(directory, 1))])
    self.assertEqual(checkpoint.restore_latest(directory, _tree())[0], 1)

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
