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
r"""One prepared check of an accelerator: speed, memory, the paper presets.

  python -m benchmarks.device_check --out=/tmp/device_check
  python -m benchmarks.device_check --out=/tmp/device_check_tiny --tiny

Writes ``<out>/device_check.json`` (after every part, atomically, so a
killed run keeps what it did) and ``<out>/device_check.md``, a table for
docs/scaling.md. The parts, in this order, each in its own process with its
own time limit (``timeout_s``); a part that fails or runs out of time is
recorded with the end of its error output, and the next part runs:

1. ``environment``: device kind and count, jax / jaxlib / haiku versions.
2. ``core_tests``: ``pytest tests/relational_memory_test.py`` on the device.
3. ``rmc_step_float32``, ``rmc_step_bfloat16``: ``benchmarks.rmc_step`` (all
   four configurations, ``unroll`` and ``hk.dynamic_unroll``) against this
   device's own matmul yardstick in that dtype; compile time against the
   sequence length for ``small`` in float32 only.
4. ``train_<binary>_<dtype>``: each binary's ``paper`` preset trained for
   ``--train_s`` seconds (compilation included) with ``--compute_dtype``
   float32 and bfloat16, evaluating only at the start and the end: steps/s
   (tokens/s for the LM) after the first chunk, the compile time (the first
   chunk's time less its steady-state share), peak device memory
   (``jax.Device.memory_stats()``; None where the device does not report
   it), and the training loss of the first and the last logged interval.
   The LM runs on a synthetic corpus with WikiText-103's vocabulary (267,735
   words, Zipf-distributed, every word present; ``--lm_train_tokens``
   tokens), once with the tied softmax and once with the adaptive one.
5. ``lm_first_steps``: ``benchmarks.lm_first_steps`` at the paper preset's
   batch (64): the loss, gradient norm and logit scale of each first step.
6. ``lm_memory``: ``benchmarks.lm_memory``, XLA's memory analysis of the
   paper LM step compiled for this device, with and without the chunked
   softmax.

``--total_s`` bounds the whole command: a part gets at most the time left,
and parts that cannot start are recorded as skipped. ``--tiny`` runs the
same parts on the ``smoke`` presets and tiny sizes (``rmc_step``: ``unroll``
only; LTE and the adaptive-softmax LM: float32 only), as many at once as
there are CPUs (``--jobs``): under 2 minutes on 2 cores, most of it starting
each part's process and compiling. A test runs it, so this command cannot
rot.
"""

import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

from absl import app
from absl import flags
import numpy as np

from benchmarks import synthetic_text
from rmc.data import wikitext
from rmc.toolkit import atomic_file
from rmc.toolkit import metrics

_OUT = flags.DEFINE_string(
    'out',
    None,
    'Directory for device_check.json and .md (and '
    "the parts' work directories and logs).",
)
_TINY = flags.DEFINE_bool(
    'tiny', False, 'Smoke presets and tiny sizes: about a minute on a CPU.'
)
_TRAIN_S = flags.DEFINE_float(
    'train_s',
    20.0,
    'Time budget of each training part, compilation '
    'included (--time_budget_s); --tiny uses 3.',
    lower_bound=1.0,
)
_TOTAL_S = flags.DEFINE_float(
    'total_s',
    460.0,
    'Time for the whole command; parts that cannot start in it are skipped.',
    lower_bound=1.0,
)
_LM_TRAIN_TOKENS = flags.DEFINE_integer(
    'lm_train_tokens',
    3_000_000,
    'Training tokens of the synthetic WikiText-103-shaped corpus.',
    lower_bound=1000,
)

_JOBS = flags.DEFINE_integer(
    'jobs',
    0,
    'Parts run at once; 0: one at a time, or with --tiny as many '
    'as there are CPUs (timings of parts run together are not comparable).',
    lower_bound=0,
)

_RESULT_FILE = 'device_check.json'
_TABLE_FILE = 'device_check.md'
_DTYPES = ('float32', 'bfloat16')
_BIG = 10**8  # Steps and cadences that never come within a short budget.


@dataclasses.dataclass
class Part:
  """One part of the check: a command and how to read its result.

  Attributes:
    name: The part's key in the results.
    argv: The command (run from the repository root).
    timeout_s: Its own time limit.
    read: Maps ``(stdout, workdir)`` to the part's figures.
    workdir: A directory of its own, made fresh.
  """

  name: str
  argv: list[str]
  timeout_s: float
  read: Callable[[str, str], dict[str, Any]]
  workdir: str = ''


def _environment(stdout: str, workdir: str) -> dict[str, Any]:
  del workdir
  return json.loads(stdout.strip().splitlines()[-1])


_ENVIRONMENT_CODE = """
import json, platform, jax, jaxlib, haiku
devices = jax.devices()
print(json.dumps({
    'platform': devices[0].platform, 'device_kind': devices[0].device_kind,
    'device_count': len(devices), 'jax': jax.__version__,
    'jaxlib': jaxlib.__version__, 'haiku': haiku.__version__,
    'python': platform.python_version()}))
"""


def _pytest_summary(stdout: str, workdir: str) -> dict[str, Any]:
  del workdir
  lines = [line for line in stdout.strip().splitlines() if line.strip()]
  return {'summary': lines[-1].strip('= ') if lines else ''}


def _rmc_step(stdout: str, workdir: str) -> dict[str, Any]:
  del workdir
  report = json.loads(stdout[stdout.index('{') :])
  return {
      'matmul_gflops': report['matmul_gflops'],
      'results': [
          {
              'config': r['config'],
              'implementation': r['implementation'],
              'forward_ms': r['forward']['ms'],
              'forward_backward_ms': r['forward_backward']['ms'],
              'forward_backward_fraction_of_matmul': r['forward_backward'][
                  'fraction_of_matmul'
              ],
              **(
                  {'compile_s': r['forward_backward_compile_s']}
                  if 'forward_backward_compile_s' in r
                  else {}
              ),
          }
          for r in report['results']
      ],
  }


def training_figures(records: list[dict[str, Any]]) -> dict[str, Any]:
  """Speed, compile time, memory and losses of a run's ``metrics.jsonl``.

  Args:
    records: The run's records.

  Returns:
    ``steps``; ``steps_per_sec`` and ``tokens_per_sec`` between the first
    and the last training record (after the first chunk, so without
    compilation; None with fewer than two records); ``compile_s``, the
    first chunk's time less what its steps take at that rate;
    ``peak_memory_mib``; ``first_loss`` and ``last_loss`` (the means of the
    first and last logged intervals).
  """
  train = [r for r in records if r.get('split') == 'train']
  if not train:
    return {'steps': 0}
  first, last = train[0], train[-1]
  figures = {
      'steps': last['step'],
      'first_loss': first['loss'],
      'last_loss': last['loss'],
      'peak_memory_mib': max(
          (r['peak_memory_mib'] for r in train if 'peak_memory_mib' in r),
          default=None,
      ),
      'steps_per_sec': None,
      'tokens_per_sec': None,
      'compile_s': None,
  }
  if len(train) >= 2 and last['elapsed_s'] > first['elapsed_s']:
    rate = (last['step'] - first['step']) / (
        last['elapsed_s'] - first['elapsed_s']
    )
    figures['steps_per_sec'] = rate
    if 'tokens_per_sec' in last:
      figures['tokens_per_sec'] = rate * (
          last['tokens_per_sec'] / last['steps_per_sec']
      )
    if 'first_chunk_s' in first:
      # The first record's interval starts with the compiling chunk (here
      # it is that one chunk: parts() logs every chunk).
      figures['compile_s'] = max(
          0.0, first['first_chunk_s'] - first['step'] / rate
      )
  return figures


def _training(stdout: str, workdir: str) -> dict[str, Any]:
  del stdout
  return training_figures(
      metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
  )


def _first_steps(stdout: str, workdir: str) -> dict[str, Any]:
  del stdout
  records = metrics.read_records(os.path.join(workdir, 'first_steps.jsonl'))
  steps = [r for r in records if r['step'] > 0]
  return {
      'batch_size': records[0]['config']['batch_size'],
      'losses': [round(r['loss'], 3) for r in steps],
      'grad_norms': [round(r['grad_norm'], 2) for r in steps],
      'logit_std': {
          r['step']: round(r['logit_std'], 3) for r in steps if 'logit_std' in r
      },
      'median_step_s': statistics.median(r['seconds'] for r in steps)
      if steps
      else None,
  }


def _lm_memory(stdout: str, workdir: str) -> dict[str, Any]:
  del workdir
  report = json.loads(stdout[stdout.index('{') : stdout.rindex('}') + 1])
  return {'results': report['results']}


def _write_corpus(
    directory: str, vocab_size: int, train_tokens: int, eval_tokens: int
) -> None:
  """A WikiText-format corpus in which every word of the vocabulary occurs."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(0)
  for split, tokens in (
      ('train', train_tokens),
      ('valid', eval_tokens),
      ('test', eval_tokens),
  ):
    path = os.path.join(directory, f'wiki.{split}.tokens')
    if not os.path.exists(path):
      synthetic_text.write_split(
          path, tokens, vocab_size, rng, cover_vocabulary=split == 'train'
      )


def parts(out: str, tiny: bool, train_s: float) -> list[Part]:
  """The check's parts, in order (see the module docstring)."""
  python = sys.executable
  preset = 'smoke' if tiny else 'paper'
  vocab_size = 300 if tiny else 267_735
  cutoffs = '20,60,150' if tiny else '20000,40000,200000'
  corpus = os.path.join(out, 'corpus')
  lm_data = [
      '--data_dir=' + corpus,
      '--cache_dir=' + os.path.join(corpus, 'cache'),
      # A few segments per evaluation column, so that evaluating
      # takes no time from what is measured.
      '--eval_batch_size=' + ('3' if tiny else '64'),
  ]
  result = [
      Part('environment', [python, '-c', _ENVIRONMENT_CODE], 60, _environment),
      Part(
          'core_tests',
          [
              python,
              '-m',
              'pytest',
              '-q',
              '-p',
              'no:cacheprovider',
              'tests/relational_memory_test.py',
          ]
          + (['-k', 'test_state_and_output_size'] if tiny else []),
          240,
          _pytest_summary,
      ),
  ]
  for dtype in _DTYPES:
    step_flags = (
        [
            '--config=tiny',
            '--matmul_size=64',
            '--min_time_s=0',
            '--min_repeats=2',
            '--compile_lengths=2',
            '--implementations=unroll',
        ]
        if tiny
        else [
            '--config=all',
            '--min_time_s=0.3',
            '--min_repeats=3',
            '--compile_lengths=10,100,1000',
        ]
    )
    compile_configs = (
        ('tiny' if tiny else 'small') if dtype == 'float32' else ''
    )  # Compile times in float32 only.
    result.append(
        Part(
            f'rmc_step_{dtype}',
            [
                python,
                '-m',
                'benchmarks.rmc_step',
                f'--dtype={dtype}',
                f'--compile_configs={compile_configs}',
                *step_flags,
            ],
            180,
            _rmc_step,
        )
    )
  binaries = [
      ('nth_farthest', 'nth_farthest', ['--eval_batches=1']),
      ('learn_to_execute', 'learn_to_execute', ['--eval_batches=1']),
      ('wikitext103_tied', 'wikitext103', lm_data),
      (
          'wikitext103_adaptive',
          'wikitext103',
          lm_data + ['--softmax=adaptive', f'--adaptive_cutoffs={cutoffs}'],
      ),
  ]
  # Tiny runs stop after 2 chunks, whatever the machine's speed.
  length = (
      ['--num_steps=20', '--time_budget_s=0']
      if tiny
      else [f'--num_steps={_BIG}', f'--time_budget_s={train_s}']
  )
  for name, binary, extra in binaries:
    # --tiny trains bfloat16 for two binaries only, to stay short; each
    # binary's own tests train its smoke preset in bfloat16.
    tiny_float32_only = tiny and name in (
        'learn_to_execute',
        'wikitext103_adaptive',
    )
    for dtype in ('float32',) if tiny_float32_only else _DTYPES:
      # One chunk per log, so the first record's interval is the compiling
      # chunk; one evaluation at the start and one at the end.
      result.append(
          Part(
              f'train_{name}_{dtype}',
              [
                  python,
                  '-m',
                  f'experiments.{binary}',
                  f'--preset={preset}',
                  f'--compute_dtype={dtype}',
                  *length,
                  '--steps_per_chunk=10',
                  '--log_every=10',
                  f'--eval_every={_BIG}',
                  f'--checkpoint_every={_BIG}',
                  '--keep_checkpoints=1',
                  *extra,
              ],
              train_s + 150,
              _training,
          )
      )
  result.append(
      Part(
          'lm_first_steps',
          [
              python,
              '-m',
              'benchmarks.lm_first_steps',
              f'--preset={preset}',
              '--num_steps=' + ('3' if tiny else '20'),
              '--diagnose_every=5',
              '--first_steps_data_dir=' + corpus,
              '--first_steps_split=train',
              '--first_steps_cache_dir=' + os.path.join(corpus, 'cache'),
          ],
          150,
          _first_steps,
      )
  )
  result.append(
      Part(
          'lm_memory',
          [
              python,
              '-m',
              'benchmarks.lm_memory',
              f'--preset={preset}',
              f'--vocab_size={vocab_size}',
              '--loss_chunk_sizes=0,' + ('3' if tiny else '10'),
          ],
          240,
          _lm_memory,
      )
  )
  for part in result:
    part.workdir = os.path.join(out, 'parts', part.name)
    if part.name.startswith('train_'):
      part.argv.append('--workdir=' + part.workdir)
    elif part.name == 'lm_first_steps':
      part.argv.append(
          '--first_steps_output='
          + os.path.join(part.workdir, 'first_steps.jsonl')
      )
  return result


def run_part(part: Part, timeout_s: float, log_dir: str) -> dict[str, Any]:
  """Runs one part; its figures, or how it failed. Never raises."""
  shutil.rmtree(part.workdir, ignore_errors=True)
  os.makedirs(part.workdir)
  start = time.monotonic()
  log_path = os.path.join(log_dir, part.name + '.log')
  try:
    with open(log_path, 'w', encoding='utf-8') as log:
      completed = subprocess.run(
          part.argv,
          stdout=subprocess.PIPE,
          stderr=log,
          text=True,
          timeout=timeout_s,
          check=False,
          env=dict(os.environ, PYTHONUNBUFFERED='1'),
      )
    record = {'wall_s': round(time.monotonic() - start, 1)}
    if completed.returncode != 0:
      return dict(
          record,
          status='failed',
          returncode=completed.returncode,
          error=_tail(log_path),
      )
    return dict(
        record, status='ok', **part.read(completed.stdout, part.workdir)
    )
  except subprocess.TimeoutExpired:
    return {
        'status': 'timed_out',
        'timeout_s': round(timeout_s, 1),
        'wall_s': round(time.monotonic() - start, 1),
        'error': _tail(log_path),
    }
  except Exception as e:  # pylint: disable=broad-except
    # A result that cannot be read is recorded like a failure.
    return {
        'status': 'failed',
        'wall_s': round(time.monotonic() - start, 1),
        'error': f'{type(e).__name__}: {e}',
    }


def _tail(path: str, lines: int = 4) -> str:
  with open(path, encoding='utf-8', errors='replace') as f:
    return '\n'.join(f.read().strip().splitlines()[-lines:])


def _fmt(value: Any, digits: int = 1) -> str:
  if value is None:
    return '-'
  if isinstance(value, float):
    return f'{value:,.{digits}f}'
  return str(value)


def table(report: dict[str, Any]) -> str:
  """The Markdown of a report, ready for docs/scaling.md."""
  parts_ = report['parts']
  env = parts_.get('environment', {})
  lines = [
      f"Device: {env.get('device_kind', '?')} x "
      f"{env.get('device_count', '?')} ({env.get('platform', '?')}), "
      f"jax {env.get('jax', '?')}, jaxlib {env.get('jaxlib', '?')}, "
      f"haiku {env.get('haiku', '?')}; `python -m "
      f"benchmarks.device_check{' --tiny' if report['tiny'] else ''}` "
      f"on {report['date']}, {report['wall_s']:.0f} s.",
      '',
  ]
  tests = parts_.get('core_tests', {})
  lines += [
      'Core tests on the device: '
      f"{tests.get('summary') or tests.get('status')}.",
      '',
  ]
  lines += [
      '| rmc_step | dtype | implementation | forward ms | '
      'fwd+bwd ms | fwd+bwd / matmul |',
      '|---|---|---|---|---|---|',
  ]
  for dtype in _DTYPES:
    part = parts_.get(f'rmc_step_{dtype}', {})
    for r in part.get('results', []):
      lines.append(
          f"| {r['config']} | {dtype} | {r['implementation']} | "
          f"{_fmt(r['forward_ms'], 2)} | {_fmt(r['forward_backward_ms'], 2)} "
          f"| {r['forward_backward_fraction_of_matmul']:.1%} |"
      )
    if part.get('status') == 'ok':
      lines.append(
          f'| matmul yardstick | {dtype} | | | | '
          f"{part['matmul_gflops']:,.0f} GFLOP/s |"
      )
    elif part:
      lines.append(f"| (all) | {dtype} | {part['status']} | | | |")
  compile_s = [
      f"{r['config']} {r['implementation']}: "
      + ', '.join(f'T={k}: {v:.1f}' for k, v in r['compile_s'].items())
      for r in parts_.get('rmc_step_float32', {}).get('results', [])
      if r.get('compile_s')
  ]
  if compile_s:
    lines += [
        '',
        'Compile time of forward+backward (s) by sequence length, '
        'float32: ' + '; '.join(compile_s) + '.',
    ]
  lines += [
      '',
      f"| `{report['preset']}` preset | dtype | steps | steps/s | "
      'tokens/s | compile s | peak memory MiB | loss first → last |',
      '|---|---|---|---|---|---|---|---|',
  ]
  for name, part in parts_.items():
    if not name.startswith('train_'):
      continue
    label, dtype = name[len('train_') :].rsplit('_', 1)
    if part.get('status') != 'ok':
      lines.append(f"| {label} | {dtype} | {part.get('status')} | | | | | |")
      continue
    lines.append(
        f"| {label} | {dtype} | {part['steps']} | "
        f"{_fmt(part.get('steps_per_sec'))} | "
        f"{_fmt(part.get('tokens_per_sec'), 0)} | "
        f"{_fmt(part.get('compile_s'))} | "
        f"{_fmt(part.get('peak_memory_mib'), 0)} | "
        f"{_fmt(part.get('first_loss'), 3)} → "
        f"{_fmt(part.get('last_loss'), 3)} |"
    )
  first = parts_.get('lm_first_steps', {})
  if first.get('status') == 'ok':
    lines += [
        '',
        f"LM `{report['preset']}` preset, first training losses "
        f"at batch {first['batch_size']}: "
        + ', '.join(str(x) for x in first['losses'])
        + '.',
    ]
  memory = parts_.get('lm_memory', {})
  for r in memory.get('results', []):
    m = r.get('memory_analysis_mib') or {}
    lines.append(
        f'XLA peak of one LM step, loss_chunk_size='
        f"{r['loss_chunk_size']}: {_fmt(m.get('peak'))} MiB."
    )
  failed = [
      f'{n}: {p["status"]}'
      for n, p in parts_.items()
      if p.get('status') != 'ok'
  ]
  if failed:
    lines += ['', 'Not ok: ' + '; '.join(failed) + '.']
  return '\n'.join(lines) + '\n'


def run(
    out: str,
    tiny: bool,
    train_s: float,
    total_s: float,
    lm_train_tokens: int,
    jobs: int = 1,
) -> dict[str, Any]:
  """Runs every part, ``jobs`` at a time; writes and returns the report."""
  start = time.monotonic()
  os.makedirs(out, exist_ok=True)
  log_dir = os.path.join(out, 'logs')
  os.makedirs(log_dir, exist_ok=True)
  report: dict[str, Any] = {
      'date': time.strftime('%Y-%m-%d'),
      'tiny': tiny,
      'preset': 'smoke' if tiny else 'paper',
      'host': platform.node(),
      'jobs': jobs,
      'wall_s': 0.0,
      'parts': {},
  }
  corpus = os.path.join(out, 'corpus')
  _write_corpus(
      corpus,
      300 if tiny else 267_735,
      20_000 if tiny else lm_train_tokens,
      2_000 if tiny else 20_000,
  )
  # Encoded once here, so that no LM part spends its time on it.
  wikitext.load(corpus, cache_dir=os.path.join(corpus, 'cache'))
  all_parts = parts(out, tiny, train_s)
  lock = threading.Lock()

  def run_one(part):
    left = total_s - (time.monotonic() - start)
    if left < 5:
      result = {'status': 'skipped', 'error': 'no time left (--total_s)'}
    else:
      result = run_part(part, min(part.timeout_s, left), log_dir)
    with lock:
      report['parts'][part.name] = result
      report['wall_s'] = time.monotonic() - start
      with atomic_file.write(os.path.join(out, _RESULT_FILE)) as f:
        f.write(json.dumps(report, indent=1).encode())

  with futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    list(pool.map(run_one, all_parts))
  report['parts'] = {p.name: report['parts'][p.name] for p in all_parts}
  with atomic_file.write(os.path.join(out, _RESULT_FILE)) as f:
    f.write(json.dumps(report, indent=1).encode())
  with atomic_file.write(os.path.join(out, _TABLE_FILE)) as f:
    f.write(table(report).encode())
  return report


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if not _OUT.value:
    raise app.UsageError('--out is required.')
  jobs = _JOBS.value or ((os.cpu_count() or 1) if _TINY.value else 1)
  report = run(
      _OUT.value,
      _TINY.value,
      3.0 if _TINY.value else _TRAIN_S.value,
      _TOTAL_S.value,
      _LM_TRAIN_TOKENS.value,
      jobs,
  )
  print(table(report))
  failed = [n for n, p in report['parts'].items() if p['status'] != 'ok']
  print(
      f'{len(report["parts"]) - len(failed)} of {len(report["parts"])} '
      f'parts ok'
      + (f'; not ok: {", ".join(failed)}' if failed else '')
      + f'. Written to {_OUT.value}/{_RESULT_FILE} and {_TABLE_FILE}.'
  )


if __name__ == '__main__':
  app.run(main)
