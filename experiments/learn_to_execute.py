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
r"""Learning to Execute (Santoro et al., 2018, 4.2; Zaremba and Sutskever).

Usage (from the repository root):

  python -m experiments.learn_to_execute --preset=cpu --workdir=/tmp/lte
  python -m experiments.learn_to_execute --preset=paper --task=control \
      --workdir=/tmp/lte_control
  # A trained run (its configuration from <workdir>/config.json):
  python -m experiments.learn_to_execute --mode=evaluate --workdir=/tmp/lte
  python -m experiments.learn_to_execute --mode=predict --workdir=/tmp/lte \
      --program='(12+34)+56'

Presets (explicit flags override them):

* ``cpu`` (the default): the addition task sized for 2 CPU cores (see
  docs/learn_to_execute.md for what it reaches and how long it takes).
* ``paper``: batch 128, Adam 1e-3 for 200K steps, the mix curriculum at
  literal length 5 and nesting 2, an RMC with 4 memories of 256 units (4
  heads of 64; 1024 in total) and `memory` gating, evaluated on 12,800
  samples at the maximum length and nesting.
* ``smoke``: tiny, for tests.

The model reads the program with the core and decodes the answer with the
same core (or a separate one, ``--separate_cores``), fed zeros (the paper's
best setting) or, with ``--decoder=teacher_forcing``, the target shifted
right. Unlike Sonnet's example, the curriculum is actually advanced (by the
logged training loss), training uses the chosen curriculum rather than only
1-digit programs, and `solved` is the fraction of sequences fully correct.
"""

from experiments import startup

if __name__ == '__main__':
  startup.start()  # Before the heavy imports: see experiments/startup.py.

import random
import sys
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
from rmc.data import learn_to_execute as lte
from rmc import models
from rmc.tasks import learn_to_execute as lte_task
from rmc.tasks import runs
from rmc.toolkit import parallel as rmc_parallel
from rmc.toolkit import training

_PROGRAM = flags.DEFINE_multi_string(
    'program',
    None,
    'With --mode=predict: a program to run, e.g. '
    "'(123+456)*789' (repeat the flag for several); without it, programs "
    'are read from stdin, one per line.',
)

TASK = lte_task.TASK
PRESETS = TASK.presets
Config = lte_task.Config

# Batch axes of a batch's arrays: tokens are time-major [T, B], lengths [B].
BATCH_AXES = dict(
    inputs=1, targets=1, decoder_inputs=1, input_lengths=0, target_lengths=0
)


def held_out_set(config: Config, seed: int) -> dict[str, np.ndarray]:
  """The fixed held-out set: programs at the maximum length and nesting.

  Args:
    config: Resolved hyperparameters.
    seed: The run's seed; the programs are drawn from ``eval_seed`` if it is
      set (None in runs from before it existed), else from this seed, in a
      stream of their own (never the training data's).

  Returns:
    The fields of :class:`rmc.data.learn_to_execute.Batch`, each with a
    leading axis of ``eval_batches``.
  """
  vocabulary = config.task.vocabulary()
  evaluation = lte.BaselineCurriculum(
      config.task.max_length, config.task.max_nesting
  )
  eval_seed = config.task.eval_seed
  eval_rng = random.Random(f'{seed if eval_seed is None else eval_seed}:eval')
  return lte.stack_batches(
      [
          lte.make_batch(
              eval_rng,
              config.optimizer.batch_size,
              config.task.program,
              evaluation,
              vocabulary,
              config.task.by_char,
          )
          for _ in range(config.task.eval_batches)
      ]
  )


def make_metrics_fn(config: Config):
  """``metrics_fn(params, batch)``: loss, per-token accuracy and solved."""
  model = TASK.model(config)

  def metrics_fn(params, batch):
    return models.sequence_metrics(
        model.apply(params, batch),
        batch['targets'],
        batch['target_lengths'],
        config.task.loss_average,
    )

  return metrics_fn


def make_evaluate(
    config: Config,
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
):
  """``evaluate(params) -> {loss, accuracy, solved}`` on the held-out set."""
  return training.make_evaluator(
      make_metrics_fn(config), held_out_set(config, seed), parallel, BATCH_AXES
  )


def run(
    config: Config,
    workdir: str,
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
) -> dict[str, Any]:
  """Trains and evaluates one Learning to Execute model.

  Args:
    config: The run's configuration.
    workdir: Checkpoint and metrics directory (resumed from if non-empty).
    seed: Seed for initialisation, training data and the held-out set.
    parallel: The data-parallel mesh; by default all devices.

  Returns:
    The summary of :func:`rmc.toolkit.training.train`.
  """
  by_char = config.task.by_char
  vocabulary = config.task.vocabulary()
  curriculum = lte.CURRICULA[config.task.curriculum](
      config.task.max_length,
      config.task.max_nesting,
      loss_threshold=config.task.curriculum_loss_threshold,
  )
  parallel = parallel or rmc_parallel.DataParallel()
  data = lte.TrainingData(
      config.task.program,
      curriculum,
      config.optimizer.batch_size,
      vocabulary,
      seed,
      by_char,
      rows=parallel.process_rows(config.optimizer.batch_size),
  )
  model = TASK.model(config)
  metrics_fn = make_metrics_fn(config)

  def loss_fn(params, key, batch):
    del key  # The model is deterministic.
    metrics = metrics_fn(params, batch)
    return metrics['loss'], {
        'accuracy': metrics['accuracy'],
        'solved': metrics['solved'],
    }

  init_key, train_key = jax.random.split(jax.random.key(seed))
  example = jax.tree.map(lambda x: x[0], data.batches(0, 1))
  params = jax.jit(model.init)(init_key, example)
  logging.info('Vocabulary: %d tokens.', len(vocabulary))
  optimizer, schedule = config.optimizer.make()
  return launch.train(
      config,
      workdir,
      parallel,
      state=training.init_state(params, optimizer, train_key),
      train_chunk=training.make_train_chunk(
          loss_fn, optimizer, schedule, parallel=parallel, batch_axes=BATCH_AXES
      ),
      evaluate=make_evaluate(config, seed, parallel),
      data=devices.training_data(data, parallel, BATCH_AXES),
  )


def _report(evaluation: dict[str, Any], config: Config) -> None:
  """Prints an evaluation record of the held-out set."""
  held_out = config.task.eval_batches * config.optimizer.batch_size
  stopped = (
      f', stopped by {evaluation["stopped_by"]}'
      if 'stopped_by' in evaluation
      else ''
  )
  print(
      f'Held-out per-character accuracy {evaluation["eval_accuracy"]:.4f}, '
      f'solved {evaluation["eval_solved"]:.4f} (loss '
      f'{evaluation["eval_loss"]:.4f}, {held_out} programs of length '
      f'{config.task.max_length}, nesting {config.task.max_nesting}) at step '
      f'{evaluation["step"]}{stopped}.'
  )


def evaluate_main() -> None:
  """``--mode=evaluate``: the held-out set, scored by a checkpoint."""
  _report(
      *trained_runs.evaluate_held_out(
          TASK,
          make_evaluate,
          'eval_programs',
          lambda c: c.task.eval_batches * c.optimizer.batch_size,
          may_override=('eval_batches', 'eval_seed'),
      )
  )


def predict(run: runs.Run, programs: list[str]) -> list[dict[str, Any]]:
  """The model's answers to programs, beside the generator's.

  The model is told how many tokens the true answer has, as in training and
  evaluation (its decoder runs for that many steps); with teacher forcing it
  is fed its own previous token (greedy decoding), not the true one.

  Args:
    run: A trained Learning to Execute run.
    programs: Program texts of the run's task, e.g. ``'(12+34)*56'``.

  Returns:
    One dict per program: ``program``, ``target`` (from
    :func:`rmc.data.learn_to_execute.evaluate_program`), ``answer`` (the
    model's, as many tokens as the target) and ``accuracy`` (the fraction of
    its tokens that are right).

  Raises:
    ValueError: For a program the task's grammar or the model's vocabulary
      and lengths do not allow; the message names it.
  """
  config = run.hyperparameters
  vocabulary = run.vocabulary
  steps_in, steps_out = config.task.sequence_lengths()
  columns: dict[str, list[Any]] = {
      name: []
      for name in ('inputs', 'input_lengths', 'targets', 'target_lengths')
  }
  targets = []
  for program in programs:
    target = lte.evaluate_program(program, config.task.program)
    try:
      ids, length = vocabulary.encode(program, steps_in)
      target_ids, target_length = vocabulary.encode(target, steps_out)
    except ValueError as e:
      raise ValueError(
          f'The model cannot read {program!r} (it was trained '
          f'on literals of up to {config.task.max_length} digits '
          f'and {config.task.max_nesting} operations): {e}'
      ) from e
    columns['inputs'].append(ids)
    columns['input_lengths'].append(length)
    columns['targets'].append(target_ids)
    columns['target_lengths'].append(target_length)
    targets.append(target)
  batch = {
      'inputs': np.asarray(columns['inputs'], np.int32).T,  # [T_in, B]
      'targets': np.asarray(columns['targets'], np.int32).T,
      'input_lengths': np.asarray(columns['input_lengths'], np.int32),
      'target_lengths': np.asarray(columns['target_lengths'], np.int32),
  }
  sos = vocabulary.id(lte.SOS)

  @jax.jit
  def greedy(params, batch):
    """Argmax tokens ``[T_out, B]``; with teacher forcing, each fed back."""

    def logits_of(decoder_inputs):  # [T_out, B, V]
      return run.model.apply(params, dict(batch, decoder_inputs=decoder_inputs))

    decoder_inputs = jnp.full_like(batch['targets'], sos)  # [T_out, B]
    if config.task.decoder == 'teacher_forcing':
      # The decoder is causal: output t reads decoder_inputs[:t + 1].
      def feed_back(t, decoder_inputs):
        answer = jnp.argmax(logits_of(decoder_inputs), axis=-1)
        return decoder_inputs.at[t + 1].set(answer[t])

      decoder_inputs = jax.lax.fori_loop(
          0, steps_out - 1, feed_back, decoder_inputs
      )
    return jnp.argmax(logits_of(decoder_inputs), axis=-1)

  answers = np.asarray(greedy(run.params, batch))  # [T_out, B]
  results = []
  for b, (program, target) in enumerate(zip(programs, targets, strict=True)):
    length = int(batch['target_lengths'][b])
    answer = vocabulary.decode(answers[:length, b])
    right = int(np.sum(answers[:length, b] == batch['targets'][:length, b]))
    results.append(
        {
            'program': program,
            'target': target,
            'answer': answer,
            'accuracy': right / length,
        }
    )
  return results


def predict_main() -> None:
  """``--mode=predict``: the model's answers to programs given or on stdin."""
  run, _ = trained_runs.trained_run(TASK)
  programs = _PROGRAM.value
  if not programs:
    if sys.stdin.isatty():
      print('Type programs, one per line; end with Ctrl-D.', file=sys.stderr)
    programs = [line.strip() for line in sys.stdin if line.strip()]
  if not programs:
    raise app.UsageError(
        'No program: give --program=... or programs on stdin, one per line.'
    )
  try:
    results = predict(run, programs)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  config = run.hyperparameters
  print(
      f'Learning to Execute ({config.task.program}), step {run.step} of '
      f'{run.workdir}; the model writes as many characters as the true '
      'answer has.'
  )
  for result in results:
    verdict = (
        'right'
        if result['answer'] == result['target']
        else f'wrong, {result["accuracy"]:.0%} of characters right'
    )
    print(
        f'{result["program"]}\n  true value {result["target"]}, model '
        f'{result["answer"]} ({verdict})'
    )
  solved = sum(r['answer'] == r['target'] for r in results)
  print(f'{solved} of {len(results)} solved.')


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if trained_runs.run_other_mode(
      TASK, {'evaluate': evaluate_main, 'predict': predict_main}
  ):
    return
  config = launch.resolve(TASK)
  parallel = devices.data_parallel(('batch_size', config.optimizer.batch_size))
  by_char = config.task.by_char
  evaluation = launch.run_and_report(
      TASK,
      run,
      config,
      parallel,
      data={
          'generator': 'rmc.data.learn_to_execute.generate_program',
          'vocab_size': len(config.task.vocabulary()),
          'sequence_lengths': list(config.task.sequence_lengths()),
          'padded_input_length': lte.max_program_length(
              config.task.program,
              config.task.max_length,
              config.task.max_nesting,
              by_char,
          ),
      },
  )
  if evaluation is None:
    return
  _report(evaluation, config)


if __name__ == '__main__':
  cli.run(main)
