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
r"""Trains one configuration for several seeds and prints the study's row.

Usage (flags after ``--`` go to the binary):

  python -m experiments.seeds --binary=nth_farthest --seeds=0-7 \
      --root=/tmp/study/cpu -- --preset=cpu --time_budget_s=1800

Seed ``S`` trains in ``<root>/seed_S`` (``--workdir`` and ``--seed`` are the
tool's to set). At most one training runs per core at once, each pinned to
its core (``--cores``, by default every core this process may use), since
two trainings on one core slow each other; the seeds queue for the next free
core. Each training logs to ``<root>/seed_S/log.txt``.

The command is resumable: run it again and the seeds that finished are not
trained again, while one that was stopped (a kill, Ctrl-C, a lost machine)
resumes from its last checkpoint. With the binary's ``--time_budget_s`` the
budget is each seed's training time in all, summed over its processes: a
resumed seed gets what was left of it. A seed is finished when its last
evaluation is at the run's ``num_steps`` or its training time has reached
the budget. Ctrl-C (or SIGTERM) stops every training at its next chunk, with
a checkpoint.

At the end it prints, for the finished seeds, a Markdown table with a row per
seed and the summary: mean and range over the seeds, and for Nth Farthest how
many left the plateau (``--margin`` above it on the other ranks, as
``experiments.summarize_nth_farthest`` counts it) with the median and range of
the step and minute where they did, on the processor named in the header.
``--seeds`` with no training needed (every seed finished) only prints it.
``--at_steps`` adds the held-out figures at given steps, mean and range over
the seeds, and the model's parameter counts follow (from config.json).
"""

from experiments import startup

if __name__ == '__main__':
  startup.start()  # Before the heavy imports: see experiments/startup.py.

import dataclasses
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from absl import app
from absl import flags

from experiments import cli
from experiments import summarize_nth_farthest
from rmc import tasks
from rmc.toolkit import metrics
from rmc.toolkit import run_config

BINARIES = tuple(tasks.TASKS)  # The tasks' binaries.

_BINARY = flags.DEFINE_enum(
    'binary', None, BINARIES, 'The experiment binary to train (required).'
)
_SEEDS = flags.DEFINE_string(
    'seeds',
    None,
    'Seeds to train (required): a comma-separated list of seeds and '
    'inclusive ranges, e.g. "0-7" or "0,3,10-12".',
)
_ROOT = flags.DEFINE_string(
    'root',
    None,
    'Directory of the study (required); seed S trains in <root>/seed_S.',
)
_CORES = flags.DEFINE_list(
    'cores',
    None,
    'CPU cores to pin the trainings to, one training per core at once '
    '(default: every core this process may use).',
)
_AT_STEPS = flags.DEFINE_list(
    'at_steps',
    None,
    'Also print the held-out figures at these steps, mean (range) over the '
    'seeds evaluated there, e.g. "10000,50000,100000": runs of one step '
    'budget and --eval_every are scored at the same steps, so cores and '
    'settings compare step for step.',
)

# Flags of the binary that the tool sets itself.
_OWN_FLAGS = ('workdir', 'seed', 'mode')
_TIME_BUDGET = '--time_budget_s'
_NUM_STEPS = '--num_steps'
# A seed whose budget has this little left (seconds) is finished.
_BUDGET_SLACK_S = 1.0
_POLL_S = 0.5
_METRICS = 'metrics.jsonl'  # Written by rmc.toolkit.training.train.
_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_seeds(spec: str) -> list[int]:
  """The seeds of ``--seeds``, in order, each once.

  Raises:
    ValueError: If ``spec`` is not a list of integers and ``a-b`` ranges.
  """
  seeds: list[int] = []
  for part in spec.split(','):
    part = part.strip()
    low, dash, high = part.partition('-')
    try:
      first = int(low)
      last = int(high) if dash else first
    except ValueError:
      raise ValueError(
          f'--seeds={spec}: {part!r} is neither a seed nor a range a-b.'
      ) from None
    if first < 0 or last < first:
      raise ValueError(
          f'--seeds={spec}: {part!r} is not a range of seeds >= 0.'
      )
    seeds.extend(s for s in range(first, last + 1) if s not in seeds)
  return seeds


def _parse_steps(values: Sequence[str]) -> list[int]:
  """``--at_steps``' steps."""
  try:
    return [int(value) for value in values]
  except ValueError:
    raise ValueError(
        f'--at_steps={",".join(values)}: give whole steps, e.g. '
        '10000,50000,100000.'
    ) from None


def _flag_name(arg: str) -> str | None:
  if not arg.startswith('-'):
    return None
  name = arg.lstrip('-').split('=', 1)[0]
  return name[2:] if name.startswith('no') and name != 'no' else name


def _last_value(binary_args: Sequence[str], flag: str, kind: type) -> Any:
  value = None
  for arg in binary_args:
    if arg.startswith(flag + '='):
      try:
        value = kind(arg.split('=', 1)[1])
      except ValueError:
        raise ValueError(f'{arg}: not a valid {kind.__name__}.') from None
  return value


def time_budget(binary_args: Sequence[str]) -> float | None:
  """The ``--time_budget_s=X`` among the binary's flags (the last one)."""
  return _last_value(binary_args, _TIME_BUDGET, float) or None


def check_binary_args(binary_args: Sequence[str]) -> None:
  """Refuses the flags the tool sets, and ``--flag value`` forms it can't read.

  Raises:
    ValueError: Naming the flag.
  """
  for arg in binary_args:
    name = _flag_name(arg)
    if name is None:
      raise ValueError(
          f'{arg!r}: the binary\'s flags go after "--" as --name=value.'
      )
    if name in _OWN_FLAGS:
      raise ValueError(
          f'{arg}: the seed tool sets --{name} for each seed '
          '(--workdir=<root>/seed_S, --seed=S, training).'
      )
    if arg in (_TIME_BUDGET, _NUM_STEPS):
      raise ValueError(f'{arg}: write it as {arg}=VALUE.')
  time_budget(binary_args)
  _last_value(binary_args, _NUM_STEPS, int)


def cpu_model() -> str:
  """The processor's model name (``lscpu``'s), or the platform's."""
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or 'unknown processor'


def available_cores() -> list[int]:
  """The cores this process may run on."""
  if hasattr(os, 'sched_getaffinity'):
    return sorted(os.sched_getaffinity(0))
  return list(range(os.cpu_count() or 1))


@dataclasses.dataclass(frozen=True)
class Progress:
  """How far a seed's work directory is.

  Attributes:
    step: The step of its last evaluation (0 when none).
    total_s: Its training seconds, summed over its processes.
    finished: Whether it needs no more training.
  """

  step: int
  total_s: float
  finished: bool


def progress(
    workdir: str, budget_s: float | None, num_steps: int | None = None
) -> Progress:
  """How far the training in ``workdir`` is; see the module docstring.

  Args:
    workdir: A seed's work directory.
    budget_s: Its training time in all (seconds), if it has a budget.
    num_steps: Its steps in all, where the command line sets them (else the
      run's config.json says).
  """
  evaluations = [
      r
      for r in metrics.with_total_time(
          metrics.read_records(os.path.join(workdir, _METRICS))
      )
      if r.get('split') == 'eval'
  ]
  if not evaluations or not os.path.exists(run_config.path(workdir)):
    return Progress(0, 0.0, False)
  last = evaluations[-1]
  if num_steps is None:
    num_steps = run_config.read(workdir)['hyperparameters']['num_steps']
  finished = last['step'] >= num_steps or (
      budget_s is not None and last['total_s'] >= budget_s - _BUDGET_SLACK_S
  )
  return Progress(last['step'], last['total_s'], finished)


@dataclasses.dataclass
class Job:
  """One training: a command line, its log file and a label."""

  label: str
  command: list[str]
  log_path: str


def _child_environment() -> dict[str, str]:
  """This process's environment, with the repository on ``PYTHONPATH``.

  So that ``python -m experiments.<binary>`` is found from any directory.
  """
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      p for p in (_REPOSITORY, env.get('PYTHONPATH')) if p
  )
  return env


def run_pinned(
    jobs: Sequence[Job],
    cores: Sequence[int],
    report: Callable[[str], None] = print,
    on_tick: Callable[[], None] | None = None,
) -> dict[str, int]:
  """Runs ``jobs``, at most one per core at once, each pinned to its core.

  The jobs start in order as cores free up. On SIGINT or SIGTERM every
  running job gets SIGTERM (the binaries checkpoint and stop at their next
  chunk), no further job starts, and this returns once they have ended.

  Args:
    jobs: The trainings.
    cores: CPU cores to use, one job on each at a time.
    report: Where progress lines go.
    on_tick: Called about twice a second while jobs run.

  Returns:
    Each job's exit status by label (jobs never started are absent).
  """
  pin = hasattr(os, 'sched_setaffinity')
  if not pin:
    report('This platform cannot pin processes to cores; running unpinned.')
  queue = list(jobs)
  running: dict[int, tuple[Job, subprocess.Popen, Any, float]] = {}
  status: dict[str, int] = {}
  stopping: list[int] = []  # The signals received.

  def stop(signum, frame):
    del frame
    if not stopping:
      report(f'{signal.Signals(signum).name}: stopping every training.')
    stopping.append(signum)
    for _, process, _, _ in running.values():
      if process.poll() is None:
        process.terminate()

  previous = {
      s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)
  }
  try:
    while (queue and not stopping) or running:
      for core in cores:
        if core in running or not queue or stopping:
          continue
        job = queue.pop(0)
        os.makedirs(os.path.dirname(job.log_path), exist_ok=True)
        log = open(job.log_path, 'a', encoding='utf-8')
        log.write(f'$ {" ".join(job.command)}  # core {core}\n')
        log.flush()
        process = subprocess.Popen(
            job.command,
            env=_child_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches it only through stop().
            preexec_fn=(
                (lambda c=core: os.sched_setaffinity(0, {c})) if pin else None
            ),
        )
        running[core] = (job, process, log, time.monotonic())
        report(f'{job.label}: started on core {core} (log: {job.log_path}).')
      time.sleep(_POLL_S)
      if on_tick is not None:
        on_tick()
      for core, (job, process, log, started) in list(running.items()):
        if process.poll() is None:
          continue
        log.close()
        del running[core]
        status[job.label] = process.returncode
        outcome = (
            'ended'
            if process.returncode == 0
            else f'FAILED with exit status {process.returncode}'
        )
        report(
            f'{job.label}: {outcome} after {time.monotonic() - started:.0f} s.'
        )
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  return status


def _seed_job(
    binary: str, root: str, seed: int, binary_args: Sequence[str]
) -> Job:
  workdir = os.path.join(root, f'seed_{seed}')
  args = list(binary_args)
  budget_s = time_budget(binary_args)
  done = progress(workdir, budget_s, _last_value(args, _NUM_STEPS, int))
  if budget_s is not None and done.total_s > 0:  # Resumed: what is left.
    args = [a for a in args if not a.startswith(_TIME_BUDGET + '=')]
    args.append(f'{_TIME_BUDGET}={budget_s - done.total_s:.1f}')
  return Job(
      label=f'seed {seed}',
      command=[
          sys.executable,
          '-m',
          f'experiments.{binary}',
          f'--workdir={workdir}',
          f'--seed={seed}',
          *args,
      ],
      log_path=os.path.join(workdir, 'log.txt'),
  )


def _median_range(values: Sequence[float], fmt: Callable[[float], str]) -> str:
  if not values:
    return '-'
  low, high = min(values), max(values)
  return f'{fmt(statistics.median(values))} ({fmt(low)}-{fmt(high)})'


def _pct(x: float) -> str:
  return f'{100 * x:.1f}%'


def _kilo(x: float) -> str:
  return f'{x / 1000:.0f}k'


def _minutes(x: float) -> str:
  return f'{x / 60:.1f}'


def _seed_count(n: int) -> str:
  """``'1 seed'`` or ``'N seeds'``."""
  return f'{n} seed' if n == 1 else f'{n} seeds'


def _mean_range(values: Sequence[float], fmt: Callable[[float], str]) -> str:
  low, high = min(values), max(values)
  return f'{fmt(statistics.fmean(values))} ({fmt(low)}-{fmt(high)})'


def _when(record: dict[str, Any] | None) -> str:
  if record is None:
    return 'no'
  return f'{_kilo(record["step"])} / {_minutes(record["total_s"])}'


def nth_farthest_table(
    runs: dict[int, list[dict[str, Any]]], num_objects: int, margin: float
) -> str:
  """The Markdown table of Nth Farthest seeds: a row each and the summary.

  Args:
    runs: Each seed's metric records.
    num_objects: ``K``.
    margin: See ``experiments.summarize_nth_farthest``'s ``--margin``.
  """
  lines = [
      '| seed | steps | minutes | overall | rank 0 | other ranks | '
      'left the plateau (step / min) | 90% overall (step / min) |',
      '|---|---|---|---|---|---|---|---|',
  ]
  figures = {
      seed: summarize_nth_farthest.summarize(records, num_objects, margin)
      for seed, records in runs.items()
  }
  for seed, f in figures.items():
    last = f['last']
    lines.append(
        f'| {seed} | {_kilo(last["step"])} | {_minutes(last["total_s"])} '
        f'| {_pct(last["eval_accuracy"])} '
        f'| {_pct(last["eval_accuracy_rank_0"])} '
        f'| {_pct(last["eval_accuracy_other_ranks"])} '
        f'| {_when(f["left"])} | {_when(f["ninety"])} |'
    )
  lasts = [f['last'] for f in figures.values()]
  left = [f['left'] for f in figures.values() if f['left'] is not None]
  ninety = [f['ninety'] for f in figures.values() if f['ninety'] is not None]
  n = len(figures)

  def when(records):
    return (
        f'{len(records)}/{n}: step '
        f'{_median_range([r["step"] for r in records], _kilo)}, min '
        f'{_median_range([r["total_s"] for r in records], _minutes)}'
        if records
        else f'0/{n}'
    )

  lines.append(
      f'| {_seed_count(n)}, mean (range) '
      f'| {_mean_range([r["step"] for r in lasts], _kilo)} '
      f'| {_mean_range([r["total_s"] for r in lasts], _minutes)} '
      f'| {_mean_range([r["eval_accuracy"] for r in lasts], _pct)} '
      f'| {_mean_range([r["eval_accuracy_rank_0"] for r in lasts], _pct)} '
      f'| {_mean_range([r["eval_accuracy_other_ranks"] for r in lasts], _pct)} '
      f'| {when(left)} | {when(ninety)} |'
  )
  return '\n'.join(lines)


# The held-out figures: (metric, name, higher is better, format); Nth
# Farthest's only for --at_steps (its table is nth_farthest_table).
_HEADLINE = {
    'nth_farthest': (('eval_accuracy', 'accuracy', True, _pct),),
    'learn_to_execute': (
        ('eval_accuracy', 'per-character accuracy', True, _pct),
        ('eval_solved', 'solved', True, _pct),
    ),
    'wikitext103': (('eval_perplexity', 'perplexity', False, '{:.1f}'.format),),
}


def headline_table(binary: str, runs: dict[int, list[dict[str, Any]]]) -> str:
  """The Markdown table of other binaries' seeds: final and best figures."""
  headline = _HEADLINE[binary]
  header = ['seed', 'steps', 'minutes']
  for _, name, _, _ in headline:
    header += [f'{name} (end)', f'{name} (best, step)']
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  rows: list[list[str]] = []
  summary: dict[str, list[float]] = {}
  for seed, records in runs.items():
    evaluations = [
        r for r in metrics.with_total_time(records) if r.get('split') == 'eval'
    ]
    last = evaluations[-1]
    row = [str(seed), _kilo(last['step']), _minutes(last['total_s'])]
    summary.setdefault('step', []).append(last['step'])
    summary.setdefault('total_s', []).append(last['total_s'])
    for key, _, higher, fmt in headline:
      best = evaluations[0]  # The first of the best, where several tie.
      for r in evaluations:
        if (r[key] > best[key]) if higher else (r[key] < best[key]):
          best = r
      row += [fmt(last[key]), f'{fmt(best[key])} ({_kilo(best["step"])})']
      summary.setdefault(key, []).append(last[key])
      summary.setdefault(key + ' best', []).append(best[key])
    rows.append(row)
  cells = [
      f'{_seed_count(len(runs))}, mean (range)',
      _mean_range(summary['step'], _kilo),
      _mean_range(summary['total_s'], _minutes),
  ]
  for key, _, _, fmt in headline:
    cells += [
        _mean_range(summary[key], fmt),
        _mean_range(summary[key + ' best'], fmt),
    ]
  rows.append(cells)
  lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
  return '\n'.join(lines)


def steps_table(
    binary: str, runs: dict[int, list[dict[str, Any]]], steps: Sequence[int]
) -> str:
  """The held-out figures at given steps: mean (range) over the seeds.

  Args:
    binary: The binary the seeds ran.
    runs: Each seed's metric records.
    steps: The steps to show; a seed counts at a step where it has an
      evaluation (``-`` where none has).
  """
  headline = _HEADLINE[binary]
  header = ['step', 'seeds'] + [name for _, name, _, _ in headline]
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  at = {
      seed: {r['step']: r for r in records if r.get('split') == 'eval'}
      for seed, records in runs.items()
  }
  for step in steps:
    found = [by_step[step] for by_step in at.values() if step in by_step]
    cells = [f'{step:,}', str(len(found))]
    for key, _, _, fmt in headline:
      cells.append(_mean_range([r[key] for r in found], fmt) if found else '-')
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _read_runs(
    root: str, seeds: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
  """The metric records of the seeds in ``root`` that have evaluations."""
  runs = {}
  for seed in seeds:
    records = metrics.read_records(os.path.join(root, f'seed_{seed}', _METRICS))
    if any(r.get('split') == 'eval' for r in records):
      runs[seed] = records
  return runs


def parameters_line(root: str, seeds: Sequence[int]) -> str | None:
  """The parameter counts of the study's model, from a seed's config.json."""
  for seed in seeds:
    try:
      config = run_config.read(os.path.join(root, f'seed_{seed}'))
    except run_config.ConfigError:
      continue
    if 'parameters' in config:  # Not in runs from before it was recorded.
      counts = config['parameters']
      return (
          f'Parameters: {counts["core"]:,} in the recurrent core(s), '
          f'{counts["model"]:,} in the model.'
      )
  return None


def table(binary: str, root: str, seeds: Sequence[int], margin: float) -> str:
  """The study's table of the seeds in ``root`` that have evaluations."""
  runs = _read_runs(root, seeds)
  if not runs:
    return 'No seed has an evaluation yet.'
  if binary == 'nth_farthest':
    first = os.path.join(root, f'seed_{next(iter(runs))}')
    num_objects = run_config.read(first)['hyperparameters']['num_objects']
    return nth_farthest_table(runs, num_objects, margin)
  return headline_table(binary, runs)


def main(argv):
  """The command-line entry point; see the module docstring."""
  binary_args = argv[1:]
  if not (_BINARY.value and _SEEDS.value and _ROOT.value):
    raise app.UsageError('--binary, --seeds and --root are required.')
  try:
    seeds = parse_seeds(_SEEDS.value)
    check_binary_args(binary_args)
    budget_s = time_budget(binary_args)
    cores = (
        [int(c) for c in _CORES.value] if _CORES.value else available_cores()
    )
    at_steps = _parse_steps(_AT_STEPS.value or [])
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  if not cores or len(set(cores)) != len(cores):
    raise app.UsageError(f'--cores={_CORES.value}: give distinct cores.')
  unusable = set(cores) - set(available_cores())
  if unusable:
    raise app.UsageError(
        f'--cores: this process may not run on core(s) '
        f'{sorted(unusable)}; it may use {available_cores()}.'
    )
  root = os.path.abspath(_ROOT.value)
  try:
    os.makedirs(root, exist_ok=True)
  except OSError as e:
    raise app.UsageError(
        f'--root={root} cannot be created: {e.strerror}.'
    ) from e

  def finished(seed):
    return progress(
        os.path.join(root, f'seed_{seed}'),
        budget_s,
        _last_value(binary_args, _NUM_STEPS, int),
    ).finished

  todo = [s for s in seeds if not finished(s)]
  print(
      f'{_BINARY.value}, seeds {_SEEDS.value} in {root}: '
      f'{len(seeds) - len(todo)} finished, '
      f'{len(todo)} to train on core(s) {",".join(map(str, cores))} '
      f'({cpu_model()}).',
      flush=True,
  )
  jobs = [_seed_job(_BINARY.value, root, s, binary_args) for s in todo]
  status = run_pinned(jobs, cores, report=lambda s: print(s, flush=True))
  print(
      f'\n{_BINARY.value} {" ".join(binary_args)}, seeds {_SEEDS.value}, '
      f'on {cpu_model()}, one core each:\n'
  )
  print(table(_BINARY.value, root, seeds, flags.FLAGS.margin))
  runs = _read_runs(root, seeds)
  if at_steps and runs:
    print(
        f'\nAt the same steps:\n\n{steps_table(_BINARY.value, runs, at_steps)}'
    )
  counts = parameters_line(root, seeds)
  if counts:
    print(f'\n{counts}')
  failed = [label for label, rc in status.items() if rc != 0]
  unfinished = [s for s in seeds if not finished(s)]
  if failed:
    sys.exit(
        f'error: {", ".join(failed)} failed; see log.txt in its directory.'
    )
  if unfinished:
    print(
        f'\nNot finished: seeds {", ".join(map(str, unfinished))}. Run the '
        'same command again to resume them.'
    )
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
