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
"""rmc: the Relational Memory Core (Santoro et al., 2018) in JAX and Haiku."""

from rmc.dnc import DNC
from rmc.dnc import DNCState
from rmc.relational_memory import RelationalMemory
from rmc.relational_memory import RelationalMemoryOutput
from rmc.tasks.runs import load_run
from rmc.tasks.runs import Run
from rmc.version import __version__ as __version__

__all__ = (
    'DNC',
    'DNCState',
    'RelationalMemory',
    'RelationalMemoryOutput',
    'Run',
    'load_run',
)
