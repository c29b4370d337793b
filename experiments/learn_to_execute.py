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

from experiments import common
from rmc import models
from rmc import parallel as rmc_parallel
from rmc import runs
from rmc import training
from rmc.data import learn_to_execute as lte

flags.DEFINE_enum(
    'task',
    None,
    sorted(lte.TASKS),
    "Program task (the paper's addition, control and program "
    'are addition, control and all).',
)
flags.DEFINE_enum(
    'curriculum',
    None,
    sorted(lte.CURRICULA),
    'Training curriculum (the paper used mix).',
)
flags.DEFINE_integer(
    'max_length', None, 'Largest literal length (digits).', lower_bound=1
)
flags.DEFINE_integer(
    'max_nesting', None, 'Largest nesting (operations).', lower_bound=1
)
flags.DEFINE_enum(
    'token_mode',
    None,
    ['char', 'word'],
    'Character tokens, or words (digit and letter runs).',
)
flags.DEFINE_enum(
    'decoder',
    None,
    ['zeros', 'teacher_forcing'],
    "Decoder inputs: zeros (non-autoregressive, the paper's "
    'best) or the target shifted right (evaluation also feeds '
    'the true previous token).',
)
flags.DEFINE_bool(
    'separate_cores',
    None,
    'Separate encoder and decoder cores (Sonnet shares one).',
)
flags.DEFINE_enum(
    'loss_average',
    None,
    ['valid_tokens', 'all_positions'],
    'Cross-entropy averaged over valid target tokens, or '
    "Sonnet's average over all padded positions.",
)
flags.DEFINE_float(
    'curriculum_loss_threshold',
    None,
    'Naive/combine curricula advance when the relative loss '
    'change over the window is below this.',
)
common.finite_floats('curriculum_loss_threshold')
flags.DEFINE_integer(
    'eval_seed',
    None,
    "Seed of the held-out programs; by default the run's --seed. Give "
    'every run of a comparison the same value to score them all on the '
    'same programs.',
    lower_bound=0,
)
_PROGRAM = flags.DEFINE_multi_string(
    'program',
    None,
    'With --mode=predict: a program to run, e.g. '
    "'(123+456)*789' (repeat the flag for several); without it, programs "
    'are read from stdin, one per line.',
)

HYPERPARAMETERS = (
    'task',
    'curriculum',
    'max_length',
    'max_nesting',
    'token_mode',
    'decoder',
    'separate_cores',
    'loss_average',
    'curriculum_loss_threshold',
    'eval_seed',
) + common.COMMON_HYPERPARAMETERS

_TASK_DEFAULTS = dict(
    task='addition',
    curriculum='mix',
    token_mode='char',
    decoder='zeros',
    separate_cores=False,
    loss_average='valid_tokens',
    curriculum_loss_threshold=0.1,
    eval_seed=None,
)
_RMC_DEFAULTS = dict(
    num_blocks=1,
    key_size=None,
    attention_mlp_layers=2,
    gate_style='memory',
    forget_bias=1.0,
    input_bias=0.0,
    attention_scale='key_size',
)

PRESETS: dict[str, dict[str, Any]] = {
    'paper': dict(
        **_TASK_DEFAULTS,
        **_RMC_DEFAULTS,
        max_length=5,
        max_nesting=2,
        batch_size=128,
        **common.constant_learning_rate(1e-3),
        max_grad_norm=0.0,
        warmup_steps=0,
        num_steps=200_000,
        time_budget_s=0.0,
        steps_per_chunk=10,
        log_every=100,
        eval_every=2000,
        checkpoint_every=10_000,
        keep_checkpoints=3,
        eval_batches=100,
        core='rmc',
        lstm_hidden_size=1024,
        mem_slots=4,
        head_size=64,
        num_heads=4,
        # The paper's DNC: 80 slots of 64, 4 read and 1 write heads, a
        # 2-layer controller of 128, 256 or 512 (the largest here).
        **common.dnc_preset(
            memory_size=80,
            word_size=64,
            num_reads=4,
            num_writes=1,
            controller_size=512,
        ),
    ),
    'cpu': dict(
        **_TASK_DEFAULTS,
        # A gate per memory element: 7 to 20 points above the paper's scalar
        # `memory` gate on control at 12 minutes, 1.5 to 5 on the program,
        # level on addition, seeds 0-2 (experiments/results/lte_study.md).
        **dict(_RMC_DEFAULTS, gate_style='unit'),
        max_length=2,
        max_nesting=2,
        # Batch 32: 2.4x the RMC's steps/s of batch 64 on one CPU core, and
        # as much learnt per step (experiments/results/lte_study.md).
        batch_size=32,
        **common.constant_learning_rate(1e-3),
        max_grad_norm=0.0,
        warmup_steps=0,
        num_steps=20_000,
        time_budget_s=0.0,
        steps_per_chunk=10,
        log_every=100,
        eval_every=1000,
        checkpoint_every=2000,
        keep_checkpoints=3,
        eval_batches=20,
        core='rmc',
        # About the RMC's parameter count; per wall-clock the strongest LSTM
        # of the study (256 units learn more per step, at 1/7 the steps/s).
        lstm_hidden_size=64,
        mem_slots=4,
        head_size=32,
        num_heads=2,
        # The paper's DNC heads (4 read, 1 write) and 2-layer controller,
        # at 64 units, on 16 slots of 32: its 80 slots of 64 train at 1
        # step/s on one CPU core, these at 6.6.
        **common.dnc_preset(
            memory_size=16,
            word_size=32,
            num_reads=4,
            num_writes=1,
            controller_size=64,
        ),
    ),
    'smoke': dict(
        **_TASK_DEFAULTS,
        **_RMC_DEFAULTS,
        max_length=2,
        max_nesting=2,
        batch_size=8,
        **common.constant_learning_rate(3e-3),
        max_grad_norm=1.0,
        warmup_steps=0,
        num_steps=30,
        time_budget_s=0.0,
        steps_per_chunk=5,
        log_every=10,
        eval_every=10,
        checkpoint_every=10,
        keep_checkpoints=2,
        eval_batches=2,
        core='rmc',
        lstm_hidden_size=16,
        mem_slots=2,
        head_size=4,
        num_heads=2,
        **common.dnc_preset(
            memory_size=4,
            word_size=4,
            num_reads=2,
            num_writes=1,
            controller_size=8,
        ),
    ),
}
DEFAULT_PRESET = 'cpu'

# Batch axes of a batch's arrays: tokens are time-major [T, B], lengths [B].
BATCH_AXES = dict(
    inputs=1, targets=1, decoder_inputs=1, input_lengths=0, target_lengths=0
)


def held_out_set(config: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
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
  vocabulary = runs.learn_to_execute_vocabulary(config)
  evaluation = lte.BaselineCurriculum(
      config['max_length'], config['max_nesting']
  )
  eval_seed = config.get('eval_seed')
  eval_rng = random.Random(f'{seed if eval_seed is None else eval_seed}:eval')
  return lte.stack_batches(
      [
          lte.make_batch(
              eval_rng,
              config['batch_size'],
              config['task'],
              evaluation,
              vocabulary,
              config['token_mode'] == 'char',
          )
          for _ in range(config['eval_batches'])
      ]
  )


def make_metrics_fn(config: dict[str, Any]):
  """``metrics_fn(params, batch)``: loss, per-token accuracy and solved."""
  model = runs.learn_to_execute_model(config)

  def metrics_fn(params, batch):
    return models.sequence_metrics(
        model.apply(params, batch),
        batch['targets'],
        batch['target_lengths'],
        config['loss_average'],
    )

  return metrics_fn


def make_evaluate(
    config: dict[str, Any],
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
):
  """``evaluate(params) -> {loss, accuracy, solved}`` on the held-out set."""
  return training.make_evaluator(
      make_metrics_fn(config), held_out_set(config, seed), parallel, BATCH_AXES
  )


def run(
    config: dict[str, Any],
    workdir: str,
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
) -> dict[str, Any]:
  """Trains and evaluates one Learning to Execute model.

  Args:
    config: Resolved hyperparameters (every name in ``HYPERPARAMETERS``).
    workdir: Checkpoint and metrics directory (resumed from if non-empty).
    seed: Seed for initialisation, training data and the held-out set.
    parallel: The data-parallel mesh; by default all devices.

  Returns:
    The summary of :func:`rmc.training.train`.
  """
  by_char = config['token_mode'] == 'char'
  vocabulary = runs.learn_to_execute_vocabulary(config)
  curriculum = lte.CURRICULA[config['curriculum']](
      config['max_length'],
      config['max_nesting'],
      loss_threshold=config['curriculum_loss_threshold'],
  )
  parallel = parallel or rmc_parallel.DataParallel()
  data = lte.TrainingData(
      config['task'],
      curriculum,
      config['batch_size'],
      vocabulary,
      seed,
      by_char,
      rows=parallel.process_rows(config['batch_size']),
  )
  model = runs.learn_to_execute_model(config)
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
  optimizer, schedule = common.optimizer(config)
  return training.train(
      workdir=workdir,
      state=training.init_state(params, optimizer, train_key),
      train_chunk=training.make_train_chunk(
          loss_fn, optimizer, schedule, parallel=parallel, batch_axes=BATCH_AXES
      ),
      evaluate=make_evaluate(config, seed, parallel),
      config=common.loop_config(config),
      data=common.training_data(data, parallel, BATCH_AXES),
      parallel=parallel,
      tensorboard=common.TENSORBOARD.value,
  )


def _report(evaluation: dict[str, Any], config: dict[str, Any]) -> None:
  """Prints an evaluation record of the held-out set."""
  held_out = config['eval_batches'] * config['batch_size']
  stopped = (
      f', stopped by {evaluation["stopped_by"]}'
      if 'stopped_by' in evaluation
      else ''
  )
  print(
      f'Held-out per-character accuracy {evaluation["eval_accuracy"]:.4f}, '
      f'solved {evaluation["eval_solved"]:.4f} (loss '
      f'{evaluation["eval_loss"]:.4f}, {held_out} programs of length '
      f'{config["max_length"]}, nesting {config["max_nesting"]}) at step '
      f'{evaluation["step"]}{stopped}.'
  )


def evaluate_main() -> None:
  """``--mode=evaluate``: the held-out set, scored by a checkpoint."""
  _report(
      *common.evaluate_held_out(
          'learn_to_execute',
          HYPERPARAMETERS,
          make_evaluate,
          'eval_programs',
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
  by_char = config['token_mode'] == 'char'
  steps_in, steps_out = lte.sequence_lengths(
      config['task'], config['max_length'], config['max_nesting'], by_char
  )
  columns: dict[str, list[Any]] = {
      name: []
      for name in ('inputs', 'input_lengths', 'targets', 'target_lengths')
  }
  targets = []
  for program in programs:
    target = lte.evaluate_program(program, config['task'])
    try:
      ids, length = vocabulary.encode(program, steps_in)
      target_ids, target_length = vocabulary.encode(target, steps_out)
    except ValueError as e:
      raise ValueError(
          f'The model cannot read {program!r} (it was trained '
          f'on literals of up to {config["max_length"]} digits '
          f'and {config["max_nesting"]} operations): {e}'
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
    if config['decoder'] == 'teacher_forcing':
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
  run, _ = common.trained_run('learn_to_execute', HYPERPARAMETERS)
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
      f'Learning to Execute ({config["task"]}), step {run.step} of '
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
  if common.run_other_mode(
      'learn_to_execute', {'evaluate': evaluate_main, 'predict': predict_main}
  ):
    return
  config = common.resolve_config(PRESETS, DEFAULT_PRESET, HYPERPARAMETERS)
  try:
    lte.sequence_lengths(
        config['task'],
        config['max_length'],
        config['max_nesting'],
        config['token_mode'] == 'char',
    )
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  parallel = common.data_parallel(('batch_size', config['batch_size']))
  by_char = config['token_mode'] == 'char'
  evaluation = common.run_and_report(
      run,
      config,
      parallel,
      'learn_to_execute',
      data={
          'generator': 'rmc.data.learn_to_execute.generate_program',
          'vocab_size': len(runs.learn_to_execute_vocabulary(config)),
          'sequence_lengths': list(
              lte.sequence_lengths(
                  config['task'],
                  config['max_length'],
                  config['max_nesting'],
                  by_char,
              )
          ),
          'padded_input_length': lte.max_program_length(
              config['task'],
              config['max_length'],
              config['max_nesting'],
              by_char,
          ),
      },
  )
  if evaluation is None:
    return
  _report(evaluation, config)


if __name__ == '__main__':
  common.run(main)
