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
import collections
import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import pytest

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


def _results_pages() -> list[str]:
  """The studies' records under experiments/results/."""
  return sorted(
      os.path.relpath(p, _ROOT)
      for p in glob.glob(os.path.join(_ROOT, 'experiments', 'results', '*.md')))


# An argument that stands for others: $C, <workdir>, ..., [--core=lstm|dnc],
# {rmc,lstm}, FLAGS, --seeds=S.
_PLACEHOLDER = re.compile(r'[$<>\[\]{}|]|\.\.\.|…|^[A-Z_]+$|=[A-Z][A-Z_]*$')
# Where a documented command ends: a shell operator or a comment.
_SHELL_END = frozenset({'&&', '||', '|', ';', '&', '>', '2>&1', '#'})


def commands(text: str) -> list[tuple[str, list[str]]]:
  """``(module, arguments)`` of every ``python -m`` command in ``text``.

  A command runs to the end of its line (or of its inline code span), with
  the lines a trailing backslash continues. Arguments that are placeholders
  (``$C``, ``<workdir>``, ``...``, ``--task=TASK``) are left out, and those after a shell
  operator; ``experiments.seeds``' arguments after ``--`` are the binary's,
  given as a command of that binary.
  """
  lines = text.splitlines()
  found = []
  for number, line in enumerate(lines):
    for match in re.finditer(r'python[\d.]* -m ([\w.]+)', line):
      rest = line[match.end():]
      inline = line[:match.start()].count('`') % 2 == 1
      if inline:
        rest = rest.split('`')[0]
      else:
        following = number
        while rest.rstrip().endswith('\\') and following + 1 < len(lines):
          following += 1
          rest = rest.rstrip()[:-1] + ' ' + lines[following]
      try:
        tokens = shlex.split(rest, comments=False)
      except ValueError:
        continue
      args = []
      for token in tokens:
        if token in _SHELL_END or token.startswith(('>', '#')):
          break
        if not _PLACEHOLDER.search(token):
          args.append(token)
      module = match.group(1).rstrip('.')
      if module == 'experiments.seeds' and '--' in args:
        split = args.index('--')
        binary = [a for a in args[:split] if a.startswith('--binary=')]
        if binary:
          found.append(
              (f'experiments.{binary[0].split("=", 1)[1]}', args[split + 1:]))
        args = args[:split]
      found.append((module, args))
  return found


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
    # Read in five minutes: at most 900 words, code and tables included.
    self.assertLessEqual(len(_read('README.md').split()), 900)
    for page in ('architecture', 'core', 'dnc', 'flax', 'nth_farthest',
                 'learn_to_execute', 'wikitext103', 'toolkit', 'benchmarks',
                 'scaling', 'testing'):
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

  def test_commands_are_found_as_written(self):
    text = ('`python -m experiments.nth_farthest --preset=demo --core=lstm` and\n'
            '```\npython -m experiments.seeds --binary=learn_to_execute \\\n'
            '    --seeds=0-2 --root=$R -- $C --core=lstm > log &\n```')
    self.assertEqual(commands(text), [
        ('experiments.nth_farthest', ['--preset=demo', '--core=lstm']),
        ('experiments.learn_to_execute', ['--core=lstm']),
        ('experiments.seeds', ['--binary=learn_to_execute', '--seeds=0-2'])])

  @pytest.mark.slow
  def test_every_documented_command_parses_with_its_binary(self):
    # The README, docs/ and the studies' records: each command's flags are
    # the binary's (for a task's binary, of its task, with values its
    # hyperparameters allow), so that it runs as written.
    by_module = collections.defaultdict(list)
    for page in _pages() + _results_pages():
      for module, args in commands(_read(page)):
        if module.split('.')[0] in ('experiments', 'benchmarks'):
          by_module[module].append(args)
    self.assertGreater(sum(map(len, by_module.values())), 80)
    wrong = ['--preset=smoke', '--eval_batches=3']  # Not the LM's flag.
    by_module['experiments.wikitext103'].append(wrong)

    def check(module):
      completed = subprocess.run(
          [sys.executable, os.path.join(_ROOT, 'tests', 'command_flags.py'),
           module], input=json.dumps(by_module[module]), capture_output=True,
          text=True, cwd=_ROOT, check=False)
      self.assertEqual(completed.returncode, 0, completed.stderr[-2000:])
      return json.loads(completed.stdout.strip().splitlines()[-1])

    modules = sorted(by_module)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      results = dict(zip(modules, pool.map(check, modules)))
    failures = [f'python -m {module} {shlex.join(args)}: {error}'
                for module in sorted(by_module)
                for args, error in results[module] if error]
    self.assertEqual(failures, [
        f'python -m experiments.wikitext103 {shlex.join(wrong)}: '
        '--eval_batches: not a hyperparameter of wikitext103 (see --helpfull).'
    ])

  def test_the_readme_core_snippet_runs(self):
    snippet = re.search(r'## Use it as a Haiku core\n\n```python\n(.*?)```',
                        _read('README.md'), re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
      exec(snippet, {})  # pylint: disable=exec-used
    self.assertEqual(printed.getvalue(),
                     '(10, 4, 2048) (4, 8, 256)\n605184\n')

  def test_the_readme_nnx_snippet_runs_after_it(self):
    readme = _read('README.md')
    namespace = {}
    for heading in ('Use it as a Haiku core', 'Or as a Flax NNX cell'):
      snippet = re.search(rf'## {heading}\n\n```python\n(.*?)```', readme,
                          re.S).group(1)
      with contextlib.redirect_stdout(io.StringIO()):
        exec(snippet, namespace)  # pylint: disable=exec-used
    self.assertEqual(namespace['outputs'].shape, (10, 4, 2048))
    self.assertEqual(namespace['final_state'].shape, (4, 8, 256))
    self.assertEqual(namespace['final_state'].dtype, np.float32)


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
