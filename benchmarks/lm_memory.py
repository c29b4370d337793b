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
r"""Memory of one language-model training step, by softmax chunk size.

  python -m benchmarks.lm_memory --preset=paper --vocab_size=267735 \
      --loss_chunk_sizes=0,25,10,5
  # And measured: run 2 steps in a fresh process per chunk size.
  python -m benchmarks.lm_memory --preset=paper --vocab_size=100000 \
      --head_size=64 --attention_mlp_layers=2 --measure

For each ``--loss_chunk_sizes`` entry (the language model's
``--loss_chunk_size``: time steps per chunk of the softmax; 0 for all at once),
the language model's training step (``rmc.tasks.language_model``'s model and
loss, under its optimizer, one step per call) is compiled ahead of time for
abstract inputs (nothing is allocated) and XLA's ``memory_analysis()`` of it is
reported: the bytes of the arguments (parameters, Adam's moments, the carried
state, the batch), of the outputs, of the temporaries, and the peak ``arguments
+ outputs + temporaries - aliased`` (the state is donated, so the outputs
mostly alias the arguments). These figures need no accelerator: they are what
the compiled step of this backend needs. Any hyperparameter flag of
``experiments.wikitext103`` (e.g. ``--batch_size``, ``--softmax=adaptive``)
applies.

With ``--measure`` each chunk size is also run for real, two steps on random
word ids in a fresh process, and that process's peak resident memory is
given (on CPU the device memory is the host's; it includes the runtime's
own few hundred MB). Pick a ``--vocab_size`` the machine can hold. One JSON
object is printed, then a Markdown table.
"""

import json
import resource
import subprocess
import sys
import time
from typing import Any

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli
from experiments import launch
from rmc.tasks import language_model as lm_task
from rmc.toolkit import training

_VOCAB_SIZE = flags.DEFINE_integer(
    'vocab_size', 267_735, 'Words V (WikiText-103 has 267,735).', lower_bound=2
)
_CHUNK_SIZES = flags.DEFINE_list(
    'loss_chunk_sizes',
    ['0', '25', '10', '5'],
    'Values of --loss_chunk_size to compare (0: the whole segment at once).',
)
_MEASURE = flags.DEFINE_bool(
    'measure',
    False,
    'Also run two steps per chunk size in a fresh process '
    'and give its peak resident memory.',
)
_RUN_STEPS = flags.DEFINE_integer(
    'run_steps',
    0,
    'Internal (the --measure child): run this many steps at '
    '--loss_chunk_size and print the peak resident memory.',
    lower_bound=0,
)

_MIB = 2**20


def train_step(config: lm_task.Config, vocab_size: int):
  """``(chunk, abstract_state, abstract_batches)`` of one training step."""
  model = lm_task.TASK.model(config, vocab_size)
  initial = lm_task.TASK.initial_state(config, vocab_size)
  optimizer, schedule = config.optimizer.make()
  chunk = training.make_train_chunk(
      lm_task.make_loss_fn(model),
      optimizer,
      schedule,
      with_carry=True,
      batch_axes=lm_task.BATCH_AXES,
  )
  batch_size, unroll = config.optimizer.batch_size, config.task.unroll_length

  def init():
    carry = initial.apply(None, batch_size)
    example = jnp.zeros([unroll, batch_size], jnp.int32)  # [T, B]
    params = model.init(jax.random.key(0), example, example, carry, None, False)
    return training.init_state(params, optimizer, jax.random.key(1), carry)

  tokens = jax.ShapeDtypeStruct((1, unroll, batch_size), jnp.int32)
  batches = {
      'inputs': tokens,
      'targets': tokens,
      'reset': jax.ShapeDtypeStruct((1, batch_size), jnp.bool_),
  }
  return chunk, init, jax.eval_shape(init), batches


def analyse(config: lm_task.Config, vocab_size: int) -> dict[str, Any]:
  """XLA's memory analysis of the compiled step (see the docstring), MiB."""
  chunk, _, state, batches = train_step(config, vocab_size)
  start = time.perf_counter()
  compiled = chunk.lower(state, batches, 1).compile()
  compile_s = time.perf_counter() - start
  stats = compiled.memory_analysis()
  if stats is None:
    return {'compile_s': compile_s, 'memory_analysis': None}
  sizes = {
      name: getattr(stats, f'{name}_size_in_bytes') / _MIB
      for name in ('argument', 'output', 'temp', 'alias')
  }
  sizes['peak'] = (
      sizes['argument'] + sizes['output'] + sizes['temp'] - sizes['alias']
  )
  return {
      'compile_s': compile_s,
      'memory_analysis_mib': {k: round(v, 1) for k, v in sizes.items()},
  }


def run_steps(
    config: lm_task.Config, vocab_size: int, num_steps: int
) -> dict[str, Any]:
  """Runs ``num_steps`` steps on random ids; this process's peak RSS, MiB."""
  chunk, init, _, batches = train_step(config, vocab_size)
  state = jax.jit(init)()
  rng = np.random.default_rng(0)
  for _ in range(num_steps):
    batch = {
        k: (
            rng.integers(0, vocab_size, v.shape).astype(np.int32)
            if v.dtype == jnp.int32
            else np.zeros(v.shape, bool)
        )
        for k, v in batches.items()
    }
    state, metrics = chunk(state, batch, 1)
  loss = float(jax.device_get(metrics['loss'])[-1])
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return {'loss': loss, 'peak_rss_mib': round(peak, 1)}


def _table(results: list[dict[str, Any]]) -> str:
  lines = [
      '| loss_chunk_size | arguments MiB | temporaries MiB | peak MiB '
      '(XLA) | measured peak RSS MiB | compile s |',
      '|---|---|---|---|---|---|',
  ]
  for r in results:
    m = r.get('memory_analysis_mib') or {}
    lines.append(
        f"| {r['loss_chunk_size'] or 'whole segment'} "
        f"| {m.get('argument', '-')} | {m.get('temp', '-')} "
        f"| {m.get('peak', '-')} | {r.get('peak_rss_mib', '-')} "
        f"| {r['compile_s']:.1f} |"
    )
  return '\n'.join(lines)


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  config = launch.resolve(lm_task.TASK, default_preset='paper')
  if _RUN_STEPS.value:
    print(json.dumps(run_steps(config, _VOCAB_SIZE.value, _RUN_STEPS.value)))
    return
  try:
    chunk_sizes = [int(c) for c in _CHUNK_SIZES.value]
  except ValueError as e:
    raise app.UsageError(
        f'--loss_chunk_sizes must be integers; got {_CHUNK_SIZES.value}.'
    ) from e
  results = []
  for chunk_size in chunk_sizes:
    result = {
        'loss_chunk_size': chunk_size,
        **analyse(
            config.replace(loss_chunk_size=chunk_size), _VOCAB_SIZE.value
        ),
    }
    if _MEASURE.value:
      argv = [
          a
          for a in sys.argv[1:]
          if not a.startswith(('--measure', '--loss_chunk_size'))
      ]
      out = subprocess.run(
          [
              sys.executable,
              '-m',
              'benchmarks.lm_memory',
              *argv,
              '--run_steps=2',
              f'--loss_chunk_size={chunk_size}',
          ],
          check=True,
          capture_output=True,
          text=True,
      ).stdout
      result.update(json.loads(out.strip().splitlines()[-1]))
    results.append(result)
  print(
      json.dumps(
          {
              'device': str(jax.devices()[0]),
              'vocab_size': _VOCAB_SIZE.value,
              'batch_size': config.optimizer.batch_size,
              'unroll_length': config.task.unroll_length,
              'embed_size': config.task.embed_size,
              'softmax': config.task.softmax,
              'results': results,
          },
          indent=1,
      )
  )
  print(_table(results))


if __name__ == '__main__':
  cli.run(main)
