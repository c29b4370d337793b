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
"""Launching a run: the flags every binary shares, and a run's life cycle.

Every hyperparameter has one flag, derived from its typed definition (the task's
group in :mod:`rmc.tasks`, the optimiser's and the loop's in
:mod:`rmc.toolkit.training`, the cores' in :mod:`rmc.toolkit.cores`). Each
defaults to None, meaning "take it from ``--preset``": :func:`resolve` starts
from the task's preset and replaces what the command line gives, and the typed
configuration checks the result, with one line naming the flag. The flags of
every task are defined here once, so that several binaries share one process (as
the tests do); a flag of another task is refused.

:func:`run_and_report` writes ``<workdir>/config.json``
(:mod:`rmc.toolkit.run_config`) and trains while holding the work directory's
lock (:mod:`rmc.toolkit.workdir_lock`): a second training on the same
``--workdir`` ends at once, naming the first one's pid and host.

The devices' flags are in :mod:`experiments.devices`, the one-line errors in
:mod:`experiments.cli`.
"""

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax

from experiments import devices
from experiments import startup
from rmc import tasks
from rmc.tasks import runs
from rmc.toolkit import checkpoint
from rmc.toolkit import cores
from rmc.toolkit import hyperparameters
from rmc.toolkit import metrics
from rmc.toolkit import parallel as parallel_lib
from rmc.toolkit import run_config
from rmc.toolkit import training
from rmc.toolkit import workdir_lock

PRESET = flags.DEFINE_string(
    'preset',
    None,
    'Named configuration that fills every hyperparameter flag not given on '
    'the command line. Each binary lists its presets in its --help; its '
    'default preset is used when this is not set.',
)
WORKDIR = flags.DEFINE_string(
    'workdir',
    None,
    'Directory for checkpoints and metrics.jsonl. A run resumes from the '
    'newest checkpoint found here.',
)
SEED = flags.DEFINE_integer(
    'seed',
    0,
    'Seed of parameter initialisation, training data and the '
    'held-out set (each from its own derived key).',
)
TENSORBOARD = flags.DEFINE_bool(
    'tensorboard',
    False,
    'Also write every metrics record as TensorBoard scalars under '
    '<workdir>/tensorboard/ (train/loss, eval/accuracy, ...), so that '
    '`tensorboard --logdir=<workdir>` shows the curves while a run goes. '
    "Needs the tensorboardX package: pip install 'rmc[tensorboard]'.",
)
# The hyperparameters: one flag each, from the typed definitions.
flags.DEFINE_enum(
    'core',
    None,
    list(cores.CORES),
    'Recurrent core: the Relational Memory Core, or a baseline: '
    'the hk.LSTM, or the DNC (rmc.DNC).',
)
_GROUPS: tuple[type[hyperparameters.Hyperparameters], ...] = (
    training.Optimizer,
    training.LoopConfig,
    *cores.CORES.values(),
    *(task.hyperparameters for task in tasks.TASKS.values()),
)
for _group in _GROUPS:
  hyperparameters.define_flags(_group)
COMPUTE_DTYPE = flags.DEFINE_enum(
    'compute_dtype',
    'float32',
    ['float32', 'bfloat16'],
    "RMC: operand dtype of the core's matrix products (bfloat16 for the fast "
    'paths of GPUs and TPUs). Parameters, the memory, accumulation and '
    'everything outside the core stay float32. Not a preset value.',
)
# Every hyperparameter flag, of every task.
HYPERPARAMETER_FLAGS = tuple(
    dict.fromkeys(
        name
        for task in tasks.TASKS.values()
        for name in task.flag_names()
        if name not in ('preset', 'compute_dtype')
    )
)


def given_hyperparameters() -> dict[str, Any]:
  """``{flag name: value}`` of the hyperparameter flags given."""
  return {
      name: flags.FLAGS[name].value
      for name in HYPERPARAMETER_FLAGS
      if flags.FLAGS[name].present
  }


def resolve(
    task: tasks.Task, default_preset: str | None = None
) -> tasks.Config:
  """The run's configuration: ``--preset``'s, with the flags given.

  Args:
    task: The binary's task.
    default_preset: The preset without ``--preset``; None for the task's.

  Raises:
    app.UsageError: For an unknown preset, a flag of another task, or a
      value that is not allowed (one line naming the flag).
  """
  preset = PRESET.value or default_preset or task.default_preset
  if preset not in task.presets:
    raise app.UsageError(
        f'Unknown --preset={preset!r}; choose from {sorted(task.presets)}.'
    )
  base = task.presets[preset]
  given = given_hyperparameters()
  others = [name for name in given if name not in task.flag_names()]
  if others:
    names = ', '.join('--' + name for name in others)
    what = 'a hyperparameter' if len(others) == 1 else 'hyperparameters'
    raise app.UsageError(
        f'{names}: not {what} of {task.name} (see --helpfull).'
    )
  try:
    return base.replace(**given, compute_dtype=COMPUTE_DTYPE.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from e


def train(
    config: tasks.Config,
    workdir: str,
    parallel: parallel_lib.DataParallel,
    **arguments: Any,
) -> dict[str, Any]:
  """:func:`rmc.toolkit.training.train`, with the loop and ``--tensorboard``.

  Args:
    config: The run's configuration (its ``loop``).
    workdir: The run's work directory.
    parallel: The data-parallel mesh.
    **arguments: The rest of :func:`rmc.toolkit.training.train`'s (``state``,
      ``train_chunk``, ``evaluate``, ...).

  Returns:
    Its summary.
  """
  return training.train(
      workdir=workdir,
      config=config.loop,
      parallel=parallel,
      tensorboard=TENSORBOARD.value,
      **arguments,
  )


def workdir(writable: bool = True) -> str:
  """``--workdir``, checked to be a usable directory (created if missing).

  Called before any compilation, so that a bad path costs a second, not a
  compiled model.

  Args:
    writable: Whether this process writes there (only process 0 of a
      multi-process job does), so that a file can be created in it.

  Raises:
    app.UsageError: If it is not given, is a file, cannot be created or (with
      ``writable``) cannot be written to.
  """
  path = WORKDIR.value
  if not path:
    raise app.UsageError('--workdir is required.')
  if os.path.exists(path) and not os.path.isdir(path):
    raise app.UsageError(f'--workdir={path} is a file, not a directory.')
  if not writable:
    return path
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise app.UsageError(
        f'--workdir={path} cannot be created: {e.strerror}.'
    ) from e
  try:
    with tempfile.TemporaryFile(dir=path):
      pass
  except OSError as e:
    raise app.UsageError(
        f'--workdir={path} is not writable: {e.strerror}.'
    ) from e
  return path


def check_tensorboard() -> None:
  """Fails early if ``--tensorboard`` is set without ``tensorboardX``."""
  if not TENSORBOARD.value:
    return
  try:
    import tensorboardX  # noqa: F401  (imported to see that it is installed)
  except ImportError as e:
    raise metrics.TensorBoardMissingError() from e


def describe_run(
    task: tasks.Task,
    config: tasks.Config,
    parallel: parallel_lib.DataParallel,
    data: dict[str, Any],
    vocab_size: int | None = None,
) -> dict[str, Any]:
  """The run's config.json (see :mod:`rmc.toolkit.run_config`).

  Args:
    task: The binary's task.
    config: The run's configuration.
    parallel: The data-parallel mesh.
    data: What identifies the task's data.
    vocab_size: The language model's vocabulary size (``wikitext103``).
  """
  return {
      'binary': task.name,
      'seed': SEED.value,
      'hyperparameters': config.flat(),
      'core': runs.core_description(config),
      'parameters': task.parameter_counts(config, vocab_size),
      'data': dict(data, synthetic_input=devices.SYNTHETIC_INPUT.value),
      'run': {
          'devices': parallel.num_devices,
          'processes': jax.process_count(),
          'platform': jax.devices()[0].platform,
          'tensorboard': TENSORBOARD.value,
      },
      'code': run_config.code_version(),
  }


def _canonical(task: tasks.Task) -> Callable[[dict[str, Any]], dict[str, Any]]:
  """Writes a saved config.json's hyperparameters as this code writes them.

  (E.g. ``--adaptive_cutoffs``, saved as strings before they were typed.) A
  hyperparameter added to the code after the run was written takes its
  preset's value, as :func:`rmc.load_run` reads it, so the run resumes with
  the flags it was started with. A value not allowed is left as saved.
  """

  def canonical(saved: dict[str, Any]) -> dict[str, Any]:
    try:
      flat = task.config(saved).flat()
    except ValueError:
      return saved
    return flat | {name: flat.get(name, value) for name, value in saved.items()}

  return canonical


def _where_the_run_stands(path: str) -> str:
  """The end of the line a signal ends the process with (outside training)."""
  steps = checkpoint.list_steps(path)
  if not steps:
    return f': nothing was trained in {path}; the same command starts the run'
  return (
      f': {path} holds step {steps[-1]} (its newest checkpoint), and the '
      'same command resumes it'
  )


def run_and_report(
    task: tasks.Task,
    run_fn: Callable[..., dict[str, Any]],
    config: tasks.Config,
    parallel: parallel_lib.DataParallel,
    data: dict[str, Any] | None = None,
    vocab_size: int | None = None,
) -> dict[str, Any] | None:
  """Runs ``run_fn(config, workdir, seed, parallel)`` for a binary's main.

  First writes the run's ``config.json`` (:func:`describe_run`), or checks
  the flags against the one there when resuming, and logs the parameter
  counts (the recurrent cores', and the whole model's).

  Args:
    task: The binary's task.
    run_fn: The binary's ``run``.
    config: The run's configuration.
    parallel: The data-parallel mesh.
    data: What identifies the binary's data (for config.json).
    vocab_size: The language model's vocabulary size (``wikitext103``).

  Returns:
    The final evaluation record, or None when the work directory already
    held the last step (which is printed).

  Raises:
    app.UsageError: If ``--workdir`` is not usable (checked first).
    rmc.toolkit.run_config.ConfigMismatchError: If the flags would change the
      model or the data of the run in ``--workdir``.
    rmc.toolkit.workdir_lock.WorkdirBusyError: If another training holds
      ``--workdir`` (checked before anything there is written).
  """
  path = workdir(writable=parallel.is_primary)
  startup.on_stop(lambda: _where_the_run_stands(path))
  check_tensorboard()
  logging.info('Configuration: %s', config.flat())
  description = describe_run(task, config, parallel, data or {}, vocab_size)
  logging.info(
      'Parameters: %d in the recurrent core%s, %d in the model.',
      description['parameters']['core'],
      's' if task.num_cores(config) > 1 else '',
      description['parameters']['model'],
  )
  with (
      workdir_lock.hold(path)
      if parallel.is_primary
      else contextlib.nullcontext()
  ):
    canonical = _canonical(task)
    if parallel.is_primary:
      run_config.start(path, description, canonical)
    elif os.path.exists(run_config.path(path)):
      run_config.check_resume(
          run_config.read(path), description, path, canonical
      )
    summary = run_fn(config, path, SEED.value, parallel)
  if summary['eval'] is None:
    print(f'Nothing to train: {path} already holds step {summary["step"]}.')
    return None
  return dict(
      summary['eval'],
      stopped_by=summary['stopped_by'],
      **{
          k: v
          for k, v in (summary.get('test') or {}).items()
          if k.startswith('test_')
      },
  )
