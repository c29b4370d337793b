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
"""pytest configuration for the absltest-style suite.

Collects Haiku-style `*_test.py` files, puts the repository root on the path
(so tests can import the `experiments` binaries), and marks absl flags as
parsed with their defaults, as `absltest.main()` would.

Two tiers: `make test` runs the tests not marked `slow` (`-m "not slow"`),
`make test-all` (and CI) every test. A test is `slow` when it carries
`@pytest.mark.slow` (below any `parameterized` decorator, so that every case
gets it), and so is the eager (`without_jit`) variant of every
`chex.variants` test: its jitted twin makes the same checks in the fast tier.
See docs/testing.md.
"""

import functools
import hashlib
import os
import platform
import shutil
import sys
import tempfile

from absl import flags
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _jax_cache_dir() -> str | None:
  """``<venv>/rmc-test-jax-cache/<key>``, or None outside a virtual env.

  JAX keys each entry by the program, the compile options and the jax and
  jaxlib versions, so an entry is only reused for the same compilation. The
  directory adds what that key leaves out: the processor (XLA compiles for
  the host CPU's features), the Python and XLA_FLAGS, so that a cache copied
  to another machine or used under other flags is never read. Set
  RMC_TEST_JAX_CACHE=0 for a fresh cache per session.
  """
  if (sys.prefix == sys.base_prefix
      or os.environ.get('RMC_TEST_JAX_CACHE', '1') == '0'):
    return None
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  try:
    with open('/proc/cpuinfo') as f:
      cpu = sorted({line for line in f
                    if line.startswith(('model name', 'flags'))})
  except OSError:
    cpu = [platform.processor()]
  key = hashlib.sha256(repr((
      sys.version, jax.__version__, jaxlib.__version__, platform.machine(),
      cpu, os.environ.get('XLA_FLAGS', ''))).encode()).hexdigest()[:16]
  return os.path.join(sys.prefix, 'rmc-test-jax-cache', key)


def pytest_configure(config):
  config.addinivalue_line('python_files', '*_test.py')
  # Many tests compile the same small programs (the binaries' smoke presets),
  # in this process and in subprocesses, and every run of the suite compiles
  # them again: share compilations through JAX's persistent cache, kept in
  # the virtual environment between runs (see _jax_cache_dir).
  if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
    directory = _jax_cache_dir()
    if directory is None:  # No virtual environment: one for this session.
      directory = tempfile.mkdtemp(prefix='rmc-test-jax-cache-')
      config.add_cleanup(functools.partial(shutil.rmtree, directory, True))
    os.environ['JAX_COMPILATION_CACHE_DIR'] = directory
  # Trained smoke runs that several tests read (binary_testing.shared_run),
  # made once per session by whichever test process needs one first.
  if 'RMC_TEST_RUNS_DIR' not in os.environ:
    os.environ['RMC_TEST_RUNS_DIR'] = tempfile.mkdtemp(prefix='rmc-test-runs-')
    config.add_cleanup(functools.partial(
        shutil.rmtree, os.environ['RMC_TEST_RUNS_DIR'], True))
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
  if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def pytest_collection_modifyitems(config, items):
  del config
  fast_files, files = set(), set()
  for item in items:
    if '__without_jit' in item.name:  # A chex.variants eager twin.
      item.add_marker(pytest.mark.slow)
    files.add(item.path.name)
    if item.get_closest_marker('slow') is None:
      fast_files.add(item.path.name)
  # The fast tier covers every module: each test file keeps a test there.
  if files - fast_files:
    raise pytest.UsageError(
        f'Every test of {sorted(files - fast_files)} is marked slow; keep at '
        'least one in the fast tier (make test).')
