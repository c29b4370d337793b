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
"""Tests for experiments/plot_attention.py, on a smoke checkpoint."""

import os
import shutil
import tempfile

from absl import app
from absl.testing import absltest
import jax
import numpy as np

import rmc
from rmc.toolkit import checkpoint
from rmc.toolkit import run_config

import binary_testing
from experiments import nth_farthest
from experiments import plot_attention



class PlotAttentionTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.workdir = tempfile.mkdtemp()
    binary_testing.run_main(nth_farthest, '--preset=smoke', '--num_steps=20',
                            f'--workdir={cls.workdir}')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.workdir)
    super().tearDownClass()

  def test_attention_maps_are_softmax_rows_of_the_trained_model(self):
    run = rmc.load_run(self.workdir)
    config, step, params = run.hyperparameters, run.step, run.params
    self.assertEqual(step, 20)
    held_out = nth_farthest.held_out_set(config, seed=0)
    inputs = held_out.inputs[0, :5]  # [S, K, F + 3K]
    weights, logits = plot_attention.attention_maps(config, params, inputs)
    k, n, h = config.task.num_objects, config.rmc.mem_slots, config.rmc.num_heads
    self.assertEqual(weights.shape, (5, k, h, n, n + 1))
    self.assertTrue(np.all(weights >= 0))
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    # The same logits as the training model (diagnostics change nothing).
    plain = run.model.apply(params, inputs)
    np.testing.assert_allclose(logits, plain, rtol=1e-5, atol=1e-5)
    # Trained parameters, not a fresh initialisation.
    fresh = jax.tree.leaves(nth_farthest.initial_state(config, 0)[0].params)
    self.assertFalse(all(np.array_equal(a, b) for a, b in
                         zip(fresh, jax.tree.leaves(params))))

  def test_writes_a_png(self):
    output = os.path.join(self.create_tempdir().full_path, 'attention.png')
    printed = binary_testing.run_main(
        plot_attention, f'--workdir={self.workdir}',
        '--step=20', '--num_sequences=3', f'--output={output}')
    self.assertIn('3 held-out sequences, step 20', printed)
    with open(output, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    self.assertGreater(os.path.getsize(output), 20_000)

  def test_clear_errors(self):
    output = os.path.join(self.create_tempdir().full_path, 'a.png')
    empty = self.create_tempdir().full_path
    for args, regex in (
        ((f'--workdir={empty}',), 'config.json does not exist'),
        ((f'--workdir={self.workdir}', '--step=7'),
         r'No checkpoint of step 7 .* holds steps \[20\]'),
        ((f'--workdir={self.workdir}', '--head_size=8'),
         'config.json; drop --head_size'),
        ((f'--workdir={self.workdir}', '--block=1'), 'out of range'),
        ((), '--workdir is required'),
    ):
      with self.subTest(args=args):
        with self.assertRaisesRegex(
            (app.UsageError, run_config.ConfigError,
             checkpoint.CheckpointError), regex):
          binary_testing.run_main(plot_attention, *args,
                                  f'--output={output}')
    self.assertFalse(os.path.exists(output))


if __name__ == '__main__':
  absltest.main()
