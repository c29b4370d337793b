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
"""Tests for the Nth Farthest model and binary (experiments/nth_farthest.py)."""

import os
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver
from absl.testing import parameterized
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rmc import models
from rmc.tasks import runs
from rmc.toolkit import checkpoint
from rmc.toolkit import cores
from rmc.toolkit import metrics
from rmc.toolkit import run_config

import binary_testing
from experiments import launch
from experiments import nth_farthest

jax.config.update('jax_numpy_rank_promotion', 'raise')

FLAGS = flags.FLAGS
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_main(*args):
  return binary_testing.run_main(nth_farthest, *args)


def _start_binary(*args):
  return subprocess.Popen(
      [sys.executable, '-m', 'experiments.nth_farthest', *args], cwd=_ROOT,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(process, workdir, timeout=120):
  deadline = time.monotonic() + timeout
  while not checkpoint.list_steps(workdir):
    if process.poll() is not None or time.monotonic() > deadline:
      process.kill()
      raise AssertionError(f'No checkpoint appeared: {process.communicate()}')
    time.sleep(0.02)


def _final_params(workdir):
  """Parameters of the newest checkpoint, as {path: array}."""
  step = checkpoint.list_steps(workdir)[-1]
  with np.load(checkpoint.path_for_step(workdir, step)) as data:
    params = {k: data[k] for k in data.files if '.params[' in k}
  assert params, f'No parameters in {data.files}'
  return step, params


class ModelTest(parameterized.TestCase):

  @parameterized.parameters('rmc', 'lstm')
  def test_logits_shape(self, core):
    def forward(inputs):
      return models.SequenceClassifier(
          cores.LSTM(hidden_size=32).make() if core == 'lstm' else
          cores.RMC(mem_slots=4, head_size=8, num_heads=2).make(),
          num_classes=5)(inputs)

    f = hk.without_apply_rng(hk.transform(forward))
    inputs = jnp.zeros([3, 5, 4 + 15])  # [B, K, F + 3K].
    params = jax.jit(f.init)(jax.random.key(0), inputs)
    self.assertEqual(jax.jit(f.apply)(params, inputs).shape, (3, 5))
    mlp = [k for k in params if 'mlp' in k and 'relational_memory' not in k]
    self.assertLen(mlp, 4)  # The 4 x 256 MLP before the logits.
    for name in mlp:
      self.assertEqual(params[name]['w'].shape[1], 256)

  def test_metrics(self):
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    labels = jnp.array([0, 0, 0])
    result = models.classification_metrics(logits, labels)
    expected_loss = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(1.0)),
                             np.log1p(np.exp(-3.0))])
    self.assertAlmostEqual(float(result['loss']), expected_loss, places=6)
    self.assertAlmostEqual(float(result['accuracy']), 2 / 3, places=6)


class BinaryTest(parameterized.TestCase):

  def test_smoke_preset_learns(self):
    self._smoke_preset_learns('rmc')

  # The baselines in the full tier (make test-all).
  @parameterized.parameters('lstm', 'dnc')
  @pytest.mark.slow
  def test_smoke_preset_learns_baselines(self, core):
    self._smoke_preset_learns(core)

  def _smoke_preset_learns(self, core):
    workdir, printed = binary_testing.shared_run(
        nth_farthest, '--preset=smoke', f'--core={core}')
    self.assertIn('Held-out accuracy', printed)
    self.assertIn('at step 40, stopped by num_steps', printed)
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    losses = [r['loss'] for r in records if r['split'] == 'train']
    self.assertLen(losses, 4)
    self.assertLess(losses[-1], losses[0])
    self.assertEqual(checkpoint.list_steps(workdir), [20, 40])

  @pytest.mark.slow
  def test_kill_and_resume_equals_uninterrupted(self):
    killed = self.create_tempdir().full_path
    process = _start_binary('--preset=smoke', '--num_steps=1000000',
                            f'--workdir={killed}')
    _wait_for_checkpoint(process, killed)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    step = checkpoint.list_steps(killed)[-1]
    _run_main('--preset=smoke', f'--num_steps={step + 20}',
              f'--workdir={killed}')
    uninterrupted = self.create_tempdir().full_path
    _run_main('--preset=smoke', f'--num_steps={step + 20}',
              f'--workdir={uninterrupted}')
    resumed_step, resumed = _final_params(killed)
    expected_step, expected = _final_params(uninterrupted)
    self.assertEqual(resumed_step, step + 20)
    self.assertEqual(expected_step, step + 20)
    self.assertEqual(resumed.keys(), expected.keys())
    for name in expected:
      np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)

  # SIGTERM in the fast tier, SIGINT in the slow (startup_test interrupts a
  # starting binary with SIGINT in the fast tier).
  def test_signal_saves_a_checkpoint_and_exits_cleanly(self):
    self._signal_saves_a_checkpoint_and_exits_cleanly(signal.SIGTERM)

  @pytest.mark.slow
  def test_sigint_saves_a_checkpoint_and_exits_cleanly(self):
    self._signal_saves_a_checkpoint_and_exits_cleanly(signal.SIGINT)

  def _signal_saves_a_checkpoint_and_exits_cleanly(self, signum):
    workdir = self.create_tempdir().full_path
    process = _start_binary('--preset=smoke', '--num_steps=1000000',
                            f'--workdir={workdir}')
    _wait_for_checkpoint(process, workdir)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    self.assertEqual(process.returncode, 0, stderr)
    self.assertIn(f'stopped by {signum.name}', stdout)
    self.assertIn('Stopping at step', stderr)
    step = checkpoint.list_steps(workdir)[-1]
    self.assertIn(f'at step {step},', stdout)

  @pytest.mark.slow
  def test_nan_loss_is_a_clear_error(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(FloatingPointError, 'Training loss is nan'):
      _run_main('--preset=smoke', '--learning_rate=1e30',
                '--min_learning_rate=1e30', '--max_grad_norm=0',
                f'--workdir={workdir}')

  @parameterized.parameters(
      ('--num_objects=1', 'num_objects'),
      ('--gate_style=foo', 'gate_style'),
      ('--batch_size=0', 'batch_size'),
  )
  def test_bad_flag_values(self, flag, name):
    with flagsaver.flagsaver():
      with self.assertRaisesRegex(flags.IllegalFlagValueError, name):
        FLAGS(['nth_farthest', flag])

  @parameterized.parameters(
      ('--preset=huge', r"Unknown --preset='huge'"),
      ('--log_every=7', 'log_every=7 must be a multiple of steps_per_chunk'),
      ('--min_learning_rate=1', 'min_learning_rate'),
      ('--core=lstm --compute_dtype=bfloat16',
       'compute_dtype=bfloat16 applies to the RMC core only'),
  )
  def test_bad_configurations(self, flags_, regex):
    with self.assertRaisesRegex(app.UsageError, regex):
      _run_main('--preset=smoke', *flags_.split(), '--workdir=/nonexistent')

  @pytest.mark.slow
  def test_synthetic_input_trains_on_one_batch(self):
    workdir = self.create_tempdir().full_path
    _run_main('--preset=smoke', '--synthetic_input', '--num_steps=20',
              f'--workdir={workdir}')
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    train = [r for r in records if r['split'] == 'train']
    self.assertGreaterEqual(train[-1]['input_ms_per_step'], 0.0)
    self.assertLess(train[-1]['loss'], train[0]['loss'])

  @pytest.mark.slow
  def test_bfloat16_compute_learns_like_float32(self):
    binary_testing.assert_bfloat16_trains_like_float32(
        binary_testing.records_by_dtype(
            nth_farthest, self.create_tempdir, '--preset=smoke',
            '--num_steps=20'))

  # A subprocess each (about 2 s): one in the fast tier, every one in the
  # slow; the in-process tests above check each message in the fast tier.
  def test_bad_flag_from_the_command_line_has_no_traceback(self):
    self._bad_flag_from_the_command_line('--preset=huge',
                                         "Unknown --preset='huge'")

  @parameterized.parameters(
      ('--num_objects=1', '--num_objects=1'),
      ('--gate_style=foo', '--gate_style=foo'),
      ('--batch_size=0', '--batch_size=0'),
  )
  @pytest.mark.slow
  def test_bad_flag_from_the_command_line_has_no_traceback_slow(self, flag,
                                                                message):
    self._bad_flag_from_the_command_line(flag, message)

  def _bad_flag_from_the_command_line(self, flag, message):
    process = _start_binary(flag, '--workdir=/nonexistent')
    _, stderr = process.communicate(timeout=60)
    self.assertEqual(process.returncode, 1)
    self.assertIn(message, stderr)
    self.assertNotIn('Traceback', stderr)

  def test_resuming_a_different_model_is_a_clear_error(self):
    workdir = self.create_tempdir().full_path
    _run_main('--preset=smoke', '--num_steps=5', '--checkpoint_every=5',
              '--log_every=5', '--eval_every=5', f'--workdir={workdir}')
    with self.assertRaisesRegex(run_config.ConfigMismatchError,
                                r'hyperparameters.head_size 4 -> 8'):
      _run_main('--preset=smoke', '--head_size=8', f'--workdir={workdir}')
    # Without config.json (a run from before rmc wrote it), the checkpoint
    # still refuses another model.
    os.remove(os.path.join(workdir, 'config.json'))
    with self.assertRaisesRegex(checkpoint.CheckpointError,
                                r'Checkpoint .* (does not match|has shape)'):
      _run_main('--preset=smoke', '--head_size=8', f'--workdir={workdir}')

  def test_prints_per_rank_accuracy_chance_and_plateau(self):
    workdir = self.create_tempdir().full_path
    printed = _run_main('--preset=smoke', '--num_steps=5',
                        '--steps_per_chunk=5', '--log_every=5',
                        '--eval_every=5', '--checkpoint_every=5',
                        f'--workdir={workdir}')
    self.assertRegex(printed, r'rank 0: [01]\.\d{4}, other ranks: [01]\.\d{4}')
    # Smoke has 3 objects: chance 1/3, plateau 2/3 overall and 1/2 else.
    self.assertIn('With 3 objects chance is 0.3333; the plateau where only '
                  'rank 0 (the reference) is solved is 0.6667 overall, '
                  '0.5000 on the other ranks.', printed)

  @pytest.mark.slow
  def test_rank_curriculum_grows_and_resumes_exactly(self):
    flags_ = ('--preset=smoke', '--rank_curriculum',
              '--rank_curriculum_threshold=0.55')
    whole = self.create_tempdir().full_path
    _run_main(*flags_, '--num_steps=60', f'--workdir={whole}')
    records = metrics.read_records(os.path.join(whole, 'metrics.jsonl'))
    train = [r for r in records if r['split'] == 'train']
    levels = [r['curriculum_num_ranks'] for r in train]
    self.assertEqual(levels[0], 2.0)  # Ranks 0 and 1 first.
    self.assertEqual(levels, sorted(levels))
    self.assertEqual(levels[-1], 3.0)  # Then all 3 ranks of smoke.
    for before, after in zip(train, train[1:]):
      grew = after['curriculum_num_ranks'] > before['curriculum_num_ranks']
      self.assertEqual(grew, before['accuracy'] >= 0.55
                       and before['curriculum_num_ranks'] < 3)
    # The held-out set asks every rank, whatever the curriculum.
    self.assertIn('eval_accuracy_other_ranks', records[-1])

    resumed = self.create_tempdir().full_path
    _run_main(*flags_, '--num_steps=20', f'--workdir={resumed}')
    _run_main(*flags_, '--num_steps=60', f'--workdir={resumed}')
    _, expected = binary_testing.checkpoint_arrays(whole)
    _, got = binary_testing.checkpoint_arrays(resumed)
    self.assertIn("[1]['curriculum_num_ranks']", got)
    self.assertEqual(got.keys(), expected.keys())
    for name in expected:
      np.testing.assert_array_equal(got[name], expected[name], err_msg=name)

  def test_curriculum_flags(self):
    with flagsaver.flagsaver():
      for bad in ('--rank_curriculum_threshold=1.5',
                  '--rank_curriculum_threshold=nan', '--rank_curriculum=k'):
        with self.assertRaisesRegex(flags.IllegalFlagValueError,
                                    'curriculum'):
          FLAGS(['nth_farthest', bad])
    with self.assertRaisesRegex(app.UsageError,
                                'cannot follow --rank_curriculum'):
      _run_main('--preset=smoke', '--rank_curriculum', '--synthetic_input',
                '--workdir=/nonexistent')

  def test_rank_curriculum_unit(self):
    curriculum = nth_farthest.RankCurriculum(num_objects=4, threshold=0.9)
    np.testing.assert_array_equal(curriculum.batches(0, 3), [2, 2, 2])
    for accuracy, expected in ((0.5, 2), (0.9, 3), (0.89, 3), (0.95, 4),
                               (1.0, 4)):
      curriculum.observe({'step': 1, 'accuracy': accuracy})
      self.assertEqual(curriculum.num_ranks, expected)
    other = nth_farthest.RankCurriculum(num_objects=4, threshold=0.9)
    other.restore(curriculum.state())
    self.assertEqual(other.num_ranks, 4)

  @parameterized.parameters(*sorted(nth_farthest.PRESETS))
  def test_every_preset_resolves_and_builds_its_model(self, preset):
    with flagsaver.flagsaver():
      FLAGS(['nth_farthest', f'--preset={preset}'])
      config = launch.resolve(nth_farthest.TASK)
    self.assertEqual(config.preset, preset)
    k = config.task.num_objects
    inputs = jnp.zeros([2, k, config.task.num_features + 3 * k])  # [B,K,F+3K]
    model = nth_farthest.TASK.model(config)
    # Shapes only (nothing is compiled), so every preset costs no time.
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), inputs)
    logits = jax.eval_shape(model.apply, params, inputs)
    self.assertEqual(logits.shape, (2, k))

  def test_rank_accuracies_are_over_the_whole_held_out_set(self):
    # Batches of 2 sequences of 3 objects: some batches ask no rank 0, which
    # must not count as wrong answers (a mean of per-batch fractions would
    # put rank 0 near 1 - (2/3)**2 = 0.56 for a model that always answers
    # it right).
    config = nth_farthest.PRESETS['smoke'].replace(batch_size=2,
                                                   eval_batches=64)
    k = config.task.num_objects
    held_out = nth_farthest.held_out_set(config, seed=0)
    inputs = held_out.inputs.reshape(-1, *held_out.inputs.shape[2:])
    labels = np.asarray(held_out.labels).reshape(-1)  # [eval_batches * 2]
    rank = np.argmax(inputs[:, 0, -k:], axis=-1)
    self.assertGreater(np.sum(np.all(
        held_out.inputs[:, :, 0, -k] == 0, axis=1)), 0)  # Batches lacking it.
    model = nth_farthest.TASK.model(config)
    params = model.init(jax.random.PRNGKey(1), inputs[:2])
    right = np.argmax(model.apply(params, inputs), axis=-1) == labels
    got = nth_farthest.make_evaluate(config, seed=0)(params)
    self.assertAlmostEqual(got['accuracy'], np.mean(right), places=5)
    self.assertAlmostEqual(got['accuracy_rank_0'], np.mean(right[rank == 0]),
                           places=5)
    self.assertAlmostEqual(got['accuracy_other_ranks'],
                           np.mean(right[rank != 0]), places=5)
    self.assertEqual(set(got), {'loss', 'accuracy', 'accuracy_rank_0',
                                'accuracy_other_ranks'})

  def test_study_presets_are_the_ones_documented(self):
    cpu, cpu_k3 = nth_farthest.PRESETS['cpu'], nth_farthest.PRESETS['cpu_k3']
    self.assertEqual((cpu.task.num_objects, cpu.rmc.mem_slots,
                      cpu.optimizer.learning_rate,
                      cpu.optimizer.min_learning_rate,
                      cpu.optimizer.warmup_steps), (4, 4, 3e-4, 3e-5, 5000))
    self.assertEqual((cpu_k3.task.num_objects, cpu_k3.rmc.mem_slots,
                      cpu_k3.optimizer.learning_rate,
                      cpu_k3.optimizer.min_learning_rate),
                     (3, 3, 1e-3, 1e-4))
    self.assertEqual(nth_farthest.PRESETS['demo'],
                     cpu_k3.replace(learning_rate=3e-4, min_learning_rate=3e-5,
                                    time_budget_s=270.0, preset='demo'))

  def test_explicit_flags_override_the_preset(self):
    with flagsaver.flagsaver():
      FLAGS(['nth_farthest', '--preset=paper', '--batch_size=8'])
      config = launch.resolve(nth_farthest.TASK)
    self.assertEqual(config.optimizer.batch_size, 8)
    self.assertEqual(config.task.num_features, 16)
    self.assertEqual((config.rmc.mem_slots, config.rmc.num_heads,
                      config.rmc.head_size), (8, 8, 32))


if __name__ == '__main__':
  absltest.main()
