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
"""Tests for rmc/toolkit/run_config.py, and the metrics' TensorBoard and append
modes."""

import json
import os

from absl.testing import absltest
from rmc.toolkit import metrics
from rmc.toolkit import run_config


def _config(**hyperparameters):
  return {'binary': 'nth_farthest', 'seed': 0,
          'hyperparameters': dict({'mem_slots': 2, 'num_steps': 40,
                                   'preset': 'smoke', 'cutoffs': (1, 2)},
                                  **hyperparameters),
          'core': {'type': 'rmc', 'kwargs': {'mem_slots': 2}},
          'data': {'data_dir': '/a', 'vocab_sha256': 'x'},
          'run': {'devices': 1}, 'code': {'git_commit': 'abc'}}


class RunConfigTest(absltest.TestCase):

  def test_start_writes_atomically_and_reads_back(self):
    workdir = self.create_tempdir().full_path
    self.assertEqual(run_config.start(workdir, _config()), {})
    saved = run_config.read(workdir)
    self.assertEqual(saved['format'], run_config.FORMAT_VERSION)
    self.assertEqual(saved['hyperparameters']['cutoffs'], [1, 2])
    self.assertEqual(os.listdir(workdir), ['config.json'])

  def test_resume_allows_budgets_cadences_paths_devices_and_code(self):
    workdir = self.create_tempdir().full_path
    run_config.start(workdir, _config())
    resumed = _config(num_steps=80, preset='demo')
    resumed['data']['data_dir'] = '/moved'
    resumed['run']['devices'] = 8
    resumed['code']['git_commit'] = 'def'
    changes = run_config.start(workdir, resumed)
    self.assertEqual(changes, {
        'code.git_commit': ('abc', 'def'), 'data.data_dir': ('/a', '/moved'),
        'hyperparameters.num_steps': (40, 80),
        'hyperparameters.preset': ('smoke', 'demo'),
        'run.devices': (1, 8)})
    self.assertEqual(run_config.read(workdir)['hyperparameters']['num_steps'],
                     80)

  def test_resume_refuses_model_and_data_changes_naming_each(self):
    workdir = self.create_tempdir().full_path
    run_config.start(workdir, _config())
    with open(run_config.path(workdir), 'rb') as f:
      before = f.read()
    changed = _config(mem_slots=3, new_flag=True)
    changed['seed'] = 1
    changed['data']['vocab_sha256'] = 'y'
    changed['core']['kwargs']['mem_slots'] = 3
    with self.assertRaises(run_config.ConfigMismatchError) as raised:
      run_config.start(workdir, changed)
    message = str(raised.exception)
    for part in ('hyperparameters.mem_slots 2 -> 3',
                 'hyperparameters.new_flag None -> True', 'seed 0 -> 1',
                 "data.vocab_sha256 'x' -> 'y'"):
      self.assertIn(part, message)
    self.assertNotIn('core.kwargs', message)
    with open(run_config.path(workdir), 'rb') as f:
      self.assertEqual(f.read(), before)  # Untouched.

  def test_a_run_from_before_the_dnc_hyperparameters_resumes(self):
    workdir = self.create_tempdir().full_path
    run_config.start(workdir, _config())  # No dnc_* keys.
    added = {name: 1 for name in run_config.ADDED_HYPERPARAMETERS}
    self.assertEqual(run_config.start(workdir, _config(**added)), {})
    self.assertEqual(
        run_config.read(workdir)['hyperparameters']['dnc_memory_size'], 1)
    # Once saved, they are compared like any other.
    with self.assertRaisesRegex(run_config.ConfigMismatchError,
                                'hyperparameters.dnc_memory_size 1 -> 2'):
      run_config.start(workdir, _config(**dict(added, dnc_memory_size=2)))

  def test_read_errors(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(run_config.ConfigError, 'does not exist'):
      run_config.read(workdir)
    with self.assertRaisesRegex(run_config.ConfigError, 'not a directory'):
      run_config.read(os.path.join(workdir, 'missing'))
    with open(run_config.path(workdir), 'w') as f:
      f.write('{"binary": ')
    with self.assertRaisesRegex(run_config.ConfigError, 'not valid JSON'):
      run_config.read(workdir)
    with open(run_config.path(workdir), 'w') as f:
      json.dump({'format': 99}, f)
    with self.assertRaisesRegex(run_config.ConfigError, 'format 1'):
      run_config.read(workdir)

  def test_code_version_names_the_versions(self):
    version = run_config.code_version()
    for key in ('rmc', 'python', 'jax', 'haiku', 'git_commit', 'git_dirty'):
      self.assertIn(key, version)


class MetricsAppendAndTensorBoardTest(absltest.TestCase):

  def test_tensorboard_tags(self):
    self.assertEqual(
        metrics.tensorboard_scalars(
            {'step': 5, 'split': 'eval', 'eval_loss': 1.5, 'eval_tokens': 7,
             'elapsed_s': 2.0, 'time': 1e9, 'process_start_time': 9e8,
             'flag': True, 'name': 'x', 'none': None}),
        [('eval/loss', 1.5), ('eval/tokens', 7.0), ('eval/elapsed_s', 2.0)])
    self.assertEqual(metrics.tensorboard_scalars(
        {'step': 1, 'split': 'test', 'test_perplexity': 9.0}),
                     [('test/perplexity', 9.0)])

  def test_append_mode_keeps_every_record_and_survives_a_torn_line(self):
    path = os.path.join(self.create_tempdir().full_path, 'metrics.jsonl')
    with open(path, 'w') as f:
      f.write('{"step": 10, "split": "train"}\n{"step": 20, "spl')  # Torn.
    writer = metrics.MetricWriter(path, resume_step=None)
    writer.write({'step': 5, 'split': 'evaluate', 'eval_loss': 1.0})
    records = metrics.read_records(path)  # The torn line is skipped.
    self.assertEqual([(r['step'], r['split']) for r in records],
                     [(10, 'train'), (5, 'evaluate')])
    self.assertIn('time', records[-1])
    # A training run resuming from step 10 then drops the torn line (and
    # keeps the evaluation of step 5).
    metrics.MetricWriter(path, resume_step=10)
    with open(path) as f:
      self.assertEqual(len(f.readlines()), 2)

  def test_tensorboard_events_are_rewritten_on_resume(self):
    workdir = self.create_tempdir().full_path
    path = os.path.join(workdir, 'metrics.jsonl')
    logdir = os.path.join(workdir, 'tensorboard')
    writer = metrics.MetricWriter(path, tensorboard_dir=logdir)
    for step in (10, 20, 30):
      writer.write({'step': step, 'split': 'train', 'loss': 1.0 / step})
    writer.close()
    # Resumed from the checkpoint of step 20: step 30 is dropped and written
    # again, with another value.
    writer = metrics.MetricWriter(path, resume_step=20,
                                  tensorboard_dir=logdir)
    writer.write({'step': 30, 'split': 'train', 'loss': 0.5})
    writer.close()
    self.assertLen(os.listdir(logdir), 1)
    self.assertEqual(metrics.read_tensorboard_scalars(logdir),
                     [('train/loss', 10, 0.10000000149011612),
                      ('train/loss', 20, 0.05000000074505806),
                      ('train/loss', 30, 0.5)])
    # Append mode adds a file of its own.
    writer = metrics.MetricWriter(path, resume_step=None,
                                  tensorboard_dir=logdir)
    writer.write({'step': 30, 'split': 'evaluate', 'eval_loss': 0.25})
    writer.close()
    self.assertLen(os.listdir(logdir), 2)
    self.assertEqual(metrics.read_tensorboard_scalars(logdir)[-1],
                     ('evaluate/loss', 30, 0.25))


if __name__ == '__main__':
  absltest.main()
