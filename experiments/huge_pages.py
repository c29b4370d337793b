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
"""Transparent huge pages for the binaries' memory, on Linux with glibc.

XLA:CPU allocates each call's temporary buffers afresh (for the RMC's
gradient at the Nth Farthest size, about 215 MB a call), and glibc's malloc
serves blocks that large with new ``mmap``s: every call then takes one page
fault per 4 KiB page written (54,000 a call, 13 ms of system time per step
of 8). Where the kernel gives transparent huge pages only on request
(``/sys/kernel/mm/transparent_hugepage/enabled`` says ``[madvise]``), glibc
2.35 and later request them when started with the tunable
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``: 2 MiB pages, 780 faults a call,
and that gradient 15-20% faster (docs/benchmarks.md).

A tunable is read when the process starts, so :func:`restart_with_huge_pages`
restarts the process (``os.execve``: same PID, same arguments) with it set.
A binary calls it when it starts (:func:`experiments.startup.start`), before
anything heavy is imported. Setting
``glibc.malloc.hugetlb`` yourself in ``GLIBC_TUNABLES`` (``=0`` to turn it
off) leaves the process as it is. This module imports only the standard
library.
"""

import os
import signal
import sys
from collections.abc import Iterable

TUNABLE = 'glibc.malloc.hugetlb'
_THP_MODE_FILE = '/sys/kernel/mm/transparent_hugepage/enabled'
_MIN_GLIBC = (2, 35)  # The first glibc with the tunable.


def _glibc_version() -> tuple[int, ...] | None:
  """The version of glibc, or None when the C library is not glibc."""
  try:
    name_and_version = os.confstr('CS_GNU_LIBC_VERSION')  # 'glibc 2.36'
  except (AttributeError, ValueError, OSError):
    return None
  try:
    _, version = (name_and_version or '').split()
    return tuple(int(part) for part in version.split('.')[:2])
  except ValueError:
    return None


def _transparent_huge_page_mode() -> str | None:
  """The kernel's mode (``always``, ``madvise``, ``never``), or None."""
  try:
    with open(_THP_MODE_FILE) as f:
      text = f.read()
  except OSError:
    return None
  start, end = text.find('['), text.find(']')
  return text[start + 1 : end] if 0 <= start < end else None


def environment_with_huge_pages(
    environ: dict[str, str],
    thp_mode: str | None,
    glibc_version: tuple[int, ...] | None,
) -> dict[str, str] | None:
  """The environment to restart with, or None to leave the process as is.

  Args:
    environ: The process's environment.
    thp_mode: The kernel's transparent huge page mode, or None if unknown.
    glibc_version: glibc's ``(major, minor)``, or None if not glibc.

  Returns:
    ``environ`` with ``glibc.malloc.hugetlb=1`` added to ``GLIBC_TUNABLES``
    when the kernel gives huge pages only on request, glibc knows the
    tunable and ``GLIBC_TUNABLES`` does not name it yet; otherwise None.
  """
  tunables = environ.get('GLIBC_TUNABLES', '')
  if (
      thp_mode != 'madvise'
      or glibc_version is None
      or glibc_version < _MIN_GLIBC
      or TUNABLE in tunables
  ):
    return None
  setting = f'{TUNABLE}=1'
  return dict(
      environ,
      GLIBC_TUNABLES=f'{tunables}:{setting}' if tunables else setting,
  )


def restart_with_huge_pages(
    keep_pending: Iterable[signal.Signals] = (),
) -> None:
  """Restarts this process with glibc's huge-page tunable, where it helps.

  Returns (doing nothing) unless :func:`environment_with_huge_pages` gives
  an environment; otherwise it does not return: the process is replaced by
  the same command line (``sys.orig_argv``) with that environment.

  Args:
    keep_pending: Signals blocked over the restart: one that arrives then
      stays pending, for the new process to take when it unblocks them
      (:func:`experiments.startup.install_stop_handlers`), instead of
      meeting the default action while Python starts.
  """
  environ = environment_with_huge_pages(
      dict(os.environ), _transparent_huge_page_mode(), _glibc_version()
  )
  if environ is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  signal.pthread_sigmask(signal.SIG_BLOCK, keep_pending)
  try:
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
  finally:  # Only if the restart failed.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, keep_pending)
