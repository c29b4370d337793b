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
"""One training per work directory: rmc.toolkit.workdir_lock, and the binaries."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
import jax
import numpy as np
import pytest
import rmc
from rmc.toolkit import checkpoint
from rmc.toolkit import metrics
from rmc.toolkit import workdir_lock

import binary_testing
from experiments import nth_farthest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Holds the lock of argv[1] and says so on stdout, until killed.
_HOLDER = ('import sys, time\n'
           'from rmc.toolkit import workdir_lock\n'
           'with workdir_lock.hold(sys.argv[1]):\n'
           '  print("held", flush=True)\n'
           '  time.sleep(600)\n')


def _start_training(workdir, log, *args):
  """A training in the background, its output to the file ``log``.

  Not to a pipe: a long run's logging would fill it and block the process.
  """
  with open(log, 'w') as f:
    return subprocess.Popen(
        [sys.executable, '-m', 'experiments.nth_farthest', '--preset=smoke',
         f'--workdir={workdir}', *args], cwd=_ROOT, stdout=f,
        stderr=subprocess.STDOUT, text=True)


def _wait_for(condition, process, what, log, timeout=120):
  deadline = time.monotonic() + timeout
  while not condition():
    if process.poll() is not None or time.monotonic() > deadline:
      process.kill()
      process.wait()
      with open(log) as f:
        raise AssertionError(f'No {what}; the training printed:\n'
                             f'{f.read()[-3000:]}')
    time.sleep(0.02)


class LockTest(absltest.TestCase):

  def test_a_second_hold_fails_naming_the_holder(self):
    workdir = self.create_tempdir().full_path
    self.assertFalse(workdir_lock.is_held(workdir))
    with workdir_lock.hold(workdir) as me:
      self.assertEqual(me['pid'], os.getpid())
      self.assertEqual(me['host'], socket.gethostname())
      self.assertTrue(workdir_lock.is_held(workdir))
      self.assertEqual(workdir_lock.holder(workdir), json.loads(json.dumps(me)))
      with self.assertRaises(workdir_lock.WorkdirBusyError) as raised:
        with workdir_lock.hold(workdir):
          pass
      message = str(raised.exception)
      self.assertIn(workdir, message)
      self.assertIn(f'pid {os.getpid()} on host {socket.gethostname()}',
                    message)
    self.assertFalse(workdir_lock.is_held(workdir))
    with workdir_lock.hold(workdir):  # Released: free again.
      pass

  def test_the_kernel_releases_the_lock_of_a_killed_holder(self):
    workdir = self.create_tempdir().full_path
    holder = subprocess.Popen([sys.executable, '-c', _HOLDER, workdir],
                              cwd=_ROOT, stdout=subprocess.PIPE, text=True)
    self.addCleanup(holder.kill)
    self.assertEqual(holder.stdout.readline().strip(), 'held')
    self.assertTrue(workdir_lock.is_held(workdir))
    with self.assertRaisesRegex(workdir_lock.WorkdirBusyError,
                                f'pid {holder.pid} on host '):
      with workdir_lock.hold(workdir):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    self.assertFalse(workdir_lock.is_held(workdir))
    self.assertEqual(workdir_lock.holder(workdir)['pid'], holder.pid)  # Stale.
    with workdir_lock.hold(workdir) as me:
      self.assertEqual(workdir_lock.holder(workdir)['pid'], me['pid'])

  def test_file_lock_serialises_writers(self):
    path = os.path.join(self.create_tempdir().full_path, 'metrics.jsonl')
    with workdir_lock.file_lock(path):
      holder = subprocess.run(
          [sys.executable, '-c',
           'import fcntl, sys\n'
           'f = open(sys.argv[1] + ".lock")\n'
           'try:\n'
           '  fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n'
           'except BlockingIOError:\n'
           '  print("busy")\n', path],
          capture_output=True, text=True, check=True)
    self.assertEqual(holder.stdout.strip(), 'busy')


class LoadRunTest(absltest.TestCase):

  def test_a_newest_checkpoint_deleted_under_the_reader_is_skipped(self):
    workdir, _ = binary_testing.shared_run(nth_farthest, '--preset=smoke',
                                           '--core=rmc')
    steps = checkpoint.list_steps(workdir)
    # The first listing names a checkpoint a training has since deleted.
    listings = iter([steps + [steps[-1] + 20], steps])
    with mock.patch.object(checkpoint, 'list_steps',
                           side_effect=lambda _: next(listings)):
      run = rmc.load_run(workdir)
    self.assertEqual(run.step, steps[-1])
    # A step asked for by name is not replaced by another.
    with self.assertRaisesRegex(checkpoint.CheckpointError,
                                f'No checkpoint of step {steps[-1] + 20}'):
      rmc.load_run(workdir, step=steps[-1] + 20)


class TwoTrainingsTest(absltest.TestCase):
  """Real processes on one --workdir: a training, a second one, the readers."""

  # Trainings in subprocesses: in the slow tier; the lock itself is tested
  # above in the fast tier.
  @pytest.mark.slow
  def test_one_training_per_workdir_readers_beside_it_and_kill_resume(self):
    workdir = self.create_tempdir().full_path
    log = os.path.join(self.create_tempdir().full_path, 'first.log')
    # Checkpoints and evaluations every 100 steps, not 20: the run goes at
    # hundreds of steps a second, and the readers below share the cores.
    first = _start_training(workdir, log, '--num_steps=1000000',
                            '--checkpoint_every=100', '--eval_every=100')
    self.addCleanup(first.kill)
    _wait_for(lambda: checkpoint.list_steps(workdir), first, 'checkpoint', log)

    # A second training ends at once with one line naming the first.
    start = time.monotonic()
    second = subprocess.run(
        [sys.executable, '-m', 'experiments.nth_farthest', '--preset=smoke',
         f'--workdir={workdir}'], cwd=_ROOT, capture_output=True, text=True,
        timeout=120, check=False)
    self.assertEqual(second.returncode, 1, second.stderr)
    self.assertNotIn('Traceback', second.stderr)
    last = second.stderr.strip().splitlines()[-1]
    self.assertEqual(
        last, f'error: {workdir} is in use by another training: pid '
        f'{first.pid} on host {socket.gethostname()}, since '
        f'{workdir_lock.holder(workdir)["since"]}. One training per work '
        'directory: wait for it to end, stop it, or pass another --workdir.')
    self.assertLess(time.monotonic() - start, 60)  # No model was compiled.
    self.assertIsNone(first.poll())  # The first one trains on.

    # Evaluate, predict and load_run work beside it.
    evaluated = binary_testing.run_main(
        nth_farthest, '--mode=evaluate', f'--workdir={workdir}')
    self.assertIn('Held-out accuracy', evaluated)
    predicted = binary_testing.run_main(
        nth_farthest, '--mode=predict', f'--workdir={workdir}')
    self.assertRegex(predicted, r'\n\d of 5 right\.')
    run = rmc.load_run(workdir)
    self.assertEqual(run.step % 100, 0)  # One of the training's checkpoints.
    self.assertGreaterEqual(run.step, 100)
    for leaf in jax.tree.leaves(run.params):
      self.assertTrue(np.all(np.isfinite(leaf)))
    # A few more of the training's records after the evaluation's.
    evaluate_line = _line_count(workdir)
    _wait_for(lambda: _line_count(workdir) > evaluate_line + 1, first,
              'metrics record after the evaluation', log)
    self.assertIsNone(first.poll())

    # SIGKILL, then an immediate resume: no stale lock.
    first.send_signal(signal.SIGKILL)
    first.wait()
    with open(os.path.join(workdir, 'metrics.jsonl'), 'rb') as f:
      content = f.read()
    lines = content.split(b'\n')
    for line in lines[:-1]:
      json.loads(line)  # No line torn by the two writers.
    self.assertIn('evaluate', [json.loads(l)['split'] for l in lines[:-1]])
    step = checkpoint.list_steps(workdir)[-1]
    printed = binary_testing.run_main(
        nth_farthest, '--preset=smoke', f'--num_steps={step + 20}',
        f'--workdir={workdir}')
    self.assertIn(f'at step {step + 20}, stopped by num_steps', printed)
    self.assertEqual(workdir_lock.holder(workdir)['pid'], os.getpid())
    self.assertFalse(workdir_lock.is_held(workdir))
    records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
    self.assertEqual(records[-1]['step'], step + 20)


def _line_count(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl'), 'rb') as f:
    return f.read().count(b'\n')


if __name__ == '__main__':
  absltest.main()
