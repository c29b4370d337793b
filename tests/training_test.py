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
"""Tests for rmc.toolkit.training and rmc.toolkit.metrics."""

import errno
import json
import os
import time
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
from rmc.toolkit import atomic_file
from rmc.toolkit import checkpoint
from rmc.toolkit import metrics
from rmc.toolkit import training

jax.config.update('jax_numpy_rank_promotion', 'raise')


class _RegressionData:
  """Host data for a linear regression; its state counts the logs seen."""

  def __init__(self, nan_from_step=None):
    self._nan_from_step = nan_from_step
    self.logs_seen = 0

  def batches(self, first_step, num_steps):
    x = np.stack([np.random.default_rng(first_step + i).normal(size=[8, 3])
                  for i in range(num_steps)]).astype(np.float32)
    y = x @ np.arange(3, dtype=np.float32)
    steps = first_step + np.arange(num_steps)
    if self._nan_from_step is not None:
      y[steps >= self._nan_from_step] = np.nan
    return {'x': x, 'y': y, 'step': steps}  # [K, 8, 3], [K, 8], [K]

  def state(self):
    return {'logs_seen': np.asarray(self.logs_seen, np.int64)}

  def restore(self, state):
    self.logs_seen = int(state['logs_seen'])

  def observe(self, record):
    assert record['split'] == 'train'
    self.logs_seen += 1


def _regression_problem(nan_from_step=None):
  """A linear regression whose data is made on the host, per step."""
  data = _RegressionData(nan_from_step)

  def loss_fn(params, key, batch):
    noise = 1e-3 * jax.random.normal(key, batch['y'].shape)
    error = batch['x'] @ params['w'] - batch['y'] + noise
    return jnp.mean(error ** 2), {'abs_error': jnp.mean(jnp.abs(error)),
                                  'data_step': batch['step'].astype(float)}

  def metrics_fn(params, batch):
    return {'loss': jnp.mean((batch['x'] @ params['w'] - batch['y']) ** 2)}

  optimizer, schedule = training.make_optimizer(0.05, 0.01, decay_steps=50)
  state = training.init_state({'w': jnp.zeros([3])}, optimizer,
                              jax.random.key(0))
  eval_set = data.batches(10_000, 2)
  axes = {'x': 0, 'y': 0, 'step': None}  # 'step' [] has no batch axis.
  return dict(
      state=state,
      train_chunk=training.make_train_chunk(loss_fn, optimizer, schedule,
                                            batch_axes=axes),
      evaluate=training.make_evaluator(metrics_fn, eval_set, batch_axes=axes),
      data=data)


def _config(**overrides):
  values = dict(num_steps=40, steps_per_chunk=5, log_every=10, eval_every=20,
                checkpoint_every=20, keep_checkpoints=2) | overrides
  return training.LoopConfig(**values)


class ScheduleTest(absltest.TestCase):

  def test_sonnet_decay_with_floor(self):
    _, schedule = training.make_optimizer(1e-4, 8e-5, decay_steps=10_000)
    for step in (0, 1, 5000, 10_000, 21_000, 21_500, 100_000):
      expected = max(1e-4 * 0.9 ** (step / 10_000), 8e-5)
      self.assertAlmostEqual(float(schedule(step)), expected, delta=1e-11)

  def test_constant_rate_above_the_floor(self):
    # decay_rate 1: the rate stays at learning_rate, not at the floor.
    _, schedule = training.make_optimizer(3e-3, 1e-3, decay_steps=1,
                                          decay_rate=1.0)
    for step in (0, 1, 1000, 100_000):
      self.assertAlmostEqual(float(schedule(step)), 3e-3, delta=1e-9)

  def test_linear_warmup_on_top_of_the_decay(self):
    _, schedule = training.make_optimizer(1e-3, 1e-4, decay_steps=2000,
                                          warmup_steps=100)
    for step in (0, 49, 99, 100, 5000, 100_000):
      expected = (max(1e-3 * 0.9 ** (step / 2000), 1e-4)
                  * min(1.0, (step + 1) / 100))
      self.assertAlmostEqual(float(schedule(step)), expected, delta=1e-10)

  def test_bad_rates(self):
    with self.assertRaisesRegex(ValueError, 'min_learning_rate'):
      training.make_optimizer(1e-4, 1e-3, decay_steps=10)
    with self.assertRaisesRegex(ValueError, 'decay_steps'):
      training.make_optimizer(1e-4, 1e-5, decay_steps=0)
    with self.assertRaisesRegex(ValueError, 'warmup_steps'):
      training.make_optimizer(1e-4, 1e-5, decay_steps=10, warmup_steps=-1)


class LoopConfigTest(parameterized.TestCase):

  @parameterized.parameters(
      (dict(log_every=7), 'log_every=7 must be a multiple of steps_per_chunk'),
      (dict(checkpoint_every=12), 'checkpoint_every=12'),
      (dict(num_steps=0), 'num_steps must be >= 1'),
      (dict(time_budget_s=-1.0), '--time_budget_s must be >= 0.0'),
  )
  def test_rejects(self, overrides, regex):
    with self.assertRaisesRegex(ValueError, regex):
      _config(**overrides)


class TrainTest(absltest.TestCase):

  def test_trains_logs_evaluates_and_checkpoints(self):
    workdir = self.create_tempdir().full_path
    summary = training.train(workdir=workdir, config=_config(),
                             **_regression_problem())
    self.assertEqual(summary['step'], 40)
    self.assertEqual(summary['stopped_by'], 'num_steps')
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    train_records = [r for r in records if r['split'] == 'train']
    eval_records = [r for r in records if r['split'] == 'eval']
    self.assertEqual([r['step'] for r in train_records], [10, 20, 30, 40])
    self.assertEqual([r['step'] for r in eval_records], [0, 20, 40])
    for key in ('loss', 'abs_error', 'learning_rate', 'steps_per_sec',
                'elapsed_s', 'eta_s', 'input_ms_per_step'):
      self.assertIn(key, train_records[0])
    self.assertLess(train_records[-1]['loss'], train_records[0]['loss'] / 5)
    self.assertLess(eval_records[-1]['eval_loss'], eval_records[0]['eval_loss'])
    self.assertEqual(checkpoint.list_steps(workdir), [20, 40])
    # The first chunk's time is in the first record only; CPUs give no
    # device memory statistics.
    self.assertGreater(train_records[0]['first_chunk_s'], 0)
    self.assertTrue(all('first_chunk_s' not in r for r in train_records[1:]))
    self.assertIsNone(training.peak_device_memory_mib())
    self.assertTrue(all('peak_memory_mib' not in r for r in train_records))

  def test_peak_device_memory_is_the_largest_device_peak(self):
    class FakeDevice:

      def __init__(self, stats):
        self._stats = stats

      def memory_stats(self):
        if isinstance(self._stats, Exception):
          raise self._stats
        return self._stats

    devices = [FakeDevice({'peak_bytes_in_use': 3 * 2**20}),
               FakeDevice(None), FakeDevice(RuntimeError('unsupported')),
               FakeDevice({'peak_bytes_in_use': 5 * 2**20, 'bytes_in_use': 1})]
    with mock.patch.object(jax, 'local_devices', return_value=devices):
      self.assertEqual(training.peak_device_memory_mib(), 5.0)
    with mock.patch.object(jax, 'local_devices', return_value=devices[1:3]):
      self.assertIsNone(training.peak_device_memory_mib())

  def test_each_log_averages_its_whole_interval(self):
    workdir = self.create_tempdir().full_path
    # Evaluations and checkpoints every chunk, logs every other chunk.
    training.train(workdir=workdir,
                   config=_config(eval_every=5, checkpoint_every=5),
                   **_regression_problem())
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    means = [r['data_step'] for r in records if r['split'] == 'train']
    self.assertEqual(means, [4.5, 14.5, 24.5, 34.5])  # Means of 0..9, ...

  def test_input_time_is_logged_per_step(self):
    problem = _regression_problem()
    slow = problem['data']
    slow_batches = slow.batches

    def batches(first_step, num_steps):  # 20 ms per step on the host.
      time.sleep(0.02 * num_steps)
      return slow_batches(first_step, num_steps)

    slow.batches = batches
    workdir = self.create_tempdir().full_path
    training.train(workdir=workdir, config=_config(num_steps=20), **problem)
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    inputs = [r['input_ms_per_step'] for r in records if r['split'] == 'train']
    self.assertLen(inputs, 2)
    for ms in inputs:
      self.assertBetween(ms, 20.0, 40.0)

  def test_synthetic_data_repeats_one_batch(self):
    batch = {'x': np.arange(6.0).reshape(2, 3), 'step': np.asarray(7)}
    data = training.SyntheticData(batch, batch_axes={'x': 0, 'step': None})
    first = data.batches(0, 4)
    self.assertEqual(first['x'].shape, (4, 2, 3))
    np.testing.assert_array_equal(first['x'][3], batch['x'])
    np.testing.assert_array_equal(first['step'], [7, 7, 7, 7])
    self.assertIs(data.batches(40, 4), first)  # Made once per chunk size.
    self.assertEqual(data.state(), {})
    # It trains like any host data (regression on one batch).
    problem = _regression_problem()
    problem['data'] = training.SyntheticData(
        jax.tree.map(lambda x: x[0], problem['data'].batches(0, 1)),
        batch_axes={'x': 0, 'y': 0, 'step': None})
    workdir = self.create_tempdir().full_path
    training.train(workdir=workdir, config=_config(), **problem)
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    data_steps = [r['data_step'] for r in records if r['split'] == 'train']
    self.assertEqual(data_steps, [0.0] * 4)  # Step 0's batch every time.

  def test_resume_is_bitwise_identical(self):
    uninterrupted = self.create_tempdir().full_path
    training.train(workdir=uninterrupted, config=_config(),
                   **_regression_problem())
    interrupted = self.create_tempdir().full_path
    first = training.train(workdir=interrupted, config=_config(num_steps=20),
                           **_regression_problem())
    self.assertEqual(first['step'], 20)
    training.train(workdir=interrupted, config=_config(),
                   **_regression_problem())
    problem = _regression_problem()
    template = (problem['state'], problem['data'].state())
    _, (expected, expected_data) = checkpoint.restore_latest(uninterrupted,
                                                             template)
    _, (resumed, resumed_data) = checkpoint.restore_latest(interrupted,
                                                           template)
    # The data state travels with the checkpoint: 4 logs either way.
    self.assertEqual(int(resumed_data['logs_seen']), 4)
    self.assertEqual(int(expected_data['logs_seen']), 4)
    np.testing.assert_array_equal(resumed.params['w'], expected.params['w'])
    for a, b in zip(jax.tree.leaves(resumed.opt_state),
                    jax.tree.leaves(expected.opt_state)):
      np.testing.assert_array_equal(a, b)
    # The same records as the uninterrupted run: none lost, none repeated.
    def logged(workdir):
      return [(r['step'], r['split']) for r in metrics.read_records(
          os.path.join(workdir, 'metrics.jsonl'))]
    self.assertEqual(logged(interrupted), logged(uninterrupted))
    # Each process stamps its records, so their training times add up.
    records = metrics.read_records(os.path.join(interrupted, 'metrics.jsonl'))
    starts = [r['process_start_time'] for r in records]
    first_process = sum(1 for r in records if r['step'] <= 20)
    self.assertLen(set(starts[:first_process]), 1)
    self.assertLen(set(starts[first_process:]), 1)
    self.assertLess(starts[0], starts[-1])
    totals = [r['total_s'] for r in metrics.with_total_time(records)]
    self.assertEqual(totals[first_process],
                     totals[first_process - 1] + records[first_process][
                         'elapsed_s'])

  def test_nan_stops_and_keeps_last_good_checkpoint(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(
        FloatingPointError,
        r'loss is nan at step 26.*checkpoint_0000000020\.npz'):
      training.train(workdir=workdir, config=_config(),
                     **_regression_problem(nan_from_step=25))
    self.assertEqual(checkpoint.list_steps(workdir), [20])
    problem = _regression_problem()
    _, (state, _) = checkpoint.restore_latest(
        workdir, (problem['state'], problem['data'].state()))
    self.assertTrue(np.all(np.isfinite(state.params['w'])))
    self.assertEqual(int(state.step), 20)
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    self.assertEqual(max(r['step'] for r in records), 20)

  def test_time_budget_stops_with_checkpoint(self):
    workdir = self.create_tempdir().full_path
    summary = training.train(
        workdir=workdir, config=_config(num_steps=10_000, time_budget_s=1e-3),
        **_regression_problem())
    self.assertEqual(summary['stopped_by'], 'time_budget')
    self.assertEqual(summary['step'], 5)  # The first chunk is over budget.
    self.assertEqual(checkpoint.list_steps(workdir), [5])
    self.assertIsNotNone(summary['eval'])


class MetricWriterTest(absltest.TestCase):

  def test_resume_drops_later_and_torn_records(self):
    path = os.path.join(self.create_tempdir().full_path, 'metrics.jsonl')
    writer = metrics.MetricWriter(path)
    for step in (10, 20, 30):
      writer.write({'step': step, 'loss': float(step)})
    with open(path, 'a') as f:
      f.write('{"step": 40, "lo')  # A kill mid-write.
    self.assertEqual([r['step'] for r in metrics.read_records(path)],
                     [10, 20, 30])
    metrics.MetricWriter(path, resume_step=20)
    with open(path) as f:
      self.assertEqual([json.loads(line)['step'] for line in f], [10, 20])

  def test_total_time_sums_the_processes_of_a_resumed_run(self):
    records = [{'step': 1, 'elapsed_s': 0.0}, {'step': 2, 'elapsed_s': 50.0},
               {'step': 3}, {'step': 4, 'elapsed_s': 10.0},  # Resumed.
               {'step': 5, 'elapsed_s': 30.0}, {'step': 6, 'elapsed_s': 5.0}]
    self.assertEqual([r['total_s'] for r in metrics.with_total_time(records)],
                     [0.0, 50.0, 50.0, 60.0, 80.0, 85.0])
    self.assertNotIn('total_s', records[0])  # The input is not changed.

  def test_total_time_tells_processes_apart_by_their_start_time(self):
    # The resumed process's first record has more elapsed_s than the last
    # record of the process before it (interrupted 3 s in), so only
    # process_start_time shows where it began.
    records = [
        {'step': 0, 'elapsed_s': 0.0, 'process_start_time': 100.0},
        {'step': 50, 'elapsed_s': 3.0, 'process_start_time': 100.0},
        {'step': 60, 'split': 'evaluate'},  # --mode=evaluate, no elapsed_s.
        {'step': 100, 'elapsed_s': 5.0, 'process_start_time': 110.0},
        {'step': 150, 'elapsed_s': 9.0, 'process_start_time': 110.0},
        {'step': 200, 'elapsed_s': 4.0, 'process_start_time': 130.0},
    ]
    self.assertEqual([r['total_s'] for r in metrics.with_total_time(records)],
                     [0.0, 3.0, 3.0, 8.0, 12.0, 16.0])

  def test_non_finite_values_are_null(self):
    path = os.path.join(self.create_tempdir().full_path, 'metrics.jsonl')
    metrics.MetricWriter(path).write({'step': 1, 'loss': float('nan')})
    (record,) = metrics.read_records(path)
    self.assertAlmostEqual(record.pop('time'), time.time(), delta=60)
    self.assertEqual(record, {'step': 1, 'loss': None})

  def test_full_disk_leaves_no_torn_line(self):
    path = os.path.join(self.create_tempdir().full_path, 'metrics.jsonl')
    writer = metrics.MetricWriter(path)
    writer.write({'step': 1, 'loss': 0.5})

    def no_space(fd):
      del fd
      raise OSError(errno.ENOSPC, 'No space left on device')

    record = {'step': 2, 'loss': 0.25, 'time': 1.5}
    line = json.dumps(record) + '\n'
    with mock.patch.object(os, 'fsync', no_space):
      with self.assertRaisesRegex(
          atomic_file.DiskFullError,
          f'write {path}: it needs {len(line)} bytes; ') as cm:
        writer.write(record)
    self.assertEqual(cm.exception.filename, path)
    self.assertEqual([{k: r[k] for k in ('step', 'loss')}
                      for r in metrics.read_records(path)],
                     [{'step': 1, 'loss': 0.5}])
    writer.write({'step': 2, 'loss': 0.25})  # Space again: appends as usual.
    self.assertLen(metrics.read_records(path), 2)


if __name__ == '__main__':
  absltest.main()
