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
r"""Plots learning curves from one or more ``metrics.jsonl`` files.

Usage (needs matplotlib: ``pip install -e '.[plot]'``):

  python -m experiments.plot_curves \
      --metrics=/tmp/rmc/metrics.jsonl,/tmp/lstm/metrics.jsonl \
      --labels=RMC,LSTM --output=curves.png

Draws held-out accuracy (``eval_accuracy``) and training loss against the
step in two panels, one line per file.
"""

from absl import app
from absl import flags

from experiments import cli
from rmc.toolkit import metrics

# Not `required=True`: that would break flag parsing for every binary imported
# into the same process (as in the tests); main() checks it instead.
_METRICS = flags.DEFINE_list(
    'metrics', None, 'Comma-separated metrics.jsonl files to plot (required).'
)
_LABELS = flags.DEFINE_list(
    'labels', None, 'Legend label per file (default: the file paths).'
)
_TITLE = flags.DEFINE_string('title', '', 'Figure title.')
_X = flags.DEFINE_enum(
    'x',
    'step',
    ['step', 'elapsed_s'],
    'Horizontal axis: optimizer steps or seconds of training (summed over '
    'the processes of a resumed run).',
)


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if not _METRICS.value:
    raise app.UsageError('--metrics is required.')
  labels = _LABELS.value or _METRICS.value
  if len(labels) != len(_METRICS.value):
    raise app.UsageError(
        f'--labels has {len(labels)} entries for {len(_METRICS.value)} '
        'files.'
    )
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top

    matplotlib.use('Agg')
    from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise app.UsageError(
        "matplotlib is needed: pip install -e '.[plot]'"
    ) from e

  figure, (accuracy_axis, loss_axis) = pyplot.subplots(
      1, 2, figsize=(11, 4), constrained_layout=True
  )
  # Seconds summed over the processes of a resumed run.
  x_key = 'step' if _X.value == 'step' else 'total_s'
  for path, label in zip(_METRICS.value, labels, strict=True):
    records = metrics.with_total_time(metrics.read_records(path))
    if not records:
      raise app.UsageError(f'{path} holds no metric records.')
    train = [r for r in records if r.get('split') == 'train']
    evaluation = [r for r in records if r.get('split') == 'eval']
    accuracy_axis.plot(
        [r[x_key] for r in evaluation],
        [r['eval_accuracy'] for r in evaluation],
        marker='.',
        label=label,
    )
    loss_axis.plot(
        [r[x_key] for r in train], [r['loss'] for r in train], label=label
    )
  x_label = 'step' if _X.value == 'step' else 'seconds of training'
  accuracy_axis.set(xlabel=x_label, ylabel='held-out accuracy')
  loss_axis.set(xlabel=x_label, ylabel='training loss')
  for axis in (accuracy_axis, loss_axis):
    axis.grid(alpha=0.3)
    axis.legend()
  if _TITLE.value:
    figure.suptitle(_TITLE.value)
  output = cli.PLOT_OUTPUT.value or 'curves.png'
  figure.savefig(output, dpi=100)
  print(f'Wrote {output}.')


if __name__ == '__main__':
  cli.run(main)
