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
r"""``make demo``: the RMC and the LSTM on Nth Farthest, side by side.

Usage:

  python -m experiments.nth_farthest_demo --workdir=/tmp/demo [--seed=3]

Trains the RMC (``<workdir>/rmc``) and the LSTM (``<workdir>/lstm``) on the
same preset (``--preset``, by default ``demo``) for the same wall-clock
``--demo_budget_s``, at once, each pinned to its own core; on a machine with
one core, one after the other with half the budget each. Every
hyperparameter flag of ``experiments.nth_farthest`` given here (and
``--seed``) goes to both trainings; ``--core`` is the demo's to set. It then
prints one table: held-out accuracy overall, on rank 0 (the reference) and on
the other ranks for both cores, beside chance and the plateau where only
rank 0 is solved, and the command that shows what the RMC answers.
"""

from experiments import startup

if __name__ == '__main__':
  startup.start()  # Before the heavy imports: see experiments/startup.py.

import os
import sys
import time
from typing import Any

from absl import app
from absl import flags

from experiments import cli
from experiments import launch
from experiments import nth_farthest
from experiments import seeds as seeds_lib
from rmc.toolkit import metrics

_DEMO_BUDGET_S = flags.DEFINE_float(
    'demo_budget_s',
    270.0,
    'Wall-clock seconds of training for the whole demo: each core trains for '
    'this long, both at once (half of it each, one after the other, on a '
    'machine with one core). Compilation counts; the final evaluation does '
    'not.',
    lower_bound=1.0,
)
cli.finite_floats('demo_budget_s')

CORES = (('rmc', 'RMC'), ('lstm', 'LSTM'))
# Flags the demo sets for each training.
_NOT_FORWARDED = ('core', 'time_budget_s')
_PROGRESS_EVERY_S = 30.0


def forwarded_flags() -> list[str]:
  """The command line's Nth Farthest flags, as ``--name=value``."""
  names = ('preset', 'seed', *nth_farthest.TASK.flag_names())
  args = []
  for name in dict.fromkeys(names):
    flag = flags.FLAGS[name]
    if flag.present and name not in _NOT_FORWARDED:
      args.append(flag.serialize())
  return args


def _describe(config: nth_farthest.Config, core: str) -> str:
  if core == 'rmc':
    return (
        f'RMC ({config.rmc.mem_slots} memories, {config.rmc.num_heads} heads x '
        f'{config.rmc.head_size})'
    )
  return f'LSTM ({config.lstm.hidden_size} units)'


def _last(workdir: str, split: str) -> dict[str, Any] | None:
  records = metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))
  return next((r for r in reversed(records) if r.get('split') == split), None)


def demo_table(
    config: nth_farthest.Config, evaluations: dict[str, dict[str, Any] | None]
) -> str:
  """The demo's Markdown table.

  Args:
    config: The resolved Nth Farthest configuration (its ``num_objects``,
      sizes).
    evaluations: Each core's (``'rmc'``, ``'lstm'``) last held-out
      evaluation record, or None where it has none.
  """
  k = config.task.num_objects
  plateau_overall, plateau_other = nth_farthest.plateau(k)
  lines = [
      '| | steps | overall | rank 0 | other ranks |',
      '|---|---|---|---|---|',
  ]
  for core, _ in CORES:
    record = evaluations.get(core)
    if record is None:
      lines.append(f'| {_describe(config, core)} | no evaluation | | | |')
      continue
    lines.append(
        f'| {_describe(config, core)} | {record["step"]:,} '
        f'| {record["eval_accuracy"]:.1%} '
        f'| {record["eval_accuracy_rank_0"]:.1%} '
        f'| {record["eval_accuracy_other_ranks"]:.1%} |'
    )
  lines.append(
      f'| chance (1/{k}) | | {1 / k:.1%} | {1 / k:.1%} | {1 / k:.1%} |'
  )
  lines.append(
      f'| plateau: rank 0 solved, the others at chance | | '
      f'{plateau_overall:.1%} | 100.0% | {plateau_other:.1%} |'
  )
  return '\n'.join(lines)


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if flags.FLAGS['core'].present:
    raise app.UsageError('--core: the demo trains both the RMC and the LSTM.')
  config = launch.resolve(nth_farthest.TASK)
  root = launch.workdir()
  cores = seeds_lib.available_cores()
  budget_s = _DEMO_BUDGET_S.value
  each_s = budget_s if len(cores) >= 2 else budget_s / 2
  workdirs = {core: os.path.join(root, core) for core, _ in CORES}
  jobs = [
      seeds_lib.Job(
          label=name,
          command=[
              sys.executable,
              '-m',
              'experiments.nth_farthest',
              f'--workdir={workdirs[core]}',
              f'--core={core}',
              f'--time_budget_s={each_s:g}',
              *forwarded_flags(),
          ],
          log_path=os.path.join(workdirs[core], 'log.txt'),
      )
      for core, name in CORES
  ]
  k = config.task.num_objects
  print(
      f'Nth Farthest demo: {k} objects of {config.task.num_features} features, '
      f'preset {config.preset}, seed {launch.SEED.value}. The RMC and the '
      f'LSTM train for {each_s:.0f} s each, '
      + (
          f'at once, one per core, on {seeds_lib.cpu_model()}.'
          if len(cores) >= 2
          else f'one after the other on one core ({seeds_lib.cpu_model()}).'
      ),
      flush=True,
  )
  last_progress = [time.monotonic()]

  def tick():
    if time.monotonic() - last_progress[0] < _PROGRESS_EVERY_S:
      return
    last_progress[0] = time.monotonic()
    parts = []
    for core, name in CORES:
      record = _last(workdirs[core], 'train')
      if record is not None:
        parts.append(
            f'{name} step {record["step"]:,}, training accuracy '
            f'{record["accuracy"]:.3f}'
        )
    if parts:
      print('  ' + '; '.join(parts), flush=True)

  status = seeds_lib.run_pinned(
      jobs, cores[:2], report=lambda s: print(s, flush=True), on_tick=tick
  )
  evaluations = {core: _last(workdirs[core], 'eval') for core, _ in CORES}
  held_out = config.task.eval_batches * config.optimizer.batch_size
  print(f'\nHeld-out accuracy ({held_out} sequences each), {k} objects:\n')
  print(demo_table(config, evaluations))
  print(
      '\nWhat the RMC answers: python -m experiments.nth_farthest '
      f'--mode=predict --workdir={workdirs["rmc"]}'
  )
  failed = [label for label, rc in status.items() if rc != 0]
  if failed or len(status) < len(jobs):
    sys.exit(
        f'error: the {" and ".join(failed) or "demo"} training did not end '
        f'cleanly; see log.txt in {root}/rmc and {root}/lstm.'
    )


if __name__ == '__main__':
  cli.run(main)
