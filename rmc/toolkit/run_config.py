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
"""A run's resolved configuration, saved as ``<workdir>/config.json``.

Every experiment binary writes the file (atomically) when it starts training,
so that a trained run can be evaluated, sampled or loaded
(:func:`rmc.load_run`) from its work directory alone. It is one JSON object:

* ``binary``: ``nth_farthest``, ``learn_to_execute`` or ``wikitext103``.
* ``seed``: ``--seed``.
* ``hyperparameters``: every hyperparameter flag, resolved (the ``preset``,
  then the flags given), and ``compute_dtype``.
* ``core``: the recurrent core, ``{'type': 'rmc', 'kwargs': {...}}`` with the
  arguments of :class:`rmc.RelationalMemory`, ``{'type': 'dnc', 'kwargs':
  {...}}`` with those of :class:`rmc.DNC`, or ``{'type': 'lstm',
  'hidden_size': H}``.
* ``parameters``: ``{'core': C, 'model': M}``, how many parameters the
  recurrent cores (Learning to Execute's encoder and decoder together when
  they are separate) and the whole model have.
* ``data``: what the data is (e.g. the corpus's files and their SHA-256).
* ``run``: how this process runs (devices, processes, TensorBoard).
* ``code``: the rmc version, its git commit if it is a checkout, and the
  versions of Python, JAX and Haiku.

Resuming compares the saved file with the new configuration. A difference in
``binary``, ``seed``, ``hyperparameters`` or ``data`` (it would train another
model, or on other data) is a :class:`ConfigMismatchError` naming every
differing key, except for the keys of :data:`RESUMABLE_HYPERPARAMETERS` and
:data:`RESUMABLE_DATA` (budgets, cadences, the preset's name and where the
files are), which may change, as may ``run`` and ``code``: those changes are
logged and the file is rewritten with them (``parameters``, like ``core``,
follows from the hyperparameters). A hyperparameter of
:data:`ADDED_HYPERPARAMETERS` missing from the saved file (a run from before
it existed) is not a difference. (``core`` is made from the
hyperparameters, so it is not compared on its own.)
"""

import json
import os
import platform
import subprocess
from collections.abc import Callable
from typing import Any

from absl import logging
import haiku
import jax

from rmc.toolkit import atomic_file
from rmc.version import __version__

CONFIG_FILE = 'config.json'
FORMAT_VERSION = 1

# Hyperparameters a resumed run may change: its budgets and cadences, and
# the preset's name (its values are compared one by one).
RESUMABLE_HYPERPARAMETERS = (
    'preset',
    'num_steps',
    'time_budget_s',
    'steps_per_chunk',
    'log_every',
    'eval_every',
    'checkpoint_every',
    'keep_checkpoints',
)
# Hyperparameters added after the first config.json format: a saved file
# without one is from a run that predates it, whose core (an RMC or LSTM)
# does not use it, so its absence there is not a difference.
ADDED_HYPERPARAMETERS = (
    'dnc_memory_size',
    'dnc_word_size',
    'dnc_num_reads',
    'dnc_num_writes',
    'dnc_controller_size',
    'dnc_controller_layers',
    'dnc_clip_value',
    'dnc_strength_activation',
)
# Data entries that may change: where the same files are.
RESUMABLE_DATA = ('data_dir', 'cache_dir')
# The sections compared on resume ('core' is not: it is made from the
# hyperparameters, whose differences are named).
_FIXED_SECTIONS = ('binary', 'seed', 'hyperparameters', 'data')


class ConfigError(ValueError):
  """A work directory's config.json is missing or unreadable."""


class ConfigMismatchError(ConfigError):
  """The flags of a resumed run would change its model or data."""


def path(workdir: str) -> str:
  """``<workdir>/config.json``."""
  return os.path.join(workdir, CONFIG_FILE)


def code_version() -> dict[str, Any]:
  """The versions of rmc (and its git commit), Python, JAX and Haiku."""
  version: dict[str, Any] = {
      'rmc': __version__,
      'git_commit': None,
      'git_dirty': None,
      'python': platform.python_version(),
      'jax': jax.__version__,
      'haiku': haiku.__version__,
  }
  source = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))

  def git(*args):
    return subprocess.run(
        ['git', *args],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.strip()

  try:
    # Only rmc's own checkout: an installed copy may sit inside another repo.
    if os.path.realpath(git('rev-parse', '--show-toplevel')) != source:
      return version
    commit = git('rev-parse', 'HEAD')
    dirty = bool(git('status', '--porcelain', '--untracked-files=no'))
  except (OSError, subprocess.SubprocessError):
    return version  # Not a git checkout (e.g. installed), or no git.
  version.update(git_commit=commit, git_dirty=dirty)
  return version


def write(workdir: str, config: dict[str, Any]) -> str:
  """Writes ``config`` to ``<workdir>/config.json`` atomically.

  Returns:
    The path written.
  """
  payload = (json.dumps(config, indent=1, sort_keys=True) + '\n').encode()
  target = path(workdir)
  with atomic_file.write(target, size=len(payload)) as f:
    f.write(payload)
  return target


def read(workdir: str) -> dict[str, Any]:
  """Reads ``<workdir>/config.json``.

  Raises:
    ConfigError: If the file is missing, is not JSON, or is of another
      format.
  """
  target = path(workdir)
  if not os.path.exists(target):
    if not os.path.isdir(workdir):
      raise ConfigError(f'{workdir} does not exist, or is not a directory.')
    raise ConfigError(
        f'{target} does not exist: {workdir} is not the work directory of a '
        'run (or of one started before rmc wrote config.json).'
    )
  try:
    with open(target, encoding='utf-8') as f:
      config = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise ConfigError(f'{target} is not valid JSON: {e}') from e
  if not isinstance(config, dict) or config.get('format') != FORMAT_VERSION:
    raise ConfigError(
        f'{target} is not a config.json of format {FORMAT_VERSION}.'
    )
  return config


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
  """``{dotted.key: leaf}`` of nested dicts."""
  if isinstance(value, dict) and value:
    flat = {}
    for key, item in value.items():
      flat.update(_flatten(item, f'{prefix}.{key}' if prefix else key))
    return flat
  return {prefix: value}


def _added_later(key: str, saved: Any, current: Any) -> bool:
  """Whether ``key`` is absent from a run saved before it was added."""
  section, _, name = key.partition('.')
  return (
      section == 'hyperparameters'
      and name in ADDED_HYPERPARAMETERS
      and saved is None
      and current is not None
  )


def _resumable(key: str) -> bool:
  section, _, name = key.partition('.')
  return (
      (section == 'hyperparameters' and name in RESUMABLE_HYPERPARAMETERS)
      or (section == 'data' and name in RESUMABLE_DATA)
      or section not in _FIXED_SECTIONS
  )


def differences(
    saved: dict[str, Any], current: dict[str, Any]
) -> dict[str, tuple[Any, Any]]:
  """``{dotted key: (saved value, current value)}`` where they differ.

  A key absent on one side has the value None there.
  """
  before, after = _flatten(saved, ''), _flatten(current, '')
  return {
      key: (before.get(key), after.get(key))
      for key in sorted(set(before) | set(after))
      if before.get(key) != after.get(key)
  }


def _describe(changes: dict[str, tuple[Any, Any]]) -> str:
  return ', '.join(
      f'{key} {old!r} -> {new!r}' for key, (old, new) in changes.items()
  )


def check_resume(
    saved: dict[str, Any],
    current: dict[str, Any],
    workdir: str,
    canonical: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, tuple[Any, Any]]:
  """Checks that ``current`` may continue the run ``saved`` describes.

  Args:
    saved: The work directory's config.json.
    current: The configuration of this process.
    workdir: The work directory (for the message).
    canonical: Rewrites the saved hyperparameters' values as this code
      writes them (the same value may have been written otherwise before).

  Returns:
    The differences that are allowed (budgets, cadences, paths, devices,
    code), also logged.

  Raises:
    ConfigMismatchError: If any other key differs; the message names every
      one with both values.
  """
  current = json.loads(json.dumps(current))  # As saved: lists, not tuples.
  if canonical is not None and isinstance(saved.get('hyperparameters'), dict):
    saved = json.loads(
        json.dumps(
            dict(saved, hyperparameters=canonical(saved['hyperparameters']))
        )
    )
  changes = {
      key: change
      for key, change in differences(saved, current).items()
      if key != 'format'
      and not key.startswith('core.')
      and not _added_later(key, *change)
  }
  fixed = {k: v for k, v in changes.items() if not _resumable(k)}
  if fixed:
    raise ConfigMismatchError(
        f'These flags differ from the run in {workdir} (its {CONFIG_FILE}), '
        f'which would train another model or on other data: '
        f"{_describe(fixed)}. Give the run's flags to resume it, or another "
        '--workdir for a new run.'
    )
  if changes:
    logging.info('Resuming with changed settings: %s.', _describe(changes))
  return changes


def start(
    workdir: str,
    config: dict[str, Any],
    canonical: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
  """Checks ``config`` against a saved one (if any), then saves it.

  Args:
    workdir: The work directory.
    config: This run's configuration (the sections above; ``format`` is
      added).
    canonical: As :func:`check_resume`'s.

  Returns:
    The differences from the saved configuration (empty for a new run).

  Raises:
    ConfigMismatchError: As :func:`check_resume`.
    ConfigError: If a saved config.json cannot be read.
  """
  config = dict(config, format=FORMAT_VERSION)
  changes = {}
  if os.path.exists(path(workdir)):
    changes = check_resume(read(workdir), config, workdir, canonical)
  write(workdir, config)
  return changes
