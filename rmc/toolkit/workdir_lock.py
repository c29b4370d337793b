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
"""One training per work directory, by an OS-level lock.

A training holds an exclusive ``flock`` on ``<workdir>/.lock`` for its
lifetime (:func:`hold`), and writes its pid, host, start time and command
line into that file. A second training on the same directory fails at once
with :class:`WorkdirBusyError`, naming the holder. The kernel releases the
lock when the holding process ends, however it ends (a SIGKILL included), so
a killed run never leaves a stale lock: the file's contents stay, but
without the lock they mean nothing, and the next training rewrites them.

Readers (``--mode=predict|sample``, :func:`rmc.load_run`) take no lock: every
file a training writes is replaced atomically (checkpoints, config.json) or
appended one whole line at a time (metrics.jsonl). ``--mode=evaluate`` only
appends a record to metrics.jsonl, which :mod:`rmc.toolkit.metrics` serialises
with the training's own writes through a short lock of its own
(:func:`file_lock`), so it too runs beside a training.

``flock`` locks are advisory and held by an open file description: they work
between processes on one host and, on Linux, on NFS (as byte-range locks).
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

LOCK_FILE = '.lock'


class WorkdirBusyError(RuntimeError):
  """Another process holds the work directory's lock."""

  def __init__(self, workdir: str, holder: dict[str, Any]):
    self.workdir = workdir
    self.holder = holder
    who = (
        f'pid {holder.get("pid", "?")} on host {holder.get("host", "?")}'
        if holder
        else 'another process (it has not yet said which)'
    )
    since = f', since {holder["since"]}' if holder.get('since') else ''
    super().__init__(
        f'{workdir} is in use by another training: {who}{since}. One '
        'training per work directory: wait for it to end, stop it, or pass '
        'another --workdir.'
    )


def holder(workdir: str) -> dict[str, Any]:
  """What the lock file of ``workdir`` says of its holder (or last holder).

  Returns:
    ``{'pid', 'host', 'since', 'argv'}``, or ``{}`` if the file is missing or
    not (yet) readable. Whether the holder still runs is what the lock says,
    not this: see :func:`is_held`.
  """
  try:
    with open(os.path.join(workdir, LOCK_FILE), encoding='utf-8') as f:
      return json.loads(f.read() or '{}')
  except (OSError, ValueError):
    return {}


def is_held(workdir: str) -> bool:
  """Whether a live process holds the lock of ``workdir``."""
  path = os.path.join(workdir, LOCK_FILE)
  try:
    fd = os.open(path, os.O_RDONLY)
  except FileNotFoundError:
    return False
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except BlockingIOError:
    return True
  finally:
    os.close(fd)  # Closing releases the probe's shared lock, if taken.
  return False


@contextlib.contextmanager
def hold(workdir: str) -> Iterator[dict[str, Any]]:
  """Holds ``workdir``'s lock for the block; fails at once if it is held.

  Args:
    workdir: An existing, writable directory.

  Yields:
    What the lock file now says: ``pid``, ``host``, ``since`` (ISO 8601,
    UTC) and ``argv``.

  Raises:
    WorkdirBusyError: If another process (or another ``hold`` in this one)
      holds it.
  """
  path = os.path.join(workdir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise
      raise WorkdirBusyError(workdir, holder(workdir)) from None
    me = {
        'pid': os.getpid(),
        'host': socket.gethostname(),
        'since': datetime.datetime.now(datetime.UTC).isoformat(
            timespec='seconds'
        ),
        'argv': sys.argv,
    }
    payload = (json.dumps(me) + '\n').encode('utf-8')
    os.ftruncate(fd, 0)
    os.pwrite(fd, payload, 0)
    yield me
  finally:
    os.close(fd)  # Releases the lock; the kernel does so too on any exit.


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
  """Holds an exclusive lock on ``<path>.lock`` for a short critical section.

  For writers that must not interleave with others on ``path`` (e.g. a
  resumed training's rewrite of metrics.jsonl against an evaluation's
  append). Blocks until the lock is free.
  """
  fd = os.open(path + '.lock', os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)
