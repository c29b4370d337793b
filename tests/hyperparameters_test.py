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
"""Tests for rmc/toolkit/hyperparameters.py and the cores' typed hyperparameters."""

import dataclasses
from typing import Literal

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized
import haiku as hk
import jax
import jax.numpy as jnp
import rmc
from rmc.toolkit import cores
from rmc.toolkit import hyperparameters
from rmc.toolkit.hyperparameters import hyperparameter
from rmc.toolkit import run_config

from experiments import launch


@dataclasses.dataclass(frozen=True)
class _Example(hyperparameters.Hyperparameters):
  PREFIX = 'ex_'

  size: int = hyperparameter('A size.', lower=1)
  rate: float = hyperparameter('A rate.', default=0.5, lower=0.0, upper=1.0)
  style: Literal['a', 'b'] = hyperparameter('A style.', default='a')
  name: str = hyperparameter('A name.', default='x')
  on: bool = hyperparameter('A switch.', default=False)
  limit: int | None = hyperparameter('A limit.', default=None, lower=0)


class HyperparametersTest(parameterized.TestCase):

  def test_flat_names_and_round_trip(self):
    example = _Example(size=3, limit=2)
    self.assertEqual(_Example.flag_names(), (
        'ex_size', 'ex_rate', 'ex_style', 'ex_name', 'ex_on', 'ex_limit'))
    self.assertEqual(example.flat(), {
        'ex_size': 3, 'ex_rate': 0.5, 'ex_style': 'a', 'ex_name': 'x',
        'ex_on': False, 'ex_limit': 2})
    # Other names (another group's) are ignored; defaults fill the rest.
    self.assertEqual(_Example.from_flat({'ex_size': 3, 'ex_limit': 2,
                                         'mem_slots': 9}), example)

  @parameterized.parameters(
      (dict(size=0), '--ex_size must be >= 1; got 0.'),
      (dict(size=1.5), '--ex_size must be of type int; got 1.5.'),
      (dict(size=True), '--ex_size must be of type int; got True.'),
      (dict(size=1, rate=2.0), '--ex_rate must be <= 1.0; got 2.0.'),
      (dict(size=1, rate=float('nan')), '--ex_rate must be a finite number.'),
      (dict(size=1, style='c'), "--ex_style must be one of ['a', 'b']; "
       "got 'c'."),
      (dict(size=1, on=1), '--ex_on must be of type bool; got 1.'),
      (dict(size=None), '--ex_size must be given.'),
      (dict(size=1, limit=-1), '--ex_limit must be >= 0; got -1.'),
  )
  def test_bad_values_are_one_line_errors(self, values, message):
    with self.assertRaises(ValueError) as raised:
      _Example(**values)
    self.assertEqual(str(raised.exception), message)

  def test_a_float_takes_an_int(self):
    self.assertEqual(_Example(size=1, rate=1).rate, 1)

  def test_from_flat_names_what_is_missing(self):
    with self.assertRaisesRegex(ValueError, r'^_Example needs --ex_size\.$'):
      _Example.from_flat({'ex_rate': 0.1})

  def test_flags(self):
    values = flags.FlagValues()
    hyperparameters.define_flags(_Example, values)
    values(['program'])
    self.assertIsNone(values['ex_size'].value)  # None: take the preset's.
    values(['program', '--ex_size=4', '--ex_rate=0.25', '--ex_style=b',
            '--ex_on', '--ex_limit=7', '--ex_name=y'])
    self.assertEqual(
        _Example.from_flat({n: values[n].value for n in
                            _Example.flag_names()}),
        _Example(size=4, rate=0.25, style='b', name='y', on=True, limit=7))
    self.assertEqual(values['ex_rate'].help, 'A rate.')
    for bad in ('--ex_size=0', '--ex_rate=1.5', '--ex_rate=nan',
                '--ex_style=c', '--ex_limit=-1'):
      with self.subTest(bad=bad):
        with self.assertRaises(flags.IllegalFlagValueError):
          values(['program', bad])


class CoresTest(parameterized.TestCase):

  def test_the_flags_users_know(self):
    self.assertEqual(cores.RMC.flag_names(), (
        'mem_slots', 'head_size', 'num_heads', 'num_blocks', 'key_size',
        'attention_mlp_layers', 'gate_style', 'forget_bias', 'input_bias',
        'attention_scale'))
    self.assertEqual(cores.LSTM.flag_names(), ('lstm_hidden_size',))
    self.assertEqual(cores.DNC.flag_names(),
                     run_config.ADDED_HYPERPARAMETERS)
    # The binaries' flags are these, with these helps.
    for core in cores.CORES.values():
      for spec in core.specs():
        self.assertTrue(flags.FLAGS[spec.flag].help.endswith(spec.help))
        self.assertIn(spec.flag, launch.HYPERPARAMETER_FLAGS)
    self.assertEqual(flags.FLAGS['core'].parser.enum_values,
                     ['rmc', 'lstm', 'dnc'])

  def test_rmc_kwargs_and_make(self):
    config = cores.RMC(mem_slots=2, head_size=4, num_heads=2,
                       gate_style='none', attention_scale='qkv_size')
    kwargs = config.kwargs('bfloat16')
    self.assertIsNone(kwargs['gate_style'])
    self.assertEqual(kwargs['compute_dtype'], 'bfloat16')
    self.assertIsNone(config.kwargs()['compute_dtype'])
    made = hk.transform(lambda: vars(config.make()))
    attributes = made.apply({}, None)
    self.assertEqual(attributes['_mem_slots'], 2)

    def forward(inputs):
      core = config.make(name='decoder')
      return hk.dynamic_unroll(core, inputs, core.initial_state(1))

    params = hk.transform(forward).init(jax.random.key(0),
                                        jnp.zeros([3, 1, 5]))
    self.assertTrue(all(m.startswith('decoder') for m in params))

  def test_dnc_kwargs_and_make(self):
    config = cores.DNC(memory_size=4, word_size=3, num_reads=2, num_writes=1,
                       controller_size=8, clip_value=0.0)
    self.assertEqual(config.kwargs(), dict(
        access_config=dict(memory_size=4, word_size=3, num_reads=2,
                           num_writes=1, strength_activation='oneplus'),
        controller_config=dict(hidden_size=8, num_layers=2),
        output_size=8, clip_value=None))
    made = hk.transform(lambda: isinstance(config.make(), rmc.DNC))
    self.assertTrue(made.apply({}, None))

  def test_lstm_make(self):
    config = cores.LSTM(hidden_size=6)

    def forward(inputs, num_layers):
      core = config.make(num_layers)
      return hk.dynamic_unroll(core, inputs, core.initial_state(2))[0]

    for num_layers, width in ((1, 6), (2, 12)):  # Skips: both layers' out.
      f = hk.transform(lambda x, n=num_layers: forward(x, n))
      inputs = jnp.zeros([3, 2, 5])
      params = f.init(jax.random.key(0), inputs)
      self.assertEqual(f.apply(params, None, inputs).shape, (3, 2, width))
    with self.assertRaisesRegex(ValueError, 'num_layers must be >= 1'):
      config.make(0)


if __name__ == '__main__':
  absltest.main()
