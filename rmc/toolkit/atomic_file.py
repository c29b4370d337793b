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
"""Atomic file writes: a killed process leaves the old file or the new one.

A write that fails for lack of space raises :class:`DiskFullError`, which
names the file and the bytes it needed; the temporary file is removed and the
old file (if any) is untouched.
"""

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

# Errors that mean "no room on this filesystem": space, or the user's quota.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(OSError):
  """A write failed because its filesystem has no space left."""

  def __init__(self, path: str, needed: int | None, written: int = 0):
    """The error of writing ``path``.

    Args:
      path: The file being written.
      needed: The bytes the write needed, if the writer knew them.
      written: Bytes written when the write failed.
    """
    free = _free_bytes(os.path.dirname(os.path.abspath(path)))
    if needed is not None:
      size = f'it needs {needed:,} bytes'
    else:
      size = f'it needs more than the {written:,} bytes written'
    room = f'; {free:,} bytes are free there' if free is not None else ''
    super().__init__(
        errno.ENOSPC,
        f'No space left on the device to write {path}: {size}{room}',
    )
    self.filename = path
    self.needed = needed

  def __str__(self) -> str:
    return f'{self.strerror}.'


def _free_bytes(directory: str) -> int | None:
  try:
    stat = os.statvfs(directory)
  except (OSError, AttributeError):  # AttributeError: no statvfs (Windows).
    return None
  return stat.f_bavail * stat.f_frsize


@contextlib.contextmanager
def write(
    path: str, suffix: str = '', size: int | None = None
) -> Iterator[BinaryIO]:
  """Opens a temporary file beside ``path`` that replaces it on success.

  On leaving the block normally the file is flushed, fsynced and renamed to
  ``path``; on an exception it is removed and ``path`` is untouched.

  Args:
    path: The file to (re)place.
    suffix: Suffix of the temporary name (some writers, e.g. ``np.savez``,
      look at it).
    size: The size the file will have, in bytes, if known: named in the
      error when the disk is full.

  Yields:
    The temporary file, open for binary writing (and seeking).

  Raises:
    DiskFullError: If the filesystem ran out of space (or quota).
  """
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix=suffix)
  try:
    with os.fdopen(fd, 'w+b') as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp_path, path)
  except BaseException as e:
    written = os.path.getsize(tmp_path) if os.path.exists(tmp_path) else 0
    if os.path.exists(tmp_path):
      os.remove(tmp_path)
    if isinstance(e, OSError) and e.errno in NO_SPACE:
      raise DiskFullError(path, size, written) from e
    raise
