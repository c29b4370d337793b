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
r"""Speed of the DNC baseline's unroll (rmc.DNC), forward and backward.

  python -m benchmarks.dnc_step --dnc_config=all

For each configuration, ``hk.dynamic_unroll`` of :class:`rmc.DNC` (a
``lax.scan`` over time whose body has no Python loop over slots or heads),
after warm-up, the median over repeated calls of:

* ``forward``: the unroll over the whole sequence;
* ``forward_backward``: the gradient of the mean of the squared outputs of
  all steps with respect to the parameters and the inputs;

in ms per call and per time step. The compile time of ``forward_backward``
at several sequence lengths (``--compile_lengths``) must not grow with the
length. The timing flags (``--min_time_s``, ``--min_repeats``,
``--compile_lengths``) are those of :mod:`benchmarks.rmc_step`. One JSON
object is printed.

To set it beside DeepMind's TensorFlow reference
(``benchmarks/reference_step.py --core=dnc``), whose controller is one LSTM
layer and whose content strengths use ``softplus``:

  python -m benchmarks.dnc_step --controller_layers=1 \
      --strength_activation=softplus
"""

import dataclasses
import json

from absl import app
from absl import flags
import haiku as hk
import jax
import jax.numpy as jnp

from benchmarks import rmc_step
import rmc


@dataclasses.dataclass(frozen=True)
class Config:
  """A DNC benchmark configuration.

  Attributes:
    memory_size: Memory slots ``N``.
    word_size: Slot width ``W``.
    num_reads: Read heads ``R``.
    num_writes: Write heads.
    controller_size: Units of each controller LSTM layer (and the output).
    controller_layers: Controller layers.
    input_size: Input features per step.
    batch_size: ``B``.
    num_steps: Sequence length ``T``.
  """

  memory_size: int
  word_size: int
  num_reads: int
  num_writes: int
  controller_size: int
  controller_layers: int
  input_size: int
  batch_size: int
  num_steps: int


CONFIGS = {
    # The binaries' --core=dnc presets: Nth Farthest `cpu` (4 objects of 4
    # features, batch 16), Learning to Execute `cpu` (45 tokens, batch 64,
    # about 30 steps at length 2) and its `paper` sizes (80 slots of 64, a
    # controller of 512, batch 128).
    'nth_farthest_cpu': Config(8, 64, 2, 1, 128, 2, 16, 16, 4),
    'learn_to_execute_cpu': Config(16, 32, 4, 1, 64, 2, 45, 64, 30),
    'learn_to_execute_paper': Config(80, 64, 4, 1, 512, 2, 45, 128, 30),
    'tiny': Config(4, 3, 2, 2, 5, 2, 3, 2, 3),  # For the test of this command.
}
ALL = ('nth_farthest_cpu', 'learn_to_execute_cpu', 'learn_to_execute_paper')

_DNC_CONFIG = flags.DEFINE_list(
    'dnc_config',
    ['all'],
    f'Configurations: "all" ({", ".join(ALL)}) or '
    f'names from {sorted(CONFIGS)}.',
)
_CONTROLLER_LAYERS = flags.DEFINE_integer(
    'controller_layers',
    0,
    'Controller LSTM layers of every configuration; '
    "0 keeps each configuration's own.",
    lower_bound=0,
)
_STRENGTH_ACTIVATION = flags.DEFINE_enum(
    'strength_activation',
    'oneplus',
    ['oneplus', 'softplus'],
    "The content strengths' activation: the paper's oneplus (the default "
    "of rmc.DNC) or the reference code's softplus.",
)


def _functions(config: Config, strength_activation: str):
  """``(params, inputs_fn, forward, forward_backward, loss)``."""

  def unroll(inputs):  # [T, B, d_in] -> [T, B, controller_size]
    core = rmc.DNC(
        access_config=dict(
            memory_size=config.memory_size,
            word_size=config.word_size,
            num_reads=config.num_reads,
            num_writes=config.num_writes,
            strength_activation=strength_activation,
        ),
        controller_config=dict(
            hidden_size=config.controller_size,
            num_layers=config.controller_layers,
        ),
        output_size=config.controller_size,
        clip_value=20.0,
    )
    outputs, _ = hk.dynamic_unroll(
        core, inputs, core.initial_state(inputs.shape[1])
    )
    return outputs

  model: hk.Transformed = hk.without_apply_rng(hk.transform(unroll))

  def inputs_fn(num_steps):
    return jax.random.normal(
        jax.random.key(1), (num_steps, config.batch_size, config.input_size)
    )

  params = jax.jit(model.init)(jax.random.key(0), inputs_fn(config.num_steps))

  def loss(params, inputs):
    return jnp.mean(jnp.square(model.apply(params, inputs)))

  return (
      params,
      inputs_fn,
      jax.jit(model.apply),
      jax.jit(jax.grad(loss, argnums=(0, 1))),
      loss,
  )


def measure(name: str, compile_lengths: list[int]) -> dict[str, object]:
  """Every figure of one configuration (see the module docstring)."""
  config = CONFIGS[name]
  if _CONTROLLER_LAYERS.value:
    config = dataclasses.replace(
        config, controller_layers=_CONTROLLER_LAYERS.value
    )
  params, inputs_fn, forward, forward_backward, loss = _functions(
      config, _STRENGTH_ACTIVATION.value
  )
  inputs = inputs_fn(config.num_steps)
  result = {
      'config': name,
      **dataclasses.asdict(config),
      'strength_activation': _STRENGTH_ACTIVATION.value,
      'parameters': hk.data_structures.tree_size(params),
  }
  for kind, fn in (
      ('forward', lambda: forward(params, inputs)),
      ('forward_backward', lambda: forward_backward(params, inputs)),
  ):
    seconds = rmc_step.median_seconds(fn)
    result[kind] = {
        'ms': seconds * 1e3,
        'ms_per_step': seconds * 1e3 / config.num_steps,
    }
  compile_s = rmc_step.gradient_compile_seconds(
      loss, params, inputs_fn, compile_lengths
  )
  if compile_s:
    result['forward_backward_compile_s'] = compile_s
  return result


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  names = ALL if _DNC_CONFIG.value == ['all'] else tuple(_DNC_CONFIG.value)
  for name in names:
    if name not in CONFIGS:
      raise app.UsageError(
          f'Unknown --dnc_config={name!r}; choose "all" or '
          f'from {sorted(CONFIGS)}.'
      )
  lengths = rmc_step.compile_lengths()
  print(
      json.dumps(
          {
              'device': str(jax.devices()[0]),
              'device_count': jax.device_count(),
              'results': [measure(name, lengths) for name in names],
          },
          indent=1,
      )
  )


if __name__ == '__main__':
  app.run(main)
