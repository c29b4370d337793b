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
"""Tests for experiments/summarize_nth_farthest.py."""

import os

from absl import app
from absl.testing import absltest
from rmc.toolkit import metrics

import binary_testing
from experiments import summarize_nth_farthest


def _write_run(directory, others, overall, resumed_at=None):
  """Evaluations 1000 steps and 60 s apart; a new process at `resumed_at`."""
  os.makedirs(directory, exist_ok=True)
  writer = metrics.MetricWriter(os.path.join(directory, 'metrics.jsonl'))
  for i, (other, accuracy) in enumerate(zip(others, overall)):
    elapsed = 60.0 * (i if resumed_at is None or i < resumed_at
                      else i - resumed_at + 0.5)
    writer.write({'step': 1000 * i, 'split': 'eval', 'elapsed_s': elapsed,
                  'eval_accuracy': accuracy, 'eval_accuracy_rank_0': 1.0,
                  'eval_accuracy_other_ranks': other})


class SummarizeTest(absltest.TestCase):

  def test_plateau_exit_and_ninety_percent(self):
    root = self.create_tempdir().full_path
    # K = 4: the plateau is 1/3 on the other ranks; left at 0.44 >= 0.4333.
    _write_run(f'{root}/left', [0.3, 0.34, 0.44, 0.95], [0.4, 0.5, 0.58, 0.96])
    _write_run(f'{root}/stuck', [0.3, 0.33, 0.43], [0.4, 0.5, 0.5])
    # Resumed after step 1000 (elapsed 60 s): the new process starts at 0.
    _write_run(f'{root}/resumed', [0.3, 0.34, 0.44, 0.95],
               [0.4, 0.5, 0.58, 0.96], resumed_at=2)
    printed = binary_testing.run_main(
        summarize_nth_farthest, '--num_objects=4',
        f'--workdirs={root}/left,{root}/stuck,{root}/resumed')
    lines = printed.splitlines()
    self.assertEqual(lines[0], summarize_nth_farthest.HEADER.splitlines()[0])
    self.assertEqual(lines[2], '| left | 3k | 3.0 | 96.0% | 100.0% | 95.0% '
                     '| 2k / 2.0 | 3k / 3.0 |')
    self.assertEqual(lines[3], '| stuck | 2k | 2.0 | 50.0% | 100.0% | 43.0% '
                     '| no | no |')
    # 60 s before the resume, then 30 s and 90 s into the new process.
    self.assertEqual(lines[4], '| resumed | 3k | 2.5 | 96.0% | 100.0% | 95.0% '
                     '| 2k / 1.5 | 3k / 2.5 |')

  def test_errors(self):
    empty = self.create_tempdir().full_path
    with self.assertRaisesRegex(app.UsageError, 'no evaluation records'):
      binary_testing.run_main(summarize_nth_farthest, '--num_objects=4',
                              f'--workdirs={empty}')
    with self.assertRaisesRegex(app.UsageError, 'required'):
      binary_testing.run_main(summarize_nth_farthest, f'--workdirs={empty}')


if __name__ == '__main__':
  absltest.main()
