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
"""The recurrent cores an experiment may train, as typed hyperparameters.

Each core is a frozen dataclass of its hyperparameters (their flags are
``--mem_slots``, ``--lstm_hidden_size``, ``--dnc_memory_size``, ...) whose
``make()`` builds the Haiku core; :data:`CORES` lists them by the name that
``--core`` takes.
"""

import dataclasses
from typing import Any, Literal

import haiku as hk

from rmc import dnc
from rmc import relational_memory
from rmc.toolkit.hyperparameters import hyperparameter
from rmc.toolkit.hyperparameters import Hyperparameters

ComputeDtype = Literal['float32', 'bfloat16']


@dataclasses.dataclass(frozen=True)
class RMC(Hyperparameters):
  """The Relational Memory Core (:class:`rmc.RelationalMemory`)."""

  mem_slots: int = hyperparameter('RMC: number of memory slots N.', lower=1)
  head_size: int = hyperparameter(
      'RMC: value size per head; memory row size is head_size * num_heads.',
      lower=1,
  )
  num_heads: int = hyperparameter('RMC: attention heads.', default=1, lower=1)
  num_blocks: int = hyperparameter(
      'RMC: attention + MLP blocks per step.', default=1, lower=1
  )
  key_size: int | None = hyperparameter(
      'RMC: query/key size per head; unset means head_size.',
      default=None,
      lower=1,
  )
  attention_mlp_layers: int = hyperparameter(
      'RMC: layers of the row-wise attention MLP.', default=2, lower=1
  )
  gate_style: Literal['unit', 'memory', 'none'] = hyperparameter(
      'RMC: gating per memory element (unit), per row (memory) or none.',
      default='unit',
  )
  forget_bias: float = hyperparameter('RMC: forget-gate bias.', default=1.0)
  input_bias: float = hyperparameter('RMC: input-gate bias.', default=0.0)
  attention_scale: Literal['key_size', 'qkv_size'] = hyperparameter(
      'RMC: query scaling, key_size**-0.5 (Sonnet >= 1.27) or '
      '(2*key_size+head_size)**-0.5 (Sonnet <= 1.26).',
      default='key_size',
  )

  def kwargs(self, compute_dtype: ComputeDtype = 'float32') -> dict[str, Any]:
    """The arguments of :class:`rmc.RelationalMemory`, as config.json holds.

    Args:
      compute_dtype: The core's matrix products' operand dtype.
    """
    kwargs: dict[str, Any] = dataclasses.asdict(self)
    if self.gate_style == 'none':
      kwargs['gate_style'] = None
    kwargs['compute_dtype'] = None if compute_dtype == 'float32' else 'bfloat16'
    return kwargs

  def make(
      self,
      name: str | None = None,
      compute_dtype: ComputeDtype = 'float32',
      **overrides: Any,
  ) -> relational_memory.RelationalMemory:
    """The core (inside ``hk.transform``).

    Args:
      name: Module name; None for ``relational_memory``.
      compute_dtype: The operand dtype of the core's matrix products.
      **overrides: Further arguments of :class:`rmc.RelationalMemory`, e.g.
        ``return_diagnostics=True``.
    """
    return relational_memory.RelationalMemory(
        **self.kwargs(compute_dtype), **overrides, name=name
    )


@dataclasses.dataclass(frozen=True)
class LSTM(Hyperparameters):
  """The LSTM baseline: ``hk.LSTM``, or LSTMs stacked with skip connections."""

  PREFIX = 'lstm_'

  hidden_size: int = hyperparameter(
      'Hidden size of the LSTM baseline (--core=lstm).', lower=1
  )

  def make(self, num_layers: int = 1) -> hk.RNNCore:
    """The core (inside ``hk.transform``).

    Args:
      num_layers: One ``hk.LSTM``, or this many stacked with skip connections
        (every layer sees the input and the previous layer's output; the
        output is every layer's, concatenated), the paper's Learning to
        Execute baseline.
    """
    if num_layers < 1:
      raise ValueError(f'num_layers must be >= 1; got {num_layers}.')
    if num_layers == 1:
      return hk.LSTM(self.hidden_size)
    return hk.deep_rnn_with_skip_connections(
        [hk.LSTM(self.hidden_size) for _ in range(num_layers)]
    )


@dataclasses.dataclass(frozen=True)
class DNC(Hyperparameters):
  """The Differentiable Neural Computer baseline (:class:`rmc.DNC`).

  Its output, fed to the task's head, has the controller's size.
  """

  PREFIX = 'dnc_'

  memory_size: int = hyperparameter('DNC: memory slots N.', lower=1)
  word_size: int = hyperparameter('DNC: width W of each slot.', lower=1)
  num_reads: int = hyperparameter('DNC: read heads R.', lower=1)
  num_writes: int = hyperparameter('DNC: write heads.', lower=1)
  controller_size: int = hyperparameter(
      'DNC: hidden size of each LSTM layer of the controller, '
      "and the size of the core's output.",
      lower=1,
  )
  controller_layers: int = hyperparameter(
      'DNC: stacked LSTM layers of the controller.', default=2, lower=1
  )
  clip_value: float = hyperparameter(
      "DNC: clip the controller's output and state and the "
      "core's output to [-v, v]; 0 means no clipping.",
      default=20.0,
      lower=0.0,
  )
  strength_activation: Literal['oneplus', 'softplus'] = hyperparameter(
      "DNC: activation of the content strengths, the paper's "
      "oneplus (>= 1) or the reference code's softplus.",
      default='oneplus',
  )

  def kwargs(self) -> dict[str, Any]:
    """The arguments of :class:`rmc.DNC`, as config.json holds them."""
    return dict(
        access_config=dict(
            memory_size=self.memory_size,
            word_size=self.word_size,
            num_reads=self.num_reads,
            num_writes=self.num_writes,
            strength_activation=self.strength_activation,
        ),
        controller_config=dict(
            hidden_size=self.controller_size,
            num_layers=self.controller_layers,
        ),
        output_size=self.controller_size,
        clip_value=self.clip_value or None,
    )

  def make(self, name: str | None = None) -> dnc.DNC:
    """The core (inside ``hk.transform``); ``name`` None for ``dnc``."""
    return dnc.DNC(**self.kwargs(), name=name or 'dnc')


# The cores by the name --core takes.
CORES: dict[str, type[Hyperparameters]] = {'rmc': RMC, 'lstm': LSTM, 'dnc': DNC}
