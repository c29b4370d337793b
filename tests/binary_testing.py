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
"""Helpers for the tests of the experiment binaries."""

import contextlib
import io
import os
import random
from types import ModuleType

from absl import flags
from absl.testing import flagsaver
import numpy as np
from rmc import checkpoint


def run_main(binary: ModuleType, *args: str) -> str:
  """Runs ``binary.main`` in-process with ``args``; returns what it printed.

  Flags are restored afterwards, so tests do not leak settings.
  """
  name = binary.__name__.rsplit('.', 1)[-1]
  with flagsaver.flagsaver():
    flags.FLAGS([name, *args])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      binary.main([name])
  return out.getvalue()


def checkpoint_arrays(workdir: str) -> tuple[int, dict[str, np.ndarray]]:
  """The step and every array of the newest checkpoint in ``workdir``."""
  step = checkpoint.list_steps(workdir)[-1]
  with np.load(checkpoint.path_for_step(workdir, step)) as data:
    return step, {k: data[k] for k in data.files}


def write_wikitext_corpus(directory: str) -> dict[str, int]:
  """Writes a small corpus in the WikiText format; returns tokens per split."""
  rng = random.Random(0)
  words = ['the', 'cat', 'sat', 'on', 'a', 'mat', '.', ',', '@-@', '<unk>',
           'dog', 'ran', 'big', 'red']
  counts = {}
  for split, paragraphs in (('train', 120), ('valid', 20), ('test', 20)):
    lines = [' ', ' = Title = ', ' ']
    for i in range(paragraphs):
      lines.append(' ' + ' '.join(rng.choice(words)
                                  for _ in range(rng.randint(4, 25))) + ' '
                   if i % 4 else ' ')
    with open(os.path.join(directory, f'wiki.{split}.tokens'), 'w') as f:
      f.write('\n'.join(lines) + '\n')
    counts[split] = sum(len(line.split()) + 1 for line in lines)
  return counts
