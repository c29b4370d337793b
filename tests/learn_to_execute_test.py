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
"""Tests for the Learning to Execute binary (experiments/learn_to_execute)."""

import os

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
from experiments import learn_to_execute

jax.config.update('jax_numpy_rank_promotion', 'raise')

FLAGS = flags.FLAGS


def _run_main(*args):
  return binary_testing.run_main(learn_to_execute, *args)




class BinaryTest(parameterized.TestCase):

  def test_smoke_preset_learns(self):
    self._smoke_preset_learns('rmc', 'zeros', False, ())

  # The baselines, teacher forcing with separate cores and --synthetic_input
  # in the full tier (make test-all).
  @parameterized.parameters(
      ('lstm', 'zeros', False, ()), ('dnc', 'zeros', False, ()),
      ('rmc', 'teacher_forcing', True, ()),
      ('rmc', 'zeros', False, ('--synthetic_input',)))
  @pytest.mark.slow
  def test_smoke_preset_learns_other_settings(self, core, decoder, separate,
                                              extra_flags):
    self._smoke_preset_learns(core, decoder, separate, extra_flags)

  def test_presets_gate_as_documented(self):
    # The paper's scalar gate in `paper`; a gate per element in `cpu`, the
    # better of the two on the CPU study's seeds.
    presets = learn_to_execute.PRESETS
    self.assertEqual(presets['paper'].rmc.gate_style, 'memory')
    self.assertEqual(presets['cpu'].rmc.gate_style, 'unit')
    for key in ('num_blocks', 'key_size', 'attention_mlp_layers',
                'forget_bias', 'input_bias', 'attention_scale'):
      self.assertEqual(presets['cpu'].flat()[key], presets['paper'].flat()[key],
                       key)

  def _smoke_preset_learns(self, core, decoder, separate, extra_flags):
    workdir, printed = binary_testing.shared_run(
        learn_to_execute, '--preset=smoke', f'--core={core}',
        f'--decoder={decoder}', *extra_flags, f'--separate_cores={separate}')
    self.assertIn('Held-out per-character accuracy', printed)
    self.assertIn('at step 30, stopped by num_steps', printed)
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    losses = [r['loss'] for r in records if r['split'] == 'train']
    self.assertLen(losses, 3)
    self.assertLess(losses[-1], losses[0])
    for key in ('eval_accuracy', 'eval_solved', 'eval_loss'):
      self.assertIn(key, records[-1])

  @pytest.mark.slow
  def test_bfloat16_compute_learns_like_float32(self):
    records = binary_testing.records_by_dtype(
        learn_to_execute, self.create_tempdir, '--preset=smoke',
        '--num_steps=20')
    binary_testing.assert_bfloat16_trains_like_float32(records)
    # The final held-out loss, too, within 5%.
    np.testing.assert_allclose(records['bfloat16'][-1]['eval_loss'],
                               records['float32'][-1]['eval_loss'], rtol=0.05)

  @pytest.mark.slow
  def test_resume_with_a_curriculum_is_exact(self):
    args = ('--preset=smoke', '--curriculum=combine',
            '--curriculum_loss_threshold=10')  # Advances every 10 logs.
    uninterrupted = self.create_tempdir().full_path
    _run_main(*args, '--num_steps=30', f'--workdir={uninterrupted}')
    interrupted = self.create_tempdir().full_path
    _run_main(*args, '--num_steps=10', f'--workdir={interrupted}')
    _run_main(*args, '--num_steps=30', f'--workdir={interrupted}')
    step, resumed = binary_testing.checkpoint_arrays(interrupted)
    expected_step, expected = binary_testing.checkpoint_arrays(uninterrupted)
    self.assertEqual((step, expected_step), (30, 30))
    self.assertEqual(resumed.keys(), expected.keys())
    self.assertTrue(any('tries' in k for k in expected))  # Curriculum state.
    for name in expected:
      np.testing.assert_array_equal(resumed[name], expected[name], name)

  @parameterized.parameters(
      ('--task=sorting', 'task'), ('--max_length=0', 'max_length'),
      ('--curriculum=random', 'curriculum'), ('--token_mode=bytes',
                                               'token_mode'))
  def test_bad_flag_values(self, flag, name):
    with flagsaver.flagsaver():
      with self.assertRaisesRegex(flags.IllegalFlagValueError, name):
        FLAGS(['learn_to_execute', flag])

  @parameterized.parameters(
      (('--task=copy', '--max_nesting=2'), 'needs max_nesting=1'),
      (('--preset=nope',), r"Unknown --preset='nope'"),
      (('--steps_per_chunk=3',), 'must be a multiple of steps_per_chunk=3'),
  )
  def test_bad_configurations(self, flags_given, regex):
    with self.assertRaisesRegex(app.UsageError, regex):
      _run_main('--preset=smoke', *flags_given, '--workdir=/nonexistent')


if __name__ == '__main__':
  absltest.main()
