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
"""Tests for experiments/seeds.py, the seed tool."""

import json
import os
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver
import pytest
from rmc.toolkit import metrics

from experiments import seeds

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_run(directory, evaluations, num_steps=1000, num_objects=3):
  """A run's config.json and evaluations (step, seconds, overall, others)."""
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, 'config.json'), 'w') as f:
    json.dump({'format': 1,
               'hyperparameters': {'num_steps': num_steps,
                                   'num_objects': num_objects}}, f)
  writer = metrics.MetricWriter(os.path.join(directory, 'metrics.jsonl'))
  for step, elapsed, overall, others in evaluations:
    writer.write({'step': step, 'split': 'eval', 'elapsed_s': elapsed,
                  'eval_accuracy': overall, 'eval_accuracy_rank_0': 1.0,
                  'eval_accuracy_other_ranks': others})
  writer.close()


def _tool(*args, timeout=300):
  """Runs the seed tool as a user would; returns (exit status, output)."""
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.seeds', *args], cwd=_ROOT,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      timeout=timeout)
  return done.returncode, done.stdout


def _one_core():
  return str(seeds.available_cores()[0])


class ParseTest(absltest.TestCase):

  def test_seeds(self):
    self.assertEqual(seeds.parse_seeds('0-3'), [0, 1, 2, 3])
    self.assertEqual(seeds.parse_seeds('5, 1,2-3,2'), [5, 1, 2, 3])
    for bad in ('a', '3-1', '-2', '1-', ''):
      with self.assertRaisesRegex(ValueError, '--seeds'):
        seeds.parse_seeds(bad)

  def test_binary_args(self):
    seeds.check_binary_args(['--preset=cpu', '--time_budget_s=60', '--noflag'])
    self.assertEqual(seeds.time_budget(['--time_budget_s=5',
                                        '--time_budget_s=60']), 60.0)
    self.assertIsNone(seeds.time_budget(['--time_budget_s=0']))
    for bad, message in (('--workdir=/tmp/x', 'sets --workdir'),
                         ('--seed=3', 'sets --seed'),
                         ('--mode=evaluate', 'sets --mode'),
                         ('cpu', 'as --name=value'),
                         ('--time_budget_s', 'time_budget_s=VALUE'),
                         ('--time_budget_s=soon', 'not a valid float'),
                         ('--num_steps=1e3', 'not a valid int')):
      with self.assertRaisesRegex(ValueError, message):
        seeds.check_binary_args([bad])

  def test_progress(self):
    root = self.create_tempdir().full_path
    self.assertFalse(seeds.progress(f'{root}/none', None).finished)
    _write_run(f'{root}/a', [(0, 0.0, 0.3, 0.3), (500, 50.0, 0.6, 0.5)])
    self.assertEqual(seeds.progress(f'{root}/a', None),
                     seeds.Progress(500, 50.0, False))
    self.assertTrue(seeds.progress(f'{root}/a', 50.5).finished)  # Budget.
    self.assertFalse(seeds.progress(f'{root}/a', 60.0).finished)
    self.assertTrue(seeds.progress(f'{root}/a', None, num_steps=500).finished)
    _write_run(f'{root}/b', [(0, 0.0, 0.3, 0.3), (1000, 9.0, 0.6, 0.5)])
    self.assertTrue(seeds.progress(f'{root}/b', 60.0).finished)  # Steps.


class TableTest(absltest.TestCase):

  def test_nth_farthest_row(self):
    root = self.create_tempdir().full_path
    # K = 3: the plateau is 0.5 on the other ranks; 0.6 counts as left.
    _write_run(f'{root}/seed_0', [(0, 0, .3, .3), (10_000, 60, .7, .6),
                                  (20_000, 120, .95, .93)])
    _write_run(f'{root}/seed_1', [(0, 0, .3, .3), (10_000, 60, .66, .5),
                                  (20_000, 120, .66, .5)])
    # Resumed at 20k: its second process counts from 0 again.
    _write_run(f'{root}/seed_2', [(0, 0, .3, .3), (20_000, 120, .66, .5),
                                  (30_000, 60, .8, .7), (40_000, 120, .92, .88)])
    lines = seeds.table('nth_farthest', root, [0, 1, 2, 3], 0.10).splitlines()
    self.assertLen(lines, 6)  # Header, rule, 3 seeds, summary (no seed 3).
    self.assertEqual(lines[2], '| 0 | 20k | 2.0 | 95.0% | 100.0% | 93.0% '
                     '| 10k / 1.0 | 20k / 2.0 |')
    self.assertEqual(lines[3], '| 1 | 20k | 2.0 | 66.0% | 100.0% | 50.0% '
                     '| no | no |')
    self.assertEqual(lines[4], '| 2 | 40k | 4.0 | 92.0% | 100.0% | 88.0% '
                     '| 30k / 3.0 | 40k / 4.0 |')
    self.assertEqual(
        lines[5],
        '| 3 seeds, mean (range) | 27k (20k-40k) | 2.7 (2.0-4.0) '
        '| 84.3% (66.0%-95.0%) | 100.0% (100.0%-100.0%) '
        '| 77.0% (50.0%-93.0%) '
        '| 2/3: step 20k (10k-30k), min 2.0 (1.0-3.0) '
        '| 2/3: step 30k (20k-40k), min 3.0 (2.0-4.0) |')

  def test_learn_to_execute_row(self):
    root = self.create_tempdir().full_path
    for seed, accuracies in ((0, (0.5, 0.9, 0.8)), (1, (0.4, 0.6, 0.7))):
      os.makedirs(f'{root}/seed_{seed}')
      writer = metrics.MetricWriter(f'{root}/seed_{seed}/metrics.jsonl')
      for i, accuracy in enumerate(accuracies):
        writer.write({'step': 1000 * i, 'split': 'eval', 'elapsed_s': 60. * i,
                      'eval_accuracy': accuracy, 'eval_solved': accuracy / 2})
      writer.close()
    lines = seeds.table('learn_to_execute', root, [0, 1], 0.1).splitlines()
    self.assertEqual(lines[2], '| 0 | 2k | 2.0 | 80.0% | 90.0% (1k) '
                     '| 40.0% | 45.0% (1k) |')
    self.assertEqual(lines[4], '| 2 seeds, mean (range) | 2k (2k-2k) '
                     '| 2.0 (2.0-2.0) | 75.0% (70.0%-80.0%) '
                     '| 80.0% (70.0%-90.0%) | 37.5% (35.0%-40.0%) '
                     '| 40.0% (35.0%-45.0%) |')

  def test_figures_at_the_same_steps(self):
    root = self.create_tempdir().full_path
    for seed, accuracies in ((0, (0.5, 0.9, 0.8)), (1, (0.4, 0.6, 0.7)),
                             (2, (0.3, 0.5))):  # Seed 2 stopped at 1k.
      os.makedirs(f'{root}/seed_{seed}')
      writer = metrics.MetricWriter(f'{root}/seed_{seed}/metrics.jsonl')
      for i, accuracy in enumerate(accuracies):
        writer.write({'step': 1000 * i, 'split': 'eval', 'elapsed_s': 60. * i,
                      'eval_accuracy': accuracy, 'eval_solved': accuracy / 2})
        writer.write({'step': 1000 * i + 500, 'split': 'train',
                      'accuracy': 1.0})
      writer.close()
    runs = {seed: metrics.read_records(f'{root}/seed_{seed}/metrics.jsonl')
            for seed in (0, 1, 2)}
    lines = seeds.steps_table('learn_to_execute', runs,
                              [1000, 2000, 5000]).splitlines()
    self.assertEqual(lines[0],
                     '| step | seeds | per-character accuracy | solved |')
    self.assertEqual(lines[2], '| 1,000 | 3 | 66.7% (50.0%-90.0%) '
                     '| 33.3% (25.0%-45.0%) |')
    self.assertEqual(lines[3], '| 2,000 | 2 | 75.0% (70.0%-80.0%) '
                     '| 37.5% (35.0%-40.0%) |')
    self.assertEqual(lines[4], '| 5,000 | 0 | - | - |')

  def test_parameters_line(self):
    root = self.create_tempdir().full_path
    self.assertIsNone(seeds.parameters_line(root, [0]))
    _write_run(f'{root}/seed_0', [(0, 0, .3, .3)])  # No counts: an old run.
    self.assertIsNone(seeds.parameters_line(root, [0]))
    os.makedirs(f'{root}/seed_1')
    with open(f'{root}/seed_1/config.json', 'w') as f:
      json.dump({'format': 1, 'parameters': {'core': 41024,
                                             'model': 315757}}, f)
    self.assertEqual(seeds.parameters_line(root, [0, 1]),
                     'Parameters: 41,024 in the recurrent core(s), 315,757 '
                     'in the model.')

  def test_no_evaluations(self):
    root = self.create_tempdir().full_path
    self.assertEqual(seeds.table('nth_farthest', root, [0], 0.1),
                     'No seed has an evaluation yet.')


class UsageTest(absltest.TestCase):

  def test_errors(self):
    root = self.create_tempdir().full_path
    for args, message in (
        (['--seeds=0-1', f'--root={root}'], 'required'),
        (['--binary=nth_farthest', '--seeds=x', f'--root={root}'], '--seeds'),
        (['--binary=nth_farthest', '--seeds=0', f'--root={root}', '--',
          '--seed=4'], 'sets --seed'),
        (['--binary=nth_farthest', '--seeds=0', f'--root={root}',
          '--cores=0,0'], 'distinct'),
        (['--binary=nth_farthest', '--seeds=0', f'--root={root}',
          '--at_steps=10k'], 'give whole steps'),
        (['--binary=nth_farthest', '--seeds=0', f'--root={root}',
          '--cores=4096'], 'may not run on core'),
    ):
      with self.assertRaisesRegex(app.UsageError, message):
        with flagsaver.flagsaver():
          seeds.main(flags.FLAGS(['seeds', *args]))


class SmokeTest(absltest.TestCase):
  """The tool end to end on the smoke preset, as a user runs it."""

  @pytest.mark.slow
  def test_trains_resumes_and_prints(self):
    root = self.create_tempdir().full_path
    # Seed 1 was stopped at step 20 (of the 40 asked for below).
    subprocess.run(
        [sys.executable, '-m', 'experiments.nth_farthest', '--preset=smoke',
         '--num_steps=20', '--seed=1', f'--workdir={root}/seed_1'],
        cwd=_ROOT, check=True, capture_output=True)
    args = ['--binary=nth_farthest', '--seeds=0-1', f'--root={root}',
            f'--cores={_one_core()}', '--', '--preset=smoke', '--num_steps=40']
    status, output = _tool(*args)
    self.assertEqual(status, 0, output)
    self.assertIn('0 finished, 2 to train', output)
    rows = [l for l in output.splitlines() if l.startswith('| ')]
    self.assertLen(rows, 4)  # Header, seeds 0 and 1, the summary.
    self.assertTrue(rows[1].startswith('| 0 | 0k |'), rows[1])  # Step 40.
    self.assertTrue(rows[3].startswith('| 2 seeds, mean (range) |'), rows[3])
    for seed in (0, 1):
      with open(f'{root}/seed_{seed}/config.json') as f:
        self.assertEqual(json.load(f)['seed'], seed)
      evaluations = [
          r['step'] for r in metrics.read_records(
              f'{root}/seed_{seed}/metrics.jsonl') if r['split'] == 'eval']
      # Seed 1 resumed at 20: no second evaluation of step 0.
      self.assertEqual(evaluations, [0, 20, 40])
    with open(f'{root}/seed_1/log.txt') as f:
      self.assertIn('Restored', f.read())

    # Run again: nothing to train, the same table.
    status, again = _tool(*args)
    self.assertEqual(status, 0, again)
    self.assertIn('2 finished, 0 to train', again)
    self.assertEqual(rows, [l for l in again.splitlines()
                            if l.startswith('| ')])
    # With the figures at the same steps, and the parameter counts.
    status, again = _tool(*args[:4], '--at_steps=20,40', *args[4:])
    self.assertEqual(status, 0, again)
    at_steps = again.split('At the same steps:')[1]
    self.assertIn('| 20 | 2 |', at_steps)
    self.assertIn('| 40 | 2 |', at_steps)
    self.assertIn('Parameters: ', at_steps)

  @pytest.mark.slow
  def test_stop_and_resume_within_the_budget(self):
    root = self.create_tempdir().full_path
    args = ['--binary=nth_farthest', '--seeds=0', f'--root={root}',
            f'--cores={_one_core()}', '--', '--preset=smoke',
            '--num_steps=100000000', '--time_budget_s=40']
    tool = subprocess.Popen(
        [sys.executable, '-m', 'experiments.seeds', *args], cwd=_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    records = f'{root}/seed_0/metrics.jsonl'
    deadline = time.monotonic() + 120
    while not any(r['split'] == 'train' for r in metrics.read_records(records)):
      self.assertLess(time.monotonic(), deadline, 'no training record')
      time.sleep(0.5)
    tool.send_signal(signal.SIGINT)
    output, _ = tool.communicate(timeout=60)
    self.assertEqual(tool.returncode, 1, output)
    self.assertIn('SIGINT: stopping every training', output)
    self.assertIn('Run the same command again to resume', output)
    used = seeds.progress(f'{root}/seed_0', 40.0)
    self.assertFalse(used.finished)

    status, output = _tool(*args)
    self.assertEqual(status, 0, output)
    with open(f'{root}/seed_0/log.txt') as f:
      commands = [l for l in f if l.startswith('$ ')]
    self.assertLen(commands, 2)
    self.assertIn(f'--time_budget_s={40 - used.total_s:.1f}', commands[1])
    self.assertTrue(seeds.progress(f'{root}/seed_0', 40.0).finished)
    total = seeds.progress(f'{root}/seed_0', 40.0).total_s
    self.assertBetween(total, 39.0, 45.0)


if __name__ == '__main__':
  absltest.main()
