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

Presets (explicit flags override them):

* ``demo`` (the default): 4 objects of 4 features and a small RMC. In about
  a minute on 2 CPU cores it goes from chance (25%) to about 50% held-out
  accuracy, the plateau where rank 0 (the reference) is solved; see the
  README.
* ``paper``: 8 objects of 16 features, batch 1600, Adam 1e-4 with Sonnet's
  decay to 8e-5, an RMC with 8 memories of 256 units (8 heads of 32; 2048
  units in total), 1 block.
* ``smoke``: tiny, for tests.

Unlike Sonnet's example, ``num_heads`` and ``num_blocks`` are their own flags
(Sonnet set both to ``num_mems``) and ``head_size`` is the per-head size
(Sonnet's flag help called it the total memory size).
"""

import functools
from typing import Any

from absl import app
from absl import flags
from absl import logging
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from rmc import models
from rmc import parallel as rmc_parallel
from rmc import training
from rmc.data import nth_farthest

flags.DEFINE_integer('num_objects', None,
                     'Objects (vectors) per sequence, K.', lower_bound=2)
flags.DEFINE_integer('num_features', None, 'Size of each vector.',
                     lower_bound=1)

HYPERPARAMETERS = (('num_objects', 'num_features')
                   + common.COMMON_HYPERPARAMETERS)

_RMC_DEFAULTS = dict(
    num_blocks=1, key_size=None, attention_mlp_layers=2, gate_style='unit',
    forget_bias=1.0, input_bias=0.0, attention_scale='key_size')

PRESETS: dict[str, dict[str, Any]] = {
    'paper': dict(
        num_objects=8, num_features=16, batch_size=1600, learning_rate=1e-4,
        min_learning_rate=8e-5, decay_steps=10_000, decay_rate=0.9,
        max_grad_norm=0.0, num_steps=1_000_000, time_budget_s=0.0,
        steps_per_chunk=10, log_every=100, eval_every=1000,
        checkpoint_every=5000, keep_checkpoints=3, eval_batches=10,
        core='rmc', lstm_hidden_size=1024, mem_slots=8, head_size=32,
        num_heads=8, **_RMC_DEFAULTS),
    'demo': dict(
        num_objects=4, num_features=4, batch_size=64, learning_rate=1e-3,
        min_learning_rate=1e-4, decay_steps=2000, decay_rate=0.9,
        max_grad_norm=0.0, num_steps=6000, time_budget_s=0.0,
        steps_per_chunk=20, log_every=100, eval_every=500,
        checkpoint_every=1000, keep_checkpoints=3, eval_batches=16,
        core='rmc', lstm_hidden_size=256, mem_slots=4, head_size=32,
        num_heads=2, **_RMC_DEFAULTS),
    'smoke': dict(
        num_objects=3, num_features=2, batch_size=16, learning_rate=3e-3,
        min_learning_rate=1e-3, decay_steps=100, decay_rate=0.9,
        max_grad_norm=1.0, num_steps=40, time_budget_s=0.0,
        steps_per_chunk=5, log_every=10, eval_every=20,
        checkpoint_every=20, keep_checkpoints=2, eval_batches=2,
        core='rmc', lstm_hidden_size=16, mem_slots=2, head_size=4,
        num_heads=2, **_RMC_DEFAULTS),
}
DEFAULT_PRESET = 'demo'


def run(config: dict[str, Any], workdir: str, seed: int,
        parallel: rmc_parallel.DataParallel | None = None) -> dict[str, Any]:
  """Trains and evaluates one Nth Farthest model.

  Args:
    config: Resolved hyperparameters (every name in ``HYPERPARAMETERS``).
    workdir: Checkpoint and metrics directory (resumed from if non-empty).
    seed: Seed for initialisation, training data and the held-out set.
    parallel: The data-parallel mesh; by default all devices.

  Returns:
    The summary of :func:`rmc.training.train`.
  """
  generate = functools.partial(
      nth_farthest.generate, batch_size=config['batch_size'],
      num_objects=config['num_objects'], num_features=config['num_features'])

  def forward(inputs):  # [B, K, F + 3K] -> [B, K] logits.
    core = models.make_core(config['core'],
                            lstm_hidden_size=config['lstm_hidden_size'],
                            **common.rmc_kwargs(config))
    return models.SequenceClassifier(core, config['num_objects'])(inputs)

  model = hk.without_apply_rng(hk.transform(forward))

  parallel = parallel or rmc_parallel.DataParallel()

  def loss_fn(params, key, batch):
    # Made on the device from the step's key, unless --synthetic_input; each
    # device makes its own rows (the same numbers on any number of devices).
    data = parallel.constrain(generate(key), 0) if batch is None else batch
    metrics = models.classification_metrics(
        model.apply(params, data.inputs), data.labels)
    return metrics['loss'], {'accuracy': metrics['accuracy']}

  def eval_metrics_fn(params, batch):
    """Loss and accuracy, plus accuracy split by the queried rank n."""
    logits = model.apply(params, batch.inputs)  # [B, K]
    metrics = models.classification_metrics(logits, batch.labels)
    k = config['num_objects']
    rank = jnp.argmax(batch.inputs[:, 0, -k:], axis=-1)  # [B], the n one-hot.
    correct = jnp.argmax(logits, axis=-1) == batch.labels  # [B]
    # Rank 0 asks for the reference itself, readable from its one-hot.
    for name, mask in (('accuracy_rank_0', rank == 0),
                       ('accuracy_other_ranks', rank != 0)):
      metrics[name] = (jnp.sum(correct & mask)
                       / jnp.maximum(jnp.sum(mask), 1))
    return metrics

  init_key, train_key, eval_key = jax.random.split(jax.random.key(seed), 3)
  example = jax.eval_shape(generate, init_key)
  params = jax.jit(model.init)(init_key, example.inputs)
  logging.info('Parameters: %d.', hk.data_structures.tree_size(params))
  optimizer, schedule = common.optimizer(config)
  eval_set = jax.jit(jax.vmap(generate))(
      jax.random.split(eval_key, config['eval_batches']))
  if common.SYNTHETIC_INPUT.value:
    rows = parallel.process_rows(config['batch_size'])
    data = training.SyntheticData(
        jax.tree.map(lambda x: np.asarray(x)[rows],
                     jax.jit(generate)(train_key)), parallel)
  else:
    data = None
  return training.train(
      workdir=workdir,
      state=training.init_state(params, optimizer, train_key),
      train_chunk=training.make_train_chunk(loss_fn, optimizer, schedule,
                                            parallel=parallel),
      evaluate=training.make_evaluator(eval_metrics_fn, eval_set, parallel),
      config=common.loop_config(config),
      data=data,
      parallel=parallel)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  config = common.resolve_config(PRESETS, DEFAULT_PRESET, HYPERPARAMETERS)
  parallel = common.data_parallel(('batch_size', config['batch_size']))
  evaluation = common.run_and_report(run, config, parallel)
  if evaluation is None:
    return
  held_out = config['eval_batches'] * config['batch_size']
  print(f'Held-out accuracy {evaluation["eval_accuracy"]:.4f} '
        f'(loss {evaluation["eval_loss"]:.4f}, {held_out} sequences) at step '
        f'{evaluation["step"]}, stopped by {evaluation["stopped_by"]}; '
        f'chance is {1 / config["num_objects"]:.4f}.')


if __name__ == '__main__':
  app.run(main)
