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
"""The modes of a binary that use a trained run: evaluate, predict, sample.

``--mode`` chooses what a binary does: ``train`` (the default) trains
(:mod:`experiments.launch`); the other modes read a trained run's
configuration from its ``<workdir>/config.json`` (:func:`trained_run`), so
they need only ``--workdir``. They take no lock, so they run beside a
training.
"""

import os
from collections.abc import Callable, Sequence
from typing import Any

from absl import app
from absl import flags
import jax

from experiments import devices
from experiments import launch
from experiments import startup
from rmc import tasks
from rmc.tasks import runs
from rmc.toolkit import metrics
from rmc.toolkit import run_config

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


def run_other_mode(
    task: tasks.Task, modes: dict[str, Callable[[], Any]]
) -> bool:
  """Runs ``modes[--mode]`` unless ``--mode=train``.

  Args:
    task: The binary's task.
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
        f'{task.name} has no --mode={MODE.value}; its modes '
        f'are {", ".join(("train", *modes))}.'
    )
  startup.on_stop(lambda: f' in --mode={MODE.value}: nothing was written')
  modes[MODE.value]()
  return True


def trained_run(
    task: tasks.Task, may_override: Sequence[str] = ()
) -> tuple[runs.Run, tasks.Config]:
  """The trained run in ``--workdir`` (at ``--step``), for the other modes.

  Its configuration comes from its config.json, so hyperparameter flags are
  refused, but for ``may_override`` (e.g. the size of the held-out set).

  Args:
    task: The binary's task.
    may_override: The hyperparameter flags that may be given (they change
      only what is evaluated, not the model).

  Returns:
    ``(run, config)``: the :class:`rmc.tasks.runs.Run`, and its configuration
    with the ``may_override`` flags given.

  Raises:
    app.UsageError: Without ``--workdir``, for a run of another binary, or
      for hyperparameter flags.
    rmc.toolkit.run_config.ConfigError: If config.json is missing or unreadable.
    rmc.toolkit.checkpoint.CheckpointError: If there is no (such) checkpoint.
  """
  path = launch.WORKDIR.value
  if not path:
    raise app.UsageError(
        '--workdir is required: the work directory of a trained run.'
    )
  saved = run_config.read(path)
  if saved.get('binary') != task.name:
    raise app.UsageError(
        f'{path} holds a run of {saved.get("binary")}, not of {task.name}.'
    )
  given = launch.given_hyperparameters()
  refused = [
      name
      for name in ('preset', 'compute_dtype', *given)
      if flags.FLAGS[name].present and name not in may_override
  ]
  if MODE.value == 'evaluate' and flags.FLAGS['seed'].present:
    refused.append('seed')  # The held-out set is the run's own.
  if refused:
    raise app.UsageError(
        f"A trained run's configuration is read from "
        f'{run_config.path(path)}; drop '
        f'{", ".join("--" + name for name in refused)}.'
    )
  run = runs.load_run(path, STEP.value)
  try:
    config = run.hyperparameters.replace(
        **{name: given[name] for name in may_override if name in given}
    )
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  return run, config


def evaluate_held_out(
    task: tasks.Task,
    make_evaluate: Callable[..., Callable[[Any], dict[str, float]]],
    count_name: str,
    count: Callable[[Any], int],
    may_override: Sequence[str] = ('eval_batches',),
) -> tuple[dict[str, Any], tasks.Config]:
  """``--mode=evaluate`` on a task's fixed held-out set.

  The set is the run's own (its seed; ``--eval_batches`` may enlarge it).

  Args:
    task: The binary's task.
    make_evaluate: ``make_evaluate(config, seed, parallel)`` gives
      ``evaluate(params) -> {name: value}``.
    count_name: The record's entry for the number of held-out examples.
    count: That number, of the configuration evaluated with.
    may_override: The hyperparameter flags that may choose the set (e.g.
      its size, ``--eval_batches``).

  Returns:
    ``(record, config)``: the record appended to metrics.jsonl (see
    :func:`append_evaluation`), and the configuration evaluated with.
  """
  run, config = trained_run(task, may_override)
  batch_size = config.optimizer.batch_size
  parallel = devices.data_parallel(('batch_size', batch_size))
  figures = make_evaluate(config, run.seed, parallel)(run.params)
  record = append_evaluation(run, figures, **{count_name: count(config)})
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
    launch.check_tensorboard()
    writer = metrics.MetricWriter(
        os.path.join(run.workdir, 'metrics.jsonl'),
        resume_step=None,
        tensorboard_dir=(
            os.path.join(run.workdir, metrics.TENSORBOARD_DIR)
            if launch.TENSORBOARD.value
            else None
        ),
    )
    writer.write(record)
    writer.close()
  return record
