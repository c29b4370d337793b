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
"""Tests for experiments/plot_curves.py."""

import contextlib
import io
import os

from absl import app
from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver
from rmc.toolkit import metrics

from experiments import plot_curves

FLAGS = flags.FLAGS


def _write_metrics(path):
  writer = metrics.MetricWriter(path)
  for step in (10, 20, 30):
    writer.write({'step': step, 'split': 'train', 'loss': 1.0 / step,
                  'elapsed_s': step / 10})
    writer.write({'step': step, 'split': 'eval', 'eval_accuracy': step / 40,
                  'elapsed_s': step / 10})


class PlotCurvesTest(absltest.TestCase):

  def _main(self, *args):
    with flagsaver.flagsaver():
      FLAGS(['plot_curves', *args])
      with contextlib.redirect_stdout(io.StringIO()):
        plot_curves.main(['plot_curves'])

  def test_writes_a_png(self):
    directory = self.create_tempdir().full_path
    first = os.path.join(directory, 'a.jsonl')
    second = os.path.join(directory, 'b.jsonl')
    _write_metrics(first)
    _write_metrics(second)
    for x in ('step', 'elapsed_s'):
      output = os.path.join(directory, f'{x}.png')
      self._main(f'--metrics={first},{second}', '--labels=RMC,LSTM',
                 f'--output={output}', f'--x={x}', '--title=test')
      with open(output, 'rb') as f:
        self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
      self.assertGreater(os.path.getsize(output), 10_000)

  def test_label_count_must_match(self):
    path = os.path.join(self.create_tempdir().full_path, 'a.jsonl')
    _write_metrics(path)
    with self.assertRaisesRegex(app.UsageError, '--labels has 2 entries'):
      self._main(f'--metrics={path}', '--labels=a,b')

  def test_metrics_flag_is_required(self):
    with self.assertRaisesRegex(app.UsageError, '--metrics is required'):
      self._main()

  def test_empty_file_is_an_error(self):
    path = os.path.join(self.create_tempdir().full_path, 'empty.jsonl')
    open(path, 'w').close()
    with self.assertRaisesRegex(app.UsageError, 'holds no metric records'):
      self._main(f'--metrics={path}')


if __name__ == '__main__':
  absltest.main()
