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
"""The Nth Farthest task (Santoro et al., 2018, section 4.1; Sonnet v1 example).

Each sequence holds ``K = num_objects`` vectors drawn uniformly from
``[-1, 1]^num_features``. One object is the reference and ``nth`` is an index
in ``[0, K)``; the label is the id of the object at position ``nth`` when all
objects are sorted by ascending Euclidean distance from the reference. So
``nth = 0`` is the reference itself and ``nth = K - 1`` the farthest object
(the paper's "n-th farthest", up to the relabelling ``n <-> K - 1 - n``).

Each object's input row, before shuffling, is Sonnet's
``[vector (F); own id one-hot (K); reference one-hot (K); nth one-hot (K)]``,
so rows have ``F + 3K`` features. The rows are then shuffled, so a row's
position says nothing about its id.

Everything is drawn with ``jax.random`` from an explicit key, so batches can be
generated on the device inside a jitted train step.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Batch(NamedTuple):
  """A batch of Nth Farthest sequences.

  Attributes:
    inputs: ``[B, K, F + 3K]`` float32, one row per object, shuffled.
    labels: ``[B]`` int32, the id (in ``[0, K)``) of the answer.
  """

  inputs: jax.Array
  labels: jax.Array


def feature_size(num_objects: int, num_features: int) -> int:
  """Size of one input row: ``num_features + 3 * num_objects``."""
  return num_features + 3 * num_objects


def generate(
    key: jax.Array,
    batch_size: int,
    num_objects: int,
    num_features: int,
    num_ranks: int | jax.Array | None = None,
) -> Batch:
  """Generates a batch of Nth Farthest sequences.

  Args:
    key: A JAX PRNG key; the batch is a pure function of it.
    batch_size: Number of sequences ``B``.
    num_objects: Objects per sequence ``K`` (at least 2).
    num_features: Size ``F`` of each object's vector.
    num_ranks: Draw the queried rank ``n`` uniformly from
      ``[0, num_ranks)`` instead of ``[0, K)``, e.g. for a curriculum; may be
      a traced int32 scalar in ``[1, K]``. The encoding is unchanged (the
      ``n`` one-hot still has ``K`` entries). None means ``K``.

  Returns:
    A :class:`Batch` with inputs ``[B, K, F + 3K]`` and labels ``[B]``.

  Raises:
    ValueError: If a size is out of range.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1; got {batch_size}.')
  if num_objects < 2:
    raise ValueError(f'num_objects must be >= 2; got {num_objects}.')
  if num_features < 1:
    raise ValueError(f'num_features must be >= 1; got {num_features}.')
  if isinstance(num_ranks, int) and not 1 <= num_ranks <= num_objects:
    raise ValueError(
        f'num_ranks must be in [1, num_objects={num_objects}]; '
        f'got {num_ranks}.'
    )
  b, k = batch_size, num_objects
  vector_key, nth_key, reference_key, shuffle_key = jax.random.split(key, 4)
  vectors = jax.random.uniform(
      vector_key, [b, k, num_features], minval=-1.0, maxval=1.0
  )  # [B, K, F]
  nth = jax.random.randint(
      nth_key, [b], 0, k if num_ranks is None else num_ranks
  )  # [B]
  reference = jax.random.randint(reference_key, [b], 0, k)  # [B]

  reference_vector = jnp.take_along_axis(
      vectors, reference[:, None, None], axis=1
  )  # [B, 1, F]
  # Squared distances order objects exactly as distances do.
  distances = jnp.sum((vectors - reference_vector) ** 2, axis=-1)  # [B, K]
  by_distance = jnp.argsort(distances, axis=-1)  # [B, K], ascending.
  labels = jnp.take_along_axis(by_distance, nth[:, None], axis=1)[:, 0]

  ids = jnp.broadcast_to(jnp.eye(k), (b, k, k))  # [B, K, K]
  reference_one_hot = jnp.broadcast_to(
      jax.nn.one_hot(reference, k)[:, None, :], (b, k, k)
  )  # [B, K, K]
  nth_one_hot = jnp.broadcast_to(
      jax.nn.one_hot(nth, k)[:, None, :], (b, k, k)
  )  # [B, K, K]
  rows = jnp.concatenate(
      [vectors, ids, reference_one_hot, nth_one_hot], axis=-1
  )  # [B, K, F+3K]

  # A uniformly random permutation of the rows of each sequence.
  order = jnp.argsort(jax.random.uniform(shuffle_key, [b, k]), axis=-1)
  rows = jnp.take_along_axis(rows, order[:, :, None], axis=1)
  return Batch(inputs=rows, labels=labels.astype(jnp.int32))
