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
"""The tasks an experiment trains, each one module, registered here.

A task's module (``rmc/tasks/<task>.py``) owns its hyperparameters (a typed
group), its presets (typed :class:`rmc.tasks.base.Config`s) and its model;
its data is under ``rmc/data/`` and its binary under ``experiments/``. To add
a task, write its module and give it a line in :data:`TASKS`.
"""

from rmc.tasks import base
from rmc.tasks import language_model
from rmc.tasks import learn_to_execute
from rmc.tasks import nth_farthest

Config = base.Config
Task = base.Task

# The tasks by the name their binary has (config.json's `binary`).
TASKS: dict[str, base.Task] = {
    task.name: task
    for task in (
        nth_farthest.TASK,
        learn_to_execute.TASK,
        language_model.TASK,
    )
}
