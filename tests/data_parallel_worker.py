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
r"""Runs the experiment binaries on emulated CPU devices, for parallel_test.

JAX fixes its device count when it starts, so the tests run this in a
subprocess with ``JAX_NUM_CPU_DEVICES=2``:

  python tests/data_parallel_worker.py OUT_DIR WIKITEXT_DATA_DIR

(``WIKITEXT_DATA_DIR`` holds a small corpus from
``binary_testing.write_wikitext_corpus``.)

Every run writes its checkpoints (one per step) and metrics to a work
directory under ``OUT_DIR``, which the test compares:

* ``<binary>_<devices>``: Nth Farthest and Learning to Execute, one
  training step on 2 devices and on 1 (and ``nth_farthest_dnc_<devices>``
  with ``--core=dnc``);
* the language model, whose recurrent state is split over the devices:
  ``resume``, 2 steps on 2 devices then resumed on 1 device to step 4; and
  ``straight``, 4 steps on 1 device.

``errors.json`` holds the usage errors of a batch size that 2 devices do
not divide and of more devices than there are.
"""

import json
import os
import sys

from absl import app
from absl import flags
import jax

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [_ROOT, os.path.dirname(os.path.abspath(__file__))]

import binary_testing  # pylint: disable=g-import-not-at-top
from experiments import learn_to_execute  # pylint: disable=g-import-not-at-top
from experiments import nth_farthest  # pylint: disable=g-import-not-at-top
from experiments import wikitext103  # pylint: disable=g-import-not-at-top

# Every step is logged, evaluated and checkpointed.
_CADENCES = ('--steps_per_chunk=1', '--log_every=1', '--eval_every=1',
             '--checkpoint_every=1', '--keep_checkpoints=5')


def _usage_error(*args: str) -> str:
  """The message of the UsageError that running Nth Farthest raises."""
  try:
    binary_testing.run_main(nth_farthest, '--preset=smoke', *args)
  except app.UsageError as e:
    return str(e)
  raise AssertionError(f'No UsageError for {args}.')


def main(out_dir: str, data_dir: str) -> None:
  if jax.device_count() != 2:
    raise SystemExit(f'Need 2 devices; got {jax.devices()}.')
  flags.FLAGS.mark_as_parsed()
  for binary, name, core in ((nth_farthest, 'nth_farthest', 'rmc'),
                             (nth_farthest, 'nth_farthest_dnc', 'dnc'),
                             (learn_to_execute, 'learn_to_execute', 'rmc')):
    for devices in (2, 1):
      binary_testing.run_main(
          binary, '--preset=smoke', f'--core={core}', '--num_steps=1',
          *_CADENCES, f'--num_devices={devices}',
          f'--workdir={out_dir}/{name}_{devices}')
  lm_args = (f'--data_dir={data_dir}', f'--cache_dir={out_dir}/cache',
             '--eval_batch_size=4', *_CADENCES)
  for workdir, runs in (('resume', ((2, 2), (4, 1))), ('straight', ((4, 1),))):
    for num_steps, devices in runs:
      binary_testing.run_main(
          wikitext103, '--preset=smoke', f'--num_steps={num_steps}',
          *lm_args, f'--num_devices={devices}',
          f'--workdir={out_dir}/{workdir}')
  errors = {
      'batch_size': _usage_error('--batch_size=3', '--num_devices=2',
                                 f'--workdir={out_dir}/unused'),
      'num_devices': _usage_error('--num_devices=3',
                                  f'--workdir={out_dir}/unused'),
  }
  with open(os.path.join(out_dir, 'errors.json'), 'w') as f:
    json.dump(errors, f)


if __name__ == '__main__':
  main(*sys.argv[1:])
