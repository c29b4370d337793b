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
"""Tests for experiments/huge_pages.py."""

import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
from experiments import huge_pages

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EnvironmentTest(parameterized.TestCase):

  def test_adds_the_tunable_where_the_kernel_gives_huge_pages_on_request(self):
    environ = huge_pages.environment_with_huge_pages(
        {'HOME': '/root'}, 'madvise', (2, 36)
    )
    self.assertEqual(
        environ, {'HOME': '/root', 'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}
    )

  def test_keeps_other_tunables(self):
    environ = huge_pages.environment_with_huge_pages(
        {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'}, 'madvise', (2, 35)
    )
    self.assertEqual(
        environ['GLIBC_TUNABLES'],
        'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1',
    )

  @parameterized.named_parameters(
      ('set_by_the_user', 'glibc.malloc.hugetlb=0', 'madvise', (2, 36)),
      ('kernel_always_gives_them', '', 'always', (2, 36)),
      ('kernel_never_gives_them', '', 'never', (2, 36)),
      ('no_such_kernel_setting', '', None, (2, 36)),
      ('glibc_without_the_tunable', '', 'madvise', (2, 34)),
      ('not_glibc', '', 'madvise', None),
  )
  def test_leaves_the_process_alone(self, tunables, thp_mode, glibc_version):
    environ = {'GLIBC_TUNABLES': tunables} if tunables else {}
    self.assertIsNone(
        huge_pages.environment_with_huge_pages(
            environ, thp_mode, glibc_version
        )
    )


class RestartTest(absltest.TestCase):

  def _tunables_seen_by_a_binary(self, environ):
    # What a binary does first. The restarted process prints what it was
    # given.
    code = (
        'import os; from experiments import startup; startup.start(); '
        'print(os.environ.get("GLIBC_TUNABLES", ""))'
    )
    completed = subprocess.run(
        [sys.executable, '-c', code],
        cwd=_REPO,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()

  def test_a_binary_starts_with_what_this_machine_calls_for(self):
    environ = {
        name: value
        for name, value in os.environ.items()
        if name != 'GLIBC_TUNABLES'
    }
    expected = huge_pages.environment_with_huge_pages(
        environ,
        huge_pages._transparent_huge_page_mode(),
        huge_pages._glibc_version(),
    )
    self.assertEqual(
        self._tunables_seen_by_a_binary(environ),
        '' if expected is None else expected['GLIBC_TUNABLES'],
    )

  def test_a_binary_keeps_the_users_setting(self):
    environ = dict(os.environ, GLIBC_TUNABLES='glibc.malloc.hugetlb=0')
    self.assertEqual(
        self._tunables_seen_by_a_binary(environ), 'glibc.malloc.hugetlb=0'
    )

  def test_importing_the_package_starts_nothing(self):
    # As `python -m benchmarks.<name>` imports it, or a user's program.
    environ = {name: value for name, value in os.environ.items()
               if name != 'GLIBC_TUNABLES'}
    code = (
        'import os, sys; sys.argv[0] = "-m"; import experiments; '
        'from experiments import launch; '
        'print(os.environ.get("GLIBC_TUNABLES", ""))'
    )
    completed = subprocess.run(
        [sys.executable, '-c', code], cwd=_REPO, env=environ,
        capture_output=True, text=True, check=True)
    self.assertEqual(completed.stdout.strip(), '')


if __name__ == '__main__':
  absltest.main()
