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
"""Models shared by the experiments: core construction and classifier heads."""

from collections.abc import Sequence
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp

from rmc import relational_memory

CORES = ('rmc', 'lstm')


def make_core(core: str, *, lstm_hidden_size: int = 0,
              **rmc_kwargs: Any) -> hk.RNNCore:
  """Builds the recurrent core of an experiment.

  Args:
    core: ``'rmc'`` for :class:`rmc.RelationalMemory` (built from
      ``rmc_kwargs``) or ``'lstm'`` for ``hk.LSTM(lstm_hidden_size)``.
    lstm_hidden_size: Hidden size of the LSTM baseline.
    **rmc_kwargs: Arguments of :class:`rmc.RelationalMemory`.

  Returns:
    An ``hk.RNNCore``; call inside ``hk.transform``.
  """
  if core == 'rmc':
    return relational_memory.RelationalMemory(**rmc_kwargs)
  if core == 'lstm':
    if lstm_hidden_size < 1:
      raise ValueError(
          f'lstm_hidden_size must be >= 1; got {lstm_hidden_size}.')
    return hk.LSTM(lstm_hidden_size)
  raise ValueError(f'core must be one of {list(CORES)}; got {core!r}.')


class SequenceClassifier(hk.Module):
  """Reads a sequence with a core and classifies its last output.

  As in the paper's Nth Farthest model: the core's output at the last time
  step, then an MLP with ReLU after every layer (including the last), then a
  linear map to the logits.
  """

  def __init__(self, core: hk.RNNCore, num_classes: int,
               mlp_sizes: Sequence[int] = (256, 256, 256, 256),
               name: str | None = None):
    """Constructs the classifier.

    Args:
      core: The recurrent core.
      num_classes: Number of logits ``C``.
      mlp_sizes: Widths of the MLP between the core and the logits.
      name: Module name.
    """
    super().__init__(name=name)
    self._core = core
    self._num_classes = num_classes
    self._mlp_sizes = tuple(mlp_sizes)

  def __call__(self, inputs: jax.Array) -> jax.Array:
    """Maps batch-major inputs ``[B, T, d_in]`` to logits ``[B, C]``."""
    batch_size = inputs.shape[0]
    outputs, _ = hk.dynamic_unroll(
        self._core, inputs, self._core.initial_state(batch_size),
        time_major=False)  # [B, T, d_out]
    last = outputs[:, -1]  # [B, d_out]
    hidden = hk.nets.MLP(self._mlp_sizes, activate_final=True)(last)
    return hk.Linear(self._num_classes)(hidden)  # [B, C]


def classification_metrics(
    logits: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
  """Mean softmax cross-entropy and accuracy.

  Args:
    logits: ``[B, C]``.
    labels: ``[B]`` integer classes.

  Returns:
    ``{'loss': [], 'accuracy': []}``.
  """
  loss = jnp.mean(
      jax.nn.logsumexp(logits, axis=-1)
      - jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0])
  accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(
      jnp.float32))
  return {'loss': loss, 'accuracy': accuracy}
