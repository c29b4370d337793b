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
"""Devices and processes: the flags and mesh of data-parallel training.

Every binary trains data-parallel over ``--num_devices`` devices
(:class:`rmc.toolkit.parallel.DataParallel`), and with ``--multihost`` as one
process of a multi-process job. ``--synthetic_input`` feeds one fixed batch,
to measure what the input pipeline costs.
"""

from absl import app
from absl import flags
from absl import logging
import jax

from rmc.toolkit import parallel as parallel_lib
from rmc.toolkit import training

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
SYNTHETIC_INPUT = flags.DEFINE_bool(
    'synthetic_input',
    False,
    'Feed every training step one fixed batch held on the device instead of '
    'the input pipeline, to measure what the pipeline costs (compare '
    'steps_per_sec with and without). Not for real training.',
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
