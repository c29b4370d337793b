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
"""Synthetic text in the WikiText format, for benchmarks at WikiText scale.

Words ``w0, w1, ...`` (``w5`` is ``<unk>``, as in WikiText a frequent
ordinary word) drawn from a Zipf law of exponent 1, in paragraph lines of
about 90 words separated by blank lines.
"""

import os

import numpy as np


def write_split(
    path: str,
    num_tokens: int,
    vocab_size: int,
    rng: np.random.Generator,
    cover_vocabulary: bool = False,
) -> None:
  """Writes ``num_tokens`` (``<eos>`` included) of Zipf-distributed words.

  Args:
    path: The file, in the WikiText format; replaced when complete.
    num_tokens: Tokens, ``<eos>`` included (one per line).
    vocab_size: Word types, ``<eos>`` included.
    rng: The source of the text.
    cover_vocabulary: Start with every word once (lines of 90 words), so that
      a vocabulary built from this split has all ``vocab_size`` types however
      short it is; those tokens count in ``num_tokens``.
  """
  words = np.array([f'w{i}' for i in range(vocab_size - 1)], dtype=object)
  words[5] = '<unk>'  # As in WikiText, a frequent ordinary word.
  probs = 1.0 / np.arange(1, vocab_size, dtype=np.float64)
  cdf = np.cumsum(probs / probs.sum())
  written = 0
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    if cover_vocabulary:
      for start in range(0, words.size, 90):
        line = words[start : start + 90]
        f.write(' ' + ' '.join(line) + ' \n')
        written += line.size + 1
    while written < num_tokens:
      # A paragraph line of ~90 words and a blank line: two <eos>.
      lengths = np.maximum(1, rng.poisson(90, size=10_000))
      ids = np.searchsorted(cdf, rng.random(int(lengths.sum())))
      ids = np.minimum(ids, vocab_size - 2)
      tokens = words[ids]
      lines, start = [], 0
      for length in lengths:
        if written + length + 2 > num_tokens:
          length = max(0, num_tokens - written - 1)
        lines.append(' ' + ' '.join(tokens[start : start + length]) + ' \n')
        start += length
        written += length + 1
        if written >= num_tokens:
          break
        lines.append(' \n')
        written += 1
        if written >= num_tokens:
          break
      f.write(''.join(lines))
  os.replace(path + '.tmp', path)
