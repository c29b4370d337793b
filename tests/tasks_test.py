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
"""Tests for rmc/tasks/: the registry, the run's Config and each task."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import jax
from rmc import tasks
from rmc.tasks import language_model
from rmc.tasks import learn_to_execute
from rmc.tasks import nth_farthest
from rmc.toolkit import cores

_PRESETS = [(task.name, name) for task in tasks.TASKS.values()
            for name in task.presets]


class RegistryTest(absltest.TestCase):

  def test_the_tasks_by_their_binaries(self):
    self.assertEqual(list(tasks.TASKS), ['nth_farthest', 'learn_to_execute',
                                         'wikitext103'])
    for name, task in tasks.TASKS.items():
      self.assertEqual(task.name, name)
      self.assertIn(task.default_preset, task.presets)

  def test_a_shared_flag_name_is_one_definition(self):
    # Each flat name means one thing in every task (one flag for all).
    specs = {}
    for task in tasks.TASKS.values():
      for group in task.presets[task.default_preset].groups:
        for spec in group.specs():
          specs.setdefault(spec.flag, spec)
          self.assertEqual(specs[spec.flag], spec, spec.flag)
    self.assertIn('eval_batches', specs)  # Nth Farthest's and LTE's.
    self.assertEqual(sorted(cores.CORES), sorted(('rmc', 'lstm', 'dnc')))


class ConfigTest(parameterized.TestCase):

  @parameterized.parameters(*_PRESETS)
  def test_every_preset_round_trips_through_its_flat_form(self, task, preset):
    config = tasks.TASKS[task].presets[preset]
    self.assertEqual(config.preset, preset)
    self.assertEqual(tasks.TASKS[task].config(config.flat()), config)

  def test_replace_by_flag_name(self):
    config = learn_to_execute.PRESETS['cpu']
    other = config.replace(core='lstm', lstm_hidden_size=45, task='control')
    self.assertEqual((other.core, other.lstm.hidden_size, other.task.program),
                     ('lstm', 45, 'control'))
    self.assertEqual(other.rmc, config.rmc)
    with self.assertRaisesRegex(
        ValueError, r'^No hyperparameter num_objects in LearnToExecute runs\.$'):
      config.replace(num_objects=3)
    with self.assertRaisesRegex(ValueError, r'^--mem_slots must be >= 1'):
      config.replace(mem_slots=0)

  @parameterized.parameters(
      (dict(core='lstm', compute_dtype='bfloat16'),
       '--compute_dtype=bfloat16 applies to the RMC core only; got '
       '--core=lstm.'),
      (dict(eval_every=15), 'eval_every=15 must be a multiple of '
       'steps_per_chunk=10.'),
      (dict(min_learning_rate=1.0), 'Need 0 < min_learning_rate'),
      (dict(task='copy'), "Memory task 'copy' needs max_nesting=1; got 2."),
  )
  def test_cross_checks_are_one_line_errors(self, values, message):
    with self.assertRaises(ValueError) as raised:
      learn_to_execute.PRESETS['cpu'].replace(**values)
    self.assertIn(message, str(raised.exception))
    self.assertNotIn('\n', str(raised.exception))

  def test_the_language_model_checks_its_softmax(self):
    with self.assertRaisesRegex(ValueError, 'needs --adaptive_cutoffs'):
      language_model.PRESETS['smoke'].replace(softmax='adaptive')
    config = language_model.PRESETS['smoke'].replace(
        softmax='adaptive', adaptive_cutoffs=['5', '10'])  # As flags give.
    self.assertEqual(config.task.adaptive_cutoffs, (5, 10))
    with self.assertRaisesRegex(ValueError, 'must be integers'):
      language_model.PRESETS['smoke'].replace(adaptive_cutoffs=['5', 'x'])

  def test_a_missing_value_takes_the_runs_own_preset(self):
    # A config.json from before a hyperparameter existed (the DNC's).
    flat = nth_farthest.PRESETS['paper'].flat()
    for name in cores.DNC.flag_names():
      del flat[name]
    config = nth_farthest.TASK.config(flat)
    self.assertEqual(config.dnc, nth_farthest.PRESETS['paper'].dnc)
    self.assertNotEqual(config.dnc, nth_farthest.PRESETS['demo'].dnc)


class TaskTest(parameterized.TestCase):

  @parameterized.parameters(*_PRESETS)
  def test_every_preset_builds_its_model_and_core(self, task, preset):
    task = tasks.TASKS[task]
    config = task.presets[preset]
    vocab_size = 50 if task is language_model.TASK else None
    counts = task.parameter_counts(config, vocab_size)
    self.assertGreater(counts['model'], counts['core'])
    core = task.core_params_shapes(config, vocab_size)
    self.assertTrue(all(m.startswith('relational_memory') for m in core))

  def test_each_core_and_separate_cores(self):
    config = learn_to_execute.PRESETS['smoke']
    for core in cores.CORES:
      shared = learn_to_execute.TASK.parameter_counts(config.replace(core=core))
      separate = learn_to_execute.TASK.parameter_counts(
          config.replace(core=core, separate_cores=True))
      self.assertEqual(separate['core'], 2 * shared['core'], core)

  def test_the_lstm_of_learning_to_execute_has_two_layers(self):
    config = learn_to_execute.PRESETS['smoke'].replace(core='lstm')
    shapes = learn_to_execute.TASK.core_params_shapes(config)
    self.assertLen([m for m in shapes if m.startswith('lstm')], 2)
    config = nth_farthest.PRESETS['smoke'].replace(core='lstm')
    self.assertLen(nth_farthest.TASK.core_params_shapes(config), 1)

  def test_the_diagnostics_model_has_the_same_parameters(self):
    config = nth_farthest.PRESETS['smoke']
    inputs, = nth_farthest.TASK.example_inputs(config)
    key = jax.random.key(0)
    plain = jax.eval_shape(nth_farthest.TASK.model(config).init, key, inputs)
    diagnostics = jax.eval_shape(
        nth_farthest.TASK.model(config, return_diagnostics=True).init, key,
        inputs)
    self.assertEqual(jax.tree.structure(plain),
                     jax.tree.structure(diagnostics))

  def test_configs_are_frozen(self):
    with self.assertRaises(dataclasses.FrozenInstanceError):
      nth_farthest.PRESETS['smoke'].rmc.mem_slots = 3  # type: ignore


if __name__ == '__main__':
  absltest.main()
