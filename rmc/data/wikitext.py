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
"""WikiText word-level language-modelling data.

The standard convention (PyTorch ``word_language_model``, AWD-LSTM,
Transformer-XL, fairseq), which reproduces the published token counts:

* every line is split on whitespace and followed by ``<eos>``, blank lines
  included;
* the vocabulary comes from the training split only, sorted by descending
  frequency (ties in order of first appearance), with ``<eos>`` and ``<unk>``
  ordinary words; ``<unk>`` is appended (count 0) if training has none;
* words of other splits missing from the vocabulary become ``<unk>``, and
  their number is logged.

:func:`load` encodes each split once into an int32 ``.npy`` cache, with the
vocabulary as ``vocab.txt`` (``word<TAB>count`` per line, in id order) and a
``manifest.json`` recording the sources' sizes, times and SHA-256. Later runs
memory-map the cache; a changed source rebuilds it. Preparation streams the
text in blocks and the ids to disk, so memory holds one block and the
vocabulary, not the corpus.

:class:`TrainStream` cuts the training stream into time-major truncated-BPTT
segments; :func:`eval_segments` lays out a split so that every token is
scored exactly once.
"""

import dataclasses
import hashlib
import io
import itertools
import json
import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from absl import logging
import numpy as np

from rmc.toolkit import atomic_file

EOS = '<eos>'
UNK = '<unk>'
FORMAT_VERSION = 1
_BLOCK_BYTES = 16 << 20  # Text is read and encoded in blocks of ~16 MiB.
_REMAP_CHUNK = 1 << 22  # Ids renumbered per chunk, to bound temporaries.
_HEADER_BYTES = 128  # Room for the .npy header, written when the size is known.


class DataError(ValueError):
  """A data directory, file or cache that cannot be used, named in full."""


def split_path(data_dir: str, split: str) -> str:
  """The text file of ``split``: ``wiki.{split}.tokens`` or ``{split}.txt``.

  Raises:
    DataError: If ``data_dir`` is not a directory or holds neither file.
  """
  if not os.path.isdir(data_dir):
    raise DataError(
        f'Data directory {data_dir!r} does not exist or is not a directory.'
    )
  candidates = [
      os.path.join(data_dir, f'wiki.{split}.tokens'),
      os.path.join(data_dir, f'{split}.txt'),
  ]
  for path in candidates:
    if os.path.isfile(path):
      return path
  raise DataError(
      f'No {split!r} split in {data_dir!r}: expected one of '
      f'{[os.path.basename(c) for c in candidates]}.'
  )


def _text_blocks(path: str) -> Iterator[str]:
  r"""Yields the UTF-8 text of ``path`` in blocks that end at line ends.

  Line breaks are normalised as Python's text mode does (``\\r\\n`` and
  ``\\r`` become ``\\n``), and a final line without a newline gets one.

  Raises:
    DataError: If the file is empty or not valid UTF-8 (naming the line).
  """
  if os.path.getsize(path) == 0:
    raise DataError(f'{path} is empty.')
  line = 1  # First line of the current block.
  with open(path, 'rb') as f:
    rest = b''
    while True:
      block = f.read(_BLOCK_BYTES)
      at_end = not block
      block = rest + block
      if not at_end:
        cut = block.rfind(b'\n') + 1
        if cut == 0:  # No line end yet: read on.
          rest = block
          continue
        block, rest = block[:cut], block[cut:]
      elif not block:
        return
      try:
        text = block.decode('utf-8')
      except UnicodeDecodeError as e:
        bad_line = line + block.count(b'\n', 0, e.start)
        raise DataError(
            f'{path}, line {bad_line}: not valid UTF-8 ({e.reason}, byte '
            f'{block[e.start:e.start + 1]!r}).'
        ) from e
      line += block.count(b'\n')
      if '\r' in text:
        text = text.replace('\r\n', '\n').replace('\r', '\n')
      if not text.endswith('\n'):
        text += '\n'
      yield text
      if at_end:
        return


def _words(text: str) -> list[str]:
  """The words of a block of whole lines, ``<eos>`` after every line."""
  return text.replace('\n', f' {EOS} ').split()


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """Words in id order (descending training frequency) and their counts.

  Attributes:
    words: The word of each id.
    counts: Training-split count of each word, int64 ``[V]``.
  """

  words: tuple[str, ...]
  counts: np.ndarray
  _index: dict[str, int] = dataclasses.field(
      init=False, repr=False, compare=False
  )

  def __post_init__(self):
    index = {w: i for i, w in enumerate(self.words)}
    if len(index) != len(self.words):
      raise DataError('The vocabulary has repeated words.')
    object.__setattr__(self, '_index', index)

  def __len__(self) -> int:
    return len(self.words)

  def id(self, word: str) -> int:
    """The id of ``word``; raises KeyError for a word not in the vocabulary."""
    return self._index[word]

  @property
  def index(self) -> dict[str, int]:
    """``{word: id}``."""
    return self._index

  def save(self, path: str) -> None:
    """Writes ``word<TAB>count`` lines in id order, atomically."""
    lines = ''.join(
        f'{w}\t{c}\n' for w, c in zip(self.words, self.counts, strict=True)
    )
    _atomic_write(path, lines.encode('utf-8'))

  @classmethod
  def load(cls, path: str) -> 'Vocabulary':
    """Reads a file written by :meth:`save`."""
    words, counts = [], []
    with open(path, encoding='utf-8') as f:
      for number, line in enumerate(f, 1):
        word, tab, count = line.rstrip('\n').partition('\t')
        if not tab or not word or not count.isdigit():
          raise DataError(
              f'{path}, line {number}: expected '
              f'"word<TAB>count", got {line!r}.'
          )
        words.append(word)
        counts.append(int(count))
    return cls(tuple(words), np.asarray(counts, np.int64))


class _NpyWriter:
  """Streams int32 ids into an open ``.npy`` file.

  The ids are written block by block, so memory holds one block, not the
  whole split; the header, which needs the final length, is written into a
  reserved slot by :meth:`finish`.
  """

  def __init__(self, file: BinaryIO):
    self._file = file
    self._file.write(b'\0' * _HEADER_BYTES)
    self.size = 0

  def write(self, ids: np.ndarray) -> None:
    self._file.write(np.ascontiguousarray(ids, '<i4').tobytes())
    self.size += ids.size

  def finish(self) -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        buffer, {'descr': '<i4', 'fortran_order': False, 'shape': (self.size,)}
    )
    header = buffer.getvalue()
    if len(header) > _HEADER_BYTES:
      raise DataError(f'Internal error: .npy header of {len(header)} bytes.')
    # Pad the header with spaces before its final newline to fill the slot.
    header = header[:-1] + b' ' * (_HEADER_BYTES - len(header)) + b'\n'
    header = header[:8] + struct.pack('<I', _HEADER_BYTES - 12) + header[12:]
    self._file.seek(0)
    self._file.write(header)


def _read_chunks(path: str, size: int) -> Iterator[np.ndarray]:
  """Reads a raw int32 file in chunks of ``_REMAP_CHUNK``."""
  with open(path, 'rb') as f:
    for start in range(0, size, _REMAP_CHUNK):
      yield np.fromfile(f, np.int32, count=min(_REMAP_CHUNK, size - start))


def build_vocabulary_and_encode(
    path: str, ids_path: str | None = None
) -> tuple[Vocabulary, np.ndarray]:
  """Builds the vocabulary of a training file and encodes it.

  One pass over the text gives words provisional ids in order of first
  appearance (streamed to a scratch file) and their counts; the counts give
  the frequency order (stable, so ties keep first-appearance order), and a
  second pass over the scratch ids renumbers them into ``ids_path``. Memory
  holds one block of text and ids, not the corpus.

  Args:
    path: The training text.
    ids_path: Where the ids go (``.npy``); if None, they are returned in
      memory.

  Returns:
    ``(vocabulary, ids)``: ids int32 ``[num_tokens]``, memory-mapped from
    ``ids_path`` when given.
  """
  if ids_path is None:
    with tempfile.TemporaryDirectory() as scratch:
      vocabulary, ids = build_vocabulary_and_encode(
          path, os.path.join(scratch, 'ids.npy')
      )
      return vocabulary, np.array(ids)
  index: dict[str, int] = {}
  counts = np.zeros(0, np.int64)
  size = 0
  with tempfile.TemporaryDirectory(
      dir=os.path.dirname(os.path.abspath(ids_path))
  ) as scratch:
    raw_path = os.path.join(scratch, 'provisional.i32')
    with open(raw_path, 'wb') as raw:
      for text in _text_blocks(path):
        words = _words(text)
        for word in dict.fromkeys(words):  # New words, in order of appearance.
          if word not in index:
            index[word] = len(index)
        ids = np.fromiter(
            map(index.__getitem__, words), np.int32, count=len(words)
        )
        counts = np.pad(counts, (0, len(index) - counts.size))
        counts += np.bincount(ids, minlength=len(index))
        raw.write(ids.tobytes())
        size += ids.size
    order = np.argsort(-counts, kind='stable')  # Final id -> provisional id.
    remap = np.empty_like(order, dtype=np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    with atomic_file.write(ids_path, suffix='.npy') as f:
      writer = _NpyWriter(f)
      for chunk in _read_chunks(raw_path, size):
        writer.write(remap[chunk])
      writer.finish()
  provisional_words = list(index)
  words = [provisional_words[i] for i in order]
  counts = counts[order]
  if UNK not in index:
    logging.info('%s has no %s; appending it to the vocabulary.', path, UNK)
    words.append(UNK)
    counts = np.append(counts, 0)
  return (Vocabulary(tuple(words), counts), np.load(ids_path, mmap_mode='r'))


def encode(
    path: str, vocabulary: Vocabulary, ids_path: str | None = None
) -> tuple[np.ndarray, int]:
  """Encodes a file with a fixed vocabulary; unknown words become ``<unk>``.

  Args:
    path: The text.
    vocabulary: The vocabulary.
    ids_path: Where the ids go (``.npy``, streamed block by block); if None,
      they are returned in memory.

  Returns:
    ``(ids, num_unknown)``: int32 ``[num_tokens]`` (memory-mapped from
    ``ids_path`` when given) and how many words were not in the vocabulary.
  """
  if ids_path is None:
    with tempfile.TemporaryDirectory() as scratch:
      ids, num_unknown = encode(
          path, vocabulary, os.path.join(scratch, 'ids.npy')
      )
      return np.array(ids), num_unknown
  index, unk = vocabulary.index, vocabulary.id(UNK)
  num_unknown = 0
  with atomic_file.write(ids_path, suffix='.npy') as f:
    writer = _NpyWriter(f)
    for text in _text_blocks(path):
      words = _words(text)
      ids = np.fromiter(
          map(index.get, words, itertools.repeat(-1)),
          np.int32,
          count=len(words),
      )
      unknown = ids < 0
      num_unknown += int(unknown.sum())
      ids[unknown] = unk
      writer.write(ids)
    writer.finish()
  return np.load(ids_path, mmap_mode='r'), num_unknown


def _atomic_write(path: str, payload: bytes) -> None:
  with atomic_file.write(path, size=len(payload)) as f:
    f.write(payload)


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    while block := f.read(1 << 24):
      digest.update(block)
  return digest.hexdigest()


def _source_record(path: str) -> dict[str, object]:
  """What identifies a source text: its path, size, time and SHA-256."""
  stat = os.stat(path)
  return {
      'path': os.path.abspath(path),
      'size': stat.st_size,
      'mtime_ns': stat.st_mtime_ns,
      'sha256': _sha256(path),
  }


def _unchanged(record: dict[str, object], path: str) -> bool:
  """Whether ``path`` still holds the text ``record`` was made from."""
  stat = os.stat(path)
  if stat.st_size != record['size']:
    return False
  if stat.st_mtime_ns == record['mtime_ns']:
    return True
  return _sha256(path) == record['sha256']  # Touched or copied: compare text.


@dataclasses.dataclass(frozen=True)
class Corpus:
  """An encoded corpus.

  Attributes:
    vocabulary: The training vocabulary.
    splits: ``{split: int32 [num_tokens]}``, memory-mapped from the cache.
    cache_dir: Where the cache lives.
    sources: ``{split: record}`` of the text each loaded split (and the
      vocabulary's split) was encoded from: ``sha256``, ``size`` (bytes),
      ``tokens`` and ``unknown`` (tokens not in the vocabulary).
  """

  vocabulary: Vocabulary
  splits: dict[str, np.ndarray]
  cache_dir: str
  sources: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

  def fingerprint(self) -> dict[str, Any]:
    """What identifies the corpus.

    The vocabulary's size and SHA-256 (of its words in id order) and each
    split's SHA-256 and token count.
    """
    words = '\n'.join(self.vocabulary.words).encode('utf-8')
    return {
        'vocab_size': len(self.vocabulary),
        'vocab_sha256': hashlib.sha256(words).hexdigest(),
        'sources': {
            split: {'sha256': record['sha256'], 'tokens': record['tokens']}
            for split, record in sorted(self.sources.items())
        },
    }


def load(
    data_dir: str,
    splits: Sequence[str] = ('train', 'valid', 'test'),
    vocab_split: str = 'train',
    cache_dir: str | None = None,
) -> Corpus:
  """Loads (encoding once, then from the cache) the splits of a corpus.

  Args:
    data_dir: Holds ``wiki.{split}.tokens`` or ``{split}.txt`` files.
    splits: Splits to load.
    vocab_split: The split the vocabulary is built from (``train`` for
      WikiText; another for small experiments, e.g. the shared WikiText-2
      ``valid.txt``).
    cache_dir: Cache directory; by default ``<data_dir>/rmc_cache``. The
      cache of another vocabulary source is replaced.

  Returns:
    The :class:`Corpus`.

  Raises:
    DataError: For a missing directory or split, an empty or non-UTF-8
      file, or a cache directory that cannot be written.
  """
  sources = {s: split_path(data_dir, s) for s in (vocab_split, *splits)}
  cache_dir = cache_dir or os.path.join(data_dir, 'rmc_cache')
  try:
    os.makedirs(cache_dir, exist_ok=True)
  except OSError as e:
    raise DataError(
        f'Cannot create the cache directory {cache_dir!r} ({e}); '
        'pass a writable cache directory.'
    ) from e
  if not os.access(cache_dir, os.W_OK):
    raise DataError(
        f'The cache directory {cache_dir!r} is not writable; '
        'pass a writable cache directory.'
    )
  manifest_path = os.path.join(cache_dir, 'manifest.json')
  vocab_path = os.path.join(cache_dir, 'vocab.txt')
  manifest = None
  if os.path.exists(manifest_path):
    with open(manifest_path, encoding='utf-8') as f:
      manifest = json.load(f)
    vocab_record = manifest.get('splits', {}).get(vocab_split)
    if (
        manifest.get('format') != FORMAT_VERSION
        or manifest.get('vocab_split') != vocab_split
        or vocab_record is None
        or not _unchanged(vocab_record, sources[vocab_split])
    ):
      logging.info('The cache in %s is stale; rebuilding it.', cache_dir)
      manifest = None

  if manifest is None:
    vocabulary, ids = build_vocabulary_and_encode(
        sources[vocab_split], os.path.join(cache_dir, f'{vocab_split}.npy')
    )
    vocabulary.save(vocab_path)
    manifest = {
        'format': FORMAT_VERSION,
        'vocab_split': vocab_split,
        'vocab_size': len(vocabulary),
        'splits': {
            vocab_split: dict(
                _source_record(sources[vocab_split]),
                tokens=int(ids.size),
                unknown=0,
            )
        },
    }
    _atomic_write(manifest_path, json.dumps(manifest, indent=1).encode())
    logging.info(
        'Encoded %s: %d tokens, vocabulary of %d words.',
        sources[vocab_split],
        ids.size,
        len(vocabulary),
    )
  vocabulary = Vocabulary.load(vocab_path)

  for split in splits:
    record = manifest['splits'].get(split)
    if record is not None and _unchanged(record, sources[split]):
      continue
    ids, num_unknown = encode(
        sources[split], vocabulary, os.path.join(cache_dir, f'{split}.npy')
    )
    manifest['splits'][split] = dict(
        _source_record(sources[split]),
        tokens=int(ids.size),
        unknown=num_unknown,
    )
    _atomic_write(manifest_path, json.dumps(manifest, indent=1).encode())
    logging.info(
        'Encoded %s: %d tokens, %d not in the vocabulary (now %s).',
        sources[split],
        ids.size,
        num_unknown,
        UNK,
    )

  arrays = {}
  for split in splits:
    arrays[split] = np.load(
        os.path.join(cache_dir, f'{split}.npy'), mmap_mode='r'
    )
    if arrays[split].size != manifest['splits'][split]['tokens']:
      raise DataError(
          f'The cache file {split}.npy in {cache_dir} does not '
          'match its manifest; delete the directory to rebuild.'
      )
  records: dict[str, dict[str, Any]] = {
      split: {
          key: manifest['splits'][split][key]
          for key in ('sha256', 'size', 'tokens', 'unknown')
      }
      for split in (vocab_split, *splits)
  }
  return Corpus(vocabulary, arrays, cache_dir, records)


class TrainStream:
  """Time-major truncated-BPTT segments of a training stream.

  The stream is laid out in ``B`` contiguous columns of ``L = (N - 1) // B``
  inputs each (the standard "batchify"; up to ``B`` trailing tokens are left
  out). Step ``s`` reads segment ``s mod S`` of ``S = L // T`` segments, so
  the data position is a function of the step and resume is exact. Every
  epoch starts each column afresh: ``reset`` is true on a segment 0.

  Implements the toolkit's ``HostData`` protocol (no state beyond the step).
  A process that trains on some of the columns (``columns``) reads only its
  contiguous part of the stream.
  """

  def __init__(
      self,
      tokens: np.ndarray,
      batch_size: int,
      unroll_length: int,
      columns: slice | None = None,
  ):
    """Constructs the stream.

    Args:
      tokens: int32 ``[N]`` token ids.
      batch_size: Columns ``B`` (all processes together).
      unroll_length: Segment length ``T`` (time steps).
      columns: The columns to read (this process's part); all ``B`` by
        default.

    Raises:
      ValueError: If ``batch_size`` or ``unroll_length`` is below 1.
      DataError: If the stream holds less than one segment per column.
    """
    if batch_size < 1 or unroll_length < 1:
      raise ValueError(
          f'batch_size and unroll_length must be >= 1; got '
          f'{batch_size} and {unroll_length}.'
      )
    self._tokens = tokens
    self._batch_size = batch_size
    self._unroll = unroll_length
    self._column_length = (tokens.size - 1) // batch_size
    self.segments_per_epoch = self._column_length // unroll_length
    if self.segments_per_epoch < 1:
      raise DataError(
          f'{tokens.size} tokens are too few for batch_size={batch_size} x '
          f'unroll_length={unroll_length}; need at least '
          f'{batch_size * unroll_length + 1}.'
      )
    self._starts = (
        np.arange(batch_size)[columns or slice(None)] * self._column_length
    )  # [B'], B' columns read here.

  @property
  def tokens_per_step(self) -> int:
    """Target tokens per training step, ``T * B``."""
    return self._unroll * self._batch_size

  def batches(self, first_step: int, num_steps: int) -> dict[str, np.ndarray]:
    """Segments of steps ``first_step ..``.

    Returns:
      ``inputs`` and ``targets`` int32 ``[S, T, B']``, ``reset`` bool
      ``[S, B']``, for the ``B'`` columns read here.
    """
    segment = (first_step + np.arange(num_steps)) % self.segments_per_epoch
    offsets = (
        segment[:, None, None] * self._unroll
        + np.arange(self._unroll)[None, :, None]
        + self._starts[None, None, :]
    )  # [S, T, B]
    reset = np.broadcast_to(
        (segment == 0)[:, None], (num_steps, self._starts.size)
    )
    return {
        'inputs': np.asarray(self._tokens[offsets], np.int32),
        'targets': np.asarray(self._tokens[offsets + 1], np.int32),
        'reset': np.ascontiguousarray(reset),
    }

  def state(self) -> dict[str, np.ndarray]:
    """What a checkpoint keeps of this data."""
    return {}

  def restore(self, state: dict[str, np.ndarray]) -> None:
    """Continues from what :meth:`state` returned."""
    del state

  def observe(self, record: dict[str, object]) -> None:
    """Sees a logged training record (e.g. to advance a curriculum)."""
    del record


def eval_segments(
    tokens: np.ndarray, batch_size: int, unroll_length: int, eos_id: int
) -> dict[str, np.ndarray]:
  """Lays out a split so that every token is a target exactly once.

  The first token is predicted from ``<eos>`` (the stream starts after a line
  end), so the number of scored targets equals the number of tokens. The
  ``N`` targets are cut into ``B`` contiguous columns of ``ceil(N / B)``,
  padded to whole segments of ``T``; ``mask`` is 0 on padding. A model
  evaluates the segments in order, carrying its state through each column
  (each column starts from the initial state; ``batch_size=1`` carries it
  through the whole split, as the paper evaluates).

  Args:
    tokens: int32 ``[N]``.
    batch_size: Columns ``B``.
    unroll_length: Segment length ``T``.
    eos_id: Id of ``<eos>``.

  Returns:
    ``inputs``, ``targets`` int32 and ``mask`` float32, each
    ``[S, T, B]``.
  """
  if batch_size < 1 or unroll_length < 1:
    raise ValueError(
        f'batch_size and unroll_length must be >= 1; got '
        f'{batch_size} and {unroll_length}.'
    )
  num = tokens.size
  column = -(-num // batch_size)
  num_segments = -(-column // unroll_length)
  padded = num_segments * unroll_length
  inputs = np.concatenate([[eos_id], tokens[:-1]]).astype(np.int32)
  position = (
      np.arange(batch_size)[None, :] * column + np.arange(padded)[:, None]
  )  # [S*T, B], stream positions.
  valid = (position < num) & (np.arange(padded)[:, None] < column)
  position = np.where(valid, position, 0)
  shape = (num_segments, unroll_length, batch_size)
  return {
      'inputs': np.where(valid, inputs[position], 0).reshape(shape),
      'targets': np.where(valid, tokens[position], 0)
      .reshape(shape)
      .astype(np.int32),
      'mask': valid.astype(np.float32).reshape(shape),
  }
