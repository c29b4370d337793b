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
"""README.md and docs/: their links, the modules they name, the core snippet.

Every relative link (to a file, or to a heading of one) must resolve, and
every ``python -m <module>`` must name a runnable module of this repository,
so that moving text between pages cannot leave a dangling reference.
"""

import ast
import contextlib
import glob
import io
import os
import re

from absl.testing import absltest

from benchmarks import dnc_step
from benchmarks import rmc_step

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Modules of other projects that the pages may run with `python -m`.
_EXTERNAL_MODULES = frozenset({'pip', 'pytest', 'venv'})
_LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
_MODULE = re.compile(r'python[\d.]* -m ([\w.<>]+)')
_FENCE = re.compile(r'^\s*(```|~~~)')
_MAIN_GUARD = "if __name__ == '__main__':"


def _pages() -> list[str]:
  """README.md and every page under docs/, as paths from the root."""
  return ['README.md'] + sorted(
      os.path.relpath(p, _ROOT)
      for p in glob.glob(os.path.join(_ROOT, 'docs', '**', '*.md'),
                         recursive=True))


def _read(path: str) -> str:
  with open(os.path.join(_ROOT, path), encoding='utf-8') as f:
    return f.read()


def _prose_lines(text: str) -> list[str]:
  """The lines outside fenced code blocks."""
  lines, fenced = [], False
  for line in text.splitlines():
    if _FENCE.match(line):
      fenced = not fenced
    elif not fenced:
      lines.append(line)
  return lines


def slug(heading: str) -> str:
  """GitHub's anchor for a heading's text."""
  text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
  return text.replace(' ', '-')


def anchors(text: str) -> set[str]:
  """Every heading anchor of a Markdown page, with GitHub's -1, -2 suffixes."""
  seen, result = {}, set()
  for line in _prose_lines(text):
    match = re.match(r'#{1,6} (.*)', line)
    if not match:
      continue
    base = slug(match.group(1))
    count = seen.get(base, 0)
    seen[base] = count + 1
    result.add(base if count == 0 else f'{base}-{count}')
  return result


class SlugTest(absltest.TestCase):

  def test_github_anchors(self):
    self.assertEqual(slug("The DNC's step"), 'the-dncs-step')
    self.assertEqual(slug('Memory: the softmax in chunks of time steps'),
                     'memory-the-softmax-in-chunks-of-time-steps')
    self.assertEqual(slug('The core: `rmc.RelationalMemory`'),
                     'the-core-rmcrelationalmemory')
    self.assertEqual(anchors('# A\n## A\n```\n# not a heading\n```\n'),
                     {'a', 'a-1'})


class DocsTest(absltest.TestCase):

  def test_the_readme_is_short_and_the_pages_exist(self):
    self.assertLessEqual(len(_read('README.md').splitlines()), 260)
    for page in ('core', 'dnc', 'nth_farthest', 'learn_to_execute',
                 'wikitext103', 'toolkit', 'benchmarks', 'scaling',
                 'testing'):
      self.assertIn(f'docs/{page}.md', _pages())

  def test_every_relative_link_resolves(self):
    checked = 0
    for page in _pages():
      # A link's text may wrap onto the next line.
      for target in _LINK.findall('\n'.join(_prose_lines(_read(page)))):
        if re.match(r'[a-z]+:', target):  # https:, mailto:
          continue
        path, _, anchor = target.partition('#')
        resolved = (os.path.normpath(
            os.path.join(os.path.dirname(page), path)) if path else page)
        with self.subTest(page=page, link=target):
          self.assertTrue(os.path.exists(os.path.join(_ROOT, resolved)),
                          f'{page} links to {target}: no {resolved}')
          if anchor:
            self.assertTrue(resolved.endswith('.md'))
            self.assertIn(anchor, anchors(_read(resolved)),
                          f'{page} links to {target}: no such heading')
        checked += 1
    self.assertGreater(checked, 40)

  def test_every_python_m_module_exists(self):
    modules = set()
    for page in _pages():
      modules.update(m.rstrip('.') for m in _MODULE.findall(_read(page))
                     if '<' not in m)
    self.assertContainsSubset(
        {'experiments.nth_farthest', 'experiments.learn_to_execute',
         'experiments.wikitext103', 'benchmarks.rmc_step'}, modules)
    for module in sorted(modules - _EXTERNAL_MODULES):
      path = os.path.join(*module.split('.')) + '.py'
      with self.subTest(module=module):
        self.assertTrue(os.path.isfile(os.path.join(_ROOT, path)),
                        f'python -m {module}: no {path}')
        self.assertIn(_MAIN_GUARD, _read(path))

  def test_the_readme_core_snippet_runs(self):
    snippet = re.search(r'## Use it as a Haiku core\n\n```python\n(.*?)```',
                        _read('README.md'), re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
      exec(snippet, {})  # pylint: disable=exec-used
    self.assertEqual(printed.getvalue(),
                     '(10, 4, 2048) (4, 8, 256)\n605184\n')


class ReferenceBenchmarkTest(absltest.TestCase):

  def test_its_configurations_are_rmc_step_and_dnc_steps(self):
    # benchmarks/reference_step.py runs on Python 3.7 with TensorFlow, so it
    # is read, not imported: its tables must hold the sizes of rmc_step and
    # dnc_step (the reference DNC's controller has one layer).
    tree = ast.parse(_read('benchmarks/reference_step.py'))
    tables = {node.targets[0].id: ast.literal_eval(node.value)
              for node in tree.body if isinstance(node, ast.Assign)
              and getattr(node.targets[0], 'id', '').endswith('CONFIGS')}
    self.assertEqual(tables['RMC_CONFIGS'], {
        name: (c.mem_slots, c.num_heads, c.head_size, c.input_size,
               c.batch_size, c.num_steps, c.mlp_layers)
        for name, c in rmc_step.CONFIGS.items()})
    self.assertEqual(tables['DNC_CONFIGS'], {
        name: (c.memory_size, c.word_size, c.num_reads, c.num_writes,
               c.controller_size, c.input_size, c.batch_size, c.num_steps)
        for name, c in dnc_step.CONFIGS.items()})


if __name__ == '__main__':
  absltest.main()
