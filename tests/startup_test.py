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
"""Stop requests at every moment of a binary's life (experiments/startup.py).

Real processes, signalled from a parent as a user's shell or a scheduler
would: the binary must end promptly with one line, no traceback and no
crash, its work directory unlocked and its run resumable.
"""

import os
import re
import signal
import subprocess
import sys
import time

from absl.testing import absltest
from absl.testing import parameterized
import pytest
from rmc.toolkit import checkpoint
from rmc.toolkit import metrics

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path: str) -> str:
  with open(os.path.join(_ROOT, path), encoding='utf-8') as f:
    return f.read()
# Seconds a stopped process may take to end: prompt, on a loaded machine.
_PROMPT_S = 10.0


def _binary(workdir, *args):
  return [sys.executable, '-m', 'experiments.nth_farthest', '--preset=smoke',
          f'--workdir={workdir}', *args]


def _started_training(workdir):
  records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
  return any(r.get('split') == 'train' for r in records)


class StartFirstTest(absltest.TestCase):

  def test_each_binary_starts_before_importing_anything_else(self):
    # A binary's stop handlers and its huge-page restart come first: before
    # the start, only `from experiments import startup` (and the standard
    # library) may be imported.
    binaries = [name for name in sorted(os.listdir(
        os.path.join(_ROOT, 'experiments'))) if name.endswith('.py') and
                'startup.start()' in _read(os.path.join('experiments', name))]
    self.assertContainsSubset({'nth_farthest.py', 'learn_to_execute.py',
                               'wikitext103.py', 'nth_farthest_demo.py',
                               'seeds.py'}, binaries)
    for name in binaries:
      text = _read(os.path.join('experiments', name))
      before = text[:text.index('startup.start()')]
      imports = re.findall(r'^(?:from \S+ import \S+|import \S+)', before,
                           re.M)
      self.assertEqual(imports, ['from experiments import startup'], name)


class StopTest(parameterized.TestCase):

  def _stop_and_resume(self, signum, after_s=None, in_training=False):
    """Signals a long smoke run; checks how it ends, then resumes it."""
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    process = subprocess.Popen(
        _binary(workdir, '--num_steps=100000'), cwd=_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
      if in_training:
        deadline = time.monotonic() + 300
        while not _started_training(workdir):
          self.assertIsNone(process.poll(), 'the run ended by itself')
          self.assertLess(time.monotonic(), deadline)
          time.sleep(0.05)
      else:
        time.sleep(after_s)
      process.send_signal(signum)
      signalled = time.monotonic()
      out, err = process.communicate(timeout=300)
      took = time.monotonic() - signalled
    finally:
      process.kill()
    name = signal.Signals(signum).name
    self.assertNotIn('Traceback', err)
    self.assertNotIn('Exception ignored', err)
    if process.returncode == 0:  # The training loop took it: a checkpoint.
      self.assertIn(f'stopped by {name}', out)
      self.assertTrue(checkpoint.list_steps(workdir))
    else:
      self.assertEqual(process.returncode, 128 + signum, err)
      self.assertLess(took, _PROMPT_S)
      ours = [line for line in err.splitlines() if 'stopped by' in line]
      self.assertLen(ours, 1, err)
      self.assertTrue(ours[0].startswith(f'stopped by {name}'), ours[0])
      self.assertEqual(err.strip().splitlines()[-1], ours[0])
      self.assertRegex(ours[0], 'nothing was trained|holds step')
    # The lock is free and the run resumes (or starts) where it stopped.
    steps = checkpoint.list_steps(workdir)
    end = (steps[-1] if steps else 0) + 5
    resumed = subprocess.run(
        _binary(workdir, f'--num_steps={end}'), cwd=_ROOT,
        capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-2000:])
    self.assertEqual(checkpoint.list_steps(workdir)[-1], end)

  def test_sigint_while_starting(self):
    self._stop_and_resume(signal.SIGINT, after_s=0.3)

  # nth_farthest_test stops a training with SIGTERM in the fast tier.
  @pytest.mark.slow
  def test_sigterm_in_training_checkpoints(self):
    self._stop_and_resume(signal.SIGTERM, in_training=True)

  # The moments of issue reports: imports, flags and data, XLA's compile.
  @parameterized.product(signum=[signal.SIGINT, signal.SIGTERM],
                         after_s=[0.3, 1.0, 2.5, 4.0, 8.0])
  @pytest.mark.slow
  def test_at_every_moment(self, signum, after_s):
    self._stop_and_resume(signum, after_s=after_s)

  def test_a_stop_during_native_code_is_prompt(self):
    # A Python handler waits for the main thread to leave C code (a long
    # XLA compile, here a matrix product); the wakeup pipe's thread does not.
    code = (
        'import numpy as np\n'
        'from experiments import startup\n'
        'startup.install_stop_handlers()\n'
        'a = np.ones((6000, 6000), np.float32)\n'
        'print("ready", flush=True)\n'
        'a @ a\n'
        'print("finished", flush=True)\n')
    process = subprocess.Popen(
        [sys.executable, '-c', code], cwd=_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, OPENBLAS_NUM_THREADS='1', OMP_NUM_THREADS='1'))
    try:
      self.assertEqual(process.stdout.readline(), 'ready\n')
      time.sleep(0.3)
      process.send_signal(signal.SIGINT)
      signalled = time.monotonic()
      out, err = process.communicate(timeout=300)
      took = time.monotonic() - signalled
    finally:
      process.kill()
    self.assertEqual(process.returncode, 130, err)
    self.assertEqual(out, '')  # The product never finished.
    self.assertEqual(err, 'stopped by SIGINT while starting: nothing was '
                     'trained.\n')
    self.assertLess(took, 2.0)

  def test_a_signal_across_the_restart_stops_the_new_process(self):
    # The huge-page restart replaces the process; a signal sent just before
    # (here, by the process itself, once the restart has blocked it) must
    # reach the new process, not meet Python's start-up.
    code = (
        'import os, signal, time\n'
        'from experiments import huge_pages, startup\n'
        'if os.environ.get("RESTARTED"):\n'
        '  print("restarted", flush=True)\n'
        '  startup.install_stop_handlers()\n'
        '  time.sleep(30)\n'
        '  print("not stopped", flush=True)\n'
        'else:\n'
        '  startup.install_stop_handlers()\n'
        '  huge_pages.environment_with_huge_pages = (\n'
        '      lambda environ, *_: dict(environ, RESTARTED="1"))\n'
        '  execve = os.execve\n'
        '  def signalled_execve(*args):\n'
        '    os.kill(os.getpid(), signal.SIGINT)\n'
        '    execve(*args)\n'
        '  os.execve = signalled_execve\n'
        '  huge_pages.restart_with_huge_pages(keep_pending=startup.SIGNALS)\n')
    done = subprocess.run([sys.executable, '-c', code], cwd=_ROOT,
                          capture_output=True, text=True, timeout=60,
                          check=False)
    self.assertEqual(done.returncode, 130, done.stderr)
    self.assertEqual(done.stdout, 'restarted\n')
    self.assertEqual(done.stderr, 'stopped by SIGINT while starting: nothing '
                     'was trained.\n')


if __name__ == '__main__':
  absltest.main()
