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
written with a single ``write`` and flushed to disk. When a run resumes from
the checkpoint of step S, records after S (written after that checkpoint by
the interrupted run, and about to be written again) and any torn last line are
dropped, by rewriting the file atomically.
"""

import json
import math
import os
from typing import Any

from absl import logging

from rmc import atomic_file


def read_records(path: str) -> list[dict[str, Any]]:
  """Reads the complete records of a metrics file (a torn last line is
  skipped); an absent file has none."""
  if not os.path.exists(path):
    return []
  records = []
  with open(path, encoding='utf-8') as f:
    for line in f:
      if not line.endswith('\n'):
        break  # Torn by a kill mid-write.
      records.append(json.loads(line))
  return records


def with_total_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """The records, each with ``total_s``: seconds of training over processes.

  Each process of a resumed run counts ``elapsed_s`` from its own start, so
  where ``elapsed_s`` falls back the previous process's last value is added
  to the rest. Records without ``elapsed_s`` get the running total.
  """
  total, offset, previous = [], 0.0, 0.0
  for record in records:
    elapsed = record.get('elapsed_s', previous)
    if elapsed < previous:
      offset += previous
    previous = elapsed
    total.append(dict(record, total_s=offset + elapsed))
  return total


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:.6g}'
  return str(value)


class MetricWriter:
  """Writes metric records to absl logging and ``metrics.jsonl``."""

  def __init__(self, path: str, resume_step: int = 0,
               write_file: bool = True):
    """Opens ``path``, keeping only records with ``step <= resume_step``.

    Args:
      path: The JSON-lines file.
      resume_step: The step training resumes from (0 for a fresh run).
      write_file: If False, records are only logged, and the file is left
        alone (e.g. in processes other than the one that writes).
    """
    self._path = path
    self._write_file = write_file
    if not write_file or not os.path.exists(path):
      return
    records = read_records(path)
    kept = [r for r in records if r.get('step', 0) <= resume_step]
    with open(path, 'rb') as f:
      torn = not f.read().endswith(b'\n') and os.path.getsize(path) > 0
    if torn or len(kept) != len(records):
      self._rewrite(kept)

  @property
  def path(self) -> str:
    """The JSON-lines file."""
    return self._path

  def _rewrite(self, records: list[dict[str, Any]]) -> None:
    payload = ''.join(_line(r) for r in records).encode('utf-8')
    with atomic_file.write(self._path, size=len(payload)) as f:
      f.write(payload)

  def write(self, record: dict[str, Any]) -> None:
    """Logs ``record`` and appends it as one line to the file (if any)."""
    logging.info('%s', ', '.join(
        f'{k}={_format(v)}' for k, v in record.items()))
    if not self._write_file:
      return
    line = _line(record).encode('utf-8')
    # Unbuffered, so that closing after a failed write has nothing to flush.
    with open(self._path, 'ab', buffering=0) as f:
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


def _line(record: dict[str, Any]) -> str:
  # NaN and Inf are written as null: the file stays strict JSON.
  clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
           for k, v in record.items()}
  return json.dumps(clean) + '\n'
