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
"""Atomic NumPy checkpoints of pytrees (no pickle).

A checkpoint is ``<directory>/checkpoint_<step>.npz``: one array per pytree
leaf, keyed by its path (``jax.tree_util.keystr``). It is written to a
temporary file in the same directory, flushed to disk, then renamed into
place, so a killed process leaves either the old set of checkpoints or the new
one, never a partial file. Restoring needs a template pytree of the same
structure (e.g. a freshly initialised training state); every leaf's path,
shape and dtype must match. PRNG keys are stored as their raw key data.

:func:`restore_latest` survives a damaged newest checkpoint (a copy cut
short, a bad disk): it moves the file aside as ``checkpoint_<step>.npz.corrupt``
and restores the newest one that reads. A checkpoint that reads but belongs to
another model is an error, never a silent fresh start.
"""

import os
import re
import zipfile
from typing import Any

from absl import logging
import jax
import numpy as np

from rmc.toolkit import atomic_file

_PATTERN = re.compile(r'^checkpoint_(\d+)\.npz$')


class CheckpointError(ValueError):
  """A checkpoint cannot be read, or does not match the model."""


class CorruptCheckpointError(CheckpointError):
  """A checkpoint file that cannot be read (truncated, damaged, not a zip)."""


# What reading a damaged .npz can raise: np.load's own errors, a cut-short or
# garbled zip, and a zip whose data ends early.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def path_for_step(directory: str, step: int) -> str:
  """The file name of the checkpoint of ``step`` in ``directory``."""
  return os.path.join(directory, f'checkpoint_{step:010d}.npz')


def list_steps(directory: str) -> list[int]:
  """Steps of the checkpoints in ``directory``, ascending."""
  if not os.path.isdir(directory):
    return []
  matches = (_PATTERN.match(name) for name in os.listdir(directory))
  return sorted(int(m.group(1)) for m in matches if m)


def _is_key(leaf: Any) -> bool:
  return hasattr(leaf, 'dtype') and jax.dtypes.issubdtype(
      leaf.dtype, jax.dtypes.prng_key
  )


def _to_numpy(tree: Any) -> dict[str, np.ndarray]:
  """Flattens ``tree`` to ``{path: array}``, keys as raw key data."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  arrays = {}
  for path, leaf in leaves:
    if _is_key(leaf):
      leaf = jax.random.key_data(leaf)
    arrays[jax.tree_util.keystr(path)] = np.asarray(leaf)
  return arrays


def save(directory: str, step: int, tree: Any, keep: int = 3) -> str:
  """Atomically writes ``tree`` as the checkpoint of ``step``.

  Args:
    directory: Where checkpoints live; created if needed.
    step: The training step the checkpoint holds.
    tree: A pytree of arrays (and PRNG keys).
    keep: How many of the newest checkpoints to keep (older ones are deleted
      after the new one is in place).

  Returns:
    The path written.
  """
  if keep < 1:
    raise ValueError(f'keep must be >= 1; got {keep}.')
  os.makedirs(directory, exist_ok=True)
  arrays = _to_numpy(tree)
  path = path_for_step(directory, step)
  # The .npz is uncompressed: the arrays plus a few hundred bytes of zip and
  # .npy headers per array.
  size = sum(a.nbytes + 300 + 2 * len(name) for name, a in arrays.items())
  with atomic_file.write(path, suffix='.npz', size=size) as f:
    np.savez(f, allow_pickle=False, **arrays)
  for old in list_steps(directory)[:-keep]:
    os.remove(path_for_step(directory, old))
  return path


def restore(path: str, template: Any, prefix: str = '') -> Any:
  """Reads the checkpoint at ``path`` into the structure of ``template``.

  Args:
    path: A file written by :func:`save`.
    template: A pytree with the structure, shapes and dtypes to restore: of
      arrays (or ``jax.ShapeDtypeStruct``s) and PRNG keys.
    prefix: Restore only the part of the checkpoint under this path (the
      ``jax.tree_util.keystr`` of a subtree, e.g. ``'[0].params'`` for the
      parameters of a training state saved as ``(state, data_state)``);
      ``template`` is that subtree.

  Returns:
    A pytree like ``template`` holding the checkpoint's values (NumPy arrays,
    and PRNG keys where the template has keys).

  Raises:
    CorruptCheckpointError: If the file cannot be read (other than for lack
      of permission).
    CheckpointError: If the file does not hold exactly the template's leaves
      with the same shapes and dtypes, or may not be read.
  """
  leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
  try:
    with np.load(path, allow_pickle=False) as data:
      stored = {
          name[len(prefix) :]: data[name]
          for name in data.files
          if name.startswith(prefix)
      }
  except PermissionError as e:  # The file may be fine: not set aside.
    raise CheckpointError(f'Cannot read checkpoint {path}: {e}') from e
  except _READ_ERRORS as e:
    raise CorruptCheckpointError(
        f'Cannot read checkpoint {path}: {type(e).__name__}: {e}'
    ) from e
  expected = {jax.tree_util.keystr(p) for p, _ in leaves}
  if set(stored) != expected:
    raise CheckpointError(
        f'Checkpoint {path} does not match the model: missing '
        f'{sorted(prefix + n for n in expected - set(stored))}, unexpected '
        f'{sorted(prefix + n for n in set(stored) - expected)}.'
    )
  values = []
  for p, leaf in leaves:
    name = jax.tree_util.keystr(p)
    value = stored[name]
    want = (
        jax.eval_shape(jax.random.key_data, leaf)
        if _is_key(leaf)
        else leaf
        if isinstance(leaf, jax.ShapeDtypeStruct)
        else np.asarray(leaf)
    )
    want_dtype = np.dtype(want.dtype)
    if value.dtype.kind == 'V' and value.dtype.itemsize == want_dtype.itemsize:
      value = value.view(want_dtype)  # e.g. bfloat16, stored as raw bytes.
    if value.shape != tuple(want.shape) or value.dtype != want_dtype:
      raise CheckpointError(
          f'Checkpoint {path}: {prefix}{name} has shape {value.shape} and '
          f'dtype {value.dtype}; the model expects {tuple(want.shape)} and '
          f'{want_dtype}.'
      )
    if _is_key(leaf):
      value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf))
    values.append(value)
  return jax.tree_util.tree_unflatten(treedef, values)


def restore_latest(
    directory: str, template: Any, set_aside: bool = True
) -> tuple[int, Any] | None:
  """Restores the newest readable checkpoint in ``directory``.

  Checkpoints are tried newest first. One that cannot be read is skipped
  with a warning naming it and why and, with ``set_aside``, renamed to
  ``<name>.corrupt``, so that :func:`save`'s keep-last-k never deletes a good
  checkpoint to make room beside it.

  Args:
    directory: Where :func:`save` wrote.
    template: As for :func:`restore`.
    set_aside: Whether to rename unreadable checkpoints (False for a process
      that must not write to ``directory``).

  Returns:
    ``(step, tree)``, or None when ``directory`` holds no checkpoint.

  Raises:
    CheckpointError: If a checkpoint reads but does not match ``template``
      (another model), or if none of them can be read (every file is left
      in place, and the error lists them).
  """
  steps = list_steps(directory)
  unreadable = []
  for step in reversed(steps):
    path = path_for_step(directory, step)
    try:
      tree = restore(path, template)
    except CorruptCheckpointError as e:
      logging.warning('Skipping checkpoint %s: %s', path, e)
      unreadable.append((path, e))
      continue
    if set_aside:
      for bad, _ in unreadable:
        logging.warning(
            'Moving the unreadable %s aside to %s.corrupt.', bad, bad
        )
        os.replace(bad, bad + '.corrupt')
    if unreadable:
      logging.warning('Resuming from the older checkpoint %s.', path)
    else:
      logging.info('Restored checkpoint %s.', path)
    return step, tree
  if unreadable:
    raise CheckpointError(
        f'None of the {len(unreadable)} checkpoints in {directory} can be '
        'read: ' + '; '.join(str(e) for _, e in unreadable) + '. Move them '
        'away to start afresh, or restore them from a copy.'
    )
  return None
