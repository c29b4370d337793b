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
"""Tests for experiments/nth_farthest_demo.py, `make demo`."""

from unittest import mock

from absl import app
from absl.testing import absltest
import pytest
from rmc.toolkit import run_config

import binary_testing
from experiments import nth_farthest
from experiments import nth_farthest_demo
from experiments import seeds


def _record(step, overall, rank_0, others):
  return {'step': step, 'split': 'eval', 'eval_accuracy': overall,
          'eval_accuracy_rank_0': rank_0, 'eval_accuracy_other_ranks': others}


class DemoTableTest(absltest.TestCase):

  def test_table(self):
    config = nth_farthest.PRESETS['demo']
    table = nth_farthest_demo.demo_table(
        config, {'rmc': _record(81_200, 0.951, 1.0, 0.9265),
                 'lstm': _record(104_000, 0.6655, 0.998, 0.4995)})
    self.assertEqual(table.splitlines(), [
        '| | steps | overall | rank 0 | other ranks |',
        '|---|---|---|---|---|',
        '| RMC (3 memories, 2 heads x 32) | 81,200 | 95.1% | 100.0% | 92.7% |',
        '| LSTM (256 units) | 104,000 | 66.5% | 99.8% | 50.0% |',
        '| chance (1/3) | | 33.3% | 33.3% | 33.3% |',
        '| plateau: rank 0 solved, the others at chance | | 66.7% | 100.0% '
        '| 50.0% |',
    ])
    missing = nth_farthest_demo.demo_table(config, {'rmc': None, 'lstm': None})
    self.assertIn('| LSTM (256 units) | no evaluation | | | |', missing)


class DemoTest(absltest.TestCase):
  """The demo end to end on the smoke preset (40 steps per core)."""

  def _demo(self, *args):
    workdir = self.create_tempdir().full_path
    printed = binary_testing.run_main(
        nth_farthest_demo, f'--workdir={workdir}', '--preset=smoke', *args)
    return workdir, printed

  # Two trainings in subprocesses (about 20 s): in the slow tier.
  @pytest.mark.slow
  def test_both_cores_at_once_with_the_flags_forwarded(self):
    if len(seeds.available_cores()) < 2:
      self.skipTest('needs two cores')
    workdir, printed = self._demo('--seed=3', '--num_objects=4',
                                  '--demo_budget_s=90')
    self.assertIn('train for 90 s each, at once, one per core', printed)
    lines = printed.splitlines()
    self.assertIn('| chance (1/4) | | 25.0% | 25.0% | 25.0% |', lines)
    self.assertIn('| plateau: rank 0 solved, the others at chance | | 50.0% '
                  '| 100.0% | 33.3% |', lines)
    self.assertTrue(any(l.startswith('| RMC (2 memories, 2 heads x 4) | 40 |')
                        for l in lines), printed)
    self.assertTrue(any(l.startswith('| LSTM (16 units) | 40 |')
                        for l in lines), printed)
    self.assertIn('What the RMC answers: python -m experiments.nth_farthest '
                  f'--mode=predict --workdir={workdir}/rmc', printed)
    for core in ('rmc', 'lstm'):
      config = run_config.read(f'{workdir}/{core}')
      self.assertEqual(config['seed'], 3)
      self.assertEqual(config['hyperparameters']['core'], core)
      self.assertEqual(config['hyperparameters']['num_objects'], 4)
      self.assertEqual(config['hyperparameters']['time_budget_s'], 90)

  @pytest.mark.slow
  def test_one_core_halves_the_budget(self):
    core = seeds.available_cores()[:1]
    with mock.patch.object(seeds, 'available_cores', return_value=core):
      workdir, printed = self._demo('--demo_budget_s=90')
    self.assertIn('train for 45 s each, one after the other on one core',
                  printed)
    for name in ('rmc', 'lstm'):
      config = run_config.read(f'{workdir}/{name}')
      self.assertEqual(config['hyperparameters']['time_budget_s'], 45)

  def test_core_is_the_demos(self):
    with self.assertRaisesRegex(app.UsageError, 'trains both'):
      self._demo('--core=lstm')


if __name__ == '__main__':
  absltest.main()
