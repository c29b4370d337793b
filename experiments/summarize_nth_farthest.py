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
r"""Summarises Nth Farthest runs as the rows of the study's table.

Usage:

  python -m experiments.summarize_nth_farthest --num_objects=4 \
      --workdirs=/tmp/study/a,/tmp/study/b

Prints one Markdown row per work directory: steps and minutes of training,
the held-out accuracy at the end (overall, rank 0, other ranks), and when the
run left the plateau: the first evaluation whose other-ranks accuracy is at
least ``--margin`` above the plateau's ``1/(K-1)``, and the first whose
overall accuracy reaches 90%. Minutes are wall-clock minutes of training,
summed over the processes of a resumed run. ``--num_objects`` is the K of the
runs (the Nth Farthest binary's flag).
"""

import os
from typing import Any

from absl import app
from absl import flags

from experiments import cli
from experiments import nth_farthest
from rmc.toolkit import metrics

_WORKDIRS = flags.DEFINE_list(
    'workdirs', None, 'Comma-separated work directories (required).'
)
_MARGIN = flags.DEFINE_float(
    'margin',
    0.10,
    'Other-ranks accuracy above the plateau 1/(K-1) that '
    'counts as having left it (a fraction).',
    lower_bound=0.0,
    upper_bound=1.0,
)
cli.finite_floats('margin')

HEADER = (
    '| run | steps | minutes | overall | rank 0 | other ranks | '
    'left the plateau (step / min) | 90% overall (step / min) |\n'
    '|---|---|---|---|---|---|---|---|'
)


def _when(record: dict[str, Any] | None) -> str:
  if record is None:
    return 'no'
  return f'{record["step"] / 1000:.0f}k / {record["total_s"] / 60:.1f}'


def summarize(
    records: list[dict[str, Any]], num_objects: int, margin: float = 0.10
) -> dict[str, Any]:
  """The study's figures of one run's metric records.

  Args:
    records: A run's ``metrics.jsonl`` records.
    num_objects: ``K``.
    margin: See ``--margin``.

  Returns:
    ``{'last': the last evaluation, 'left': the first evaluation above the
    plateau or None, 'ninety': the first at 90% overall or None}``.
  """
  evaluations = [
      r for r in metrics.with_total_time(records) if r.get('split') == 'eval'
  ]
  if not evaluations:
    raise ValueError('no evaluation records')
  threshold = nth_farthest.plateau(num_objects)[1] + margin
  left = next(
      (r for r in evaluations if r['eval_accuracy_other_ranks'] >= threshold),
      None,
  )
  ninety = next((r for r in evaluations if r['eval_accuracy'] >= 0.9), None)
  return {'last': evaluations[-1], 'left': left, 'ninety': ninety}


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  num_objects = flags.FLAGS.num_objects  # The binary's flag: K of the runs.
  if not _WORKDIRS.value or num_objects is None:
    raise app.UsageError('--workdirs and --num_objects are required.')
  print(HEADER)
  for workdir in _WORKDIRS.value:
    path = os.path.join(workdir, 'metrics.jsonl')
    try:
      figures = summarize(
          metrics.read_records(path), num_objects, _MARGIN.value
      )
    except (OSError, ValueError) as e:
      raise app.UsageError(f'{path}: {e}') from e
    last = figures['last']
    print(
        f'| {os.path.basename(os.path.normpath(workdir))} '
        f'| {last["step"] / 1000:.0f}k | {last["total_s"] / 60:.1f} '
        f'| {last["eval_accuracy"]:.1%} | {last["eval_accuracy_rank_0"]:.1%} '
        f'| {last["eval_accuracy_other_ranks"]:.1%} '
        f'| {_when(figures["left"])} | {_when(figures["ninety"])} |'
    )


if __name__ == '__main__':
  cli.run(main)
