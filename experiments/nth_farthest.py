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

from experiments import common
from rmc import models
from rmc import parallel as rmc_parallel
from rmc import runs
from rmc import training
from rmc.data import nth_farthest

flags.DEFINE_integer(
    'num_objects', None, 'Objects (vectors) per sequence, K.', lower_bound=2
)
flags.DEFINE_integer(
    'num_features', None, 'Size of each vector.', lower_bound=1
)
# Not `--curriculum`: that is Learning to Execute's, and the binaries'
# flags share one process in the tests.
flags.DEFINE_bool(
    'rank_curriculum',
    None,
    'Train with a curriculum over the queried rank n (off in every preset): '
    'first ask only for ranks 0 and 1, and add the next rank whenever the '
    'logged training accuracy reaches --rank_curriculum_threshold, until all '
    'K ranks are asked. The held-out set always asks for every rank; the '
    'input encoding and the loss are unchanged.',
)
flags.DEFINE_float(
    'rank_curriculum_threshold',
    None,
    'With --rank_curriculum: training accuracy (a fraction, averaged over '
    'one --log_every interval) at which the next rank is added.',
    lower_bound=0.0,
    upper_bound=1.0,
)
common.finite_floats('rank_curriculum_threshold')
_NUM_EXAMPLES = flags.DEFINE_integer(
    'num_examples',
    5,
    'With --mode=predict: random sequences to show (drawn from --seed).',
    lower_bound=1,
    upper_bound=1000,
)

HYPERPARAMETERS = (
    'num_objects',
    'num_features',
    'rank_curriculum',
    'rank_curriculum_threshold',
) + common.COMMON_HYPERPARAMETERS

_RMC_DEFAULTS = dict(
    num_blocks=1,
    key_size=None,
    attention_mlp_layers=2,
    gate_style='unit',
    forget_bias=1.0,
    input_bias=0.0,
    attention_scale='key_size',
    rank_curriculum=False,
    rank_curriculum_threshold=0.9,
)
# --core=dnc on the CPU presets: 8 slots of 64, 2 read and 1 write heads, a
# 2-layer controller of 128.
_CPU_DNC = common.dnc_preset(
    memory_size=8, word_size=64, num_reads=2, num_writes=1, controller_size=128
)

# 3 objects, Adam 1e-3 with a warm-up and Sonnet's decay to 1e-4: the study's
# first preset (experiments/results/nth_farthest_study.md), whose RMC left the
# plateau for each of 3 seeds within 9 minutes on one CPU core, and the base
# of `demo`.
_CPU_K3 = dict(
    num_objects=3,
    num_features=4,
    batch_size=16,
    learning_rate=1e-3,
    min_learning_rate=1e-4,
    decay_steps=2000,
    decay_rate=0.9,
    max_grad_norm=0.0,
    warmup_steps=5000,
    num_steps=900_000,
    time_budget_s=0.0,
    steps_per_chunk=20,
    log_every=1000,
    eval_every=5000,
    checkpoint_every=50_000,
    keep_checkpoints=3,
    eval_batches=128,
    core='rmc',
    lstm_hidden_size=256,
    mem_slots=3,
    head_size=32,
    num_heads=2,
    **_RMC_DEFAULTS,
    **_CPU_DNC,
)

# Chosen by the study: 4 objects (Sonnet's example size), one memory per
# object, and a learning rate 3.3x lower than `cpu_k3`'s (3e-4 decaying to
# 3e-5, the LSTM's best at 3 objects), which took the RMC's exit from the
# plateau at 4 objects from 615,000 steps to 240,000 for seed 0.
_CPU = dict(
    _CPU_K3,
    num_objects=4,
    mem_slots=4,
    learning_rate=3e-4,
    min_learning_rate=3e-5,
    num_steps=600_000,
)

PRESETS: dict[str, dict[str, Any]] = {
    'paper': dict(
        num_objects=8,
        num_features=16,
        batch_size=1600,
        learning_rate=1e-4,
        min_learning_rate=8e-5,
        decay_steps=10_000,
        decay_rate=0.9,
        max_grad_norm=0.0,
        warmup_steps=0,
        num_steps=1_000_000,
        time_budget_s=0.0,
        steps_per_chunk=10,
        log_every=100,
        eval_every=1000,
        checkpoint_every=5000,
        keep_checkpoints=3,
        eval_batches=10,
        core='rmc',
        lstm_hidden_size=1024,
        mem_slots=8,
        head_size=32,
        num_heads=8,
        **_RMC_DEFAULTS,
        # The paper's DNC grid: 1, 8 or 16 slots of 128, 512 or 1024 (the
        # controller's size), 1, 2 or 4 read and write heads, a 2-layer
        # controller. This is one point of it.
        **common.dnc_preset(
            memory_size=16,
            word_size=512,
            num_reads=4,
            num_writes=1,
            controller_size=512,
        ),
    ),
    'cpu': _CPU,
    'cpu_k3': _CPU_K3,
    # `cpu_k3` at `cpu`'s rate (Adam 3e-4 decaying to 3e-5, with the
    # warm-up), for 270 s: the RMC leaves the plateau after 25,000-40,000
    # steps (experiments/results/nth_farthest_study.md).
    'demo': dict(
        _CPU_K3,
        learning_rate=3e-4,
        min_learning_rate=3e-5,
        time_budget_s=270.0,
    ),
    'smoke': dict(
        num_objects=3,
        num_features=2,
        batch_size=16,
        learning_rate=3e-3,
        min_learning_rate=1e-3,
        decay_steps=100,
        decay_rate=0.9,
        max_grad_norm=1.0,
        warmup_steps=0,
        num_steps=40,
        time_budget_s=0.0,
        steps_per_chunk=5,
        log_every=10,
        eval_every=20,
        checkpoint_every=20,
        keep_checkpoints=2,
        eval_batches=2,
        core='rmc',
        lstm_hidden_size=16,
        mem_slots=2,
        head_size=4,
        num_heads=2,
        **_RMC_DEFAULTS,
        **common.dnc_preset(
            memory_size=4,
            word_size=4,
            num_reads=2,
            num_writes=1,
            controller_size=8,
        ),
    ),
}
DEFAULT_PRESET = 'demo'


class RankCurriculum:
  """Training data of ``--rank_curriculum``: how many ranks each step asks.

  A :class:`rmc.training.HostData` whose per-step batch is one int32 scalar,
  ``num_ranks``: the step's sequences ask for ranks drawn uniformly from
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


def _generator(config: dict[str, Any]):
  """``generate(key, num_ranks=None)`` of the configured sizes."""
  return functools.partial(
      nth_farthest.generate,
      batch_size=config['batch_size'],
      num_objects=config['num_objects'],
      num_features=config['num_features'],
  )


def held_out_set(config: dict[str, Any], seed: int) -> nth_farthest.Batch:
  """The fixed held-out set: leaves ``[eval_batches, batch_size, ...]``."""
  return jax.jit(jax.vmap(_generator(config)))(
      jax.random.split(_keys(seed)[2], config['eval_batches'])
  )


def initial_state(
    config: dict[str, Any],
    seed: int,
) -> tuple[training.TrainState, training.HostData | None]:
  """A run's step-0 training state and its host data (None: none).

  The pair is also the template that a checkpoint of the run restores into.
  """
  init_key, train_key, _ = _keys(seed)
  example = jax.eval_shape(_generator(config), init_key)
  params = jax.jit(runs.nth_farthest_model(config).init)(
      init_key, example.inputs
  )
  optimizer, _ = common.optimizer(config)
  data = (
      RankCurriculum(config['num_objects'], config['rank_curriculum_threshold'])
      if config['rank_curriculum']
      else None
  )
  return training.init_state(params, optimizer, train_key), data


def make_evaluate(
    config: dict[str, Any],
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
):
  """``evaluate(params) -> {name: mean}`` on the run's held-out set.

  The figures are ``loss``, ``accuracy`` and the accuracy split by the
  queried rank: ``accuracy_rank_0`` (the reference itself) and
  ``accuracy_other_ranks``, each the fraction of the held-out set's
  sequences of those ranks that are answered right (0 when there are none).
  """
  model = runs.nth_farthest_model(config)
  k = config['num_objects']
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
    config: dict[str, Any],
    workdir: str,
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
) -> dict[str, Any]:
  """Trains and evaluates one Nth Farthest model.

  Args:
    config: Resolved hyperparameters (every name in ``HYPERPARAMETERS``).
    workdir: Checkpoint and metrics directory (resumed from if non-empty).
    seed: Seed for initialisation, training data and the held-out set.
    parallel: The data-parallel mesh; by default all devices.

  Returns:
    The summary of :func:`rmc.training.train`.
  """
  generate = _generator(config)
  model = runs.nth_farthest_model(config)
  parallel = parallel or rmc_parallel.DataParallel()
  curriculum = config['rank_curriculum']

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
  optimizer, schedule = common.optimizer(config)
  if common.SYNTHETIC_INPUT.value:
    rows = parallel.process_rows(config['batch_size'])
    data = training.SyntheticData(
        jax.tree.map(
            lambda x: np.asarray(x)[rows], jax.jit(generate)(state.rng)
        ),
        parallel,
    )
  return training.train(
      workdir=workdir,
      state=state,
      train_chunk=training.make_train_chunk(
          loss_fn,
          optimizer,
          schedule,
          parallel=parallel,
          batch_axes=None if curriculum else 0,
      ),
      evaluate=make_evaluate(config, seed, parallel),
      config=common.loop_config(config),
      data=data,
      parallel=parallel,
      tensorboard=common.TENSORBOARD.value,
  )


def plateau(num_objects: int) -> tuple[float, float]:
  """Held-out accuracy when only rank 0 is solved: (overall, other ranks).

  Rank 0 (the reference, readable from its one-hot) is always right and
  every other rank picks one of the other ``K - 1`` objects at chance, so
  overall ``1/K + (K-1)/K * 1/(K-1) = 2/K``.
  """
  return 2 / num_objects, 1 / (num_objects - 1)


def _report(evaluation: dict[str, Any], config: dict[str, Any]) -> None:
  """Prints an evaluation record of the held-out set."""
  k = config['num_objects']
  held_out = config['eval_batches'] * config['batch_size']
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
      *common.evaluate_held_out(
          'nth_farthest', HYPERPARAMETERS, make_evaluate, 'eval_sequences'
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
  k, f = config['num_objects'], config['num_features']
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
  run, _ = common.trained_run('nth_farthest', HYPERPARAMETERS)
  examples = predictions(run, _NUM_EXAMPLES.value, common.SEED.value)
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
  if common.run_other_mode(
      'nth_farthest', {'evaluate': evaluate_main, 'predict': predict_main}
  ):
    return
  config = common.resolve_config(PRESETS, DEFAULT_PRESET, HYPERPARAMETERS)
  if config['rank_curriculum'] and common.SYNTHETIC_INPUT.value:
    raise app.UsageError(
        '--synthetic_input feeds one fixed batch; it cannot '
        'follow --rank_curriculum.'
    )
  parallel = common.data_parallel(('batch_size', config['batch_size']))
  evaluation = common.run_and_report(
      run,
      config,
      parallel,
      'nth_farthest',
      data={'generator': 'rmc.data.nth_farthest.generate'},
  )
  if evaluation is None:
    return
  _report(evaluation, config)


if __name__ == '__main__':
  common.run(main)
