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
"""Flags and preset handling shared by the experiment binaries.

Every hyperparameter flag defaults to None, meaning "take it from
``--preset``": each binary has its own presets (e.g. ``paper``, ``demo``,
``smoke``), and a flag given on the command line overrides its preset. The
flags are defined here once, so that several binaries can be imported into one
process (as the tests do).

``--mode`` chooses what a binary does: ``train`` (the default) writes the
resolved configuration to ``<workdir>/config.json`` (:mod:`rmc.run_config`)
and trains; the other modes (``evaluate``, and ``predict`` or ``sample``)
read a trained run's configuration from there (:func:`trained_run`), so they
need only ``--workdir``.

:func:`run` is the binaries' ``app.run``: a fault of the user's making (a
flag, the data, the filesystem, a checkpoint, a diverged loss) ends the
process with one line ``error: ...`` on stderr and exit status 1, and no
traceback (``--verbose_errors`` prints it too); bugs raise as usual.

A training holds its work directory's lock for its lifetime
(:mod:`rmc.workdir_lock`): a second training on the same ``--workdir`` ends
at once, naming the first one's pid and host. The other modes take no lock,
so they run beside a training.
"""

import contextlib
import errno
import math
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax

from experiments import startup
from rmc import atomic_file
from rmc import checkpoint
from rmc import cores
from rmc import hyperparameters
from rmc import metrics
from rmc import parallel as parallel_lib
from rmc import run_config
from rmc import runs
from rmc import training
from rmc import workdir_lock
from rmc.data import wikitext

MODES = ('train', 'evaluate', 'predict', 'sample')
MODE = flags.DEFINE_enum(
    'mode',
    'train',
    MODES,
    'train: train in --workdir (resuming from its newest checkpoint). The '
    'other modes use a trained run, reading its configuration from '
    '<workdir>/config.json (no hyperparameter flags): evaluate scores a '
    'checkpoint on the held-out data and appends the figures to '
    'metrics.jsonl with split=evaluate; predict (Nth Farthest, Learning to '
    "Execute) shows the model's answers beside the true ones; sample (the "
    'language model) continues --prompt.',
)
STEP = flags.DEFINE_integer(
    'step',
    None,
    'The checkpoint step a trained run is loaded from (the '
    'modes other than train, and the plotting commands); unset means the '
    'newest.',
    lower_bound=0,
)
TENSORBOARD = flags.DEFINE_bool(
    'tensorboard',
    False,
    'Also write every metrics record as TensorBoard scalars under '
    '<workdir>/tensorboard/ (train/loss, eval/accuracy, ...), so that '
    '`tensorboard --logdir=<workdir>` shows the curves while a run goes. '
    "Needs the tensorboardX package: pip install 'rmc[tensorboard]'.",
)

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
VERBOSE_ERRORS = flags.DEFINE_bool(
    'verbose_errors',
    False,
    'On an error of the flags, data, filesystem or a checkpoint, print the '
    'full Python traceback before the one-line message (for bug reports).',
)


def finite_floats(*names: str) -> None:
  """Makes the float flags ``names`` reject NaN and Inf when parsed."""
  for name in names:
    flags.register_validator(
        name,
        lambda x: x is None or math.isfinite(x),
        message=f'--{name} must be a finite number.',
    )


# Optimisation.
flags.DEFINE_integer(
    'batch_size', None, 'Training batch size (sequences).', lower_bound=1
)
flags.DEFINE_float(
    'learning_rate', None, 'Initial Adam learning rate.', lower_bound=0.0
)
flags.DEFINE_float(
    'min_learning_rate',
    None,
    'Floor of the exponentially decayed learning rate.',
    lower_bound=0.0,
)
flags.DEFINE_integer(
    'decay_steps',
    None,
    'Steps over which the learning rate is multiplied by '
    '--decay_rate (continuous decay, as Sonnet).',
    lower_bound=1,
)
flags.DEFINE_float(
    'decay_rate',
    None,
    'Learning-rate decay factor in (0, 1].',
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_float(
    'max_grad_norm',
    None,
    'Clip gradients to this global L2 norm; 0 disables clipping.',
    lower_bound=0.0,
)
flags.DEFINE_integer(
    'warmup_steps',
    None,
    'Optimizer steps of linear learning-rate warm-up: the rate at step s is '
    'multiplied by min(1, (s + 1) / warmup_steps); 0 for none (every preset '
    "but Nth Farthest's cpu, cpu_k3 and demo, which warm up over 5000 "
    'steps).',
    lower_bound=0,
)
flags.DEFINE_integer('num_steps', None, 'Total optimizer steps.', lower_bound=1)
flags.DEFINE_float(
    'time_budget_s',
    None,
    'Stop after this many seconds of training in this process '
    '(evaluating and checkpointing first); 0 means no budget.',
    lower_bound=0.0,
)

# Cadences.
flags.DEFINE_integer(
    'steps_per_chunk',
    None,
    'Optimizer steps per jitted call (one host round trip).',
    lower_bound=1,
)
flags.DEFINE_integer(
    'log_every', None, 'Steps between training-metric logs.', lower_bound=1
)
flags.DEFINE_integer(
    'eval_every', None, 'Steps between held-out evaluations.', lower_bound=1
)
flags.DEFINE_integer(
    'checkpoint_every', None, 'Steps between checkpoints.', lower_bound=1
)
flags.DEFINE_integer(
    'keep_checkpoints',
    None,
    'Number of newest checkpoints kept.',
    lower_bound=1,
)
flags.DEFINE_integer(
    'eval_batches',
    None,
    'Batches of --batch_size in the fixed held-out set.',
    lower_bound=1,
)

# The recurrent core, and each core's hyperparameters (rmc/cores.py).
flags.DEFINE_enum(
    'core',
    None,
    list(cores.CORES),
    'Recurrent core: the Relational Memory Core, or a baseline: '
    'the hk.LSTM, or the DNC (rmc.DNC).',
)
for _core in cores.CORES.values():
  hyperparameters.define_flags(_core)
COMPUTE_DTYPE = flags.DEFINE_enum(
    'compute_dtype',
    'float32',
    ['float32', 'bfloat16'],
    "RMC: operand dtype of the core's matrix products (bfloat16 for the fast "
    'paths of GPUs and TPUs). Parameters, the memory, accumulation and '
    'everything outside the core stay float32. Not a preset value.',
)

# Devices and processes.
NUM_DEVICES = flags.DEFINE_integer(
    'num_devices',
    0,
    'Train data-parallel on the first N devices of jax.devices(); 0 means '
    'all of them. The batch sizes must divide by the number used.',
    lower_bound=0,
)
MULTIHOST = flags.DEFINE_bool(
    'multihost',
    False,
    'Run as one process of a multi-process (multi-host) job: call '
    'jax.distributed.initialize() first, which finds the other processes '
    'itself under SLURM, Open MPI, Kubernetes or Cloud TPU, or from '
    '--coordinator_address, --num_processes and --process_id. Every process '
    'runs the same command; each makes only its rows of every training '
    'batch, and only process 0 writes to --workdir, which all of them must '
    'be able to read.',
)
COORDINATOR_ADDRESS = flags.DEFINE_string(
    'coordinator_address',
    None,
    'With --multihost: host:port of process 0, where the processes meet '
    '(unset: found from the cluster environment).',
)
NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes',
    None,
    'With --multihost: the number of processes (unset: from the cluster '
    'environment).',
    lower_bound=1,
)
PROCESS_ID = flags.DEFINE_integer(
    'process_id',
    None,
    "With --multihost: this process's index in [0, --num_processes) "
    '(unset: from the cluster environment).',
    lower_bound=0,
)

# The plotting commands' output, defined once for all of them (flags share
# one process in the tests).
PLOT_OUTPUT = flags.DEFINE_string(
    'output',
    None,
    'PNG file that a plotting command writes (unset: '
    'curves.png for plot_curves, attention.png for plot_attention).',
)

SYNTHETIC_INPUT = flags.DEFINE_bool(
    'synthetic_input',
    False,
    'Feed every training step one fixed batch held on the device instead of '
    'the input pipeline, to measure what the pipeline costs (compare '
    'steps_per_sec with and without). Not for real training.',
)

finite_floats(
    'learning_rate',
    'min_learning_rate',
    'decay_rate',
    'max_grad_norm',
    'time_budget_s',
)

COMMON_HYPERPARAMETERS = (
    'batch_size',
    'learning_rate',
    'min_learning_rate',
    'decay_steps',
    'decay_rate',
    'max_grad_norm',
    'warmup_steps',
    'num_steps',
    'time_budget_s',
    'steps_per_chunk',
    'log_every',
    'eval_every',
    'checkpoint_every',
    'keep_checkpoints',
    'eval_batches',
    'core',
    *(name for core in cores.CORES.values() for name in core.flag_names()),
)


def dnc_preset(
    memory_size: int,
    word_size: int,
    num_reads: int,
    num_writes: int,
    controller_size: int,
    controller_layers: int = 2,
    clip_value: float = 20.0,
    strength_activation: str = 'oneplus',
) -> dict[str, Any]:
  """A preset's DNC entries (``dnc_memory_size``, ...), for --core=dnc.

  The defaults are the paper's 2-layer controller and the reference's
  ``clip_value`` of 20 (its ``train.py``).
  """
  return dict(
      dnc_memory_size=memory_size,
      dnc_word_size=word_size,
      dnc_num_reads=num_reads,
      dnc_num_writes=num_writes,
      dnc_controller_size=controller_size,
      dnc_controller_layers=controller_layers,
      dnc_clip_value=clip_value,
      dnc_strength_activation=strength_activation,
  )


def constant_learning_rate(learning_rate: float) -> dict[str, float]:
  """Preset entries for an undecayed learning rate (the paper's LTE and LM)."""
  return dict(
      learning_rate=learning_rate,
      min_learning_rate=learning_rate,
      decay_steps=1,
      decay_rate=1.0,
  )


def resolve_config(
    presets: dict[str, dict[str, Any]],
    default_preset: str,
    names: tuple[str, ...],
) -> dict[str, Any]:
  """Values of ``names``: from the command line, else from the preset.

  Args:
    presets: The binary's presets, each giving every name in ``names``.
    default_preset: The preset used when ``--preset`` is not given.
    names: The hyperparameter flags to resolve.

  Returns:
    ``{name: value}``, plus ``'preset'``.

  Raises:
    app.UsageError: For an unknown preset or an inconsistent configuration.
  """
  preset = PRESET.value or default_preset
  if preset not in presets:
    raise app.UsageError(
        f'Unknown --preset={preset!r}; choose from {sorted(presets)}.'
    )
  config: dict[str, Any] = {'preset': preset}
  for name in names:
    given = flags.FLAGS[name].present
    config[name] = flags.FLAGS[name].value if given else presets[preset][name]
  config['compute_dtype'] = COMPUTE_DTYPE.value
  if config.get('core', 'rmc') != 'rmc' and COMPUTE_DTYPE.value != 'float32':
    raise app.UsageError(
        f'--compute_dtype={COMPUTE_DTYPE.value} applies to the RMC core '
        f'only; got --core={config["core"]}.'
    )
  try:  # Cross-flag checks, with the toolkit's own messages.
    loop_config(config)
    optimizer(config)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  return config


def loop_config(
    config: dict[str, Any], tokens_per_step: int | None = None
) -> training.LoopConfig:
  """The training-loop cadences of a resolved configuration."""
  return training.LoopConfig(
      tokens_per_step=tokens_per_step,
      num_steps=config['num_steps'],
      steps_per_chunk=config['steps_per_chunk'],
      log_every=config['log_every'],
      eval_every=config['eval_every'],
      checkpoint_every=config['checkpoint_every'],
      keep_checkpoints=config['keep_checkpoints'],
      time_budget_s=config['time_budget_s'] or None,
  )


def training_data(
    data: training.HostData,
    parallel: parallel_lib.DataParallel,
    batch_axes: parallel_lib.BatchAxes,
) -> training.HostData:
  """``data``, or its first batch repeated if ``--synthetic_input``."""
  if not SYNTHETIC_INPUT.value:
    return data
  return training.SyntheticData(
      jax.tree.map(lambda x: x[0], data.batches(0, 1)), parallel, batch_axes
  )


def data_parallel(*batch_sizes: tuple[str, int]) -> parallel_lib.DataParallel:
  """The mesh of ``--num_devices`` (after ``--multihost`` initialisation).

  Args:
    *batch_sizes: ``(flag name, value)`` of each batch size that the
      devices must divide.

  Raises:
    app.UsageError: If the devices do not divide a batch size, or
      ``--num_devices`` is more than there are (or not all of them with
      several processes).
  """
  if MULTIHOST.value:
    _initialize_distributed()
  elif any(
      flag.present
      for flag in (
          flags.FLAGS['coordinator_address'],
          flags.FLAGS['num_processes'],
          flags.FLAGS['process_id'],
      )
  ):
    raise app.UsageError(
        '--coordinator_address, --num_processes and '
        '--process_id need --multihost.'
    )
  devices = jax.devices()
  if NUM_DEVICES.value > len(devices):
    raise app.UsageError(
        f'--num_devices={NUM_DEVICES.value}, but there are '
        f'only {len(devices)} devices: {devices}.'
    )
  try:
    parallel = parallel_lib.DataParallel(devices[: NUM_DEVICES.value or None])
    for name, size in batch_sizes:
      parallel.check_batch_size(size, f'--{name}')
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  return parallel


def _initialize_distributed() -> None:
  """``jax.distributed.initialize`` from the flags (once per process)."""
  if jax.distributed.is_initialized():
    return
  try:  # Cross-process collectives of CPU devices (GPUs and TPUs have theirs).
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  except (AttributeError, ValueError):
    logging.warning(
        'This JAX has no gloo CPU collectives; multi-process '
        'runs on CPU devices will fail.'
    )
  jax.distributed.initialize(
      coordinator_address=COORDINATOR_ADDRESS.value,
      num_processes=NUM_PROCESSES.value,
      process_id=PROCESS_ID.value,
  )
  logging.info(
      'Process %d of %d initialised.', jax.process_index(), jax.process_count()
  )


def optimizer(config: dict[str, Any]):
  """``(optimizer, schedule)`` of a resolved configuration."""
  return training.make_optimizer(
      learning_rate=config['learning_rate'],
      min_learning_rate=config['min_learning_rate'],
      decay_steps=config['decay_steps'],
      decay_rate=config['decay_rate'],
      max_grad_norm=config['max_grad_norm'] or None,
      warmup_steps=config['warmup_steps'],
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


def _one_line(error: BaseException) -> str | None:
  """The user-facing message of ``error``, or None if it is a bug."""
  if isinstance(error, atomic_file.DiskFullError):
    return (
        f'{error} Every earlier checkpoint and metrics line is intact: '
        'free some space and rerun the same command to resume.'
    )
  if isinstance(
      error,
      (
          app.UsageError,
          checkpoint.CheckpointError,
          wikitext.DataError,
          run_config.ConfigError,
          metrics.TensorBoardMissingError,
          FloatingPointError,
          workdir_lock.WorkdirBusyError,
      ),
  ):
    return str(error)
  if isinstance(error, OSError) and error.filename is not None:
    # The filesystem's own faults (permissions, read-only, missing files),
    # which always name a path; other OSErrors are left to raise.
    reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
    return f'{reason}: {error.filename}'
  return None


def run(main: Callable[[list[str]], Any]) -> None:
  """``app.run(main)``, with the user's faults as one line, not a traceback.

  Args:
    main: The binary's ``main(argv)``; it raises (``app.UsageError``,
      ``checkpoint.CheckpointError``, ``wikitext.DataError``,
      ``atomic_file.DiskFullError``, ``FloatingPointError`` or an ``OSError``
      naming a file) for a fault of the user's making.
  """

  def main_with_one_line_errors(argv):
    try:
      return main(argv)
    except Exception as e:  # pylint: disable=broad-except
      message = _one_line(e)
      if message is None:
        raise
      if VERBOSE_ERRORS.value:
        traceback.print_exc()
      sys.exit(f'error: {message}')

  app.run(main_with_one_line_errors)


def run_other_mode(binary: str, modes: dict[str, Callable[[], Any]]) -> bool:
  """Runs ``modes[--mode]`` unless ``--mode=train``.

  Args:
    binary: The binary's module name.
    modes: The binary's modes other than ``train``, each a function of no
      arguments.

  Returns:
    Whether a mode other than ``train`` ran (then ``main`` is done).

  Raises:
    app.UsageError: If the binary has no such mode.
  """
  if MODE.value == 'train':
    return False
  if MODE.value not in modes:
    raise app.UsageError(
        f'{binary} has no --mode={MODE.value}; its modes '
        f'are {", ".join(("train", *modes))}.'
    )
  startup.on_stop(lambda: f' in --mode={MODE.value}: nothing was written')
  modes[MODE.value]()
  return True


def check_tensorboard() -> None:
  """Fails early if ``--tensorboard`` is set without ``tensorboardX``."""
  if not TENSORBOARD.value:
    return
  try:
    import tensorboardX  # noqa: F401  (imported to see that it is installed)
  except ImportError as e:
    raise metrics.TensorBoardMissingError() from e


def describe_run(
    binary: str,
    config: dict[str, Any],
    parallel: parallel_lib.DataParallel,
    data: dict[str, Any],
    vocab_size: int | None = None,
) -> dict[str, Any]:
  """The run's config.json (see :mod:`rmc.run_config`).

  Args:
    binary: The binary's module name, one of ``rmc.runs.BINARIES``.
    config: The resolved hyperparameters.
    parallel: The data-parallel mesh.
    data: What identifies the binary's data.
    vocab_size: The language model's vocabulary size (``wikitext103``).
  """
  return {
      'binary': binary,
      'seed': SEED.value,
      'hyperparameters': config,
      'core': runs.core_description(config),
      'parameters': runs.parameter_counts(binary, config, vocab_size),
      'data': dict(data, synthetic_input=SYNTHETIC_INPUT.value),
      'run': {
          'devices': parallel.num_devices,
          'processes': jax.process_count(),
          'platform': jax.devices()[0].platform,
          'tensorboard': TENSORBOARD.value,
      },
      'code': run_config.code_version(),
  }


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
    run_fn: Callable[..., dict[str, Any]],
    config: dict[str, Any],
    parallel: parallel_lib.DataParallel,
    binary: str,
    data: dict[str, Any] | None = None,
    vocab_size: int | None = None,
) -> dict[str, Any] | None:
  """Runs ``run_fn(config, workdir, seed, parallel)`` for a binary's main.

  First writes the run's ``config.json`` (:func:`describe_run`), or checks
  the flags against the one there when resuming, and logs the parameter
  counts (the recurrent cores', and the whole model's).

  Args:
    run_fn: The binary's ``run``.
    config: The resolved hyperparameters.
    parallel: The data-parallel mesh.
    binary: The binary's module name.
    data: What identifies the binary's data (for config.json).
    vocab_size: The language model's vocabulary size (``wikitext103``).

  Returns:
    The final evaluation record, or None when the work directory already
    held the last step (which is printed).

  Raises:
    app.UsageError: If ``--workdir`` is not usable (checked first).
    rmc.run_config.ConfigMismatchError: If the flags would change the model
      or the data of the run in ``--workdir``.
    rmc.workdir_lock.WorkdirBusyError: If another training holds
      ``--workdir`` (checked before anything there is written).
  """
  path = workdir(writable=parallel.is_primary)
  startup.on_stop(lambda: _where_the_run_stands(path))
  check_tensorboard()
  logging.info('Configuration: %s', config)
  description = describe_run(binary, config, parallel, data or {}, vocab_size)
  logging.info(
      'Parameters: %d in the recurrent core%s, %d in the model.',
      description['parameters']['core'],
      's' if config.get('separate_cores') else '',
      description['parameters']['model'],
  )
  with (
      workdir_lock.hold(path)
      if parallel.is_primary
      else contextlib.nullcontext()
  ):
    if parallel.is_primary:
      run_config.start(path, description)
    elif os.path.exists(run_config.path(path)):
      run_config.check_resume(run_config.read(path), description, path)
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


def trained_run(
    binary: str, names: Sequence[str], may_override: Sequence[str] = ()
) -> tuple[runs.Run, dict[str, Any]]:
  """The trained run in ``--workdir`` (at ``--step``), for the other modes.

  Its configuration comes from its config.json, so hyperparameter flags are
  refused, but for ``may_override`` (e.g. the size of the held-out set).

  Args:
    binary: The binary's module name.
    names: Its hyperparameter flags.
    may_override: Those that may be given (they change only what is
      evaluated, not the model).

  Returns:
    ``(run, hyperparameters)``: the :class:`rmc.runs.Run`, and its
    hyperparameters with the ``may_override`` flags given.

  Raises:
    app.UsageError: Without ``--workdir``, for a run of another binary, or
      for hyperparameter flags.
    rmc.run_config.ConfigError: If config.json is missing or unreadable.
    rmc.checkpoint.CheckpointError: If there is no (such) checkpoint.
  """
  path = WORKDIR.value
  if not path:
    raise app.UsageError(
        '--workdir is required: the work directory of a trained run.'
    )
  saved = run_config.read(path)
  if saved.get('binary') != binary:
    raise app.UsageError(
        f'{path} holds a run of {saved.get("binary")}, not of {binary}.'
    )
  given = [
      name
      for name in ('preset', 'compute_dtype', *names)
      if flags.FLAGS[name].present and name not in may_override
  ]
  if MODE.value == 'evaluate' and flags.FLAGS['seed'].present:
    given.append('seed')  # The held-out set is the run's own.
  if given:
    raise app.UsageError(
        f"A trained run's configuration is read from "
        f'{run_config.path(path)}; drop '
        f'{", ".join("--" + name for name in given)}.'
    )
  run = runs.load_run(path, STEP.value)
  hyperparameters = dict(
      run.hyperparameters,
      **{
          name: flags.FLAGS[name].value
          for name in may_override
          if flags.FLAGS[name].present
      },
  )
  return run, hyperparameters


def evaluate_held_out(
    binary: str,
    names: Sequence[str],
    make_evaluate: Callable[..., Callable[[Any], dict[str, float]]],
    count_name: str,
    may_override: Sequence[str] = ('eval_batches',),
) -> tuple[dict[str, Any], dict[str, Any]]:
  """``--mode=evaluate`` on a binary's fixed held-out set.

  The set is the run's own (its seed; ``--eval_batches`` may enlarge it).

  Args:
    binary: The binary's module name.
    names: Its hyperparameter flags.
    make_evaluate: ``make_evaluate(hyperparameters, seed, parallel)`` gives
      ``evaluate(params) -> {name: value}``.
    count_name: The record's entry for the number of held-out examples.
    may_override: The hyperparameter flags that may choose the set (e.g.
      its size, ``--eval_batches``).

  Returns:
    ``(record, hyperparameters)``: the record appended to metrics.jsonl
    (see :func:`append_evaluation`), and the hyperparameters evaluated with.
  """
  run, config = trained_run(binary, names, may_override)
  parallel = data_parallel(('batch_size', config['batch_size']))
  figures = make_evaluate(config, run.config['seed'], parallel)(run.params)
  record = append_evaluation(
      run,
      figures,
      **{count_name: config['eval_batches'] * config['batch_size']},
  )
  return record, config


def append_evaluation(
    run: runs.Run, figures: dict[str, Any], **fields: Any
) -> dict[str, Any]:
  """Appends an evaluation of ``run`` to its metrics.jsonl.

  Args:
    run: The evaluated run.
    figures: ``{name: value}``, written as ``eval_<name>``.
    **fields: Further entries of the record (e.g. the split scored).

  Returns:
    The record: ``step`` (the checkpoint's), ``split: 'evaluate'``, the
    figures and ``fields``.
  """
  record = {
      'step': run.step,
      'split': 'evaluate',
      **{f'eval_{k}': v for k, v in figures.items()},
      **fields,
  }
  if jax.process_index() == 0:
    check_tensorboard()
    writer = metrics.MetricWriter(
        os.path.join(run.workdir, 'metrics.jsonl'),
        resume_step=None,
        tensorboard_dir=(
            os.path.join(run.workdir, metrics.TENSORBOARD_DIR)
            if TENSORBOARD.value
            else None
        ),
    )
    writer.write(record)
    writer.close()
  return record
