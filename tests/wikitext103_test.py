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
"""Tests for the language-model binary (experiments/wikitext103.py)."""

import os
import subprocess
import sys

from absl import app
from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver
from absl.testing import parameterized
import jax
import numpy as np
import pytest
from rmc.toolkit import metrics

import binary_testing
from experiments import wikitext103

jax.config.update('jax_numpy_rank_promotion', 'raise')

FLAGS = flags.FLAGS
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_main(*args):
  return binary_testing.run_main(wikitext103, *args)




class BinaryTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.data_dir = self.create_tempdir().full_path
    self.counts = binary_testing.write_wikitext_corpus(self.data_dir)
    self.data_args = (f'--data_dir={self.data_dir}',
                      f'--cache_dir={self.data_dir}/cache')

  def test_smoke_preset_learns(self):
    self._smoke_preset_learns('rmc', 'tied')

  # The baselines and the adaptive softmax in the full tier (make test-all).
  @parameterized.parameters(('lstm', 'tied'), ('dnc', 'tied'),
                            ('rmc', 'adaptive'))
  @pytest.mark.slow
  def test_smoke_preset_learns_baselines_and_adaptive(self, core, softmax):
    self._smoke_preset_learns(core, softmax)

  def _smoke_preset_learns(self, core, softmax):
    data_dir, counts = binary_testing.shared_wikitext_corpus()
    self.assertEqual(counts, self.counts)  # The same text.
    workdir, printed = binary_testing.shared_run(
        wikitext103, '--preset=smoke', f'--core={core}', f'--softmax={softmax}',
        '--adaptive_cutoffs=4,9', f'--data_dir={data_dir}')
    self.assertIn('at step 40, stopped by num_steps', printed)
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    train = [r for r in records if r['split'] == 'train']
    self.assertLen(train, 4)
    self.assertLess(train[-1]['loss'], train[0]['loss'])
    self.assertGreater(train[-1]['tokens_per_sec'], 0)
    self.assertGreaterEqual(train[-1]['input_ms_per_step'], 0)
    evals = [r for r in records if r['split'] == 'eval']
    self.assertEqual([r['step'] for r in evals], [0, 20, 40])
    self.assertLess(evals[-1]['eval_loss'], evals[0]['eval_loss'])
    self.assertEqual(evals[-1]['eval_tokens'], self.counts['valid'])
    test = records[-1]
    self.assertEqual(test['split'], 'test')
    self.assertEqual(test['test_tokens'], self.counts['test'])
    self.assertAlmostEqual(test['test_perplexity'],
                           np.exp(test['test_loss']), places=3)
    self.assertIn(f'{test["test_perplexity"]:.2f} over '
                  f'{self.counts["test"]} tokens', printed)

  def test_synthetic_input(self):
    workdir = self.create_tempdir().full_path
    _run_main('--preset=smoke', '--synthetic_input', *self.data_args,
              f'--workdir={workdir}')
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    train = [r for r in records if r['split'] == 'train']
    self.assertLess(train[-1]['loss'], train[0]['loss'])
    self.assertGreaterEqual(train[-1]['input_ms_per_step'], 0)
    self.assertEqual(records[-1]['split'], 'test')

  @pytest.mark.slow
  def test_bfloat16_compute_learns_like_float32(self):
    records = binary_testing.records_by_dtype(
        wikitext103, self.create_tempdir, '--preset=smoke', '--num_steps=20',
        *self.data_args)
    binary_testing.assert_bfloat16_trains_like_float32(records)
    # The final validation and test perplexities, too, within 5%.
    for split in ('eval', 'test'):
      figures = {dtype: [r for r in rs if r['split'] == split][-1]
                 for dtype, rs in records.items()}
      np.testing.assert_allclose(
          figures['bfloat16'][f'{split}_perplexity'],
          figures['float32'][f'{split}_perplexity'], rtol=0.05)

  def test_resume_is_exact_with_the_carried_state(self):
    uninterrupted = self.create_tempdir().full_path
    _run_main('--preset=smoke', *self.data_args,
              f'--workdir={uninterrupted}')
    interrupted = self.create_tempdir().full_path
    _run_main('--preset=smoke', '--num_steps=20', *self.data_args,
              f'--workdir={interrupted}')
    _run_main('--preset=smoke', *self.data_args, f'--workdir={interrupted}')
    step, resumed = binary_testing.checkpoint_arrays(interrupted)
    expected_step, expected = binary_testing.checkpoint_arrays(uninterrupted)
    self.assertEqual((step, expected_step), (40, 40))
    self.assertEqual(resumed.keys(), expected.keys())
    self.assertTrue(any('carry' in k for k in expected))
    for name in expected:
      np.testing.assert_array_equal(resumed[name], expected[name], name)

  @parameterized.parameters(
      (('--softmax=adaptive',), 'needs --adaptive_cutoffs'),
      (('--softmax=adaptive', '--adaptive_cutoffs=4,x'), 'must be integers'),
      (('--softmax=adaptive', '--adaptive_cutoffs=4,900'),
       r'must be below the vocabulary size 17'),
      (('--eval_batches=3',),
       '--eval_batches: not a hyperparameter of wikitext103'),
      (('--preset=nope',), r"Unknown --preset='nope'"),
  )
  def test_bad_configurations(self, flags_given, regex):
    with self.assertRaisesRegex(app.UsageError, regex):
      _run_main('--preset=smoke', *self.data_args, *flags_given,
                f'--workdir={self.data_dir}/run')

  def test_missing_data_dir_flag(self):
    with self.assertRaisesRegex(app.UsageError, '--data_dir is required'):
      _run_main('--preset=smoke', f'--workdir={self.data_dir}/run')

  def test_missing_split(self):
    with self.assertRaisesRegex(app.UsageError,
                                "No 'dev' split in .*wiki.dev.tokens"):
      _run_main('--preset=smoke', *self.data_args, '--valid_split=dev',
                f'--workdir={self.data_dir}/run')

  @parameterized.parameters(('--dropout_rate=1.5', 'dropout_rate'),
                            ('--softmax=full', 'softmax'),
                            ('--unroll_length=0', 'unroll_length'))
  def test_bad_flag_values(self, flag, name):
    with flagsaver.flagsaver():
      with self.assertRaisesRegex(flags.IllegalFlagValueError, name):
        FLAGS(['wikitext103', flag])

  def test_non_utf8_data_is_a_clear_error_in_the_real_binary(self):
    path = os.path.join(self.data_dir, 'wiki.valid.tokens')
    with open(path, 'ab') as f:
      f.write(b' caf\xe9 \n')
    with open(path, 'rb') as f:
      bad_line = f.read().count(b'\n')  # The last line.
    result = subprocess.run(
        [sys.executable, '-m', 'experiments.wikitext103', '--preset=smoke',
         *self.data_args, f'--workdir={self.create_tempdir().full_path}'],
        cwd=_ROOT, capture_output=True, text=True, timeout=120, check=False)
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertIn(f'{path}, line {bad_line}: not valid UTF-8', result.stderr)
    self.assertNotIn('Traceback', result.stderr)


if __name__ == '__main__':
  absltest.main()
