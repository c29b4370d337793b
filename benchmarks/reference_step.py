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
r"""Speed of the reference implementations, beside rmc_step and dnc_step.

``--core=rmc`` times Sonnet v1's own ``snt.RelationalMemory``, ``--core=dnc``
DeepMind's DNC (github.com/google-deepmind/dnc, a checkout of which
``--dnc_path`` names), and ``--core=rmc_pytorch`` the public PyTorch port of
the RMC (github.com/L0SG/relational-rnn-pytorch, a checkout of which
``--pytorch_rmc_path`` names). Not part of rmc and not run by its tests: the
first two need TensorFlow 1.15 and dm-sonnet 1.36, which install only on
Python 3.7, the third PyTorch:

  python3.7 -m venv /tmp/venv37
  /tmp/venv37/bin/pip install tensorflow==1.15.5 dm-sonnet==1.36 \
      tensorflow-probability==0.8.0 'protobuf<3.21' 'numpy<1.19' 'scipy<1.8'
  /tmp/venv37/bin/python benchmarks/reference_step.py --core=rmc
  git clone https://github.com/google-deepmind/dnc /tmp/dnc
  /tmp/venv37/bin/python benchmarks/reference_step.py --core=dnc \
      --dnc_path=/tmp/dnc
  python3.11 -m venv /tmp/venvtorch
  /tmp/venvtorch/bin/pip install torch==2.13.0 numpy
  git clone https://github.com/L0SG/relational-rnn-pytorch /tmp/rmc_pytorch
  /tmp/venvtorch/bin/python benchmarks/reference_step.py --core=rmc_pytorch \
      --pytorch_rmc_path=/tmp/rmc_pytorch

For each configuration of ``benchmarks.rmc_step`` (``--core=rmc``: the same
sizes, ``unit`` gating, 1 block) or of ``benchmarks.dnc_step``
(``--core=dnc``: the same sizes, with the reference's one-layer controller;
compare ``dnc_step --controller_layers=1 --strength_activation=softplus``),
a test keeping the tables equal, the core is unrolled with
``tf.nn.dynamic_rnn`` (time-major, as Sonnet's examples and the DNC's
``train.py`` do) and, after warm-up, the median wall time over repeated
``session.run`` calls is taken of:

* ``forward``: the outputs of every step;
* ``forward_backward``: the gradient of the mean of the squared outputs with
  respect to the variables and the inputs (what ``rmc_step`` differentiates).

The inputs live in a TensorFlow variable, so no feeding is timed. The
PyTorch port (``--core=rmc_pytorch``: its ``relational_rnn_general``
module, ``unit`` gating, 1 block, batch-major) is timed the same way: its
own Python loop over the steps, ``forward`` under ``torch.no_grad()``, and
``forward_backward`` as ``torch.autograd.grad`` of the same loss. Under
PyTorch 2 its attention scales the query in place (``q *= ...``) on an
output of ``torch.split``, which autograd refuses; here the port's
``torch.split`` returns its first part as a copy (one copy of ``q``, ``[B, H,
N + 1, key_size]``, and of the input gate per step), its code otherwise
unchanged. One JSON object is printed, with ``ms`` and ``ms_per_step`` for
each, and the versions. Written for Python 3.7 (no newer syntax).
"""

import argparse
import collections
import functools
import json
import os
import statistics
import sys
import time

# name: (mem_slots, num_heads, head_size, input_size, batch_size, num_steps,
# mlp_layers); equal to benchmarks.rmc_step.CONFIGS (checked by a test).
RMC_CONFIGS = {
    'small': (4, 4, 32, 40, 32, 8, 2),
    'nth_farthest': (8, 8, 64, 40, 64, 8, 2),
    'lm': (1, 4, 256, 256, 32, 100, 2),
    'lm_paper': (1, 4, 625, 512, 8, 100, 5),
    'tiny': (2, 2, 4, 3, 2, 3, 2),
}
RMC_ALL = ('small', 'nth_farthest', 'lm', 'lm_paper')
# name: (memory_size, word_size, num_reads, num_writes, controller_size,
# input_size, batch_size, num_steps); benchmarks.dnc_step.CONFIGS with its
# controller_layers left out (checked by a test).
DNC_CONFIGS = {
    'nth_farthest_cpu': (8, 64, 2, 1, 128, 16, 16, 4),
    'learn_to_execute_cpu': (16, 32, 4, 1, 64, 45, 64, 30),
    'learn_to_execute_paper': (80, 64, 4, 1, 512, 45, 128, 30),
    'tiny': (4, 3, 2, 2, 5, 3, 2, 3),
}
DNC_ALL = ('nth_farthest_cpu', 'learn_to_execute_cpu', 'learn_to_execute_paper')


def median_seconds(run, min_repeats, min_time_s):
  """Median wall time of ``run()``, after two warm-up calls."""
  for _ in range(2):
    run()
  times = []
  start = time.perf_counter()
  while len(times) < min_repeats or time.perf_counter() - start < min_time_s:
    begin = time.perf_counter()
    run()
    times.append(time.perf_counter() - begin)
  return statistics.median(times)


def timings(runs, num_steps, min_repeats, min_time_s):
  """The median time of each ``runs[kind]()``, as ``ms`` and ``ms_per_step``."""
  result = {}
  for kind, run in runs.items():
    seconds = median_seconds(run, min_repeats, min_time_s)
    result[kind] = {
        'ms': seconds * 1e3,
        'ms_per_step': seconds * 1e3 / num_steps,
    }
  return result


def _rmc_description(name):
  """The sizes of an RMC configuration, by name."""
  slots, heads, head_size, input_size, batch, steps, mlp = RMC_CONFIGS[name]
  return {
      'mem_slots': slots,
      'num_heads': heads,
      'head_size': head_size,
      'input_size': input_size,
      'batch_size': batch,
      'num_steps': steps,
      'mlp_layers': mlp,
  }


def _rmc_unroll(name, tf, snt):
  """``(description, outputs)`` of Sonnet's RMC over one sequence."""
  slots, heads, head_size, input_size, batch, steps, mlp = RMC_CONFIGS[name]
  inputs = tf.Variable(
      tf.random.normal([steps, batch, input_size]), name='inputs'
  )  # [T, B, d_in]
  core = snt.RelationalMemory(
      mem_slots=slots,
      head_size=head_size,
      num_heads=heads,
      num_blocks=1,
      gate_style='unit',
      attention_mlp_layers=mlp,
  )
  outputs, _ = tf.nn.dynamic_rnn(
      core, inputs, initial_state=core.initial_state(batch), time_major=True
  )  # [T, B, N * D]
  return _rmc_description(name), outputs


def _dnc_unroll(name, tf):
  """``(description, outputs)`` of the reference DNC over one sequence."""
  # From --dnc_path, which main() puts on sys.path.
  from dnc import dnc  # pylint: disable=g-import-not-at-top

  (
      memory_size,
      word_size,
      num_reads,
      num_writes,
      controller_size,
      input_size,
      batch,
      steps,
  ) = DNC_CONFIGS[name]
  inputs = tf.Variable(
      tf.random.normal([steps, batch, input_size]), name='inputs'
  )  # [T, B, d_in]
  core = dnc.DNC(
      access_config=dict(
          memory_size=memory_size,
          word_size=word_size,
          num_reads=num_reads,
          num_writes=num_writes,
      ),
      controller_config=dict(hidden_size=controller_size),
      output_size=controller_size,
      clip_value=20,
  )
  outputs, _ = tf.nn.dynamic_rnn(
      core, inputs, initial_state=core.initial_state(batch), time_major=True
  )  # [T, B, controller_size]
  description = {
      'memory_size': memory_size,
      'word_size': word_size,
      'num_reads': num_reads,
      'num_writes': num_writes,
      'controller_size': controller_size,
      'controller_layers': 1,
      'input_size': input_size,
      'batch_size': batch,
      'num_steps': steps,
  }
  return description, outputs


def measure(core, name, min_repeats, min_time_s, profile_calls=0):
  """``forward`` and ``forward_backward`` times of one configuration.

  With ``profile_calls``, also the op types' share of ``forward_backward``
  over that many traced calls (``RunOptions.FULL_TRACE``).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import sonnet as snt  # pylint: disable=g-import-not-at-top

  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(0)
    if core == 'rmc':
      description, outputs = _rmc_unroll(name, tf, snt)
    else:
      description, outputs = _dnc_unroll(name, tf)
    loss = tf.reduce_mean(tf.square(outputs))
    variables = tf.trainable_variables()  # The inputs are one of them.
    fetches = {
        'forward': outputs,
        'forward_backward': tf.gradients(loss, variables),
    }
    session = tf.Session(graph=graph)
    session.run(tf.global_variables_initializer())
    parameters = sum(
        v.shape.num_elements()
        for v in variables
        if not v.name.startswith('inputs')
    )
  result = {'config': name, **description, 'parameters': parameters}
  runs = {
      kind: functools.partial(session.run, fetch)
      for kind, fetch in fetches.items()
  }
  result.update(
      timings(runs, description['num_steps'], min_repeats, min_time_s)
  )
  if profile_calls:
    op_micros = collections.Counter()
    for _ in range(profile_calls):
      metadata = tf.RunMetadata()
      session.run(
          fetches['forward_backward'],
          options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
          run_metadata=metadata,
      )
      for device in metadata.step_stats.dev_stats:
        for node in device.node_stats:
          # timeline_label: 'name = OpType(inputs)'.
          label = node.timeline_label
          op = (
              label.split('=', 1)[1].split('(')[0].strip()
              if ('=' in label)
              else node.node_name
          )
          op_micros[op] += node.op_end_rel_micros - node.op_start_rel_micros
    result['profile'] = _profile_summary(
        op_micros, profile_calls * description['num_steps']
    )
  session.close()
  return result


def _profile_summary(op_micros, calls_times_steps, top=15):
  """``{op_ms_per_step, ops: [{op, ms_per_step, share}]}``, slowest first."""
  total = sum(op_micros.values())
  return {
      'op_ms_per_step': total * 1e-3 / calls_times_steps,
      'ops': [
          {
              'op': op,
              'ms_per_step': micros * 1e-3 / calls_times_steps,
              'share': micros / total,
          }
          for op, micros in op_micros.most_common(top)
      ],
  }


class _SplitFirstCopied:
  """``torch``, but ``split`` returns its first part as a copy.

  Stands in for the PyTorch port's module-level ``torch``, so that its
  in-place ``q *= ...`` on the first output of ``torch.split`` is allowed by
  PyTorch 2's autograd.
  """

  def __init__(self, torch):
    self._torch = torch

  def __getattr__(self, name):
    return getattr(self._torch, name)

  def split(self, *args, **kwargs):
    parts = self._torch.split(*args, **kwargs)
    return (parts[0].clone(),) + tuple(parts[1:])


def measure_pytorch(name, min_repeats, min_time_s, profile_calls=0):
  """``forward`` and ``forward_backward`` times of the PyTorch port.

  With ``profile_calls``, also the ops' share of ``forward_backward`` (self
  CPU time, ``torch.profiler``) over that many calls.
  """
  import torch  # pylint: disable=g-import-not-at-top
  # From --pytorch_rmc_path, which main() puts on sys.path.
  import relational_rnn_general as port  # pylint: disable=g-import-not-at-top

  port.torch = _SplitFirstCopied(torch)
  description = _rmc_description(name)
  torch.manual_seed(0)
  core = port.RelationalMemory(
      mem_slots=description['mem_slots'],
      head_size=description['head_size'],
      input_size=description['input_size'],
      num_heads=description['num_heads'],
      num_blocks=1,
      gate_style='unit',
      attention_mlp_layers=description['mlp_layers'],
      return_all_outputs=True,
  )
  batch, steps = description['batch_size'], description['num_steps']
  memory = core.initial_state(batch)  # [B, N, D]
  inputs = torch.randn(
      batch, steps, description['input_size'], requires_grad=True
  )  # [B, T, d_in]
  variables = list(core.parameters()) + [inputs]

  def forward():
    with torch.no_grad():
      return core(inputs, memory)[0]  # [T * B, N * D]

  def forward_backward():
    outputs, _ = core(inputs, memory)  # [T * B, N * D]
    return torch.autograd.grad(torch.mean(torch.square(outputs)), variables)

  result = {
      'config': name,
      **description,
      'parameters': sum(p.numel() for p in core.parameters()),
  }
  runs = {'forward': forward, 'forward_backward': forward_backward}
  result.update(timings(runs, steps, min_repeats, min_time_s))
  if profile_calls:
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU]
    ) as profiler:
      for _ in range(profile_calls):
        forward_backward()
    op_micros = collections.Counter(
        {
            event.key: event.self_cpu_time_total
            for event in profiler.key_averages()
        }
    )
    result['profile'] = _profile_summary(op_micros, profile_calls * steps)
  return result


def main():
  """The command-line entry point; see the module docstring."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument(
      '--core',
      choices=('rmc', 'dnc', 'rmc_pytorch'),
      default='rmc',
      help="Sonnet v1's RMC, the reference DNC, or the PyTorch port's RMC.",
  )
  parser.add_argument(
      '--config',
      default='all',
      help=f'Comma-separated names from {sorted(RMC_CONFIGS)} (rmc, '
      f'rmc_pytorch) or {sorted(DNC_CONFIGS)} (dnc), or all.',
  )
  parser.add_argument(
      '--dnc_path',
      default='',
      help='A checkout of github.com/google-deepmind/dnc '
      '(the directory holding dnc/dnc.py), for --core=dnc.',
  )
  parser.add_argument(
      '--pytorch_rmc_path',
      default='',
      help='A checkout of github.com/L0SG/relational-rnn-pytorch (the '
      'directory holding relational_rnn_general.py), for '
      '--core=rmc_pytorch.',
  )
  parser.add_argument(
      '--min_repeats',
      type=int,
      default=5,
      help='Fewest timed calls per figure.',
  )
  parser.add_argument(
      '--min_time_s',
      type=float,
      default=3.0,
      help='Least seconds of timed calls per figure.',
  )
  parser.add_argument(
      '--profile_calls',
      type=int,
      default=0,
      help='If positive, also profile forward_backward over this many calls: '
      'the time of each op type (TensorFlow) or op (PyTorch), in ms per '
      'step and as a share of all ops (ops may run concurrently).',
  )
  args = parser.parse_args()
  configs, default = (
      (DNC_CONFIGS, DNC_ALL) if args.core == 'dnc' else (RMC_CONFIGS, RMC_ALL)
  )
  names = default if args.config == 'all' else args.config.split(',')
  for name in names:
    if name not in configs:
      sys.exit(f'error: --config={name} is not one of {sorted(configs)}.')
  if args.core == 'dnc' and not os.path.isfile(
      os.path.join(args.dnc_path, 'dnc', 'dnc.py')
  ):
    sys.exit(
        f'error: --dnc_path={args.dnc_path!r} holds no dnc/dnc.py; give a '
        'checkout of github.com/google-deepmind/dnc.'
    )
  if args.core == 'dnc':
    sys.path.insert(0, args.dnc_path)  # Where `from dnc import dnc` looks.
  if args.core == 'rmc_pytorch':
    if not os.path.isfile(
        os.path.join(args.pytorch_rmc_path, 'relational_rnn_general.py')
    ):
      sys.exit(
          f'error: --pytorch_rmc_path={args.pytorch_rmc_path!r} holds no '
          'relational_rnn_general.py; give a checkout of '
          'github.com/L0SG/relational-rnn-pytorch.'
      )
    sys.path.insert(0, args.pytorch_rmc_path)
    import torch  # pylint: disable=g-import-not-at-top

    results = [
        measure_pytorch(
            name, args.min_repeats, args.min_time_s, args.profile_calls
        )
        for name in names
    ]
    print(
        json.dumps(
            {
                'core': args.core,
                'torch': torch.__version__,
                'torch_threads': torch.get_num_threads(),
                'python': sys.version.split()[0],
                'results': results,
            },
            indent=1,
        )
    )
    return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import sonnet as snt  # pylint: disable=g-import-not-at-top

  tf.logging.set_verbosity(tf.logging.ERROR)
  results = [
      measure(
          args.core,
          name,
          args.min_repeats,
          args.min_time_s,
          args.profile_calls,
      )
      for name in names
  ]
  print(
      json.dumps(
          {
              'core': args.core,
              'tensorflow': tf.__version__,
              'sonnet': snt.__version__,
              'python': sys.version.split()[0],
              'results': results,
          },
          indent=1,
      )
  )


if __name__ == '__main__':
  main()
