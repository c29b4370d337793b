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
"""Tests for the benchmark commands, so that they cannot rot."""

import json
import math
import os

from absl import app
from absl.testing import absltest
from absl.testing import parameterized
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import binary_testing
from benchmarks import dnc_step
from benchmarks import profile_step
from benchmarks import rmc_step
from benchmarks import same_numerics
from benchmarks import synthetic_text
import rmc


def _dot_flops(jaxpr) -> int:
  """2 x multiply-adds of every ``dot_general`` in a jaxpr, recursively."""
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == 'dot_general':
      (lhs_contract, _), _ = eqn.params['dimension_numbers']
      lhs = eqn.invars[0].aval.shape
      out = eqn.outvars[0].aval.shape
      total += 2 * math.prod(out) * math.prod(lhs[d] for d in lhs_contract)
    for value in eqn.params.values():  # Inner jaxprs (jit, custom_jvp...).
      for inner in value if isinstance(value, (tuple, list)) else (value,):
        inner = getattr(inner, 'jaxpr', inner)
        if hasattr(inner, 'eqns'):
          total += _dot_flops(inner)
  return total


class SyntheticTextTest(parameterized.TestCase):

  @parameterized.parameters(False, True)
  def test_token_count_and_vocabulary(self, cover_vocabulary):
    path = os.path.join(self.create_tempdir().full_path, 'wiki.train.tokens')
    synthetic_text.write_split(path, 3000, 500, np.random.default_rng(0),
                               cover_vocabulary=cover_vocabulary)
    with open(path, encoding='utf-8') as f:
      lines = f.read().split('\n')[:-1]
    words = [w for line in lines for w in line.split()]
    self.assertEqual(len(words) + len(lines), 3000)  # One <eos> per line.
    types = len(set(words)) + 1  # With <eos>.
    if cover_vocabulary:
      self.assertEqual(types, 500)
    else:  # A Zipf sample of 3000 tokens misses much of the tail.
      self.assertLess(types, 450)


class RmcStepTest(parameterized.TestCase):

  @parameterized.parameters('tiny', 'small', 'lm_paper')
  def test_flop_count_matches_the_traced_step(self, name):
    config = rmc_step.CONFIGS[name]

    def step(inputs):
      core = rmc.RelationalMemory(
          mem_slots=config.mem_slots, head_size=config.head_size,
          num_heads=config.num_heads, attention_mlp_layers=config.mlp_layers,
          gate_style='unit')
      return core(inputs, core.initial_state(inputs.shape[0]))

    model = hk.without_apply_rng(hk.transform(step))
    inputs = jnp.zeros([config.batch_size, config.input_size])
    params = jax.eval_shape(model.init, jax.random.key(0), inputs)
    jaxpr = jax.make_jaxpr(model.apply)(params, inputs).jaxpr
    self.assertEqual(rmc_step.step_flops(config), _dot_flops(jaxpr))

  @pytest.mark.slow
  def test_command_prints_every_figure(self):
    self._command_prints_every_figure('bfloat16', ['unroll'], ['2'])

  # Both unrolls and two compile lengths in the full tier (make test-all).
  @pytest.mark.slow
  def test_command_prints_every_figure_of_both_unrolls(self):
    self._command_prints_every_figure('float32', ['unroll', 'dynamic_unroll'],
                                      ['2', '4'])

  def _command_prints_every_figure(self, dtype, implementations, lengths):
    printed = binary_testing.run_main(
        rmc_step, '--config=tiny', f'--compile_lengths={",".join(lengths)}',
        '--matmul_size=32', '--min_time_s=0', '--min_repeats=2',
        f'--dtype={dtype}', f'--implementations={",".join(implementations)}')
    report = json.loads(printed)
    self.assertGreater(report['matmul_gflops'], 0)
    self.assertEqual(report['matmul_gflops'],
                     max(report['matmul_gflops_before_and_after']))
    self.assertEqual(report['compute_dtype'], dtype)
    self.assertEqual([(r['config'], r['implementation'])
                      for r in report['results']],
                     [('tiny', name) for name in implementations])
    for result in report['results']:
      for kind in ('forward', 'forward_backward'):
        figures = result[kind]
        self.assertGreater(figures['ms'], 0)
        self.assertAlmostEqual(figures['ms_per_step'] * result['num_steps'],
                               figures['ms'])
        self.assertAlmostEqual(figures['fraction_of_matmul'],
                               figures['gflops'] / report['matmul_gflops'])
      self.assertEqual(sorted(result['forward_backward_compile_s']), lengths)
      self.assertAlmostEqual(
          result['loop_products_fraction_of_matmul'],
          result['loop_products_gflops'] / report['matmul_gflops'])

  @parameterized.parameters('tiny', 'small', 'lm_paper')
  def test_loop_products_are_the_step_minus_the_rest(self, name):
    config = rmc_step.CONFIGS[name]
    b, d = config.batch_size, config.num_heads * config.head_size
    rows = config.mem_slots + 1
    outside_loop = 2 * b * config.input_size * d + 2 * b * d * 2 * d
    attention = 2 * b * config.num_heads * rows * rows * 2 * config.head_size
    loop = sum(2 * m * k * n for m, k, n in rmc_step.loop_product_shapes(config))
    self.assertEqual(loop + outside_loop + attention,
                     rmc_step.step_flops(config))

  @pytest.mark.slow
  def test_dnc_command_prints_every_figure(self):
    printed = binary_testing.run_main(
        dnc_step, '--dnc_config=tiny', '--compile_lengths=2',
        '--min_time_s=0', '--min_repeats=2')
    (result,) = json.loads(printed)['results']
    self.assertEqual(result['config'], 'tiny')
    self.assertGreater(result['parameters'], 0)
    for kind in ('forward', 'forward_backward'):
      self.assertGreater(result[kind]['ms'], 0)
      self.assertAlmostEqual(result[kind]['ms_per_step'] * result['num_steps'],
                             result[kind]['ms'])
    self.assertEqual(list(result['forward_backward_compile_s']), ['2'])
    with self.assertRaisesRegex(app.UsageError,
                                "Unknown --dnc_config='huge'"):
      binary_testing.run_main(dnc_step, '--dnc_config=huge')

  @pytest.mark.slow
  def test_dnc_command_as_the_reference_builds_it(self):
    def run(*args):
      printed = binary_testing.run_main(
          dnc_step, '--dnc_config=tiny', '--compile_lengths=',
          '--min_time_s=0', '--min_repeats=1', *args)
      (result,) = json.loads(printed)['results']
      return result

    default, reference = run(), run('--controller_layers=1',
                                    '--strength_activation=softplus')
    self.assertEqual(
        (default['controller_layers'], default['strength_activation']),
        (dnc_step.CONFIGS['tiny'].controller_layers, 'oneplus'))
    self.assertEqual(
        (reference['controller_layers'], reference['strength_activation']),
        (1, 'softplus'))
    self.assertLess(reference['parameters'], default['parameters'])

  def test_unknown_config(self):
    with self.assertRaisesRegex(app.UsageError, "Unknown --config='huge'"):
      binary_testing.run_main(rmc_step, '--config=huge')

  @pytest.mark.slow
  def test_compile_times_only_for_the_compile_configs(self):
    printed = binary_testing.run_main(
        rmc_step, '--config=tiny', '--compile_configs=', '--matmul_size=32',
        '--min_time_s=0', '--min_repeats=2', '--implementations=unroll')
    (result,) = json.loads(printed)['results']
    self.assertNotIn('forward_backward_compile_s', result)
    with self.assertRaisesRegex(app.UsageError,
                                "--compile_configs entry 'small'"):
      binary_testing.run_main(rmc_step, '--config=tiny',
                              '--compile_configs=small')

  def test_unknown_implementation(self):
    with self.assertRaisesRegex(app.UsageError, "entry 'scan'"):
      binary_testing.run_main(rmc_step, '--config=tiny',
                              '--implementations=scan')



class ProfileStepTest(parameterized.TestCase):

  def _categories(self, function, *args, num_steps):
    text = jax.jit(function).lower(*args).compile().as_text()
    return {
        profile_step.category(instruction, num_steps)
        for instruction in profile_step.parse_hlo(text).values()
    }

  def test_products_and_sums_by_axis(self):
    x = jnp.ones((16, 32))
    w = jnp.ones((32, 24))
    self.assertIn('products with weights',
                  self._categories(jnp.dot, x, w, num_steps=0))
    batched = jnp.ones((4, 8, 16))
    self.assertIn(
        'batched products',
        self._categories(lambda a: jnp.einsum('bij,bkj->bik', a, a),
                         batched, num_steps=0))
    self.assertIn(
        'sums over a minor axis',
        self._categories(lambda a: jnp.sum(jnp.exp(a), -1), batched,
                         num_steps=0))
    self.assertIn(
        'sums over a major axis',
        self._categories(lambda a: jnp.sum(jnp.exp(a), 1), batched,
                         num_steps=0))

  def test_elementwise_work_that_slices_a_scanned_array(self):
    def scan(carry, xs):  # [16, 32], [5, 16, 32]
      return jax.lax.scan(
          lambda c, x: (jnp.tanh(c) * jax.nn.sigmoid(x), None), carry, xs)[0]

    found = self._categories(scan, jnp.ones((16, 32)), jnp.ones((5, 16, 32)),
                             num_steps=5)
    self.assertIn('elementwise, slicing a scanned array', found)

  # The RMC's unroll in the fast tier; the dynamic unroll and the DNC in the
  # slow (make test-all).
  def test_command_prints_every_figure(self):
    self._command_prints_every_figure('rmc', 'unroll')

  @parameterized.parameters(('rmc', 'dynamic_unroll'), ('dnc', 'unroll'))
  @pytest.mark.slow
  def test_command_prints_every_figure_slow(self, core, implementation):
    self._command_prints_every_figure(core, implementation)

  def _command_prints_every_figure(self, core, implementation):
    printed = binary_testing.run_main(
        profile_step, f'--model={core}', '--size=tiny',
        f'--implementation={implementation}', '--calls=2', '--top=3')
    report = json.loads(printed)
    self.assertEqual(set(report['categories']),
                     set(profile_step.CATEGORIES))
    self.assertAlmostEqual(
        sum(c['share'] for c in report['categories'].values()), 1.0)
    self.assertAlmostEqual(
        sum(c['ms_per_step'] for c in report['categories'].values()),
        report['op_ms_per_step'])
    self.assertGreater(
        report['categories']['products with weights']['ms_per_step'], 0)
    self.assertGreater(report['wall_ms_per_step'], 0)
    self.assertGreaterEqual(report['page_faults_per_call'], 0)
    self.assertLen(report['slowest'], 3)
    self.assertGreaterEqual(report['slowest'][0]['ms_per_step'],
                            report['slowest'][-1]['ms_per_step'])

  def test_unknown_config(self):
    with self.assertRaisesRegex(app.UsageError,
                                "Unknown --size='huge' for --model=dnc"):
      binary_testing.run_main(profile_step, '--model=dnc', '--size=huge')

if __name__ == '__main__':
  absltest.main()


class SameNumericsTest(absltest.TestCase):
  """benchmarks/same_numerics.py's comparison of two work directories."""

  def _workdir(self, records, weights):
    workdir = self.create_tempdir().full_path
    with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
      for record in records:
        f.write(json.dumps(record) + '\n')
    np.savez(os.path.join(workdir, 'checkpoint_0000000010.npz'), w=weights)
    np.savez(os.path.join(workdir, 'checkpoint_0000000005.npz'), w=weights + 1)
    return workdir

  def test_timings_may_differ_figures_and_arrays_may_not(self):
    weights = np.arange(4, dtype=np.float32)
    record = {'step': 10, 'split': 'train', 'loss': 0.5}
    before = self._workdir(
        [dict(record, elapsed_s=1.0, steps_per_sec=10.0, time=1.0)], weights)
    same = self._workdir(
        [dict(record, elapsed_s=2.0, steps_per_sec=20.0, time=2.0)], weights)
    self.assertEqual(same_numerics.compare(before, same), [])
    other_loss = self._workdir([dict(record, loss=0.5 + 1e-9)], weights)
    self.assertRegex(same_numerics.compare(before, other_loss)[0],
                     r'record 0 \(step 10, train\) differs in loss 0.5 ->')
    # The last checkpoint's arrays, bit for bit (the older one is not read).
    other_bits = self._workdir(
        [record], np.nextafter(weights, np.float32(9)))
    self.assertEqual(same_numerics.compare(before, other_bits),
                     ['checkpoint array w differs'])
    fewer = self._workdir([], weights)
    self.assertIn('1 records before, 0 after',
                  same_numerics.compare(before, fewer))
