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
"""Runs an experiment binary on a disk that fills up at a chosen write.

Usage (from the repository root, on Linux)::

  python tests/disk_full_runner.py REGEX NTH MODULE [FLAG...]

runs ``python -m MODULE FLAG...``, except that the NTH (from 1) ``os.fsync``
of a file whose path matches the regular expression REGEX fails with
``ENOSPC``, as it does when a filesystem with delayed allocation runs out of
space. Used by ``faults_test.py``; the binaries themselves have no test hooks.
"""

import errno
import os
import re
import runpy
import sys


def main() -> None:
  pattern, nth, module = re.compile(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
  sys.argv = [module, *sys.argv[4:]]
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  real_fsync = os.fsync
  matched = 0

  def fsync(fd: int) -> None:
    nonlocal matched
    if pattern.search(os.readlink(f'/proc/self/fd/{fd}')):
      matched += 1
      if matched == nth:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_fsync(fd)

  os.fsync = fsync
  runpy.run_module(module, run_name='__main__', alter_sys=True)


if __name__ == '__main__':
  main()
