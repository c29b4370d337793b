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
r"""Draws an Nth Farthest RMC's attention, as in the paper's Figure 3.

Usage (needs matplotlib: ``pip install -e '.[plot]'``); the run's
configuration is read from ``<workdir>/config.json``:

  python -m experiments.plot_attention --workdir=/tmp/nf \
      --output=attention.png [--step=S] [--num_sequences=2] [--block=0]

Loads the checkpoint (:func:`rmc.load_run`), runs the first held-out
sequences that ask for a rank other than 0 (rank 0, the reference itself,
needs no comparison), and draws,
for each sequence and each head, one heatmap per time step: the attention
weights of every memory row (a query, down) over the memory rows and the
step's input row (the keys, across). Each step's title names the object read
then; the reference object and the true answer are marked.
"""

from typing import Any

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli
from experiments import nth_farthest
from experiments import trained_runs

_NUM_SEQUENCES = flags.DEFINE_integer(
    'num_sequences',
    2,
    'Held-out sequences to draw (one panel row per sequence and head).',
    lower_bound=1,
    upper_bound=8,
)
_BLOCK = flags.DEFINE_integer(
    'block', 0, 'Attention block to draw, in [0, --num_blocks).', lower_bound=0
)


def attention_maps(
    config: nth_farthest.Config, params: Any, inputs: jax.Array, block: int = 0
) -> tuple[np.ndarray, np.ndarray]:
  """The memory rows' attention and the logits of Nth Farthest sequences.

  Args:
    config: The run's resolved hyperparameters (an RMC core).
    params: The model's parameters.
    inputs: ``[S, K, F + 3K]`` sequences.
    block: The attention block.

  Returns:
    ``(weights, logits)``: ``weights [S, T = K, H, N, N + 1]``, the softmax
    weights of each memory row over the ``N`` memory rows and the input row
    at each step, and the logits ``[S, K]``.
  """
  model = nth_farthest.TASK.model(config, return_diagnostics=True)
  logits, outputs = jax.jit(
      lambda p, x: model.apply(p, x, return_core_outputs=True)
  )(params, inputs)
  weights = outputs.attention_weights[block]  # [S, T, H, R, R], R = N + 1.
  n = config.rmc.mem_slots
  return np.asarray(weights[:, :, :, :n, :]), np.asarray(logits)


def _describe(
    inputs: np.ndarray, num_objects: int
) -> tuple[np.ndarray, int, int]:
  """(object id per step ``[K]``, reference id, rank n) of one input.

  Args:
    inputs: ``[K, F + 3K]``: each row ``[vector; id; reference; n]``.
    num_objects: ``K``.
  """
  k = num_objects
  ids = np.argmax(inputs[:, -3 * k : -2 * k], axis=-1)  # [K]
  reference = int(np.argmax(inputs[0, -2 * k : -k]))
  rank = int(np.argmax(inputs[0, -k:]))
  return ids, reference, rank


def draw(
    weights: np.ndarray,
    inputs: np.ndarray,
    labels: np.ndarray,
    logits: np.ndarray,
    num_objects: int,
    output: str,
    title: str = '',
) -> None:
  """Writes the attention heatmaps of ``attention_maps`` to ``output``.

  Args:
    weights: ``[S, T, H, N, N + 1]`` from :func:`attention_maps`.
    inputs: ``[S, K, F + 3K]``, the sequences.
    labels: ``[S]``, the true answers (object ids).
    logits: ``[S, K]``, the model's logits.
    num_objects: ``K``.
    output: The PNG path.
    title: Figure title.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top

  num_sequences, steps, heads, slots, keys = weights.shape
  figure = pyplot.figure(
      figsize=(
          max(2.0 * steps + 1.5, 8.0),
          (1.7 * heads + 1.0) * num_sequences + 0.4,
      ),
      constrained_layout=True,
  )
  if title:
    figure.suptitle(title)
  subfigures = figure.subfigures(num_sequences, 1, squeeze=False).ravel()
  key_names = [f'm{i}' for i in range(slots)] + ['in']
  image = None
  for s, subfigure in enumerate(subfigures):
    ids, reference, rank = _describe(inputs[s], num_objects)
    answer, predicted = int(labels[s]), int(np.argmax(logits[s]))
    verdict = 'right' if predicted == answer else 'wrong'
    subfigure.suptitle(
        f'Sequence {s}: which object has rank n={rank} in distance from '
        f'object {reference}?\nAnswer: object {answer}; the model says '
        f'object {predicted} ({verdict}).',
        fontsize=10,
    )
    axes = np.asarray(subfigure.subplots(heads, steps, squeeze=False))
    for h in range(heads):
      for t in range(steps):
        axis = axes[h, t]
        image = axis.imshow(
            weights[s, t, h], vmin=0.0, vmax=1.0, cmap='viridis'
        )
        axis.set_xticks(range(keys), key_names, fontsize=7)
        axis.set_yticks(range(slots), key_names[:slots], fontsize=7)
        if h == 0:
          marks = []
          if ids[t] == reference:
            marks.append('reference')
          if ids[t] == answer:
            marks.append('answer')
          color = (
              'tab:red'
              if ids[t] == answer
              else 'tab:blue'
              if ids[t] == reference
              else 'black'
          )
          axis.set_title(
              f't={t}: object {ids[t]}'
              + (f'\n({", ".join(marks)})' if marks else '\n'),
              fontsize=8,
              color=color,
          )
        if t == 0:
          axis.set_ylabel(f'head {h}\nquery: memory row', fontsize=8)
    subfigure.colorbar(image, ax=axes, shrink=0.8, label='attention weight')
  figure.savefig(output, dpi=100)
  pyplot.close(figure)


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  run, config = trained_runs.trained_run(nth_farthest.TASK)
  if config.core != 'rmc':
    raise app.UsageError(
        f'Attention maps need --core=rmc; got --core={config.core}.'
    )
  if _BLOCK.value >= config.rmc.num_blocks:
    raise app.UsageError(
        f'--block={_BLOCK.value} is out of range for '
        f'--num_blocks={config.rmc.num_blocks}.'
    )
  try:
    import matplotlib  # noqa: F401  (imported to see that it is installed)
  except ImportError as e:
    raise app.UsageError(
        "matplotlib is needed: pip install -e '.[plot]'"
    ) from e
  step, params = run.step, run.params
  held_out = nth_farthest.held_out_set(config, run.seed)
  k = config.task.num_objects
  inputs = np.asarray(held_out.inputs).reshape(-1, *held_out.inputs.shape[2:])
  labels = np.asarray(held_out.labels).reshape(-1)
  ranks = np.argmax(inputs[:, 0, -k:], axis=-1)  # [S_all]
  chosen = np.flatnonzero(ranks != 0)[: _NUM_SEQUENCES.value]
  inputs, labels = inputs[chosen], labels[chosen]
  weights, logits = attention_maps(
      config, params, jnp.asarray(inputs), _BLOCK.value
  )
  output = cli.PLOT_OUTPUT.value or 'attention.png'
  draw(
      weights,
      inputs,
      labels,
      logits,
      k,
      output,
      title=(
          f'RMC attention at step {step}, block {_BLOCK.value}: each '
          'memory row over\nthe memory rows and the input row'
      ),
  )
  print(f'Wrote {output}: {len(chosen)} held-out sequences, step {step}.')


if __name__ == '__main__':
  cli.run(main)
