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
r"""Checks that a change of code leaves training bitwise the same.

Usage (from the repository root):

  python -m benchmarks.same_numerics --before=COMMIT [--demo_steps=500]

Trains every run of :data:`RUNS` (each binary's `smoke` preset with each
core, and the `demo` preset's RMC and LSTM, those of `make demo`, for
``--demo_steps`` steps) twice on this machine, one training at a time: with
the code of ``--before``, checked out into a temporary git worktree, and with
the working tree. It compares every ``metrics.jsonl`` record but its timings,
and every array of the last checkpoint, bit for bit, prints a line per run,
and exits with status 1 if any differs. The same seed gives other figures on
another processor, so the two sides run on the same machine, here.

The commands must mean the same to both sides: a change that renames a flag
of theirs makes the check fail (with the binary's error), as it should.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from absl import app
from absl import flags
import numpy as np

_BEFORE = flags.DEFINE_string(
    'before',
    None,
    'The commit (or any git revision) whose training the working tree must '
    'equal (required).',
)
_DEMO_STEPS = flags.DEFINE_integer(
    'demo_steps',
    500,
    "Steps of each of the demo preset's two trainings (its wall-clock "
    'budget is replaced by this step budget).',
    lower_bound=1,
)
_KEEP = flags.DEFINE_bool(
    'keep', False, 'Keep the work directories (their path is printed).'
)

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Record entries that measure time, not training: they differ between runs.
TIMINGS = frozenset(
    (
        'time',
        'elapsed_s',
        'process_start_time',
        'steps_per_sec',
        'tokens_per_sec',
        'eta_s',
        'first_chunk_s',
        'input_ms_per_step',
        'peak_memory_mib',
    )
)
_CORPUS = 'wikitext_corpus'  # Made in the scratch directory, see _corpus().
# (name, binary, flags); '{corpus}' is the scratch corpus's directory.
RUNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    *(
        (
            f'nth_farthest smoke {core}',
            'nth_farthest',
            ('--preset=smoke', f'--core={core}'),
        )
        for core in ('rmc', 'lstm', 'dnc')
    ),
    *(
        (
            f'learn_to_execute smoke {core}',
            'learn_to_execute',
            ('--preset=smoke', f'--core={core}'),
        )
        for core in ('rmc', 'lstm', 'dnc')
    ),
    (
        'learn_to_execute smoke rmc, separate cores, teacher forcing',
        'learn_to_execute',
        ('--preset=smoke', '--separate_cores', '--decoder=teacher_forcing'),
    ),
    *(
        (
            f'wikitext103 smoke {core}',
            'wikitext103',
            ('--preset=smoke', f'--core={core}', '--data_dir={corpus}'),
        )
        for core in ('rmc', 'lstm')
    ),
)


def demo_runs(steps: int) -> list[tuple[str, str, tuple[str, ...]]]:
  """``make demo``'s two trainings, for ``steps`` steps instead of minutes."""
  return [
      (
          f'make demo {core}, {steps} steps',
          'nth_farthest',
          (
              '--preset=demo',
              f'--core={core}',
              '--time_budget_s=0',
              f'--num_steps={steps}',
          ),
      )
      for core in ('rmc', 'lstm')
  ]


def _corpus(scratch: str) -> str:
  """A small corpus: WikiText-2's validation text as train, test as both."""
  path = os.path.join(scratch, _CORPUS)
  if not os.path.isdir(path):
    source = os.path.join(_REPOSITORY, 'data', 'wikitext-2-subset')
    os.makedirs(path)
    shutil.copy(
        os.path.join(source, 'valid.txt'), os.path.join(path, 'train.txt')
    )
    for split in ('valid', 'test'):
      shutil.copy(
          os.path.join(source, 'test.txt'), os.path.join(path, f'{split}.txt')
      )
  return path


def figures(workdir: str) -> list[dict[str, Any]]:
  """The run's metrics records without their timings."""
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    records = [json.loads(line) for line in f if line.strip()]
  return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


def last_checkpoint(workdir: str) -> dict[str, np.ndarray]:
  """The arrays of the run's newest checkpoint."""
  name = max(
      n
      for n in os.listdir(workdir)
      if n.startswith('checkpoint_') and n.endswith('.npz')
  )
  with np.load(os.path.join(workdir, name)) as data:
    return {key: data[key] for key in data.files}


def compare(before: str, after: str) -> list[str]:
  """How two work directories' training differs: empty if bitwise equal."""
  problems = []
  old, new = figures(before), figures(after)
  if len(old) != len(new):
    problems.append(f'{len(old)} records before, {len(new)} after')
  for i, (a, b) in enumerate(zip(old, new, strict=False)):
    if a != b:
      keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
      problems.append(
          f'record {i} (step {a.get("step")}, {a.get("split")}) differs in '
          + ', '.join(f'{k} {a.get(k)!r} -> {b.get(k)!r}' for k in keys[:4])
      )
      break
  old_arrays, new_arrays = last_checkpoint(before), last_checkpoint(after)
  if set(old_arrays) != set(new_arrays):
    problems.append(
        'the checkpoints hold other arrays: '
        f'{sorted(set(old_arrays) ^ set(new_arrays))[:4]}'
    )
  for key in sorted(set(old_arrays) & set(new_arrays)):
    x, y = old_arrays[key], new_arrays[key]
    if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
      problems.append(f'checkpoint array {key} differs')
      break
  return problems


def train(tree: str, binary: str, args: Sequence[str], workdir: str) -> None:
  """Trains ``binary`` with the code in ``tree``."""
  done = subprocess.run(
      [
          sys.executable,
          '-m',
          f'experiments.{binary}',
          f'--workdir={workdir}',
          *args,
      ],
      cwd=tree,
      capture_output=True,
      text=True,
      check=False,
      env=dict(os.environ, PYTHONPATH=tree),
  )
  if done.returncode != 0:
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
    raise RuntimeError(
        f'python -m experiments.{binary} {" ".join(args)} failed in {tree}: '
        f'{tail[0] if tail else done.returncode}'
    )


def main(argv: Sequence[str]) -> None:
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if not _BEFORE.value:
    raise app.UsageError('--before is required: the commit to compare with.')
  scratch = tempfile.mkdtemp(prefix='rmc_same_numerics_')
  worktree = os.path.join(scratch, 'before')
  added = subprocess.run(
      ['git', 'worktree', 'add', '--detach', worktree, _BEFORE.value],
      cwd=_REPOSITORY,
      capture_output=True,
      text=True,
      check=False,
  )
  if added.returncode != 0:
    raise app.UsageError(
        f'--before={_BEFORE.value}: {added.stderr.strip().splitlines()[-1]}'
    )
  failed = 0
  try:
    corpus = _corpus(scratch)
    for name, binary, args in [*RUNS, *demo_runs(_DEMO_STEPS.value)]:
      args = tuple(a.format(corpus=corpus) for a in args)
      started = time.monotonic()
      workdirs = {}
      for side, tree in (('before', worktree), ('after', _REPOSITORY)):
        workdirs[side] = os.path.join(scratch, 'runs', side, name)
        train(tree, binary, args, workdirs[side])
      problems = compare(workdirs['before'], workdirs['after'])
      verdict = 'same' if not problems else 'DIFFERENT: ' + '; '.join(problems)
      failed += bool(problems)
      print(
          f'{name}: {verdict} ({len(figures(workdirs["after"]))} records, '
          f'{time.monotonic() - started:.0f} s)',
          flush=True,
      )
  finally:
    subprocess.run(
        ['git', 'worktree', 'remove', '--force', worktree],
        cwd=_REPOSITORY,
        capture_output=True,
        check=False,
    )
    if _KEEP.value:
      print(f'Work directories kept in {scratch}.')
    else:
      shutil.rmtree(scratch, ignore_errors=True)
  if failed:
    sys.exit(f'error: {failed} run(s) differ from {_BEFORE.value}.')
  print(f'Every run is bitwise the same as with {_BEFORE.value}.')


if __name__ == '__main__':
  app.run(main)
