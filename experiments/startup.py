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
"""What a binary does first: honour a stop request, then take huge pages.

Each binary calls :func:`start` at the top of its module when it runs as
``__main__``, before it imports JAX (importing the ``experiments`` package, as
the tests and benchmarks do, starts nothing). From then on, SIGINT (Ctrl-C)
and SIGTERM end the process at once with one line on stderr saying where
the run stands (:func:`on_stop` lets the binary say it, e.g. its newest
checkpoint), exit status ``128 + signal``, and no traceback: whatever the
process was doing (importing, parsing flags, building data, compiling in
XLA, evaluating), nothing is left half-written, since every file a run
writes is replaced atomically or appended a line at a time, and the kernel
releases the work directory's lock with the process.

The training loop (:func:`rmc.toolkit.training.train`) installs handlers of its
own while it runs: there a signal finishes the current chunk, evaluates, writes
a checkpoint and exits with status 0. Once it returns, these handlers are back.

A Python signal handler runs only when the main thread runs Python code; a
long XLA compilation runs in C++. So the signals are also written to a pipe
(``signal.set_wakeup_fd``) that a thread of this module reads: it stops the
process as soon as a signal arrives, unless another handler (the training
loop's) has taken the signal over.

Then :func:`start` restarts the process once with glibc's huge pages where
they help (:mod:`experiments.huge_pages`); a signal that arrives across that
restart stays pending (it is blocked over ``execve``) and stops the new
process as soon as it has its handlers. This module imports only the
standard library.
"""

import os
import signal
import sys
import threading
from collections.abc import Callable

from experiments import huge_pages

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stopping = threading.Lock()
_where: Callable[[], str] | None = None


def on_stop(where: Callable[[], str] | None) -> None:
  """Sets what the stop line says after ``stopped by SIGINT``.

  Args:
    where: Gives the rest of the line, e.g. ``'; /tmp/run holds step 200,
      and the same command resumes it'``; it is called when a signal comes,
      so it can look at the work directory then. None restores the default
      (``' while starting: nothing was trained'``).
  """
  global _where
  _where = where


def _stop(signum: int) -> None:
  """Writes the stop line and ends the process (once, whoever calls first)."""
  if not _stopping.acquire(blocking=False):
    return  # The other path (handler or watcher) is already stopping.
  try:
    where = ' while starting: nothing was trained'
    if _where is not None:
      try:
        where = _where()
      except Exception:  # pylint: disable=broad-except
        where = ''  # The line must still come, and the process still end.
    sys.stderr.write(f'stopped by {signal.Signals(signum).name}{where}.\n')
    sys.stderr.flush()
  finally:
    os._exit(128 + signum)


def _handle(signum, frame) -> None:
  del frame
  _stop(signum)


def _watch(read_fd: int) -> None:
  """Stops the process on a signal written to the wakeup pipe."""
  while True:
    try:
      data = os.read(read_fd, 64)
    except OSError:
      return
    for signum in data:
      # Not when the training loop's handlers (or any other) are in charge.
      if signum in SIGNALS and signal.getsignal(signum) is _handle:
        _stop(signum)


def install_stop_handlers() -> None:
  """Makes SIGINT and SIGTERM end the process at once (main thread only)."""
  for signum in SIGNALS:
    signal.signal(signum, _handle)
  read_fd, write_fd = os.pipe()
  os.set_blocking(write_fd, False)
  signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
  # The watcher keeps them blocked (a thread inherits the mask), so that the
  # kernel gives them to the main thread: while it blocks them over the
  # huge-page restart, they stay pending instead of going to the watcher.
  signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
  threading.Thread(
      target=_watch, args=(read_fd,), name='stop-watcher', daemon=True
  ).start()
  # Delivered now if one came during a restart.
  signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def start() -> None:
  """A binary's start: stop handling, then the huge-page restart."""
  install_stop_handlers()
  huge_pages.restart_with_huge_pages(keep_pending=SIGNALS)
