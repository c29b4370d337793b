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
r"""Nth Farthest with the Relational Memory Core in Flax NNX: a whole script.

  pip install 'rmc[flax]'
  python examples/nnx_nth_farthest.py --seed=0          # the `demo` preset
  python examples/nnx_nth_farthest.py --preset=smoke --num_steps=40

The model and training of ``experiments/nth_farthest.py``, written in NNX:
``rmc.nnx.RelationalMemory`` reads the sequence, the output at its last step
goes through an MLP of four ReLU layers of 256 and a linear map to one logit
per object; Adam with the preset's warm-up and decay; batches made on the
device from each step's key; the held-out set drawn once from the seed.
The hyperparameters are those of ``--preset`` (``rmc.tasks.nth_farthest``),
so the two scripts can be compared at the same steps. Every ``eval_every``
steps it prints the held-out accuracy, overall and on the ranks other than 0
(rank 0, the reference itself, is solved early: the plateau is where only it
is).
"""

import time

from absl import app
from absl import flags
from flax import nnx
import jax
import jax.numpy as jnp

import rmc.nnx
from rmc.data import nth_farthest as data
from rmc.tasks import nth_farthest

_PRESET = flags.DEFINE_enum(
    'preset', 'demo', sorted(nth_farthest.PRESETS), 'The hyperparameters.'
)
_SEED = flags.DEFINE_integer(
    'seed', 0, 'Seed of the parameters, the data and the held-out set.'
)
_NUM_STEPS = flags.DEFINE_integer(
    'num_steps', None, "Optimizer steps; unset: the preset's.", lower_bound=1
)
_TIME_BUDGET_S = flags.DEFINE_float(
    'time_budget_s',
    None,
    'Stop after this many seconds of training (0: none); unset: the '
    "preset's (270 s for `demo`).",
    lower_bound=0.0,
)


class Model(nnx.Module):
  """The RMC, then an MLP of 4 x 256 ReLU layers, then the logits [B, K]."""

  def __init__(self, config: nth_farthest.Config, *, rngs: nnx.Rngs):
    k, f = config.task.num_objects, config.task.num_features
    rmc_config = config.rmc
    self.core = rmc.nnx.RelationalMemory(
        data.feature_size(k, f),
        **rmc_config.kwargs(config.compute_dtype),
        rngs=rngs,
    )
    sizes = [self.core.mem_slots * self.core.mem_size, 256, 256, 256, 256]
    # Haiku's hk.Linear initialisation: a truncated normal of variance
    # 1/fan_in, zero biases.
    init = nnx.initializers.variance_scaling(1.0, 'fan_in', 'truncated_normal')
    self.mlp = nnx.List(
        [
            nnx.Linear(a, b, kernel_init=init, rngs=rngs)
            for a, b in zip(sizes[:-1], sizes[1:])
        ]
    )
    self.logits = nnx.Linear(256, k, kernel_init=init, rngs=rngs)

  def __call__(self, inputs: jax.Array) -> jax.Array:  # [B, K, F + 3K]
    _, outputs = self.core.unroll(inputs)  # [B, K, N * D]
    hidden = outputs[:, -1]
    for layer in self.mlp:
      hidden = jax.nn.relu(layer(hidden))
    return self.logits(hidden)  # [B, K]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  config = nth_farthest.PRESETS[_PRESET.value]
  overrides = {}
  if _NUM_STEPS.value is not None:
    overrides['num_steps'] = _NUM_STEPS.value
  if _TIME_BUDGET_S.value is not None:
    overrides['time_budget_s'] = _TIME_BUDGET_S.value
  config = config.replace(**overrides)
  task, loop = config.task, config.loop
  batch_size, k = config.optimizer.batch_size, task.num_objects
  init_key, train_key, eval_key = jax.random.split(
      jax.random.key(_SEED.value), 3
  )

  def generate(key, size=batch_size):
    return data.generate(key, size, k, task.num_features)

  model = Model(config, rngs=nnx.Rngs(init_key))
  transform, _ = config.optimizer.make()  # Adam, warm-up and decay.
  optimizer = nnx.Optimizer(model, transform, wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))

  def loss_fn(model, batch):
    logits = model(batch.inputs)  # [B, K]
    losses = (
        jax.nn.logsumexp(logits, -1)
        - jnp.take_along_axis(logits, batch.labels[:, None], -1)[:, 0]
    )
    return jnp.mean(losses), jnp.mean(jnp.argmax(logits, -1) == batch.labels)

  @jax.jit
  def train_chunk(state, steps):  # steps: [S], one chunk of steps.
    def one_step(state, step):
      model, optimizer = nnx.merge(graphdef, state)
      batch = generate(jax.random.fold_in(train_key, step))
      grads, accuracy = nnx.grad(loss_fn, has_aux=True)(model, batch)
      optimizer.update(model, grads)
      return nnx.state((model, optimizer)), accuracy

    return jax.lax.scan(one_step, state, steps)

  held_out = jax.vmap(generate)(jax.random.split(eval_key, task.eval_batches))

  @jax.jit
  def evaluate(state):
    model, _ = nnx.merge(graphdef, state)
    inputs = held_out.inputs.reshape((-1,) + held_out.inputs.shape[2:])
    labels = held_out.labels.reshape(-1)  # [E]
    right = jnp.argmax(model(inputs), -1) == labels
    rank = jnp.argmax(inputs[:, 0, -k:], -1)  # The n of each question.
    others = rank != 0
    return jnp.mean(right), jnp.sum(right & others) / jnp.sum(others)

  print(
      f'Nth Farthest in Flax NNX: preset {_PRESET.value}, seed {_SEED.value}, '
      f'{k} objects, {held_out.labels.size} held-out sequences; '
      f'{jax.devices()[0].platform}.',
      flush=True,
  )
  step, started, chunk = 0, time.monotonic(), loop.steps_per_chunk
  while step < loop.num_steps:
    size = min(chunk, loop.num_steps - step)
    state, accuracy = train_chunk(state, step + jnp.arange(size))
    step += size
    elapsed = time.monotonic() - started
    over_budget = loop.time_budget_s and elapsed >= loop.time_budget_s
    if step % loop.eval_every == 0 or step == loop.num_steps or over_budget:
      overall, other_ranks = evaluate(state)
      print(
          f'step {step}: held-out accuracy {float(overall):.4f} (other ranks '
          f'{float(other_ranks):.4f}), training accuracy '
          f'{float(accuracy[-1]):.4f}; {elapsed:.0f} s, '
          f'{step / elapsed:.0f} steps/s',
          flush=True,
      )
    if over_budget:
      break
  plateau, plateau_other = 2 / k, 1 / (k - 1)
  print(
      f'Done at step {step}. The plateau (only rank 0 solved) is '
      f'{plateau:.4f} overall, {plateau_other:.4f} on the other ranks.'
  )


if __name__ == '__main__':
  app.run(main)
