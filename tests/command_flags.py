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
"""Checks documented command lines against one binary's flags (a child).

``python tests/command_flags.py MODULE`` reads a JSON list of argument lists
(each a documented ``python -m MODULE ...`` command's arguments) on stdin,
imports ``MODULE`` (so that only its flags are defined) and, for each, parses
the arguments with its flags; for a task's binary it also resolves the run's
configuration (the task's flags only, values its typed hyperparameters
allow). It prints a JSON list of ``[arguments, error or null]``.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import importlib

from absl import app
from absl import flags
from absl.testing import flagsaver


def check(module, args: list[str]) -> str | None:
  """The error of ``args`` for ``module``, or None."""
  # Parsing --help prints the help and exits: it is there once defined.
  args = [a for a in args if a not in ('--help', '--helpfull', '--helpshort')]
  with flagsaver.flagsaver():
    try:
      flags.FLAGS(['prog', *args])
    except flags.Error as e:
      return str(e)
    task = getattr(module, 'TASK', None)
    mode = flags.FLAGS['mode'].value if 'mode' in flags.FLAGS else 'train'
    if task is None or mode != 'train':
      return None
    from experiments import launch

    try:
      launch.resolve(task)
    except Exception as e:  # pylint: disable=broad-except
      return str(e)
  return None


def main():
  module = importlib.import_module(sys.argv[1])

  commands = json.load(sys.stdin)
  print(json.dumps([[args, check(module, args)] for args in commands]))


if __name__ == '__main__':
  main()
