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
"""Tests for benchmarks.device_check: the prepared accelerator command."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import pytest

from benchmarks import device_check
from benchmarks import lm_memory
from experiments import wikitext103

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TrainingFiguresTest(absltest.TestCase):

  def test_rates_exclude_the_compiling_chunk(self):
    records = [
        {'step': 0, 'split': 'eval', 'elapsed_s': 0.0},
        {'step': 10, 'split': 'train', 'loss': 3.0, 'elapsed_s': 12.0,
         'steps_per_sec': 0.8, 'tokens_per_sec': 80.0, 'first_chunk_s': 11.0,
         'peak_memory_mib': 100.0},
        {'step': 20, 'split': 'train', 'loss': 2.5, 'elapsed_s': 12.5,
         'steps_per_sec': 20.0, 'tokens_per_sec': 2000.0,
         'peak_memory_mib': 150.0},
        {'step': 30, 'split': 'train', 'loss': 2.0, 'elapsed_s': 13.0,
         'steps_per_sec': 20.0, 'tokens_per_sec': 2000.0,
         'peak_memory_mib': 120.0},
    ]
    figures = device_check.training_figures(records)
    self.assertEqual(figures['steps'], 30)
    self.assertAlmostEqual(figures['steps_per_sec'], 20.0)
    self.assertAlmostEqual(figures['tokens_per_sec'], 2000.0)  # 100 a step.
    self.assertAlmostEqual(figures['compile_s'], 11.0 - 10 / 20.0)
    self.assertEqual(figures['peak_memory_mib'], 150.0)
    self.assertEqual((figures['first_loss'], figures['last_loss']), (3.0, 2.0))

  def test_one_record_gives_no_rate(self):
    figures = device_check.training_figures(
        [{'step': 10, 'split': 'train', 'loss': 1.0, 'elapsed_s': 5.0,
          'steps_per_sec': 2.0, 'first_chunk_s': 5.0}])
    self.assertIsNone(figures['steps_per_sec'])
    self.assertIsNone(figures['compile_s'])
    self.assertIsNone(figures['peak_memory_mib'])  # CPUs report none.
    self.assertEqual(device_check.training_figures([]), {'steps': 0})


class RunPartTest(absltest.TestCase):

  def _part(self, code):
    workdir = self.create_tempdir().full_path
    return device_check.Part(
        'p', [sys.executable, '-c', code], 60,
        lambda stdout, _: {'printed': stdout.strip()},
        workdir=os.path.join(workdir, 'work')), workdir

  def test_ok(self):
    part, logs = self._part('print(41 + 1)')
    self.assertEqual(device_check.run_part(part, 30, logs)['printed'], '42')

  def test_a_failure_is_recorded_with_its_error(self):
    part, logs = self._part(
        'import sys; sys.stderr.write("boom\\n"); sys.exit(3)')
    result = device_check.run_part(part, 30, logs)
    self.assertEqual(result['status'], 'failed')
    self.assertEqual(result['returncode'], 3)
    self.assertIn('boom', result['error'])

  def test_a_part_past_its_limit_is_stopped(self):
    part, logs = self._part('import time; time.sleep(60)')
    result = device_check.run_part(part, 0.5, logs)
    self.assertEqual(result['status'], 'timed_out')
    self.assertLess(result['wall_s'], 30)

  def test_an_unreadable_result_is_a_failure(self):
    part, logs = self._part('print("not json")')
    part.read = lambda stdout, _: json.loads(stdout)
    result = device_check.run_part(part, 30, logs)
    self.assertEqual(result['status'], 'failed')
    self.assertIn('JSONDecodeError', result['error'])


class LmMemoryTest(absltest.TestCase):

  @pytest.mark.slow
  def test_measured_steps(self):
    # The analysis is checked by TinyCommandTest (its lm_memory part), and
    # the chunked loss against the whole segment by language_model_test.
    config = wikitext103.PRESETS['smoke'].replace(loss_chunk_size=3)
    measured = lm_memory.run_steps(config, 50, 2)
    self.assertGreater(measured['peak_rss_mib'], 0)
    self.assertTrue(np.isfinite(measured['loss']))
    self.assertLess(abs(measured['loss'] - np.log(50)), 1.0)  # Near chance.


class TinyCommandTest(absltest.TestCase):

  @pytest.mark.slow
  def test_every_part_runs_and_is_reported(self):
    out = self.create_tempdir().full_path
    completed = subprocess.run(
        [sys.executable, '-m', 'benchmarks.device_check', f'--out={out}',
         '--tiny'], cwd=_ROOT, capture_output=True, text=True, check=False)
    self.assertEqual(completed.returncode, 0, completed.stderr[-2000:])
    with open(os.path.join(out, 'device_check.json')) as f:
      report = json.load(f)
    parts = report['parts']
    self.assertEqual({n: p['status'] for n, p in parts.items()},
                     {p.name: 'ok' for p in device_check.parts(out, True, 3)})
    self.assertEqual(parts['environment']['platform'], 'cpu')
    self.assertIn('1 passed', parts['core_tests']['summary'])
    for dtype in ('float32', 'bfloat16'):
      results = parts[f'rmc_step_{dtype}']['results']
      self.assertEqual([r['implementation'] for r in results], ['unroll'])
      self.assertTrue(all(r['forward_backward_ms'] > 0 for r in results))
      self.assertEqual('compile_s' in results[0], dtype == 'float32')
    for name, part in parts.items():
      if name.startswith('train_'):
        self.assertEqual(part['steps'], 20, name)
        self.assertGreater(part['steps_per_sec'], 0, name)
        self.assertGreaterEqual(part['compile_s'], 0, name)
        self.assertIsNone(part['peak_memory_mib'])
        self.assertEqual('wikitext' in name,
                         part['tokens_per_sec'] is not None)
    self.assertLen(parts['lm_first_steps']['losses'], 3)
    memory = parts['lm_memory']['results']
    self.assertEqual([r['loss_chunk_size'] for r in memory], [0, 3])
    for result in memory:
      analysis = result['memory_analysis_mib']
      self.assertGreater(analysis['temp'], 0)
      self.assertAlmostEqual(
          analysis['peak'], analysis['argument'] + analysis['output']
          + analysis['temp'] - analysis['alias'], delta=0.2)  # Rounded.
    with open(os.path.join(out, 'device_check.md')) as f:
      table = f.read()
    self.assertIn('| wikitext103_tied | bfloat16 | 20 |', table)
    self.assertIn('| wikitext103_adaptive | float32 | 20 |', table)
    self.assertIn('| tiny | float32 | unroll |', table)
    self.assertNotIn('Not ok', table)
    self.assertIn('12 of 12 parts ok', completed.stdout)


if __name__ == '__main__':
  absltest.main()
