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
"""Atomic file writes: a killed process leaves the old file or the new one."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO


@contextlib.contextmanager
def write(path: str, suffix: str = '') -> Iterator[BinaryIO]:
  """Opens a temporary file beside ``path`` that replaces it on success.

  On leaving the block normally the file is flushed, fsynced and renamed to
  ``path``; on an exception it is removed and ``path`` is untouched.

  Args:
    path: The file to (re)place.
    suffix: Suffix of the temporary name (some writers, e.g. ``np.savez``,
      look at it).

  Yields:
    The temporary file, open for binary writing (and seeking).
  """
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix=suffix)
  try:
    with os.fdopen(fd, 'w+b') as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp_path, path)
  except BaseException:
    if os.path.exists(tmp_path):
      os.remove(tmp_path)
    raise
