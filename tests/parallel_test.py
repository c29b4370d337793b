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
"""Tests of data-parallel training (rmc/toolkit/parallel.py and the binaries).

The binaries run on 2 emulated CPU devices in a subprocess
(``data_parallel_worker.py``), and as 2 processes of one device each joined
by ``jax.distributed`` (``--multihost``), and are compared with 1 device.

How "the same step" is checked. The loss, the gradient and every other array
must agree within 1e-6; the gradients are summed in another order on 2
devices, so they agree to rounding, not bitwise. The parameters then agree
within 1e-6 wherever the gradient is more than rounding noise (|g| >= 1e-6).
Where it is not (e.g. the key part of the qkv LayerNorm offset, whose exact
gradient is 0: softmax ignores a shift shared by all keys), Adam's first
step ``lr * g / (|g| + eps)`` turns noise of ~1e-9 into a move of up to the
learning rate on either run, so there the check is that bound.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rmc.toolkit import checkpoint
from rmc.toolkit import metrics
from rmc.toolkit import parallel

import binary_testing

jax.config.update('jax_numpy_rank_promotion', 'raise')

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'data_parallel_worker.py')
_LEARNING_RATE = 3e-3  # Of every smoke preset.
_ADAM_B1 = 0.9


def _env(num_devices):
  return dict(os.environ, JAX_NUM_CPU_DEVICES=str(num_devices),
              JAX_PLATFORMS='cpu', PYTHONPATH=_ROOT)


def _checkpoint(workdir, step):
  with np.load(checkpoint.path_for_step(workdir, step)) as data:
    return {k: data[k] for k in data.files}


def _train_records(workdir):
  return [r for r in metrics.read_records(
      os.path.join(workdir, 'metrics.jsonl')) if r['split'] == 'train']


class DataParallelTest(absltest.TestCase):
  """The mesh on this process's one device."""

  def test_one_device_holds_everything(self):
    mesh = parallel.DataParallel()
    self.assertEqual(mesh.num_devices, jax.device_count())
    self.assertTrue(mesh.is_primary)
    self.assertEqual(mesh.process_rows(6), slice(0, 6))
    self.assertTrue(mesh.divides(6))

  def test_batch_axes_and_round_trip(self):
    mesh = parallel.DataParallel()
    tree = {'tokens': np.arange(12).reshape(3, 4), 'lengths': np.arange(4),
            'key': jax.random.key(3)}
    axes = {'tokens': 1, 'lengths': 0, 'key': None}
    self.assertEqual(parallel.shift_axes(axes),
                     {'tokens': 2, 'lengths': 1, 'key': None})
    placed = mesh.put_global(tree, axes)
    self.assertEqual(placed['tokens'].sharding.spec,
                     jax.sharding.PartitionSpec(None, 'data'))
    self.assertEqual(placed['key'].sharding.spec,
                     jax.sharding.PartitionSpec())
    back = mesh.gather(placed)
    np.testing.assert_array_equal(back['tokens'], tree['tokens'])
    np.testing.assert_array_equal(back['key'],
                                  jax.random.key_data(tree['key']))
    local = mesh.put_local(tree, axes)
    self.assertIs(mesh.put_local(local, axes)['tokens'], local['tokens'])
    constrained = jax.jit(lambda t: mesh.constrain(t, 1))(
        jnp.arange(8.0).reshape(2, 4))
    np.testing.assert_array_equal(constrained, np.arange(8.0).reshape(2, 4))

  def test_needs_devices(self):
    with self.assertRaisesRegex(ValueError, 'at least one device'):
      parallel.DataParallel([])


@pytest.mark.slow
class TwoDevicesTest(absltest.TestCase):
  """The binaries on 2 emulated devices, and as 2 processes."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out = tempfile.mkdtemp()
    cls.data_dir = os.path.join(cls.out, 'data')
    os.makedirs(cls.data_dir)
    binary_testing.write_wikitext_corpus(cls.data_dir)
    result = subprocess.run(
        [sys.executable, _WORKER, cls.out, cls.data_dir], env=_env(2),
        capture_output=True, text=True, check=False, timeout=600)
    if result.returncode:
      raise AssertionError(f'The worker failed:\n{result.stderr[-5000:]}')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.out, ignore_errors=True)
    super().tearDownClass()

  def assert_same_step(self, two, one):
    """Checkpoints after one step on 2 devices and on 1: the same step."""
    self.assertEqual(set(two), set(one))
    grads = {}
    for name, value in one.items():
      match = re.search(r'\.mu(\[.*)$', name)
      if match:
        grads['[0].params' + match.group(1)] = value / (1 - _ADAM_B1)
    self.assertNotEmpty(grads)
    signal_elements = 0
    for name in one:
      a, b = two[name].astype(np.float64), one[name].astype(np.float64)
      if name in grads:
        signal = np.abs(grads[name]) >= 1e-6
        np.testing.assert_allclose(a[signal], b[signal], rtol=0, atol=1e-6,
                                   err_msg=name)
        np.testing.assert_array_less(np.abs(a - b), 2 * _LEARNING_RATE,
                                     err_msg=name)
        signal_elements += signal.sum()
      elif '.mu[' in name:  # The gradient, times 0.1.
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7, err_msg=name)
      elif '.nu[' in name:  # Its square, times 0.001.
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-12, err_msg=name)
      else:  # Step counts, the PRNG key, the recurrent state.
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=name)
    # Most parameters are held to 1e-6.
    self.assertGreater(signal_elements / sum(one[n].size for n in grads), 0.5)

  def test_one_step_matches_one_device(self):
    runs = {'nth_farthest': ('nth_farthest_2', 'nth_farthest_1'),
            'nth_farthest --core=dnc': ('nth_farthest_dnc_2',
                                        'nth_farthest_dnc_1'),
            'learn_to_execute': ('learn_to_execute_2', 'learn_to_execute_1'),
            'wikitext103': ('resume', 'straight')}
    for binary, (two, one) in runs.items():
      with self.subTest(binary):
        two, one = (os.path.join(self.out, run) for run in (two, one))
        first_two, first_one = _train_records(two)[0], _train_records(one)[0]
        self.assertEqual(first_two['step'], 1)
        self.assertEqual((first_two['devices'], first_one['devices']), (2, 1))
        self.assertAlmostEqual(first_two['loss'], first_one['loss'],
                               delta=1e-6)
        self.assert_same_step(_checkpoint(two, 1), _checkpoint(one, 1))

  def test_checkpoint_of_two_devices_resumes_on_one(self):
    resumed = _train_records(os.path.join(self.out, 'resume'))
    straight = _train_records(os.path.join(self.out, 'straight'))
    self.assertEqual([(r['step'], r['devices']) for r in resumed],
                     [(1, 2), (2, 2), (3, 1), (4, 1)])
    np.testing.assert_allclose([r['loss'] for r in resumed],
                               [r['loss'] for r in straight], rtol=1e-5)
    # The recurrent state was saved whole: [batch_size=4, slots, size].
    state = _checkpoint(os.path.join(self.out, 'resume'), 2)
    carry = [v for k, v in state.items() if k.startswith('[0].carry')]
    self.assertNotEmpty(carry)
    for value in carry:
      self.assertEqual(value.shape[0], 4)

  def test_batch_size_must_divide_by_devices(self):
    with open(os.path.join(self.out, 'errors.json')) as f:
      errors = json.load(f)
    self.assertIn('--batch_size=3 does not divide evenly over the 2 devices',
                  errors['batch_size'])
    self.assertIn('--num_devices=3, but there are only 2 devices',
                  errors['num_devices'])

  def test_two_processes_match_two_devices_and_only_process_0_writes(self):
    with socket.socket() as s:
      s.bind(('localhost', 0))
      port = s.getsockname()[1]
    workdirs = [os.path.join(self.out, f'process_{i}') for i in range(2)]
    processes = [subprocess.Popen(
        [sys.executable, '-m', 'experiments.wikitext103', '--preset=smoke',
         '--num_steps=2', '--steps_per_chunk=1', '--log_every=1',
         '--eval_every=1', '--checkpoint_every=1', '--eval_batch_size=4',
         f'--data_dir={self.data_dir}',
         f'--cache_dir={self.out}/cache_{i}', f'--workdir={workdirs[i]}',
         '--multihost', f'--coordinator_address=localhost:{port}',
         '--num_processes=2', f'--process_id={i}'],
        env=_env(1), cwd=_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    for p, (_, stderr) in zip(processes, outputs):
      self.assertEqual(p.returncode, 0, stderr[-5000:])
    # Process 1 was given its own work directory: it wrote nothing there.
    self.assertFalse(os.path.exists(workdirs[1]))
    records = _train_records(workdirs[0])
    expected = _train_records(os.path.join(self.out, 'resume'))[:2]
    self.assertEqual([r['devices'] for r in records], [2, 2])
    np.testing.assert_allclose([r['loss'] for r in records],
                               [r['loss'] for r in expected], rtol=1e-6)
    self.assert_same_step(_checkpoint(workdirs[0], 1),
                          _checkpoint(os.path.join(self.out, 'resume'), 1))
    reports = [stdout.strip().splitlines()[-1] for stdout, _ in outputs]
    self.assertStartsWith(reports[0], 'Validation (valid) perplexity')
    self.assertEqual(reports[0], reports[1])  # Both processes saw the same.


if __name__ == '__main__':
  absltest.main()
