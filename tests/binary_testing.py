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
"""Helpers for the tests of the experiment binaries."""

import contextlib
import fcntl
import hashlib
import io
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from types import ModuleType
from typing import Any

from absl import flags
from absl.testing import flagsaver
import numpy as np
from rmc.data import wikitext
from rmc.toolkit import checkpoint
from rmc.toolkit import metrics


def run_main(binary: ModuleType, *args: str) -> str:
  """Runs ``binary.main`` in-process with ``args``; returns what it printed.

  Flags are restored afterwards, so tests do not leak settings.
  """
  name = binary.__name__.rsplit('.', 1)[-1]
  with flagsaver.flagsaver():
    flags.FLAGS([name, *args])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      binary.main([name])
  return out.getvalue()


@contextlib.contextmanager
def _made_once(name: str):
  """Yields ``(path, done)`` under an exclusive lock for ``name`` in the
  session's shared directory; ``done`` says whether it was made already."""
  root = os.environ.get('RMC_TEST_RUNS_DIR') or tempfile.gettempdir()
  path = os.path.join(root, name)
  with open(path + '.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # Other test processes wait here.
    yield path, os.path.exists(path + '.done')


def shared_wikitext_corpus() -> tuple[str, dict[str, int]]:
  """``(data_dir, tokens per split)`` of one small corpus per session.

  Its cache (``<data_dir>/rmc_cache``, vocabulary from ``train``) is built
  here, so that runs only read it.
  """
  with _made_once('wikitext_corpus') as (path, done):
    if not done:
      shutil.rmtree(path, ignore_errors=True)
      os.makedirs(path)
      write_wikitext_corpus(path)
      wikitext.load(path)
      with open(path + '.done', 'w'):
        pass
  return path, _corpus_counts(path)


def shared_run(binary: ModuleType, *args: str) -> tuple[str, str]:
  """A run of ``binary`` with ``args``, trained once per test session.

  Every test process of the session shares it (in ``$RMC_TEST_RUNS_DIR``,
  made by conftest.py), so tests that read the same trained run pay for one
  training. Tests must not change it: copy it first.

  Returns:
    ``(workdir, printed)``: the work directory and what the run printed.
  """
  key = hashlib.sha256(repr((binary.__name__, args)).encode()).hexdigest()
  with _made_once(f'run_{key[:16]}') as (workdir, done):
    if not done:
      shutil.rmtree(workdir, ignore_errors=True)
      printed = run_main(binary, *args, f'--workdir={workdir}')
      with open(workdir + '.done', 'w') as f:
        f.write(printed)
    with open(workdir + '.done') as f:
      return workdir, f.read()


def records_by_dtype(binary: ModuleType, make_workdir: Callable[[], Any],
                     *args: str) -> dict[str, list[dict[str, Any]]]:
  """Runs ``binary`` with ``args`` in float32 and in bfloat16 compute.

  Args:
    binary: The experiment module.
    make_workdir: Gives a fresh directory per run (e.g. a test's
      ``create_tempdir``; its ``full_path`` is used if it has one).
    *args: The flags of both runs.

  Returns:
    ``{'float32': records, 'bfloat16': records}`` of each run's metrics.
  """
  records = {}
  for dtype in ('float32', 'bfloat16'):
    workdir = make_workdir()
    workdir = getattr(workdir, 'full_path', workdir)
    run_main(binary, *args, f'--compute_dtype={dtype}', f'--workdir={workdir}')
    records[dtype] = metrics.read_records(
        os.path.join(workdir, 'metrics.jsonl'))
  return records


def assert_bfloat16_trains_like_float32(
    records: dict[str, list[dict[str, Any]]]) -> None:
  """The bfloat16 run learns, and its training losses are float32's within 5%.

  Same data and initialisation: the curves differ only by rounding (and do
  differ, so bfloat16 was in use).
  """
  losses = {dtype: np.array([r['loss'] for r in rs if r['split'] == 'train'])
            for dtype, rs in records.items()}
  assert losses['bfloat16'][-1] < losses['bfloat16'][0], losses
  np.testing.assert_allclose(losses['bfloat16'], losses['float32'], rtol=0.05)
  assert not np.array_equal(losses['bfloat16'], losses['float32']), losses


def checkpoint_arrays(workdir: str) -> tuple[int, dict[str, np.ndarray]]:
  """The step and every array of the newest checkpoint in ``workdir``."""
  step = checkpoint.list_steps(workdir)[-1]
  with np.load(checkpoint.path_for_step(workdir, step)) as data:
    return step, {k: data[k] for k in data.files}


def _corpus_counts(directory: str) -> dict[str, int]:
  counts = {}
  for split in ('train', 'valid', 'test'):
    with open(os.path.join(directory, f'wiki.{split}.tokens')) as f:
      counts[split] = sum(len(line.split()) + 1 for line in f)
  return counts


def write_wikitext_corpus(directory: str) -> dict[str, int]:
  """Writes a small corpus in the WikiText format; returns tokens per split."""
  rng = random.Random(0)
  words = ['the', 'cat', 'sat', 'on', 'a', 'mat', '.', ',', '@-@', '<unk>',
           'dog', 'ran', 'big', 'red']
  for split, paragraphs in (('train', 120), ('valid', 20), ('test', 20)):
    lines = [' ', ' = Title = ', ' ']
    for i in range(paragraphs):
      lines.append(' ' + ' '.join(rng.choice(words)
                                  for _ in range(rng.randint(4, 25))) + ' '
                   if i % 4 else ' ')
    with open(os.path.join(directory, f'wiki.{split}.tokens'), 'w') as f:
      f.write('\n'.join(lines) + '\n')
  return _corpus_counts(directory)
