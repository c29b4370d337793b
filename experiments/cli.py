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
"""The command line of every tool here: one-line errors, shared flags.

:func:`run` is the binaries' ``app.run``: a fault of the user's making (a
flag, the data, the filesystem, a checkpoint, a diverged loss) ends the
process with one line ``error: ...`` on stderr and exit status 1, and no
traceback (``--verbose_errors`` prints it too); bugs raise as usual.
"""

import errno
import math
import sys
import traceback
from collections.abc import Callable
from typing import Any

from absl import app
from absl import flags

from rmc.data import wikitext
from rmc.toolkit import atomic_file
from rmc.toolkit import checkpoint
from rmc.toolkit import metrics
from rmc.toolkit import run_config
from rmc.toolkit import workdir_lock

VERBOSE_ERRORS = flags.DEFINE_bool(
    'verbose_errors',
    False,
    'On an error of the flags, data, filesystem or a checkpoint, print the '
    'full Python traceback before the one-line message (for bug reports).',
)

# The plotting commands' output, defined once for all of them (flags share
# one process in the tests).
PLOT_OUTPUT = flags.DEFINE_string(
    'output',
    None,
    'PNG file that a plotting command writes (unset: '
    'curves.png for plot_curves, attention.png for plot_attention).',
)


def finite_floats(*names: str) -> None:
  """Makes the float flags ``names`` (not hyperparameters) reject NaN, Inf."""
  for name in names:
    flags.register_validator(
        name,
        lambda x: x is None or math.isfinite(x),
        message=f'--{name} must be a finite number.',
    )


def _one_line(error: BaseException) -> str | None:
  """The user-facing message of ``error``, or None if it is a bug."""
  if isinstance(error, atomic_file.DiskFullError):
    return (
        f'{error} Every earlier checkpoint and metrics line is intact: '
        'free some space and rerun the same command to resume.'
    )
  if isinstance(
      error,
      (
          app.UsageError,
          checkpoint.CheckpointError,
          wikitext.DataError,
          run_config.ConfigError,
          metrics.TensorBoardMissingError,
          FloatingPointError,
          workdir_lock.WorkdirBusyError,
      ),
  ):
    return str(error)
  if isinstance(error, OSError) and error.filename is not None:
    # The filesystem's own faults (permissions, read-only, missing files),
    # which always name a path; other OSErrors are left to raise.
    reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
    return f'{reason}: {error.filename}'
  return None


def run(main: Callable[[list[str]], Any]) -> None:
  """``app.run(main)``, with the user's faults as one line, not a traceback.

  Args:
    main: The binary's ``main(argv)``; it raises (``app.UsageError``,
      ``checkpoint.CheckpointError``, ``wikitext.DataError``,
      ``atomic_file.DiskFullError``, ``FloatingPointError`` or an ``OSError``
      naming a file) for a fault of the user's making.
  """

  def main_with_one_line_errors(argv):
    try:
      return main(argv)
    except Exception as e:  # pylint: disable=broad-except
      message = _one_line(e)
      if message is None:
        raise
      if VERBOSE_ERRORS.value:
        traceback.print_exc()
      sys.exit(f'error: {message}')

  app.run(main_with_one_line_errors)
