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
"""Metrics to absl logging and to a JSON-lines file that survives a kill.

Each record is one JSON object on one line of ``<workdir>/metrics.jsonl``,
written with a single ``write`` and flushed to disk, with the wall-clock
``time`` (Unix seconds) it was written at. When a run resumes from the
checkpoint of step S, records after S (written after that checkpoint by the
interrupted run, and about to be written again) and any torn last line are
dropped, by rewriting the file atomically.

Optionally (``tensorboard_dir``) every record is also written as TensorBoard
scalars, through the ``tensorboardX`` package (``pip install
'rmc[tensorboard]'``): tag ``<split>/<name>``, where ``name`` is the record's
key without an ``eval_`` or ``test_`` prefix (``train/loss``,
``eval/accuracy``, ``test/perplexity``, ``evaluate/loss``), at the record's
step and time. The event files are made from ``metrics.jsonl``: a resumed run
writes the records it kept into a new event file and then deletes the old
ones, so TensorBoard shows every step once, however often the run was
interrupted.

Writers of one file (a training, and ``--mode=evaluate`` beside it) are
serialised by a short lock on ``<path>.lock``: an evaluation's record is
never lost to a resumed training's rewrite, nor torn by a concurrent append.
"""

import glob
import json
import math
import os
import struct
import time
from collections.abc import Sequence
from typing import Any

from absl import logging

from rmc.toolkit import atomic_file
from rmc.toolkit import workdir_lock

TENSORBOARD_DIR = 'tensorboard'
# The key of the Unix time at which the training process that wrote a record
# started: it tells the processes of a resumed run apart.
PROCESS_START_TIME = 'process_start_time'
_EVENTS_PATTERN = 'events.out.tfevents.*'


class TensorBoardMissingError(ImportError):
  """``tensorboardX`` is not installed."""

  def __init__(self):
    super().__init__(
        'Writing TensorBoard scalars needs the tensorboardX package: '
        "pip install 'rmc[tensorboard]' (or pip install tensorboardX)."
    )


def read_records(path: str) -> list[dict[str, Any]]:
  """Reads the complete records of a metrics file.

  A torn last line is skipped; an absent file has none.
  """
  if not os.path.exists(path):
    return []
  records = []
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f, 1):
      if not line.endswith('\n'):
        break  # Torn by a kill mid-write.
      try:
        records.append(json.loads(line))
      except ValueError:  # A torn line that a later writer appended after.
        logging.warning(
            'Skipping line %d of %s, which is not JSON: %r',
            number,
            path,
            line[:80],
        )
  return records


def with_total_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """The records, each with ``total_s``: seconds of training over processes.

  Each process of a resumed run counts ``elapsed_s`` from its own start, so
  where a new process begins, the previous process's last ``elapsed_s`` is
  added to the rest. A new process begins where ``process_start_time`` (the
  Unix time at which the writing training process started; see
  ``rmc.toolkit.training.train``) changes, or, in files written without it,
  where ``elapsed_s`` falls back. Records without ``elapsed_s`` (evaluations by
  ``--mode=evaluate``) get the running total.
  """
  total, offset, previous = [], 0.0, 0.0
  process = None
  for record in records:
    elapsed = record.get('elapsed_s')
    if elapsed is None:
      total.append(dict(record, total_s=offset + previous))
      continue
    started = record.get(PROCESS_START_TIME)
    changed = started is not None and process is not None and started != process
    if changed or elapsed < previous:
      offset += previous
    previous, process = elapsed, started
    total.append(dict(record, total_s=offset + elapsed))
  return total


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:.6g}'
  return str(value)


def tensorboard_scalars(record: dict[str, Any]) -> list[tuple[str, float]]:
  """The ``(tag, value)`` TensorBoard scalars of a metrics record.

  Every number but ``step``, ``time`` and ``process_start_time`` (booleans
  and None are skipped), tagged ``<split>/<key without an eval_ or test_
  prefix>``.
  """
  split = record.get('split', 'train')
  scalars = []
  for key, value in record.items():
    if (
        key in ('step', 'time', PROCESS_START_TIME)
        or isinstance(value, bool)
        or not isinstance(value, (int, float))
    ):
      continue
    for prefix in ('eval_', 'test_'):
      if key.startswith(prefix):
        key = key[len(prefix) :]
        break
    scalars.append((f'{split}/{key}', float(value)))
  return scalars


class TensorBoardWriter:
  """Writes metric records as TensorBoard scalars (with ``tensorboardX``)."""

  def __init__(
      self,
      logdir: str,
      records: Sequence[dict[str, Any]] = (),
      replace: bool = True,
  ):
    """Opens a new event file in ``logdir``, holding ``records``.

    Args:
      logdir: The TensorBoard log directory (created if missing).
      records: Records to write first (e.g. those of a resumed run).
      replace: Delete the event files already in ``logdir`` once
        ``records`` are written (they held the same records, or ones that a
        resumed run dropped).

    Raises:
      TensorBoardMissingError: If ``tensorboardX`` is not installed.
    """
    try:
      import tensorboardX  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise TensorBoardMissingError() from e
    os.makedirs(logdir, exist_ok=True)
    old = sorted(glob.glob(os.path.join(logdir, _EVENTS_PATTERN)))
    # Files are named events.out.tfevents.<second>.<host><suffix>, and read
    # in name order: the suffix keeps two writers of one second apart, in
    # the order they started.
    self._writer = tensorboardX.SummaryWriter(
        logdir,
        flush_secs=10**6,
        filename_suffix=f'.{time.time_ns():020d}.{os.getpid()}',
    )
    for record in records:
      self.write(record, flush=False)
    self._writer.flush()
    if replace:
      for name in old:
        os.remove(name)

  def write(self, record: dict[str, Any], flush: bool = True) -> None:
    """Writes the scalars of ``record`` at its step (and time)."""
    for tag, value in tensorboard_scalars(record):
      self._writer.add_scalar(
          tag, value, global_step=record['step'], walltime=record.get('time')
      )
    if flush:
      self._writer.flush()

  def close(self) -> None:
    """Closes the event file."""
    self._writer.close()


def read_tensorboard_scalars(logdir: str) -> list[tuple[str, int, float]]:
  """The ``(tag, step, value)`` scalars of the event files in ``logdir``.

  Files are read in name order (as TensorBoard does), records in file
  order; a torn last record is skipped.

  Raises:
    TensorBoardMissingError: If ``tensorboardX`` is not installed.
  """
  try:
    from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise TensorBoardMissingError() from e
  scalars = []
  for name in sorted(glob.glob(os.path.join(logdir, _EVENTS_PATTERN))):
    with open(name, 'rb') as f:
      data = f.read()
    offset = 0
    while offset + 12 <= len(data):  # A TFRecord: length, CRC, data, CRC.
      (length,) = struct.unpack('<Q', data[offset : offset + 8])
      end = offset + 12 + length + 4
      if end > len(data):
        break
      event = event_pb2.Event.FromString(data[offset + 12 : end - 4])
      for value in event.summary.value:
        scalars.append((value.tag, event.step, value.simple_value))
      offset = end
  return scalars


class MetricWriter:
  """Writes metric records to absl logging, metrics.jsonl and TensorBoard.

  TensorBoard only if asked (``tensorboard_dir``).
  """

  def __init__(
      self,
      path: str,
      resume_step: int | None = 0,
      write_file: bool = True,
      tensorboard_dir: str | None = None,
  ):
    """Opens ``path``, keeping only records with ``step <= resume_step``.

    Args:
      path: The JSON-lines file.
      resume_step: The step training resumes from (0 for a fresh run); None
        only appends, keeping every record (e.g. to add an evaluation).
      write_file: If False, records are only logged, and the files are left
        alone (e.g. in processes other than the one that writes).
      tensorboard_dir: If set, also write TensorBoard scalars there (see the
        module docstring): with a ``resume_step``, the kept records are
        written anew and the old event files deleted; with None, new records
        go to a new event file beside the others.

    Raises:
      TensorBoardMissingError: With ``tensorboard_dir``, if ``tensorboardX``
        is not installed.
    """
    self._path = path
    self._write_file = write_file
    self._tensorboard = None
    if not write_file:
      return
    with workdir_lock.file_lock(path):
      kept = self._keep(resume_step)
    if tensorboard_dir is not None:
      replace = resume_step is not None
      self._tensorboard = TensorBoardWriter(
          tensorboard_dir, kept if replace else [], replace=replace
      )

  def _keep(self, resume_step: int | None) -> list[dict[str, Any]]:
    """Drops records after ``resume_step`` and torn lines; returns the rest."""
    path = self._path
    kept = []
    if os.path.exists(path):
      records = read_records(path)
      kept = (
          records
          if resume_step is None
          else [r for r in records if r.get('step', 0) <= resume_step]
      )
      with open(path, 'rb') as f:
        content = f.read()
      torn = bool(content) and not content.endswith(b'\n')
      if resume_step is None:
        if torn:  # Start on a line of our own after a killed writer's.
          with open(path, 'ab') as f:
            f.write(b'\n')
      elif torn or len(kept) != content.count(b'\n'):
        self._rewrite(kept)  # Drops later, torn and unreadable lines.
    return kept

  @property
  def path(self) -> str:
    """The JSON-lines file."""
    return self._path

  def _rewrite(self, records: list[dict[str, Any]]) -> None:
    payload = ''.join(_line(r) for r in records).encode('utf-8')
    with atomic_file.write(self._path, size=len(payload)) as f:
      f.write(payload)

  def write(self, record: dict[str, Any]) -> None:
    """Logs ``record`` and appends it as one line to the file (if any).

    The line also holds ``time``, the Unix time of writing (unless
    ``record`` has one).
    """
    logging.info(
        '%s',
        ', '.join(
            f'{k}={_format(v)}'
            for k, v in record.items()
            if k != PROCESS_START_TIME
        ),
    )
    if not self._write_file:
      return
    record = dict(record, time=record.get('time', time.time()))
    line = _line(record).encode('utf-8')
    # Unbuffered, so that closing after a failed write has nothing to flush.
    with (
        workdir_lock.file_lock(self._path),
        open(self._path, 'ab', buffering=0) as f,
    ):
      start = f.tell()
      try:
        done = 0
        while done < len(line):  # A short write goes on; ENOSPC raises.
          done += f.write(line[done:])
        os.fsync(f.fileno())
      except OSError as e:
        if e.errno not in atomic_file.NO_SPACE:
          raise
        f.truncate(start)  # No torn line; every earlier line stays.
        raise atomic_file.DiskFullError(self._path, len(line)) from e
    if self._tensorboard is not None:
      self._tensorboard.write(record)

  def close(self) -> None:
    """Closes the TensorBoard event file, if any."""
    if self._tensorboard is not None:
      self._tensorboard.close()


def _line(record: dict[str, Any]) -> str:
  # NaN and Inf are written as null: the file stays strict JSON.
  clean = {
      k: (None if isinstance(v, float) and not math.isfinite(v) else v)
      for k, v in record.items()
  }
  return json.dumps(clean) + '\n'
