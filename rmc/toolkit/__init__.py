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
"""The training toolkit: what the tasks' binaries share.

Typed hyperparameters (:mod:`~rmc.toolkit.hyperparameters`; the cores',
:mod:`~rmc.toolkit.cores`), the training loop (:mod:`~rmc.toolkit.training`),
data parallelism (:mod:`~rmc.toolkit.parallel`), checkpoints and atomic
files, metrics, the work directory's lock, and ``config.json``
(:mod:`~rmc.toolkit.run_config`). It knows nothing of the tasks
(:mod:`rmc.tasks`), which are built on it.
"""
