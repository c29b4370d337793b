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
r"""The first training steps of a language model, step by step.

  python -m benchmarks.lm_first_steps --preset=paper --batch_size=16 \
      --num_steps=300 --first_steps_output=/tmp/first_steps.jsonl

Trains the language model of ``experiments.wikitext103`` (built by
``rmc.tasks.language_model``, with its presets and hyperparameter flags,
e.g. ``--warmup_steps`` or ``--max_grad_norm``) on one split of
``--data_dir`` (by default the shared WikiText-2 text, vocabulary from the
same split), with no evaluation, and logs (and appends to
``--first_steps_output``) one JSON record per step:

* ``loss``: the training loss of the step (nats per word, before the update);
* ``grad_norm``: the global L2 norm of the gradient, before any clipping;
* ``update_norm``: the L2 norm of the parameter update of each part of the
  model (``embed``, ``core``, ``projection``, ``softmax``);
* every ``--diagnose_every`` steps (and at the first 10): ``logit_std``, the
  standard deviation of the logits over the vocabulary, averaged over the
  batch's positions, and ``logit_range``, the largest ``max - min`` of the
  logits at one position, both from the parameters before the update and with
  no dropout; and ``hidden_rms``, the root mean square of the core's output.

The step is the binary's own (``rmc.tasks.language_model.make_loss_fn`` under
its optimizer); record 0 holds the configuration.
"""

from collections.abc import Callable
import os
import tempfile
import time
from typing import Any

from absl import app
from absl import flags
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import cli
from experiments import launch
from rmc.data import wikitext
from rmc import models
from rmc.tasks import language_model as lm_task
from rmc.toolkit import metrics

_DATA_DIR = flags.DEFINE_string(
    'first_steps_data_dir',
    os.path.join(os.path.dirname(__file__), '..', 'data', 'wikitext-2-subset'),
    "Directory with the text (as wikitext103's --data_dir).",
)
_SPLIT = flags.DEFINE_string(
    'first_steps_split',
    'valid',
    'Split that gives the vocabulary and is trained on.',
)
_CACHE_DIR = flags.DEFINE_string(
    'first_steps_cache_dir',
    os.path.join(tempfile.gettempdir(), 'rmc_first_steps_cache'),
    'Where the encoded split is cached (rebuilt when the text changes).',
)
_OUTPUT = flags.DEFINE_string(
    'first_steps_output',
    None,
    'JSON-lines file, one line appended per step (unset: only logged).',
)
_DIAGNOSE_EVERY = flags.DEFINE_integer(
    'diagnose_every',
    10,
    'Steps between logit diagnostics (and steps 1-10).',
    lower_bound=1,
)


def _part(module_name: str) -> str:
  """The part of the model a parameter module belongs to."""
  if module_name.startswith('language_model/embed'):
    return 'embed'
  if module_name.startswith('language_model/projection'):
    return 'projection'
  if module_name.startswith('language_model'):
    return 'softmax'
  return 'core'


def first_steps(
    config: lm_task.Config,
    tokens: np.ndarray,
    vocab_size: int,
    num_steps: int,
    diagnose_every: int,
    seed: int = 0,
    write: Callable[[dict[str, Any]], None] = lambda r: None,
) -> list[dict[str, Any]]:
  """Trains ``num_steps`` steps; one record per step (see the docstring).

  Args:
    config: The language model's configuration.
    tokens: The training stream, word ids ``[N]``.
    vocab_size: Words ``V``.
    num_steps: Optimizer steps.
    diagnose_every: Steps between logit diagnostics (also steps 1 to 10).
    seed: Seed of the initialisation and of dropout.
    write: Called with each step's record as soon as it is made.

  Returns:
    One dict per step.
  """
  model = lm_task.TASK.model(config, vocab_size)
  initial = lm_task.TASK.initial_state(config, vocab_size)
  loss_fn = lm_task.make_loss_fn(model)
  batch_size, unroll = config.optimizer.batch_size, config.task.unroll_length
  stream = wikitext.TrainStream(tokens, batch_size, unroll)
  init_key, train_key = jax.random.split(jax.random.key(seed))
  carry = initial.apply(None, batch_size)
  example = jnp.zeros([unroll, batch_size], jnp.int32)  # [T, B]
  params = jax.jit(model.init, static_argnums=5)(
      init_key, example, example, carry, None, False
  )
  optimizer, schedule = config.optimizer.make()
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state, carry, batch, step_index):
    key = jax.random.fold_in(train_key, step_index)
    (loss, (_, carry)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, key, batch, carry
    )
    updates, opt_state = optimizer.update(grads, opt_state, params)
    parts = {}
    for module_name, module in updates.items():
      for update in module.values():
        parts.setdefault(_part(module_name), []).append(update)
    record = {
        'loss': loss,
        'grad_norm': optax.global_norm(grads),
        'learning_rate': schedule(step_index),
        'update_norm': {k: optax.global_norm(v) for k, v in parts.items()},
    }
    return (
        optax.apply_updates(params, updates),
        opt_state,
        jax.lax.stop_gradient(carry),
        record,
    )

  log_probs = hk.without_apply_rng(
      hk.transform(
          lambda inputs, state: lm_task.TASK.module(
              config, vocab_size
          ).log_probs(inputs, state)[0]
      )
  )
  core_outputs = hk.without_apply_rng(
      hk.transform(
          lambda embedded, state: models.unroll(
              lm_task.TASK.make_core(config), embedded, state
          )[0]
      )
  )

  @jax.jit
  def diagnose(params, carry, batch):
    fresh = initial.apply(None, batch_size)
    state = jax.tree.map(  # The model's own reset.
        lambda init, old: jnp.where(
            batch['reset'].reshape((-1,) + (1,) * (old.ndim - 1)), init, old
        ),
        fresh,
        carry,
    )
    lp = log_probs.apply(params, batch['inputs'], state)  # [T, B, V]
    embedded = params['language_model/embed']['embeddings'][batch['inputs']]
    outputs = core_outputs.apply(params, embedded, state)  # [T, B, d_out]
    # Log-probabilities differ from the logits by a constant per position.
    return {
        'logit_std': jnp.mean(jnp.std(lp, axis=-1)),
        'logit_range': jnp.max(jnp.max(lp, -1) - jnp.min(lp, -1)),
        'hidden_rms': jnp.sqrt(jnp.mean(jnp.square(outputs))),
    }

  records = []
  batches = stream.batches(0, num_steps)
  for i in range(num_steps):
    batch = jax.tree.map(lambda x, i=i: x[i], batches)
    start = time.perf_counter()
    diagnostics = (
        diagnose(params, carry, batch)
        if i < 10 or (i + 1) % diagnose_every == 0
        else {}
    )
    params, opt_state, carry, record = step(
        params, opt_state, carry, batch, jnp.asarray(i)
    )
    record = jax.device_get(dict(record, **diagnostics))
    records.append(
        {
            'step': i + 1,
            **jax.tree.map(float, record),
            'seconds': round(time.perf_counter() - start, 3),
        }
    )
    write(records[-1])
  return records


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  config = launch.resolve(lm_task.TASK, default_preset='paper')
  try:
    corpus = wikitext.load(
        _DATA_DIR.value,
        splits=[_SPLIT.value],
        vocab_split=_SPLIT.value,
        cache_dir=_CACHE_DIR.value,
    )
  except wikitext.DataError as e:
    raise app.UsageError(str(e)) from e
  writer = metrics.MetricWriter(
      _OUTPUT.value or os.devnull, write_file=bool(_OUTPUT.value)
  )
  writer.write(
      {'step': 0, 'config': config.flat(), 'vocab_size': len(corpus.vocabulary)}
  )
  first_steps(
      config,
      corpus.splits[_SPLIT.value],
      len(corpus.vocabulary),
      config.loop.num_steps,
      _DIAGNOSE_EVERY.value,
      launch.SEED.value,
      write=writer.write,
  )


if __name__ == '__main__':
  cli.run(main)
