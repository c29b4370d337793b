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
"""Adaptive softmax (Grave et al., 2016, "Efficient softmax approximation").

Word ids must be in descending frequency order. ``cutoffs = (c_1, ..., c_n)``
split the vocabulary into a head ``[0, c_1)`` and tail clusters
``[c_i, c_{i+1})`` (the last ending at the vocabulary size). The head softmax
covers the head words plus one logit per cluster; cluster ``i`` projects the
input to ``d // div_value ** i`` units (no bias) and then to its words. So

  log p(w) = log p_head(w)                               for a head word,
  log p(w) = log p_head(cluster i) + log p_i(w)           for a word in i.

Under ``jit`` shapes are static, so every cluster is computed for every
position; the saving over a full softmax comes from the narrow tail
projections. With no cutoffs it is a plain softmax over a linear map.
"""

from collections.abc import Sequence

import haiku as hk
import jax
import jax.numpy as jnp


class AdaptiveSoftmax(hk.Module):
  """Log-probabilities of words under an adaptive softmax."""

  def __init__(
      self,
      vocab_size: int,
      cutoffs: Sequence[int] = (),
      div_value: float = 4.0,
      name: str | None = None,
  ):
    """Constructs the module.

    Args:
      vocab_size: Number of words ``V``.
      cutoffs: Strictly increasing ids in ``(0, V)`` where clusters start.
      div_value: Each further cluster's projection is this much narrower;
        ``>= 1``.
      name: Module name.

    Raises:
      ValueError: For cutoffs that are not strictly increasing within
        ``(0, vocab_size)`` or a ``div_value`` below 1.
    """
    super().__init__(name=name)
    cutoffs = tuple(int(c) for c in cutoffs)
    if vocab_size < 1:
      raise ValueError(f'vocab_size must be >= 1; got {vocab_size}.')
    if any(b <= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)) or any(
        not 0 < c < vocab_size for c in cutoffs
    ):
      raise ValueError(
          f'cutoffs must be strictly increasing and within (0, vocab_size='
          f'{vocab_size}); got {list(cutoffs)}.'
      )
    if not div_value >= 1:
      raise ValueError(f'div_value must be >= 1; got {div_value}.')
    self._vocab_size = vocab_size
    self._bounds = (0,) + cutoffs + (vocab_size,)
    self._div_value = div_value

  @property
  def num_clusters(self) -> int:
    """Number of tail clusters."""
    return len(self._bounds) - 2

  @hk.name_like('__call__')
  def _log_softmaxes(self, inputs: jax.Array) -> list[jax.Array]:
    """Head log-probabilities and each cluster's conditional ones.

    Args:
      inputs: ``[..., d]``.

    Returns:
      ``[head [..., c_1 + n], cluster_1 [..., size_1], ...]``.
    """
    width = inputs.shape[-1]
    head_size = self._bounds[1] + self.num_clusters
    outputs = [
        jax.nn.log_softmax(hk.Linear(head_size, name='head')(inputs), axis=-1)
    ]
    for i in range(self.num_clusters):
      start, end = self._bounds[i + 1], self._bounds[i + 2]
      hidden_size = max(1, int(width // self._div_value ** (i + 1)))
      hidden = hk.Linear(
          hidden_size, with_bias=False, name=f'tail_{i}_projection'
      )(inputs)
      outputs.append(
          jax.nn.log_softmax(
              hk.Linear(end - start, name=f'tail_{i}')(hidden), axis=-1
          )
      )
    return outputs

  def full_log_probs(self, inputs: jax.Array) -> jax.Array:
    """Log-probabilities of every word.

    Args:
      inputs: ``[..., d]``.

    Returns:
      ``[..., V]``; each row's ``logsumexp`` is 0.
    """
    head, *tails = self._log_softmaxes(inputs)
    shortlist = self._bounds[1]
    parts = [head[..., :shortlist]]
    for i, tail in enumerate(tails):
      parts.append(head[..., shortlist + i, None] + tail)
    return jnp.concatenate(parts, axis=-1)

  def __call__(self, inputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Log-probabilities of the target words.

    Args:
      inputs: ``[..., d]``.
      targets: Integer ``[...]`` word ids in ``[0, V)``.

    Returns:
      ``[...]`` log-probabilities.
    """
    head, *tails = self._log_softmaxes(inputs)
    shortlist = self._bounds[1]

    def pick(log_probs, ids):
      return jnp.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0]

    result = pick(head, jnp.minimum(targets, shortlist - 1))
    for i, tail in enumerate(tails):
      start, end = self._bounds[i + 1], self._bounds[i + 2]
      in_cluster = (targets >= start) & (targets < end)
      log_prob = head[..., shortlist + i] + pick(
          tail, jnp.clip(targets - start, 0, end - start - 1)
      )
      result = jnp.where(in_cluster, log_prob, result)
    return result
