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
"""Tests for rmc.data.wikitext: reading, vocabulary, cache and batching."""

import hashlib
import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from rmc.data import wikitext

# WikiText-2's validation and test text, kept in the repository.
SUBSET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), 'data', 'wikitext-2-subset')

# A tiny corpus in the WikiText format: a leading space, headings, blank
# lines (a single space), split punctuation and numbers.
_TRAIN = (' \n'
          ' = Cats = \n'
          ' \n'
          ' the cat sat on the mat . \n'
          ' the dog @-@ like cat sat 1 @,@ 000 times . \n'
          ' \n'
          ' <unk> sat . \n')
_VALID = ' the zebra sat . \n the cat and the yak . \n'


def _write(directory, name, text, mode='w'):
  path = os.path.join(directory, name)
  with open(path, mode) as f:
    f.write(text)
  return path


class ReadingTest(parameterized.TestCase):

  def test_published_token_counts_of_the_wikitext_2_subset(self):
    corpus = wikitext.load(SUBSET, splits=('valid', 'test'),
                           vocab_split='valid',
                           cache_dir=self.create_tempdir().full_path)
    self.assertEqual(corpus.splits['valid'].size, 217_646)
    self.assertEqual(corpus.splits['test'].size, 245_569)
    # The valid text holds every one of its words.
    self.assertNotIn(-1, corpus.splits['valid'])
    vocabulary = corpus.vocabulary
    self.assertEqual(int(np.sum(vocabulary.counts)), 217_646)
    self.assertEqual(int(vocabulary.counts[vocabulary.id(wikitext.EOS)]),
                     3760)  # One per line, blank lines included.

  def test_the_subset_is_the_text_its_readme_names(self):
    with open(os.path.join(SUBSET, 'README.md')) as f:
      readme = f.read()
    for name in ('valid.txt', 'test.txt'):
      with open(os.path.join(SUBSET, name), 'rb') as f:
        data = f.read()
      self.assertIn(f'| `{name}` | {len(data):,} | '
                    f'`{hashlib.sha256(data).hexdigest()}` |', readme)
    self.assertTrue(os.path.isfile(os.path.join(SUBSET, 'LICENSE')))

  def test_vocabulary_order_eos_and_unk(self):
    directory = self.create_tempdir().full_path
    _write(directory, 'wiki.train.tokens', _TRAIN)
    vocabulary, ids = wikitext.build_vocabulary_and_encode(
        os.path.join(directory, 'wiki.train.tokens'))
    words = []
    for line in _TRAIN.split('\n')[:-1]:
      words += line.split() + ['<eos>']
    self.assertLen(ids, len(words))
    self.assertEqual([vocabulary.words[i] for i in ids], words)
    # Descending count; ties in order of first appearance.
    self.assertEqual(vocabulary.words[:6],
                     ('<eos>', 'the', 'sat', '.', '=', 'cat'))
    self.assertEqual(list(vocabulary.counts[:6]), [7, 3, 3, 3, 2, 2])
    self.assertTrue(np.all(np.diff(vocabulary.counts) <= 0))
    self.assertEqual(int(vocabulary.counts[vocabulary.id('<unk>')]), 1)
    self.assertIn('@-@', vocabulary.words)

  def test_unknown_words_become_unk_and_are_counted(self):
    directory = self.create_tempdir().full_path
    _write(directory, 'wiki.train.tokens', _TRAIN)
    _write(directory, 'wiki.valid.tokens', _VALID)
    cache = os.path.join(directory, 'cache')
    with self.assertLogs(level='INFO') as logs:
      corpus = wikitext.load(directory, splits=('valid',), cache_dir=cache)
    vocabulary = corpus.vocabulary
    expected = ['the', '<unk>', 'sat', '.', '<eos>', 'the', 'cat', '<unk>',
                'the', '<unk>', '.', '<eos>']
    self.assertEqual([vocabulary.words[i] for i in corpus.splits['valid']],
                     expected)
    self.assertTrue(any('3 not in the vocabulary' in m for m in logs.output))
    with open(os.path.join(cache, 'manifest.json')) as f:
      self.assertEqual(json.load(f)['splits']['valid']['unknown'], 3)

  def test_unk_is_added_when_training_has_none(self):
    directory = self.create_tempdir().full_path
    _write(directory, 'train.txt', ' a b a \n')
    vocabulary, _ = wikitext.build_vocabulary_and_encode(
        os.path.join(directory, 'train.txt'))
    self.assertEqual(vocabulary.words, ('a', 'b', '<eos>', '<unk>'))
    self.assertEqual(list(vocabulary.counts), [2, 1, 1, 0])

  def test_line_endings_and_a_missing_final_newline(self):
    directory = self.create_tempdir().full_path
    unix = _write(directory, 'unix.txt', ' a b \n \n c \n')
    windows = _write(directory, 'windows.txt', b' a b \r\n \r\n c ', 'wb')
    _, unix_ids = wikitext.build_vocabulary_and_encode(unix)
    vocabulary, windows_ids = wikitext.build_vocabulary_and_encode(windows)
    np.testing.assert_array_equal(unix_ids, windows_ids)
    self.assertEqual([vocabulary.words[i] for i in windows_ids],
                     ['a', 'b', '<eos>', '<eos>', 'c', '<eos>'])

  def test_blocks_cut_at_line_ends(self):
    directory = self.create_tempdir().full_path
    text = ''.join(f' w{i % 97} x{i % 13} \n' for i in range(5000))
    path = _write(directory, 'train.txt', text)
    old = wikitext._BLOCK_BYTES
    wikitext._BLOCK_BYTES = 1000  # Many blocks, each cut inside a line.
    try:
      vocabulary, ids = wikitext.build_vocabulary_and_encode(path)
    finally:
      wikitext._BLOCK_BYTES = old
    expected = text.replace('\n', ' <eos> ').split()
    self.assertEqual([vocabulary.words[i] for i in ids], expected)


class ErrorTest(parameterized.TestCase):

  def test_missing_directory(self):
    with self.assertRaisesRegex(wikitext.DataError,
                                r"'/nonexistent/wt' does not exist"):
      wikitext.load('/nonexistent/wt')

  def test_missing_split_names_the_files_tried(self):
    directory = self.create_tempdir().full_path
    _write(directory, 'wiki.train.tokens', _TRAIN)
    with self.assertRaisesRegex(
        wikitext.DataError,
        r"No 'valid' split in .*'wiki.valid.tokens', 'valid.txt'"):
      wikitext.load(directory, cache_dir=os.path.join(directory, 'c'))

  def test_empty_file(self):
    directory = self.create_tempdir().full_path
    path = _write(directory, 'wiki.train.tokens', '')
    with self.assertRaisesRegex(wikitext.DataError,
                                f'{path} is empty'):
      wikitext.load(directory, splits=('train',),
                    cache_dir=os.path.join(directory, 'c'))

  def test_non_utf8_names_file_and_line(self):
    directory = self.create_tempdir().full_path
    path = os.path.join(directory, 'wiki.train.tokens')
    with open(path, 'wb') as f:
      f.write(b' fine \n also fine \n caf\xe9 \n')
    with self.assertRaisesRegex(
        wikitext.DataError, f'{path}, line 3: not valid UTF-8'):
      wikitext.load(directory, splits=('train',),
                    cache_dir=os.path.join(directory, 'c'))

  def test_unwritable_cache_directory(self):
    directory = self.create_tempdir().full_path
    _write(directory, 'wiki.train.tokens', _TRAIN)
    with self.assertRaisesRegex(wikitext.DataError,
                                'Cannot create the cache directory'):
      wikitext.load(directory, splits=('train',),
                    cache_dir=os.path.join(directory, 'wiki.train.tokens',
                                           'cache'))


class CacheTest(absltest.TestCase):

  def test_reused_then_rebuilt_when_the_text_changes(self):
    directory = self.create_tempdir().full_path
    train = _write(directory, 'wiki.train.tokens', _TRAIN)
    _write(directory, 'wiki.valid.tokens', _VALID)
    cache = os.path.join(directory, 'cache')
    first = wikitext.load(directory, splits=('train', 'valid'),
                          cache_dir=cache)
    stamps = {f: os.stat(os.path.join(cache, f)).st_mtime_ns
              for f in os.listdir(cache)}
    # A touched but identical file is recognised by its SHA-256.
    os.utime(train, ns=(1, 1))
    second = wikitext.load(directory, splits=('train', 'valid'),
                           cache_dir=cache)
    self.assertEqual(first.vocabulary.words, second.vocabulary.words)
    for name in ('vocab.txt', 'train.npy', 'valid.npy'):
      self.assertEqual(os.stat(os.path.join(cache, name)).st_mtime_ns,
                       stamps[name], name)
    np.testing.assert_array_equal(first.splits['valid'],
                                  second.splits['valid'])
    # Changed text: everything is rebuilt from it.
    _write(directory, 'wiki.train.tokens', ' yak yak zebra \n')
    third = wikitext.load(directory, splits=('train', 'valid'),
                          cache_dir=cache)
    self.assertEqual(third.vocabulary.words,
                     ('yak', 'zebra', '<eos>', '<unk>'))
    self.assertEqual([third.vocabulary.words[i]
                      for i in third.splits['valid'][:4]],
                     ['<unk>', 'zebra', '<unk>', '<unk>'])


class BatchingTest(parameterized.TestCase):

  @parameterized.parameters((4, 5), (3, 7), (1, 10))
  def test_train_stream_columns_and_resets(self, batch_size, unroll):
    tokens = np.arange(1000, dtype=np.int32) * 7 % 1009
    stream = wikitext.TrainStream(tokens, batch_size, unroll)
    column = (tokens.size - 1) // batch_size
    segments = stream.segments_per_epoch
    self.assertEqual(segments, column // unroll)
    batches = stream.batches(0, 2 * segments + 1)  # Two epochs and a bit.
    self.assertEqual(batches['inputs'].shape,
                     (2 * segments + 1, unroll, batch_size))
    for b in range(batch_size):
      read = batches['inputs'][:segments, :, b].reshape(-1)
      np.testing.assert_array_equal(
          read, tokens[b * column:b * column + segments * unroll])
      np.testing.assert_array_equal(
          batches['targets'][:segments, :, b].reshape(-1),
          tokens[b * column + 1:b * column + segments * unroll + 1])
    # The second epoch repeats the first, and resets mark epoch starts.
    np.testing.assert_array_equal(batches['inputs'][segments:2 * segments],
                                  batches['inputs'][:segments])
    expected_reset = np.zeros(2 * segments + 1, bool)
    expected_reset[[0, segments, 2 * segments]] = True
    np.testing.assert_array_equal(batches['reset'],
                                  np.repeat(expected_reset[:, None],
                                            batch_size, axis=1))
    # Any window of steps reads the same segments.
    window = stream.batches(segments - 1, 3)
    for key in window:
      np.testing.assert_array_equal(window[key],
                                    batches[key][segments - 1:segments + 2])

  def test_train_stream_reads_only_its_columns(self):
    tokens = np.arange(1000, dtype=np.int32)
    whole = wikitext.TrainStream(tokens, 4, 5).batches(3, 2)
    part = wikitext.TrainStream(tokens, 4, 5, columns=slice(2, 4))
    self.assertEqual(part.tokens_per_step, 20)  # Of the whole batch.
    got = part.batches(3, 2)
    for key in ('inputs', 'targets'):
      np.testing.assert_array_equal(got[key], whole[key][:, :, 2:4])
    np.testing.assert_array_equal(got['reset'], whole['reset'][:, 2:4])

  def test_train_stream_too_short(self):
    with self.assertRaisesRegex(ValueError, 'too few'):
      wikitext.TrainStream(np.zeros(20, np.int32), 4, 5)

  @parameterized.parameters((1, 7), (3, 4), (5, 10), (50, 3))
  def test_eval_segments_score_every_token_once(self, batch_size, unroll):
    tokens = (np.arange(101, dtype=np.int32) * 13) % 50 + 1
    eos = 0
    segments = wikitext.eval_segments(tokens, batch_size, unroll, eos)
    mask = segments['mask'].astype(bool)
    self.assertEqual(int(mask.sum()), tokens.size)
    # Reading column by column, in segment order, gives the stream in order.
    targets = segments['targets'].transpose(2, 0, 1).reshape(batch_size, -1)
    inputs = segments['inputs'].transpose(2, 0, 1).reshape(batch_size, -1)
    valid = mask.transpose(2, 0, 1).reshape(batch_size, -1)
    np.testing.assert_array_equal(targets[valid], tokens)
    np.testing.assert_array_equal(inputs[valid],
                                  np.concatenate([[eos], tokens[:-1]]))
    # Padding only at the end of each column.
    for row in valid:
      self.assertTrue(np.all(row[:row.sum()]))


if __name__ == '__main__':
  absltest.main()
