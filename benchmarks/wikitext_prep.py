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
r"""Time and memory of WikiText preparation at WikiText-103 scale.

  python -m benchmarks.wikitext_prep --workdir=/tmp/wt103_synthetic

Writes (once) a synthetic corpus in the WikiText format with WikiText-103's
size: 103,227,021 training tokens (``<eos>`` included) over a
267,735-word vocabulary drawn from a Zipf law (exponent 1), in paragraphs of
about 90 words separated by blank lines, so about 1.8M lines, as the real
file; valid and test of 217,646 and 245,569 tokens. Then, each in a fresh
process, it runs the first preparation (vocabulary, encoding, cache) and a
second, cached load, and prints one JSON line with the wall time and peak
resident memory of each.
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

from benchmarks import synthetic_text

_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Where the synthetic corpus and cache go.'
)
_TRAIN_TOKENS = flags.DEFINE_integer(
    'train_tokens',
    103_227_021,
    'Training tokens, <eos> included.',
    lower_bound=1000,
)
_VOCAB_SIZE = flags.DEFINE_integer(
    'vocab_size', 267_735, 'Word types, <eos> included.', lower_bound=10
)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the synthetic text.')

_SPLIT_TOKENS = {'valid': 217_646, 'test': 245_569}


def _measure(code: str) -> dict[str, float]:
  """Wall time and peak RSS of ``code`` run in a fresh Python process."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
  start = time.perf_counter()
  subprocess.run([sys.executable, '-c', code], check=True)
  wall = time.perf_counter() - start
  peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
  return {
      'wall_s': round(wall, 2),
      'peak_rss_mib': round(max(peak, before) / 1024, 1),
  }


def main(argv):
  """The command-line entry point; see the module docstring."""
  del argv
  if not _WORKDIR.value:
    raise app.UsageError('--workdir is required.')
  data_dir = os.path.join(_WORKDIR.value, 'data')
  cache_dir = os.path.join(_WORKDIR.value, 'cache')
  os.makedirs(data_dir, exist_ok=True)
  rng = np.random.default_rng(_SEED.value)
  sizes = dict(_SPLIT_TOKENS, train=_TRAIN_TOKENS.value)
  for split, num_tokens in sizes.items():
    path = os.path.join(data_dir, f'wiki.{split}.tokens')
    if not os.path.exists(path):
      synthetic_text.write_split(path, num_tokens, _VOCAB_SIZE.value, rng)
  subprocess.run(['rm', '-rf', cache_dir], check=True)
  code = (
      'from rmc.data import wikitext; '
      f'c = wikitext.load({data_dir!r}, cache_dir={cache_dir!r}); '
      'print(len(c.vocabulary), {k: int(v.size) for k, v in '
      'c.splits.items()})'
  )
  # ru_maxrss of children is a maximum over all of them: the first run is
  # the larger, so the second's figure is read from its own process.
  first = _measure(code)
  second_code = code + (
      '; import resource; print("rss", resource.getrusage('
      'resource.RUSAGE_SELF).ru_maxrss)'
  )
  start = time.perf_counter()
  out = subprocess.run(
      [sys.executable, '-c', second_code],
      check=True,
      capture_output=True,
      text=True,
  ).stdout
  second = {
      'wall_s': round(time.perf_counter() - start, 2),
      'peak_rss_mib': round(int(out.split('rss')[-1]) / 1024, 1),
  }
  with open(os.path.join(cache_dir, 'manifest.json')) as f:
    manifest = json.load(f)
  print(
      json.dumps(
          {
              'train_file_mib': round(
                  os.path.getsize(os.path.join(data_dir, 'wiki.train.tokens'))
                  / 2**20,
                  1,
              ),
              'vocab_size': manifest['vocab_size'],
              'tokens': {s: r['tokens'] for s, r in manifest['splits'].items()},
              'first_preparation': first,
              'cached_load': second,
          }
      )
  )


if __name__ == '__main__':
  app.run(main)
