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
r"""Where the time of a forward+backward step goes: a per-op XLA profile.

  python -m benchmarks.profile_step --model=rmc --size=nth_farthest \
      --implementation=unroll
  python -m benchmarks.profile_step --model=dnc --size=learn_to_execute_paper

Compiles the gradient of :mod:`benchmarks.rmc_step` (``--model=rmc``, through
``--implementation``) or :mod:`benchmarks.dnc_step` (``--model=dnc``, as set
beside DeepMind's reference: one controller layer, ``softplus`` strengths),
runs it ``--calls`` times under ``jax.profiler.trace``, and adds up the time
of every operation of the compiled program (the trace's events are named
after the HLO instructions). Each operation is put in one category, from
its optimised HLO (``compile().as_text()``):

* ``products with weights``: a matrix product without batch dimensions;
* ``batched products``: one with batch dimensions (attention, addressing);
* ``sums over a minor axis`` / ``sums over a major axis``: a fused
  reduction (softmax, LayerNorm, gradients of broadcasts) over the last
  axis of its operand, or not;
* ``elementwise, slicing a scanned array``: an elementwise fusion that
  reads one step of an array stacked over time (a fused ``dynamic-slice``);
* ``elementwise``: any other elementwise fusion;
* ``scan buffers: zero fill and copies`` and ``scan buffers: per-step
  writes``: filling and copying arrays stacked over time, and writing one
  step into them;
* ``sorts`` (the DNC's allocation) and ``other``.

Operations run concurrently on the CPU's threads, so the times add up to
more than the wall time; shares are of their sum. Also given: the wall time
per step, and the page faults and system time per call (where the C library
serves fresh memory for every call, faults are a cost of their own; see
``experiments/huge_pages.py``). One JSON object is printed; ``--top`` lists
the slowest operations with their shapes.
"""

import collections
import dataclasses
import glob
import gzip
import json
import os
import re
import resource
import tempfile
import time
from typing import Any

from absl import app
from absl import flags
import jax

from benchmarks import dnc_step
from benchmarks import rmc_step

_MODEL = flags.DEFINE_enum(
    'model', 'rmc', ['rmc', 'dnc'], 'Which core: the RMC or the DNC.'
)
_SIZE = flags.DEFINE_string(
    'size',
    'nth_farthest',
    'A configuration of benchmarks.rmc_step (--model=rmc) or '
    'benchmarks.dnc_step (--model=dnc).',
)
_IMPLEMENTATION = flags.DEFINE_enum(
    'implementation',
    'unroll',
    ['unroll', 'dynamic_unroll'],
    'How the RMC is unrolled (--model=rmc): RelationalMemory.unroll or '
    'hk.dynamic_unroll of the one-step core.',
)
_CALLS = flags.DEFINE_integer(
    'calls', 10, 'Profiled calls, after 3 unprofiled ones.', lower_bound=1
)
_TOP = flags.DEFINE_integer(
    'top', 12, 'Slowest operations listed.', lower_bound=0
)

CATEGORIES = (
    'products with weights',
    'batched products',
    'sums over a minor axis',
    'sums over a major axis',
    'elementwise, slicing a scanned array',
    'elementwise',
    'scan buffers: zero fill and copies',
    'scan buffers: per-step writes',
    'sorts',
    'other',
)
_NOT_COUNTED = (
    'while',
    'conditional',
    'call',
    'tuple',
    'get-tuple-element',
    'parameter',
    'constant',
    'bitcast',
)
_INSTRUCTION = re.compile(
    r'^\s*(?:ROOT )?%(?P<name>[\w.-]+) = (?P<shape>\S+?)(?:\{[^}]*\})? '
    r'(?P<opcode>[\w-]+)\((?P<operands>.*?)\)(?P<attributes>.*)$'
)
_COMPUTATION = re.compile(r'^(?:ENTRY )?%(?P<name>[\w.-]+) .*\{$')


@dataclasses.dataclass(frozen=True)
class Instruction:
  """One HLO instruction of the optimised program.

  Attributes:
    shape: Its result type, e.g. ``f32[64,9,512]``.
    opcode: E.g. ``fusion``, ``dot``, ``sort``.
    body: The instructions of the computation a fusion calls, one per line;
      for other opcodes, the instruction itself.
  """

  shape: str
  opcode: str
  body: str


def parse_hlo(text: str) -> dict[str, Instruction]:
  """Every instruction of ``compile().as_text()``, by name."""
  computations: dict[str, list[str]] = {}
  current = None
  calls = {}
  found = {}
  for line in text.splitlines():
    header = _COMPUTATION.match(line)
    if header:
      current = computations.setdefault(header.group('name'), [])
      continue
    if line.startswith('}'):
      current = None
      continue
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    if current is not None:
      current.append(line)
    called = re.search(r'calls=%([\w.-]+)', match.group('attributes'))
    found[match.group('name')] = (
        match.group('shape'),
        match.group('opcode'),
        line,
    )
    if called:
      calls[match.group('name')] = called.group(1)
  return {
      name: Instruction(
          shape,
          opcode,
          '\n'.join(computations[calls[name]])
          if opcode == 'fusion' and calls.get(name) in computations
          else line,
      )
      for name, (shape, opcode, line) in found.items()
  }


def _dims(shape: str) -> list[int]:
  inside = shape[shape.find('[') + 1 : shape.find(']')]
  return [int(d) for d in inside.split(',') if d.strip().isdigit()]


def _reduces_minor_axis(body: str) -> bool:
  """Whether every ``reduce`` in ``body`` sums over its operand's last axis."""
  shapes = {}
  minor = True
  for line in body.splitlines():
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    shapes[match.group('name')] = match.group('shape')
    if match.group('opcode') != 'reduce':
      continue
    operand = re.findall(r'%([\w.-]+)', match.group('operands'))[0]
    rank = len(_dims(shapes.get(operand, '[]')))
    reduced = re.search(r'dimensions=\{([\d,]*)\}', match.group('attributes'))
    axes = {int(a) for a in reduced.group(1).split(',') if a} if reduced else {}
    minor = minor and (rank - 1) in axes
  return minor


def category(instruction: Instruction, num_steps: int) -> str | None:
  """The category of one instruction (see the module docstring), or None.

  Args:
    instruction: The instruction.
    num_steps: ``T``: an array whose leading axis is ``T`` is taken to be
      stacked over time.

  Returns:
    One of ``CATEGORIES``, or None for control flow and other instructions
    whose time is that of the instructions inside them.
  """
  opcode, body = instruction.opcode, instruction.body
  if opcode in _NOT_COUNTED:
    return None
  dims = _dims(instruction.shape)
  stacked = len(dims) >= 2 and dims[0] == num_steps
  opcodes = set(_opcodes(body))
  if 'dot' in opcodes:
    if 'lhs_batch_dims' in body:
      return 'batched products'
    return 'products with weights'
  if 'sort' in opcodes:
    return 'sorts'
  if 'reduce' in opcodes:
    if _reduces_minor_axis(body):
      return 'sums over a minor axis'
    return 'sums over a major axis'
  if 'dynamic-update-slice' in opcodes:
    return 'scan buffers: per-step writes'
  if stacked and opcodes <= {
      'broadcast',
      'constant',
      'parameter',
      'copy',
      'bitcast',
      'fusion',
  }:
    return 'scan buffers: zero fill and copies'
  if opcode in ('fusion', 'copy', 'transpose', 'concatenate', 'slice'):
    if 'dynamic-slice' in opcodes:
      return 'elementwise, slicing a scanned array'
    return 'elementwise'
  return 'other'


def _opcodes(body: str) -> list[str]:
  return [
      match.group('opcode')
      for match in map(_INSTRUCTION.match, body.splitlines())
      if match
  ]


def op_times(trace_dir: str) -> collections.Counter[str]:
  """Total microseconds of every named event of a perfetto trace."""
  (path,) = glob.glob(
      os.path.join(trace_dir, '**', '*.trace.json.gz'), recursive=True
  )
  with gzip.open(path) as f:
    trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  times: collections.Counter[str] = collections.Counter()
  for event in events:
    if event.get('ph') == 'X':
      times[event['name']] += event.get('dur', 0)
  return times


def _gradient(core: str, config_name: str, implementation: str):
  """``(gradient, args, num_steps)`` of one configuration."""
  if core == 'rmc':
    if config_name not in rmc_step.CONFIGS:
      raise app.UsageError(
          f'Unknown --size={config_name!r} for --model=rmc; choose from '
          f'{sorted(rmc_step.CONFIGS)}.'
      )
    rmc_config = rmc_step.CONFIGS[config_name]
    params, inputs_fn, _, gradient, _ = rmc_step._functions(  # pylint: disable=protected-access
        rmc_config, implementation, 'float32'
    )
    num_steps = rmc_config.num_steps
  else:
    if config_name not in dnc_step.CONFIGS:
      raise app.UsageError(
          f'Unknown --size={config_name!r} for --model=dnc; choose from '
          f'{sorted(dnc_step.CONFIGS)}.'
      )
    dnc_config = dataclasses.replace(
        dnc_step.CONFIGS[config_name], controller_layers=1
    )
    params, inputs_fn, _, gradient, _ = dnc_step._functions(  # pylint: disable=protected-access
        dnc_config, 'softplus'
    )
    num_steps = dnc_config.num_steps
  return gradient, (params, inputs_fn(num_steps)), num_steps


def profile(
    core: str, config_name: str, implementation: str, calls: int, top: int
) -> dict[str, Any]:
  """The figures of the module docstring, as a dict."""
  gradient, args, num_steps = _gradient(core, config_name, implementation)
  instructions = parse_hlo(gradient.lower(*args).compile().as_text())
  for _ in range(3):
    jax.block_until_ready(gradient(*args))
  usage_before = resource.getrusage(resource.RUSAGE_SELF)
  start = time.perf_counter()
  for _ in range(calls):
    jax.block_until_ready(gradient(*args))
  wall_s = (time.perf_counter() - start) / calls
  usage_after = resource.getrusage(resource.RUSAGE_SELF)
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      for _ in range(calls):
        jax.block_until_ready(gradient(*args))
    times = op_times(trace_dir)
  per_step = 1e-3 / (calls * num_steps)  # us in all calls -> ms per step
  by_category = collections.Counter({name: 0.0 for name in CATEGORIES})
  slowest = []
  for name, micros in times.items():
    if name not in instructions:
      continue
    found = category(instructions[name], num_steps)
    if found is None:
      continue
    by_category[found] += micros * per_step
    slowest.append((micros * per_step, name, instructions[name].shape, found))
  total = sum(by_category.values())
  slowest.sort(reverse=True)
  return {
      'core': core,
      'config': config_name,
      'implementation': implementation if core == 'rmc' else 'dynamic_unroll',
      'device': str(jax.devices()[0]),
      'num_steps': num_steps,
      'wall_ms_per_step': wall_s * 1e3 / num_steps,
      'page_faults_per_call': (usage_after.ru_minflt - usage_before.ru_minflt)
      / calls,
      'system_ms_per_step': (usage_after.ru_stime - usage_before.ru_stime)
      * 1e3
      / (calls * num_steps),
      'op_ms_per_step': total,
      'categories': {
          name: {'ms_per_step': ms, 'share': ms / total if total else 0.0}
          for name, ms in by_category.most_common()
      },
      'slowest': [
          {'op': name, 'shape': shape, 'category': found, 'ms_per_step': ms}
          for ms, name, shape, found in slowest[:top]
      ],
  }


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  result = profile(
      _MODEL.value,
      _SIZE.value,
      _IMPLEMENTATION.value,
      _CALLS.value,
      _TOP.value,
  )
  print(json.dumps(result, indent=1))


if __name__ == '__main__':
  app.run(main)
