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
r"""Nth Farthest (Santoro et al., 2018, section 4.1): the main job.

Usage (from the repository root):

  python -m experiments.nth_farthest --workdir=/tmp/nth_farthest
  python -m experiments.nth_farthest --preset=paper --workdir=/tmp/paper
  python -m experiments.nth_farthest --preset=demo --core=lstm --workdir=...
  # A trained run (its configuration from <workdir>/config.json):
  python -m experiments.nth_farthest --mode=evaluate --workdir=/tmp/paper
  python -m experiments.nth_farthest --mode=predict --workdir=/tmp/paper

Presets (explicit flags override them):

* ``demo`` (the default): 3 objects as ``cpu_k3`` at ``cpu``'s learning
  rate, for 270 s of training (about 75,000 steps on one CPU core). ``make
  demo`` trains it for the RMC and the LSTM side by side
  (``experiments.nth_farthest_demo``); the final report says where the
  plateau is (only rank 0, the reference, solved).
* ``cpu``: chosen by the study in
  ``experiments/results/nth_farthest_study.md``: 4 objects of 4 features,
  batch 16, an RMC with 4 memories (2 heads of 32), Adam 3e-4 with a linear
  warm-up over 5000 steps and a decay to 3e-5, 600,000 steps (about 30
  minutes on one core). For 3 seeds the RMC left the plateau after
  205,000-240,000 steps and was at 92% after 30 minutes.
* ``cpu_k3``: 3 objects, 3 memories, Adam 1e-3 decaying to 1e-4 (with the
  same warm-up), 900,000 steps. The RMC left the plateau after
  85,000-250,000 steps for 3 seeds.
* ``paper``: 8 objects of 16 features, batch 1600, Adam 1e-4 with Sonnet's
  decay to 8e-5, an RMC with 8 memories of 256 units (8 heads of 32; 2048
  units in total), 1 block.
* ``smoke``: tiny, for tests.

Unlike Sonnet's example, ``num_heads`` and ``num_blocks`` are their own flags
(Sonnet set both to ``num_mems``) and ``head_size`` is the per-head size
(Sonnet's flag help called it the total memory size).
"""

from experiments import startup

if __name__ == '__main__':
  startup.start()  # Before the heavy imports: see experiments/startup.py.

import functools
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli
from experiments import devices
from experiments import launch
from experiments import trained_runs
from rmc.data import nth_farthest
from rmc import models
from rmc.tasks import nth_farthest as nth_farthest_task
from rmc.tasks import runs
from rmc.toolkit import parallel as rmc_parallel
from rmc.toolkit import training

_NUM_EXAMPLES = flags.DEFINE_integer(
    'num_examples',
    5,
    'With --mode=predict: random sequences to show (drawn from --seed).',
    lower_bound=1,
    upper_bound=1000,
)

TASK = nth_farthest_task.TASK
PRESETS = TASK.presets
Config = nth_farthest_task.Config


class RankCurriculum:
  """Training data of ``--rank_curriculum``: how many ranks each step asks.

  A :class:`rmc.toolkit.training.HostData` whose per-step batch is one int32
  scalar, ``num_ranks``: the step's sequences ask for ranks drawn uniformly from
  ``[0, num_ranks)``. It starts at 2 (the reference and its nearest
  neighbour) and grows by one, up to ``K``, each time the logged training
  accuracy reaches ``threshold``. The current value is checkpointed, so a
  resumed run continues where it was.
  """

  def __init__(self, num_objects: int, threshold: float):
    """Constructs the curriculum.

    Args:
      num_objects: ``K``, the number of ranks at the end.
      threshold: Training accuracy (a fraction) that adds the next rank.
    """
    self._num_objects = num_objects
    self._threshold = threshold
    self._num_ranks = min(2, num_objects)

  @property
  def num_ranks(self) -> int:
    """The ranks asked now: ``n`` is drawn from ``[0, num_ranks)``."""
    return self._num_ranks

  def batches(self, first_step: int, num_steps: int) -> np.ndarray:
    """The data of steps ``[first_step, first_step + num_steps)``."""
    del first_step  # The level changes only between logs.
    return np.full([num_steps], self._num_ranks, np.int32)  # [num_steps]

  def state(self) -> dict[str, np.ndarray]:
    """What a checkpoint keeps of this data."""
    return {'curriculum_num_ranks': np.asarray(self._num_ranks, np.int32)}

  def restore(self, state: dict[str, np.ndarray]) -> None:
    """Continues from what :meth:`state` returned."""
    self._num_ranks = int(state['curriculum_num_ranks'])

  def observe(self, record: dict[str, Any]) -> None:
    """Sees a logged training record (e.g. to advance a curriculum)."""
    if (
        self._num_ranks < self._num_objects
        and record['accuracy'] >= self._threshold
    ):
      self._num_ranks += 1
      logging.info(
          'Curriculum: training accuracy %.4f at step %d; now '
          'asking ranks 0..%d.',
          record['accuracy'],
          record['step'],
          self._num_ranks - 1,
      )


def _keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(init, train, eval)`` keys of a run, each derived from ``seed``."""
  init_key, train_key, eval_key = jax.random.split(jax.random.key(seed), 3)
  return init_key, train_key, eval_key


def _generator(config: Config):
  """``generate(key, num_ranks=None)`` of the configured sizes."""
  return functools.partial(
      nth_farthest.generate,
      batch_size=config.optimizer.batch_size,
      num_objects=config.task.num_objects,
      num_features=config.task.num_features,
  )


def held_out_set(config: Config, seed: int) -> nth_farthest.Batch:
  """The fixed held-out set: leaves ``[eval_batches, batch_size, ...]``."""
  return jax.jit(jax.vmap(_generator(config)))(
      jax.random.split(_keys(seed)[2], config.task.eval_batches)
  )


def initial_state(
    config: Config,
    seed: int,
) -> tuple[training.TrainState, training.HostData | None]:
  """A run's step-0 training state and its host data (None: none).

  The pair is also the template that a checkpoint of the run restores into.
  """
  init_key, train_key, _ = _keys(seed)
  example = jax.eval_shape(_generator(config), init_key)
  params = jax.jit(TASK.model(config).init)(init_key, example.inputs)
  optimizer, _ = config.optimizer.make()
  data = (
      RankCurriculum(
          config.task.num_objects, config.task.rank_curriculum_threshold
      )
      if config.task.rank_curriculum
      else None
  )
  return training.init_state(params, optimizer, train_key), data


def make_evaluate(
    config: Config,
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
):
  """``evaluate(params) -> {name: mean}`` on the run's held-out set.

  The figures are ``loss``, ``accuracy`` and the accuracy split by the
  queried rank: ``accuracy_rank_0`` (the reference itself) and
  ``accuracy_other_ranks``, each the fraction of the held-out set's
  sequences of those ranks that are answered right (0 when there are none).
  """
  model = TASK.model(config)
  k = config.task.num_objects
  splits = (
      ('accuracy_rank_0', lambda rank: rank == 0),
      ('accuracy_other_ranks', lambda rank: rank != 0),
  )

  def eval_metrics_fn(params, batch):
    logits = model.apply(params, batch.inputs)  # [B, K]
    metrics = models.classification_metrics(logits, batch.labels)
    rank = jnp.argmax(batch.inputs[:, 0, -k:], axis=-1)  # [B], the n one-hot.
    correct = jnp.argmax(logits, axis=-1) == batch.labels  # [B]
    # Rank 0 asks for the reference itself, readable from its one-hot. The
    # batch's share of right answers of a split and of sequences in it; the
    # ratio is taken over the whole set, since a small batch may have no
    # sequence of a split.
    for name, in_split in splits:
      mask = in_split(rank)  # [B]
      metrics[name + '_right'] = jnp.mean(correct & mask)
      metrics[name + '_share'] = jnp.mean(mask)
    return metrics

  evaluate_batches = training.make_evaluator(
      eval_metrics_fn, held_out_set(config, seed), parallel
  )

  def evaluate(params):
    metrics = evaluate_batches(params)
    for name, _ in splits:
      right = metrics.pop(name + '_right')
      share = metrics.pop(name + '_share')
      metrics[name] = right / share if share else 0.0
    return metrics

  return evaluate


def run(
    config: Config,
    workdir: str,
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
) -> dict[str, Any]:
  """Trains and evaluates one Nth Farthest model.

  Args:
    config: The run's configuration.
    workdir: Checkpoint and metrics directory (resumed from if non-empty).
    seed: Seed for initialisation, training data and the held-out set.
    parallel: The data-parallel mesh; by default all devices.

  Returns:
    The summary of :func:`rmc.toolkit.training.train`.
  """
  generate = _generator(config)
  model = TASK.model(config)
  parallel = parallel or rmc_parallel.DataParallel()
  curriculum = config.task.rank_curriculum

  def loss_fn(params, key, batch):
    # Made on the device from the step's key, unless --synthetic_input (a
    # whole Batch); each device makes its own rows (the same numbers on any
    # number of devices). With the curriculum, `batch` is the step's
    # num_ranks [].
    if batch is None or curriculum:
      data = parallel.constrain(generate(key, num_ranks=batch), 0)
    else:
      data = batch
    metrics = models.classification_metrics(
        model.apply(params, data.inputs), data.labels
    )
    aux = {'accuracy': metrics['accuracy']}
    if curriculum:
      aux['curriculum_num_ranks'] = batch.astype(jnp.float32)
    return metrics['loss'], aux

  state, data = initial_state(config, seed)
  optimizer, schedule = config.optimizer.make()
  if devices.SYNTHETIC_INPUT.value:
    rows = parallel.process_rows(config.optimizer.batch_size)
    data = training.SyntheticData(
        jax.tree.map(
            lambda x: np.asarray(x)[rows], jax.jit(generate)(state.rng)
        ),
        parallel,
    )
  return launch.train(
      config,
      workdir,
      parallel,
      state=state,
      train_chunk=training.make_train_chunk(
          loss_fn,
          optimizer,
          schedule,
          parallel=parallel,
          batch_axes=None if curriculum else 0,
      ),
      evaluate=make_evaluate(config, seed, parallel),
      data=data,
  )


def plateau(num_objects: int) -> tuple[float, float]:
  """Held-out accuracy when only rank 0 is solved: (overall, other ranks).

  Rank 0 (the reference, readable from its one-hot) is always right and
  every other rank picks one of the other ``K - 1`` objects at chance, so
  overall ``1/K + (K-1)/K * 1/(K-1) = 2/K``.
  """
  return 2 / num_objects, 1 / (num_objects - 1)


def _report(evaluation: dict[str, Any], config: Config) -> None:
  """Prints an evaluation record of the held-out set."""
  k = config.task.num_objects
  held_out = config.task.eval_batches * config.optimizer.batch_size
  plateau_overall, plateau_other = plateau(k)
  stopped = (
      f', stopped by {evaluation["stopped_by"]}'
      if 'stopped_by' in evaluation
      else ''
  )
  print(
      f'Held-out accuracy {evaluation["eval_accuracy"]:.4f} '
      f'(rank 0: {evaluation["eval_accuracy_rank_0"]:.4f}, other ranks: '
      f'{evaluation["eval_accuracy_other_ranks"]:.4f}; loss '
      f'{evaluation["eval_loss"]:.4f}, {held_out} sequences) at step '
      f'{evaluation["step"]}{stopped}.'
  )
  print(
      f'With {k} objects chance is {1 / k:.4f}; the plateau where only '
      f'rank 0 (the reference) is solved is {plateau_overall:.4f} overall, '
      f'{plateau_other:.4f} on the other ranks.'
  )


def evaluate_main() -> None:
  """``--mode=evaluate``: the held-out set, scored by a checkpoint."""
  _report(
      *trained_runs.evaluate_held_out(
          TASK,
          make_evaluate,
          'eval_sequences',
          lambda c: c.task.eval_batches * c.optimizer.batch_size,
      )
  )


def predictions(
    run: runs.Run, num_examples: int, seed: int
) -> list[dict[str, Any]]:
  """The model's answers to random sequences of the run's task.

  Args:
    run: A trained Nth Farthest run.
    num_examples: Sequences to draw.
    seed: Seed of the sequences.

  Returns:
    One dict per sequence: ``vectors`` ``[K, F]`` by object id,
    ``reference`` and ``rank`` (the question), ``answer`` (the right object
    id), ``predicted`` (the model's) and ``probabilities`` ``[K]`` by id.
  """
  config = run.hyperparameters
  k, f = config.task.num_objects, config.task.num_features
  batch = jax.jit(
      functools.partial(
          nth_farthest.generate,
          batch_size=num_examples,
          num_objects=k,
          num_features=f,
      )
  )(jax.random.key(seed))
  logits = jax.jit(run.model.apply)(run.params, batch.inputs)  # [S, K]
  inputs = np.asarray(batch.inputs)  # [S, K, F + 3K]
  probabilities = np.asarray(jax.nn.softmax(logits, axis=-1))
  examples = []
  for s in range(num_examples):
    ids = np.argmax(inputs[s, :, f : f + k], axis=-1)  # [K], rows' object ids.
    examples.append(
        {
            'vectors': inputs[s, np.argsort(ids), :f],  # [K, F]
            'reference': int(np.argmax(inputs[s, 0, f + k : f + 2 * k])),
            'rank': int(np.argmax(inputs[s, 0, f + 2 * k :])),
            'answer': int(batch.labels[s]),
            'predicted': int(np.argmax(probabilities[s])),
            'probabilities': probabilities[s],
        }
    )
  return examples


def predict_main() -> None:
  """``--mode=predict``: questions, the model's answers and the right ones."""
  run, _ = trained_runs.trained_run(TASK)
  examples = predictions(run, _NUM_EXAMPLES.value, launch.SEED.value)
  print(
      f'Nth Farthest, step {run.step} of {run.workdir}: which object is '
      'at rank n in distance from the reference (n=0: the reference '
      'itself, then nearest first)?'
  )
  for s, example in enumerate(examples):
    reference = example['vectors'][example['reference']]
    distances = np.linalg.norm(example['vectors'] - reference, axis=-1)
    print(
        f'\nSequence {s}: rank n={example["rank"]} from object '
        f'{example["reference"]}.'
    )
    for i, vector in enumerate(example['vectors']):
      features = ' '.join(f'{x:+.2f}' for x in vector)
      print(f'  object {i}: distance {distances[i]:.3f}  [{features}]')
    predicted = example['predicted']
    verdict = 'right' if predicted == example['answer'] else 'wrong'
    print(
        f'  Answer: object {example["answer"]}. The model says object '
        f'{predicted} (p={example["probabilities"][predicted]:.3f}): '
        f'{verdict}.'
    )
  right = sum(e['predicted'] == e['answer'] for e in examples)
  print(f'\n{right} of {len(examples)} right.')


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if trained_runs.run_other_mode(
      TASK, {'evaluate': evaluate_main, 'predict': predict_main}
  ):
    return
  config = launch.resolve(TASK)
  if config.task.rank_curriculum and devices.SYNTHETIC_INPUT.value:
    raise app.UsageError(
        '--synthetic_input feeds one fixed batch; it cannot '
        'follow --rank_curriculum.'
    )
  parallel = devices.data_parallel(('batch_size', config.optimizer.batch_size))
  evaluation = launch.run_and_report(
      TASK,
      run,
      config,
      parallel,
      data={'generator': 'rmc.data.nth_farthest.generate'},
  )
  if evaluation is None:
    return
  _report(evaluation, config)


if __name__ == '__main__':
  cli.run(main)
