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
"""Faults a user meets, through the real binaries.

The cases are the table of docs/toolkit.md, When things go wrong.

Each test runs a binary in a subprocess and checks its exit status, its one
line ``error: ...``, that no traceback was printed, and what is left on disk.
A full disk is simulated with ``disk_full_runner.py`` (an ``ENOSPC`` at a
chosen write) and, where this machine lets the test mount a small tmpfs, met
for real.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import pytest
from rmc.toolkit import checkpoint
from rmc.toolkit import metrics

import binary_testing
from experiments import nth_farthest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RUNNER = os.path.join(_ROOT, 'tests', 'disk_full_runner.py')
# Smoke runs of 40 steps with checkpoints at steps 20 and 40 (both kept).
_SMOKE = ('--preset=smoke', '--num_steps=40', '--checkpoint_every=20',
          '--keep_checkpoints=2')


def _binary(module, *args, runner=()):
  """Runs ``python -m module args`` (or through ``runner``): (rc, stderr)."""
  command = ([sys.executable, _RUNNER, *runner, module] if runner
             else [sys.executable, '-m', module])
  process = subprocess.run([*command, *args], cwd=_ROOT, capture_output=True,
                           text=True, timeout=300, check=False)
  return process.returncode, process.stderr


def _uninterrupted():
  """Work directory of an uninterrupted 40-step smoke run (made once)."""
  if _uninterrupted.workdir is None:
    _uninterrupted.workdir = tempfile.mkdtemp(prefix='faults_reference_')
    binary_testing.run_main(nth_farthest, *_SMOKE,
                            f'--workdir={_uninterrupted.workdir}')
  return _uninterrupted.workdir
_uninterrupted.workdir = None


class FaultsTest(parameterized.TestCase):
  """Faults, most in a binary's subprocess (about 2 s each on 2 cores).

  The fast tier keeps one fault of each kind (a bad --workdir, a missing data
  directory, a bad number, too little data, a full disk); the slow tier has
  every one.
  """

  def assertOneLineError(self, rc, stderr, regex):
    self.assertEqual(rc, 1, stderr)
    self.assertNotIn('Traceback', stderr)
    self.assertRegex(stderr.strip().splitlines()[-1], '^error: ' + regex)

  def assertSameAsUninterrupted(self, workdir):
    step, got = binary_testing.checkpoint_arrays(workdir)
    expected_step, expected = binary_testing.checkpoint_arrays(
        _uninterrupted())
    self.assertEqual(step, expected_step)
    self.assertEqual(got.keys(), expected.keys())
    for name in expected:
      np.testing.assert_array_equal(got[name], expected[name], err_msg=name)

  def mount_tmpfs(self, path, options):
    """Mounts a tmpfs with ``options`` on ``path`` for this test, or skips."""
    mounted = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', path],
        capture_output=True, check=False)
    if mounted.returncode:
      self.skipTest(f'Cannot mount a tmpfs here: {mounted.stderr!r}')
    self.addCleanup(subprocess.run, ['umount', path], check=False)

  def resumable_copy(self, keep_steps):
    """A copy of the reference run with only the checkpoints of those steps."""
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    shutil.copytree(_uninterrupted(), workdir)
    for step in checkpoint.list_steps(workdir):
      if step not in keep_steps:
        os.remove(checkpoint.path_for_step(workdir, step))
    return workdir

  # --workdir: checked before the model is built.

  def test_workdir_that_is_a_file(self):
    path = self.create_tempfile().full_path
    rc, stderr = _binary('experiments.nth_farthest', '--preset=smoke',
                         f'--workdir={path}')
    self.assertOneLineError(rc, stderr,
                            f'--workdir={path} is a file, not a directory.$')
    self.assertNotIn('training on', stderr)

  @pytest.mark.slow
  def test_workdir_that_cannot_be_created(self):
    path = os.path.join(self.create_tempfile().full_path, 'run')
    rc, stderr = _binary('experiments.nth_farthest', '--preset=smoke',
                         f'--workdir={path}')
    self.assertOneLineError(rc, stderr,
                            f'--workdir={path} cannot be created: Not a '
                            'directory.$')

  @pytest.mark.slow
  def test_workdir_that_is_not_writable(self):
    path = self.create_tempdir().full_path
    os.chmod(path, 0o500)
    if os.access(path, os.W_OK):  # Root writes anyway: mount it read-only.
      self.mount_tmpfs(path, 'ro,size=1m')
    rc, stderr = _binary('experiments.nth_farthest', '--preset=smoke',
                         f'--workdir={path}')
    self.assertOneLineError(rc, stderr, f'--workdir={path} is not writable: ')

  @pytest.mark.slow
  def test_verbose_errors_shows_the_traceback(self):
    path = self.create_tempfile().full_path
    rc, stderr = _binary('experiments.nth_farthest', '--preset=smoke',
                         f'--workdir={path}', '--verbose_errors')
    self.assertEqual(rc, 1)
    self.assertIn('Traceback', stderr)
    self.assertIn(f'--workdir={path} is a file, not a directory.', stderr)

  def test_missing_data_dir(self):
    path = os.path.join(self.create_tempdir().full_path, 'missing')
    rc, stderr = _binary('experiments.wikitext103', '--preset=smoke',
                         f'--data_dir={path}', f'--workdir={path}-run')
    self.assertOneLineError(rc, stderr,
                            f"Data directory '{path}' does not exist")

  @pytest.mark.slow
  def test_cache_dir_that_is_a_file(self):
    data_dir = self.create_tempdir().full_path
    binary_testing.write_wikitext_corpus(data_dir)
    cache = self.create_tempfile().full_path
    rc, stderr = _binary('experiments.wikitext103', '--preset=smoke',
                         f'--data_dir={data_dir}', f'--cache_dir={cache}',
                         f'--workdir={data_dir}/run')
    self.assertOneLineError(rc, stderr,
                            f"Cannot create the cache directory '{cache}'")

  def test_non_finite_float_flag(self):
    self._non_finite_float_flag('--learning_rate=nan')

  @parameterized.parameters('--max_grad_norm=inf', '--decay_rate=nan')
  @pytest.mark.slow
  def test_non_finite_float_flag_slow(self, flag):
    self._non_finite_float_flag(flag)

  def _non_finite_float_flag(self, flag):
    rc, stderr = _binary('experiments.nth_farthest', flag, '--workdir=/tmp')
    self.assertEqual(rc, 1)
    self.assertNotIn('Traceback', stderr)
    name = flag.split('=')[0]
    self.assertIn(f'{name} must be a finite number', stderr)

  @pytest.mark.slow
  def test_non_finite_dropout(self):
    rc, stderr = _binary('experiments.wikitext103', '--dropout_rate=nan',
                         '--workdir=/tmp')
    self.assertEqual(rc, 1)
    self.assertIn('--dropout_rate must be a finite number', stderr)
    self.assertNotIn('Traceback', stderr)

  def test_training_stream_too_short_for_one_batch(self):
    data_dir = self.create_tempdir().full_path
    binary_testing.write_wikitext_corpus(data_dir)
    with open(os.path.join(data_dir, 'wiki.train.tokens'), 'w') as f:
      f.write(' the cat \n')
    rc, stderr = _binary(
        'experiments.wikitext103', '--preset=smoke', f'--data_dir={data_dir}',
        f'--workdir={data_dir}/run', f'--cache_dir={data_dir}/cache')
    self.assertOneLineError(rc, stderr, (
        r'The training split --train_split=train: \d+ tokens are too few for '
        r'batch_size=\d+ x unroll_length=\d+; need at least \d+.$'))

  # Checkpoints.

  @pytest.mark.slow
  def test_truncated_newest_checkpoint_resumes_from_the_older_one(self):
    workdir = self.resumable_copy(keep_steps=(20, 40))
    newest = checkpoint.path_for_step(workdir, 40)
    with open(newest, 'r+b') as f:
      f.truncate(os.path.getsize(newest) // 2)
    rc, stderr = _binary('experiments.nth_farthest', *_SMOKE,
                         f'--workdir={workdir}')
    self.assertEqual(rc, 0, stderr)
    self.assertRegex(stderr, f'Skipping checkpoint {newest}: Cannot read')
    self.assertIn('Resuming from the older checkpoint '
                  f'{checkpoint.path_for_step(workdir, 20)}', stderr)
    self.assertTrue(os.path.exists(newest + '.corrupt'))
    self.assertSameAsUninterrupted(workdir)

  @pytest.mark.slow
  def test_no_readable_checkpoint_is_an_error_that_lists_them(self):
    workdir = self.resumable_copy(keep_steps=(20, 40))
    for step in (20, 40):
      with open(checkpoint.path_for_step(workdir, step), 'wb') as f:
        f.write(b'not a checkpoint')
    rc, stderr = _binary('experiments.nth_farthest', *_SMOKE,
                         f'--workdir={workdir}')
    self.assertOneLineError(
        rc, stderr, f'None of the 2 checkpoints in {workdir} can be read: '
        'Cannot read checkpoint .*checkpoint_0000000040.npz.*; Cannot read '
        'checkpoint .*checkpoint_0000000020.npz')
    self.assertEqual(checkpoint.list_steps(workdir), [20, 40])  # Untouched.

  @pytest.mark.slow
  def test_flags_or_checkpoint_of_another_model(self):
    workdir = self.resumable_copy(keep_steps=(20,))
    rc, stderr = _binary('experiments.nth_farthest', *_SMOKE, '--head_size=8',
                         f'--workdir={workdir}')
    self.assertOneLineError(rc, stderr, r'These flags differ from the run in '
                            r'.*: hyperparameters.head_size 4 -> 8\.')
    # Without config.json (a run from before rmc wrote it), the checkpoint
    # itself is refused.
    os.remove(os.path.join(workdir, 'config.json'))
    rc, stderr = _binary('experiments.nth_farthest', *_SMOKE, '--head_size=8',
                         f'--workdir={workdir}')
    self.assertOneLineError(rc, stderr, 'Checkpoint .*checkpoint_0000000020'
                            r'.npz(: .* has shape| does not match)')
    self.assertEqual(checkpoint.list_steps(workdir), [20])

  # A full disk: the run stops with the path and the bytes, nothing earlier
  # is lost, and a rerun resumes exactly.

  @parameterized.named_parameters(
      # The second checkpoint (step 40); step 20's is written.
      ('checkpoint', r'\.tmp-.*\.npz$', 2, 'checkpoint_0000000040.npz'),
      # The fifth metrics line (training, step 30).
      ('metrics', r'metrics\.jsonl$', 5, 'metrics.jsonl'),
  )
  @pytest.mark.slow
  def test_disk_full(self, pattern, nth, victim):
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    rc, stderr = _binary('experiments.nth_farthest', *_SMOKE,
                         f'--workdir={workdir}', runner=(pattern, str(nth)))
    self.assertOneLineError(
        rc, stderr, f'No space left on the device to write {workdir}/{victim}'
        r': it needs [\d,]+ bytes; [\d,]+ bytes are free there. Every earlier '
        'checkpoint and metrics line is intact')
    self.assertEqual(glob.glob(os.path.join(workdir, '.tmp-*')), [])
    self.assertEqual(checkpoint.list_steps(workdir), [20])
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    with open(os.path.join(workdir, 'metrics.jsonl'), 'rb') as f:
      self.assertTrue(f.read().endswith(b'\n'))  # No torn line.
    expected = metrics.read_records(
        os.path.join(_uninterrupted(), 'metrics.jsonl'))
    for got, want in zip(records, expected):
      self.assertEqual(got['step'], want['step'])
      self.assertEqual(got.get('loss'), want.get('loss'))
    binary_testing.run_main(nth_farthest, *_SMOKE, f'--workdir={workdir}')
    self.assertSameAsUninterrupted(workdir)

  def test_disk_full_while_caching_wikitext(self):
    data_dir = self.create_tempdir().full_path
    binary_testing.write_wikitext_corpus(data_dir)
    cache = os.path.join(data_dir, 'cache')
    rc, stderr = _binary(
        'experiments.wikitext103', '--preset=smoke', f'--data_dir={data_dir}',
        f'--workdir={data_dir}/run', f'--cache_dir={cache}',
        runner=(r'cache/.*\.tmp-.*\.npy$', '1'))
    self.assertOneLineError(
        rc, stderr, f'No space left on the device to write {cache}/.*: it '
        'needs')
    self.assertEqual(glob.glob(os.path.join(cache, '**', '.tmp-*'),
                               recursive=True), [])

  @pytest.mark.slow
  def test_disk_full_for_real_on_a_small_tmpfs(self):
    mount_point = self.create_tempdir().full_path
    self.mount_tmpfs(mount_point, 'size=16m')
    workdir = os.path.join(mount_point, 'run')
    binary_testing.run_main(nth_farthest, *_SMOKE, '--num_steps=20',
                            f'--workdir={workdir}')
    filler = os.path.join(mount_point, 'filler')
    with open(filler, 'wb', buffering=0) as f:
      try:
        while True:
          f.write(b'\0' * 4096)
      except OSError:
        pass
    rc, stderr = _binary('experiments.nth_farthest', *_SMOKE,
                         f'--workdir={workdir}')
    self.assertOneLineError(rc, stderr, 'No space left on the device to '
                            f'write {workdir}/')
    self.assertEqual(glob.glob(os.path.join(workdir, '.tmp-*')), [])
    self.assertEqual(checkpoint.list_steps(workdir), [20])
    os.remove(filler)
    binary_testing.run_main(nth_farthest, *_SMOKE, f'--workdir={workdir}')
    self.assertSameAsUninterrupted(workdir)


if __name__ == '__main__':
  absltest.main()
