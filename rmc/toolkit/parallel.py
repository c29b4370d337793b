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
"""Synchronous data parallelism over the devices of one or several hosts.

A :class:`DataParallel` is a one-axis device mesh (axis ``'data'``, JAX's
automatic sharding mode). Parameters and optimizer state are replicated on
every device; each batch is split along its batch axis, so each device
computes the loss and gradient of its part, and the mean over the global
batch (with its gradient all-reduce) is what ``jax.jit`` compiles from the
shardings alone. There is no ``pmap`` and no second code path: on one device
the mesh has one device and the same jitted step runs.

Batch axes are given per leaf as a pytree prefix of ints, e.g. ``0`` for
batch-major arrays ``[B, ...]``, ``1`` for time-major ``[T, B, ...]``, or a
dict ``{'inputs': 1, 'input_lengths': 0}``; ``None`` means replicated.

With several processes (``jax.distributed.initialize``), every process runs
the same program on its own devices. A process makes only its rows of each
training batch (:meth:`DataParallel.process_rows`) and
:meth:`DataParallel.put_local` assembles the global array; values every
process holds whole (parameters, held-out sets) go through
:meth:`DataParallel.put_global`. Only the primary process (index 0) should
write files.
"""

from collections.abc import Sequence
from typing import Any

import jax
from jax.experimental import multihost_utils
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec
import numpy as np

AXIS = 'data'

# A pytree prefix of batch axes: an int per leaf (or subtree), None for a
# replicated leaf.
BatchAxes = Any


def _is_axis(x: Any) -> bool:
  """Whether ``x`` is a batch axis (an int, or None for replicated)."""
  return x is None or isinstance(x, int)


def _is_key(x: Any) -> bool:
  return hasattr(x, 'dtype') and jax.dtypes.issubdtype(
      x.dtype, jax.dtypes.prng_key
  )


class DataParallel:
  """A data-parallel mesh over devices, and how to place data on it."""

  def __init__(self, devices: Sequence[jax.Device] | None = None):
    """Builds the mesh.

    Args:
      devices: The devices to use, in mesh order; by default all devices of
        all processes (``jax.devices()``).

    Raises:
      ValueError: If ``devices`` is empty, or leaves out a device of another
        process (each process must take part with all its devices).
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
      raise ValueError('DataParallel needs at least one device; got none.')
    if jax.process_count() > 1 and len(devices) != jax.device_count():
      raise ValueError(
          f'With {jax.process_count()} processes the mesh must hold all '
          f'{jax.device_count()} devices; got {len(devices)}.'
      )
    self.mesh = jax.make_mesh(
        (len(devices),), (AXIS,), axis_types=(AxisType.Auto,), devices=devices
    )
    self.replicated = NamedSharding(self.mesh, PartitionSpec())

  @property
  def num_devices(self) -> int:
    """Devices in the mesh."""
    return self.mesh.size

  @property
  def is_primary(self) -> bool:
    """Whether this process writes checkpoints and metrics (index 0)."""
    return jax.process_index() == 0

  def check_batch_size(self, batch_size: int, name: str = 'batch_size') -> None:
    """Raises a ValueError unless ``batch_size`` splits evenly over devices."""
    if not self.divides(batch_size):
      raise ValueError(
          f'{name}={batch_size} does not divide evenly over the '
          f'{self.num_devices} devices of the data-parallel mesh; use a '
          f'multiple of {self.num_devices}.'
      )

  def divides(self, batch_size: int) -> bool:
    """Whether ``batch_size`` splits evenly over the devices."""
    return batch_size % self.num_devices == 0

  def batch_sharding(self, axis: int | None) -> NamedSharding:
    """Split along ``axis`` (replicated if None)."""
    if axis is None:
      return self.replicated
    return NamedSharding(self.mesh, PartitionSpec(*[None] * axis, AXIS))

  def shardings(self, batch_axes: BatchAxes) -> Any:
    """``batch_axes`` with each axis replaced by its ``NamedSharding``.

    The result is a pytree prefix of the data, as ``jax.jit``'s
    ``in_shardings`` and ``out_shardings`` take.
    """
    return jax.tree.map(self.batch_sharding, batch_axes, is_leaf=_is_axis)

  def _check_rows(self, axis: int, rows: int, shape: tuple[int, ...]):
    """Raises a ValueError unless the ``rows`` of an array split evenly."""
    if not self.divides(rows):
      raise ValueError(
          f'A batch of {rows} rows (axis {axis} of an array of shape '
          f'{shape} in this process) does not divide evenly over the '
          f'{self.num_devices} devices.'
      )

  def process_rows(self, batch_size: int) -> slice:
    """This process's rows of a global batch of ``batch_size``.

    The rows of a process's devices are contiguous in the mesh's order; with
    one process they are all rows.

    Raises:
      ValueError: If ``batch_size`` does not split evenly over the devices.
    """
    self.check_batch_size(batch_size)
    index_map = self.batch_sharding(0).addressable_devices_indices_map(
        (batch_size,)
    )
    # Each device's index is a tuple of slices (None only for a scalar).
    starts = sorted(
        index[0].start or 0 for index in index_map.values() if index
    )
    rows = batch_size // self.num_devices
    start, stop = starts[0], starts[-1] + rows
    if stop - start != rows * len(starts):
      raise ValueError(
          f'The devices of process {jax.process_index()} do not '
          'hold contiguous rows of the batch.'
      )
    return slice(start, stop)

  def put_global(self, tree: Any, batch_axes: BatchAxes = None) -> Any:
    """Places values that every process holds whole (same on all of them).

    Args:
      tree: A pytree of arrays (NumPy or JAX) and PRNG keys.
      batch_axes: Batch axes (None: replicate everything).

    Returns:
      The pytree of global ``jax.Array``s.

    Raises:
      ValueError: If a batch axis does not divide over the devices.
    """

    def put(axis, x):
      sharding = self.batch_sharding(axis)
      if _is_key(x):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(
            put(axis, jax.random.key_data(x)), impl=impl
        )
      x = np.asarray(x)
      if axis is not None:
        self._check_rows(axis, x.shape[axis], x.shape)
      return jax.make_array_from_callback(
          x.shape, sharding, lambda index: x[index]
      )

    return _map_axes(put, batch_axes, tree)

  def put_local(self, tree: Any, batch_axes: BatchAxes) -> Any:
    """Assembles global arrays from each process's rows (its local data).

    Leaves that already are ``jax.Array``s with the target sharding are
    kept as they are.

    Args:
      tree: This process's part of every leaf: the rows of
        :meth:`process_rows` along the leaf's batch axis.
      batch_axes: Batch axes (of the local leaves).

    Returns:
      The pytree of global ``jax.Array``s, ``process_count`` times larger
      along each batch axis.

    Raises:
      ValueError: If a global batch axis does not divide over the devices.
    """

    def put(axis, x):
      sharding = self.batch_sharding(axis)
      if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
      if axis is not None:  # The global rows: every process's alike.
        self._check_rows(axis, x.shape[axis] * jax.process_count(), x.shape)
      return jax.make_array_from_process_local_data(sharding, x)

    return _map_axes(put, batch_axes, tree)

  def constrain(self, tree: Any, batch_axes: BatchAxes) -> Any:
    """Inside ``jit``: lays out ``tree`` split along its batch axes.

    For data made on the device (e.g. generated from a PRNG key), each
    device then makes only its rows; JAX's partitionable PRNG makes them
    the same numbers as on one device.
    """
    return _map_axes(
        lambda axis, x: jax.lax.with_sharding_constraint(
            x, self.batch_sharding(axis)
        ),
        batch_axes,
        tree,
    )

  def gather(self, tree: Any) -> Any:
    """Every leaf whole, as NumPy on every process (a collective).

    Keys become their raw key data. All processes must call this together.
    """

    def get(x):
      if _is_key(x):
        x = jax.random.key_data(x)
      if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if x.is_fully_replicated:
          return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
      return np.asarray(x)

    return jax.tree.map(get, tree)

  def agree(self, flag: bool) -> bool:
    """The primary process's ``flag``, on every process (a collective)."""
    if jax.process_count() == 1:
      return flag
    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def _map_axes(fn, batch_axes: BatchAxes, tree: Any) -> Any:
  """``fn(axis, leaf)`` for every leaf, ``batch_axes`` a prefix of ``tree``."""
  return jax.tree.map(
      lambda axis, subtree: jax.tree.map(
          lambda x: fn(axis, x), subtree, is_leaf=_is_key
      ),
      batch_axes,
      tree,
      is_leaf=_is_axis,
  )


def shift_axes(batch_axes: BatchAxes, by: int = 1) -> BatchAxes:
  """Batch axes after ``by`` leading axes are added (e.g. a step axis)."""
  return jax.tree.map(
      lambda a: None if a is None else a + by, batch_axes, is_leaf=_is_axis
  )
