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

Presets (explicit flags override them):

* ``cpu`` (the default): the addition task sized for 2 CPU cores (see the
  README for what it reaches and how long it takes).
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

import random
from typing import Any

from absl import app
from absl import flags
from absl import logging
import haiku as hk
import jax

from experiments import common
from rmc import models
from rmc import parallel as rmc_parallel
from rmc import relational_memory
from rmc import training
from rmc.data import learn_to_execute as lte

flags.DEFINE_enum('task', None, sorted(lte.TASKS),
                  'Program task (the paper\'s addition, control and program '
                  'are addition, control and all).')
flags.DEFINE_enum('curriculum', None, sorted(lte.CURRICULA),
                  'Training curriculum (the paper used mix).')
flags.DEFINE_integer('max_length', None, 'Largest literal length (digits).',
                     lower_bound=1)
flags.DEFINE_integer('max_nesting', None, 'Largest nesting (operations).',
                     lower_bound=1)
flags.DEFINE_enum('token_mode', None, ['char', 'word'],
                  'Character tokens, or words (digit and letter runs).')
flags.DEFINE_enum('decoder', None, ['zeros', 'teacher_forcing'],
                  'Decoder inputs: zeros (non-autoregressive, the paper\'s '
                  'best) or the target shifted right (evaluation also feeds '
                  'the true previous token).')
flags.DEFINE_bool('separate_cores', None,
                  'Separate encoder and decoder cores (Sonnet shares one).')
flags.DEFINE_enum('loss_average', None, ['valid_tokens', 'all_positions'],
                  'Cross-entropy averaged over valid target tokens, or '
                  'Sonnet\'s average over all padded positions.')
flags.DEFINE_float('curriculum_loss_threshold', None,
                   'Naive/combine curricula advance when the relative loss '
                   'change over the window is below this.')
common.finite_floats('curriculum_loss_threshold')

HYPERPARAMETERS = ('task', 'curriculum', 'max_length', 'max_nesting',
                   'token_mode', 'decoder', 'separate_cores', 'loss_average',
                   'curriculum_loss_threshold'
                   ) + common.COMMON_HYPERPARAMETERS

_TASK_DEFAULTS = dict(
    task='addition', curriculum='mix', token_mode='char', decoder='zeros',
    separate_cores=False, loss_average='valid_tokens',
    curriculum_loss_threshold=0.1)
_RMC_DEFAULTS = dict(
    num_blocks=1, key_size=None, attention_mlp_layers=2, gate_style='memory',
    forget_bias=1.0, input_bias=0.0, attention_scale='key_size')

PRESETS: dict[str, dict[str, Any]] = {
    'paper': dict(
        **_TASK_DEFAULTS, **_RMC_DEFAULTS, max_length=5, max_nesting=2,
        batch_size=128, **common.constant_learning_rate(1e-3),
        max_grad_norm=0.0, warmup_steps=0, num_steps=200_000,
        time_budget_s=0.0, steps_per_chunk=10, log_every=100,
        eval_every=2000, checkpoint_every=10_000, keep_checkpoints=3,
        eval_batches=100, core='rmc', lstm_hidden_size=1024, mem_slots=4,
        head_size=64, num_heads=4),
    'cpu': dict(
        **_TASK_DEFAULTS, **_RMC_DEFAULTS, max_length=2, max_nesting=2,
        batch_size=64, **common.constant_learning_rate(1e-3),
        max_grad_norm=0.0, warmup_steps=0, num_steps=20_000,
        time_budget_s=0.0, steps_per_chunk=10, log_every=100,
        eval_every=1000, checkpoint_every=2000, keep_checkpoints=3,
        eval_batches=20, core='rmc', lstm_hidden_size=256, mem_slots=4,
        head_size=32, num_heads=2),
    'smoke': dict(
        **_TASK_DEFAULTS, **_RMC_DEFAULTS, max_length=2, max_nesting=2,
        batch_size=8, **common.constant_learning_rate(3e-3),
        max_grad_norm=1.0, warmup_steps=0, num_steps=30,
        time_budget_s=0.0, steps_per_chunk=5, log_every=10, eval_every=10,
        checkpoint_every=10, keep_checkpoints=2, eval_batches=2,
        core='rmc', lstm_hidden_size=16, mem_slots=2, head_size=4,
        num_heads=2),
}
DEFAULT_PRESET = 'cpu'

# Batch axes of a batch's arrays: tokens are time-major [T, B], lengths [B].
BATCH_AXES = dict(inputs=1, targets=1, decoder_inputs=1, input_lengths=0,
                  target_lengths=0)


def run(config: dict[str, Any], workdir: str, seed: int,
        parallel: rmc_parallel.DataParallel | None = None) -> dict[str, Any]:
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
  vocabulary = lte.Vocabulary(by_char, config['max_length'])
  curriculum = lte.CURRICULA[config['curriculum']](
      config['max_length'], config['max_nesting'],
      loss_threshold=config['curriculum_loss_threshold'])
  parallel = parallel or rmc_parallel.DataParallel()
  data = lte.TrainingData(config['task'], curriculum, config['batch_size'],
                          vocabulary, seed, by_char,
                          rows=parallel.process_rows(config['batch_size']))
  # The held-out set: the maximum length and nesting, from its own seed.
  evaluation = lte.BaselineCurriculum(config['max_length'],
                                      config['max_nesting'])
  eval_rng = random.Random(f'{seed}:eval')
  eval_set = lte.stack_batches([
      lte.make_batch(eval_rng, config['batch_size'], config['task'],
                     evaluation, vocabulary, by_char)
      for _ in range(config['eval_batches'])])

  def make_core(name):
    if config['core'] == 'lstm':
      return models.make_lstm_with_skips(config['lstm_hidden_size'])
    return relational_memory.RelationalMemory(
        **common.rmc_kwargs(config), name=name)

  def forward(batch):
    encoder = make_core('relational_memory')
    decoder = make_core('decoder') if config['separate_cores'] else encoder
    model = models.Seq2Seq(encoder, decoder, len(vocabulary),
                           teacher_forcing=config['decoder'] ==
                           'teacher_forcing')
    return model(batch['inputs'], batch['input_lengths'],
                 batch['decoder_inputs'], batch['target_lengths'])

  model = hk.without_apply_rng(hk.transform(forward))

  def metrics_fn(params, batch):
    return models.sequence_metrics(
        model.apply(params, batch), batch['targets'], batch['target_lengths'],
        config['loss_average'])

  def loss_fn(params, key, batch):
    del key  # The model is deterministic.
    metrics = metrics_fn(params, batch)
    return metrics['loss'], {'accuracy': metrics['accuracy'],
                             'solved': metrics['solved']}

  init_key, train_key = jax.random.split(jax.random.key(seed))
  example = jax.tree.map(lambda x: x[0], eval_set)
  params = jax.jit(model.init)(init_key, example)
  logging.info('Parameters: %d; vocabulary: %d tokens.',
               hk.data_structures.tree_size(params), len(vocabulary))
  optimizer, schedule = common.optimizer(config)
  return training.train(
      workdir=workdir,
      state=training.init_state(params, optimizer, train_key),
      train_chunk=training.make_train_chunk(
          loss_fn, optimizer, schedule, parallel=parallel,
          batch_axes=BATCH_AXES),
      evaluate=training.make_evaluator(metrics_fn, eval_set, parallel,
                                       BATCH_AXES),
      config=common.loop_config(config),
      data=common.training_data(data, parallel, BATCH_AXES),
      parallel=parallel)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  config = common.resolve_config(PRESETS, DEFAULT_PRESET, HYPERPARAMETERS)
  try:
    lte.sequence_lengths(config['task'], config['max_length'],
                         config['max_nesting'], config['token_mode'] == 'char')
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  parallel = common.data_parallel(('batch_size', config['batch_size']))
  evaluation = common.run_and_report(run, config, parallel)
  if evaluation is None:
    return
  held_out = config['eval_batches'] * config['batch_size']
  print(f'Held-out per-character accuracy {evaluation["eval_accuracy"]:.4f}, '
        f'solved {evaluation["eval_solved"]:.4f} (loss '
        f'{evaluation["eval_loss"]:.4f}, {held_out} programs of length '
        f'{config["max_length"]}, nesting {config["max_nesting"]}) at step '
        f'{evaluation["step"]}, stopped by {evaluation["stopped_by"]}.')


if __name__ == '__main__':
  common.run(main)
