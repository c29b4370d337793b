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
"""Using trained runs: config.json, the evaluate, predict and sample modes,
rmc.load_run and TensorBoard, on `smoke` runs of the three binaries."""

import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
from unittest import mock

from absl import app
from absl.testing import absltest
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rmc
from rmc.data import learn_to_execute as lte
from rmc.data import nth_farthest as nth_farthest_data
from rmc.tasks import runs
from rmc.toolkit import checkpoint
from rmc.toolkit import cores
from rmc.toolkit import metrics
from rmc.toolkit import run_config

import binary_testing
from experiments import learn_to_execute
from experiments import nth_farthest
from experiments import wikitext103

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _records(workdir):
  return metrics.read_records(os.path.join(workdir, 'metrics.jsonl'))


def _copy(workdir):
  """A copy of a work directory, removed at exit."""
  copy = os.path.join(tempfile.mkdtemp(), 'run')
  shutil.copytree(workdir, copy)
  return copy


def _assert_counts_the_parameters(test, run):
  """config.json's parameter counts are those of the trained run."""
  test.assertEqual(run.config['parameters'], {
      'core': hk.data_structures.tree_size(run.core_params),
      'model': hk.data_structures.tree_size(run.params)})
  test.assertGreater(run.config['parameters']['model'],
                     run.config['parameters']['core'])


def _eval_figures(record):
  return {k: v for k, v in record.items()
          if k.startswith('eval_') and isinstance(v, float)}


class NthFarthestRunTest(absltest.TestCase):
  """A smoke run with --tensorboard, trained once for every test."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # The run nth_farthest_test's smoke test trains, made once.
    cls.workdir, _ = binary_testing.shared_run(
        nth_farthest, '--preset=smoke', '--core=rmc')

  def _run(self, *args):
    return binary_testing.run_main(nth_farthest, *args)

  def test_config_json_holds_the_resolved_configuration(self):
    config = run_config.read(self.workdir)
    self.assertEqual(config['binary'], 'nth_farthest')
    self.assertEqual(config['seed'], 0)
    hyperparameters = config['hyperparameters']
    smoke = nth_farthest.PRESETS['smoke'].flat()
    self.assertEqual({k: hyperparameters[k] for k in smoke},
                     json.loads(json.dumps(smoke)))
    self.assertEqual(hyperparameters['preset'], 'smoke')
    self.assertEqual(hyperparameters['compute_dtype'], 'float32')
    self.assertEqual(config['core'], {'type': 'rmc', 'kwargs': json.loads(
        json.dumps(cores.RMC.from_flat(hyperparameters).kwargs()))})
    self.assertEqual(config['code']['rmc'], rmc.__version__)
    self.assertEqual(config['code']['jax'], jax.__version__)
    self.assertEqual(config['run'], {'devices': 1, 'processes': 1,
                                     'platform': 'cpu', 'tensorboard': False})
    self.assertFalse([n for n in os.listdir(self.workdir)
                      if n.startswith('.tmp')])

  def test_resuming_with_other_model_or_data_flags_names_every_key(self):
    workdir = _copy(self.workdir)
    with open(run_config.path(workdir), 'rb') as f:
      before = f.read()
    with self.assertRaises(run_config.ConfigMismatchError) as raised:
      self._run('--preset=smoke', '--mem_slots=3', '--num_features=4',
                '--seed=1', f'--workdir={workdir}')
    message = str(raised.exception)
    for change in ('hyperparameters.mem_slots 2 -> 3',
                   'hyperparameters.num_features 2 -> 4', 'seed 0 -> 1'):
      self.assertIn(change, message)
    self.assertNotIn('core.', message)  # Made from the hyperparameters.
    with open(run_config.path(workdir), 'rb') as f:
      self.assertEqual(f.read(), before)
    self.assertEqual(checkpoint.list_steps(workdir), [20, 40])

  def test_budgets_cadences_and_the_preset_name_may_change_on_resume(self):
    workdir = _copy(self.workdir)
    # The smoke model and data from the demo preset, other cadences, and no
    # step left to train (resuming is tested by the binaries' own tests).
    printed = self._run(
        '--preset=demo', '--num_features=2', '--num_objects=3',
        '--batch_size=16', '--learning_rate=3e-3', '--min_learning_rate=1e-3',
        '--decay_steps=100', '--max_grad_norm=1', '--warmup_steps=0',
        '--eval_batches=2', '--mem_slots=2', '--head_size=4',
        '--lstm_hidden_size=16', '--dnc_memory_size=4', '--dnc_word_size=4',
        '--dnc_controller_size=8', '--num_steps=40', '--log_every=5',
        '--steps_per_chunk=5', '--eval_every=10', '--checkpoint_every=10',
        '--keep_checkpoints=3', '--time_budget_s=100', f'--workdir={workdir}')
    self.assertIn('already holds step 40', printed)
    config = run_config.read(workdir)
    self.assertEqual(config['hyperparameters']['preset'], 'demo')
    self.assertEqual(config['hyperparameters']['log_every'], 5)
    self.assertEqual(config['hyperparameters']['keep_checkpoints'], 3)
    self.assertEqual(config['hyperparameters']['time_budget_s'], 100)

  def test_evaluate_equals_the_evaluation_logged_in_training(self):
    workdir = _copy(self.workdir)
    printed = self._run('--mode=evaluate', f'--workdir={workdir}')
    records = _records(workdir)
    logged = [r for r in records if r['split'] == 'eval']
    evaluated = records[-1]
    self.assertEqual(evaluated['split'], 'evaluate')
    self.assertEqual(evaluated['step'], 40)
    self.assertEqual(evaluated['eval_sequences'], 32)
    self.assertEqual(set(_eval_figures(evaluated)),
                     set(_eval_figures(logged[-1])))
    for name, value in _eval_figures(logged[-1]).items():
      self.assertAlmostEqual(evaluated[name], value, places=6, msg=name)
    self.assertIn(f'Held-out accuracy {evaluated["eval_accuracy"]:.4f}',
                  printed)
    self.assertEqual(checkpoint.list_steps(workdir), [20, 40])  # No new one.
    # An older checkpoint, by --step.
    self._run('--mode=evaluate', '--step=20', f'--workdir={workdir}')
    at_20 = [r for r in logged if r['step'] == 20][0]
    evaluated = _records(workdir)[-1]
    self.assertEqual(evaluated['step'], 20)
    for name, value in _eval_figures(at_20).items():
      self.assertAlmostEqual(evaluated[name], value, places=6, msg=name)
    # Training records are untouched.
    self.assertEqual(_records(workdir)[:len(records) - 1], records[:-1])

  def test_the_other_modes_have_clear_errors(self):
    no_checkpoint = tempfile.mkdtemp()
    shutil.copy(run_config.path(self.workdir), no_checkpoint)
    for args, error, regex in (
        ((f'--workdir={no_checkpoint}',), checkpoint.CheckpointError,
         'No checkpoint in'),
        ((f'--workdir={tempfile.mkdtemp()}',), run_config.ConfigError,
         'config.json does not exist'),
        ((f'--workdir={self.workdir}', '--step=30'),
         checkpoint.CheckpointError, r'holds steps \[20, 40\]'),
        ((f'--workdir={self.workdir}', '--preset=smoke', '--mem_slots=3'),
         app.UsageError, 'drop --preset, --mem_slots'),
        ((f'--workdir={self.workdir}', '--seed=3'), app.UsageError,
         'drop --seed'),
        ((), app.UsageError, '--workdir is required'),
    ):
      with self.subTest(args=args):
        with self.assertRaisesRegex(error, regex):
          self._run('--mode=evaluate', *args)
    with self.assertRaisesRegex(app.UsageError, 'not of learn_to_execute'):
      binary_testing.run_main(learn_to_execute, '--mode=evaluate',
                              f'--workdir={self.workdir}')
    with self.assertRaisesRegex(app.UsageError, 'no --mode=sample'):
      self._run('--mode=sample', f'--workdir={self.workdir}')

  def test_predict_gives_the_models_answers_and_the_right_ones(self):
    run = rmc.load_run(self.workdir)
    examples = nth_farthest.predictions(run, num_examples=6, seed=3)
    batch = nth_farthest_data.generate(jax.random.key(3), 6, 3, 2)
    logits = run.model.apply(run.params, batch.inputs)  # [6, K]
    self.assertEqual([e['answer'] for e in examples],
                     np.asarray(batch.labels).tolist())
    self.assertEqual([e['predicted'] for e in examples],
                     np.argmax(logits, axis=-1).tolist())
    for example, row in zip(examples, jax.nn.softmax(logits)):
      # Probabilities by object id; the rows were shuffled.
      np.testing.assert_allclose(np.sort(example['probabilities']),
                                 np.sort(row), rtol=1e-5)
      self.assertEqual(example['vectors'].shape, (3, 2))
      # The answer is at rank n from the reference, nearest first.
      distances = np.linalg.norm(
          example['vectors'] - example['vectors'][example['reference']],
          axis=-1)
      self.assertEqual(np.argsort(distances)[example['rank']],
                       example['answer'])
    printed = self._run('--mode=predict', '--num_examples=6', '--seed=3',
                        f'--workdir={self.workdir}')
    right = sum(e['predicted'] == e['answer'] for e in examples)
    self.assertIn(f'{right} of 6 right.', printed)
    self.assertEqual(printed.count('Answer: object'), 6)
    again = nth_farthest.predictions(run, num_examples=6, seed=3)
    self.assertEqual([(e['reference'], e['rank'], e['answer']) for e in again],
                     [(e['reference'], e['rank'], e['answer'])
                      for e in examples])

  def test_load_run_gives_the_checkpoint_and_the_core(self):
    run = rmc.load_run(self.workdir, step=20)
    self.assertEqual((run.binary, run.step), ('nth_farthest', 20))
    _assert_counts_the_parameters(self, run)
    with np.load(checkpoint.path_for_step(self.workdir, 20)) as data:
      for module, values in run.params.items():
        for name, value in values.items():
          np.testing.assert_array_equal(
              value, data[f"[0].params['{module}']['{name}']"])
    self.assertTrue(run.core_params)
    self.assertTrue(all(m.startswith('relational_memory')
                        for m in run.core_params))
    self.assertLess(len(run.core_params), len(run.params))  # Not the head.
    # The core alone gives the outputs the whole model's core gives.
    inputs = nth_farthest_data.generate(jax.random.key(0), 4, 3, 2).inputs
    _, core_outputs = run.task.model(run.hyperparameters).apply(
        run.params, inputs, return_core_outputs=True)  # [B, T, D]
    outputs, _ = run.core.apply(run.core_params,
                                jnp.swapaxes(inputs, 0, 1))  # [T, B, D]
    np.testing.assert_allclose(outputs, jnp.swapaxes(core_outputs, 0, 1),
                               rtol=1e-5, atol=1e-6)

  def test_the_toolkit_page_snippet_runs_on_a_trained_run(self):
    page = os.path.join(_ROOT, 'docs', 'toolkit.md')
    with open(page, encoding='utf-8') as f:
      text = f.read()
    snippet = re.search(r'<!-- tested: load_run -->\n```python\n(.*?)```',
                        text, re.S).group(1)
    self.assertIn("rmc.load_run('/tmp/nf')", snippet)
    namespace = {}
    printed = io.StringIO()
    with mock.patch('sys.stdout', printed):
      exec(snippet.replace("'/tmp/nf'", repr(self.workdir)), namespace)  # pylint: disable=exec-used
    self.assertIn('(2, 10)', printed.getvalue())
    run = namespace['run']
    for module, values in run.core_params.items():
      for name, value in values.items():
        np.testing.assert_array_equal(namespace['params'][module][name],
                                      value)
    self.assertIn('linear', namespace['params'])  # The new head.

  def test_tensorboard_holds_every_metrics_record_once(self):
    workdir = _copy(self.workdir)
    logdir = os.path.join(workdir, metrics.TENSORBOARD_DIR)
    self._run('--mode=evaluate', '--tensorboard', f'--workdir={workdir}')
    self.assertLen(os.listdir(logdir), 1)  # The step-40 evaluation.
    # As if interrupted: records were written up to step 40, but the last
    # checkpoint is of step 20. Resuming drops the later records and writes
    # them again, in metrics.jsonl and in TensorBoard (replacing the events
    # of the dropped evaluation).
    os.remove(checkpoint.path_for_step(workdir, 40))
    self._run('--preset=smoke', '--tensorboard', f'--workdir={workdir}')
    self._run('--mode=evaluate', '--tensorboard', f'--workdir={workdir}')
    self.assertLen(os.listdir(logdir), 2)  # Training's, and evaluation's.
    records = _records(workdir)
    self.assertEqual([(r['step'], r['split']) for r in records],
                     [(0, 'eval'), (10, 'train'), (20, 'train'), (20, 'eval'),
                      (30, 'train'), (40, 'train'), (40, 'eval'),
                      (40, 'evaluate')])
    expected = [(tag, r['step'], value) for r in records
                for tag, value in metrics.tensorboard_scalars(r)]
    scalars = metrics.read_tensorboard_scalars(logdir)
    self.assertEqual(len(scalars), len(set((t, s) for t, s, _ in scalars)))
    self.assertEqual(sorted((t, s) for t, s, _ in scalars),
                     sorted((t, s) for t, s, _ in expected))
    by_key = {(t, s): v for t, s, v in scalars}
    for tag, step, value in expected:  # TensorBoard holds float32.
      np.testing.assert_allclose(by_key[tag, step], value, rtol=1e-6,
                                 err_msg=f'{tag} at {step}')
    for tag in ('train/loss', 'train/accuracy', 'eval/loss',
                'eval/accuracy_rank_0', 'evaluate/accuracy'):
      self.assertIn(tag, {t for t, _, _ in scalars})

  def test_tensorboard_without_tensorboardx_is_a_clear_error(self):
    with mock.patch.dict(sys.modules, {'tensorboardX': None}):
      with self.assertRaisesRegex(metrics.TensorBoardMissingError,
                                  r"pip install 'rmc\[tensorboard\]'"):
        self._run('--preset=smoke', '--tensorboard',
                  f'--workdir={tempfile.mkdtemp()}')


@pytest.mark.slow
class DNCRunTest(absltest.TestCase):
  """--core=dnc in the binaries: config.json, resume, evaluate, load_run."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # The run nth_farthest_test's smoke test trains, made once.
    cls.workdir, _ = binary_testing.shared_run(
        nth_farthest, '--preset=smoke', '--core=dnc')

  def test_config_json_names_the_dnc_and_its_arguments(self):
    config = run_config.read(self.workdir)
    hyperparameters = config['hyperparameters']
    self.assertEqual(config['core'], {'type': 'dnc', 'kwargs': json.loads(
        json.dumps(cores.DNC.from_flat(hyperparameters).kwargs()))})
    self.assertEqual(config['core']['kwargs']['access_config'], dict(
        memory_size=4, word_size=4, num_reads=2, num_writes=1,
        strength_activation='oneplus'))
    self.assertEqual(config['core']['kwargs']['controller_config'],
                     dict(hidden_size=8, num_layers=2))

  def test_resume_equals_the_uninterrupted_run(self):
    resumed = tempfile.mkdtemp()
    binary_testing.run_main(nth_farthest, '--preset=smoke', '--core=dnc',
                            '--num_steps=20', f'--workdir={resumed}')
    printed = binary_testing.run_main(nth_farthest, '--preset=smoke',
                                      '--core=dnc', f'--workdir={resumed}')
    self.assertIn('at step 40, stopped by num_steps', printed)
    step, arrays = binary_testing.checkpoint_arrays(resumed)
    expected_step, expected = binary_testing.checkpoint_arrays(self.workdir)
    self.assertEqual((step, expected_step), (40, 40))
    self.assertEqual(arrays.keys(), expected.keys())
    for name in expected:
      np.testing.assert_array_equal(arrays[name], expected[name], name)
    # Another DNC size is another model.
    with self.assertRaisesRegex(run_config.ConfigMismatchError,
                                'hyperparameters.dnc_memory_size 4 -> 5'):
      binary_testing.run_main(nth_farthest, '--preset=smoke', '--core=dnc',
                              '--dnc_memory_size=5', f'--workdir={resumed}')

  def test_evaluate_and_load_run(self):
    workdir = _copy(self.workdir)
    binary_testing.run_main(nth_farthest, '--mode=evaluate',
                            f'--workdir={workdir}')
    records = _records(workdir)
    logged = [r for r in records if r['split'] == 'eval'][-1]
    self.assertEqual((records[-1]['split'], records[-1]['step']),
                     ('evaluate', 40))
    for name, value in _eval_figures(logged).items():
      self.assertAlmostEqual(records[-1][name], value, places=6, msg=name)
    run = rmc.load_run(workdir)
    self.assertTrue(run.core_params)
    self.assertTrue(all(m.startswith('dnc') for m in run.core_params))
    inputs = nth_farthest_data.generate(jax.random.key(0), 4, 3, 2).inputs
    _, core_outputs = run.model.apply(run.params, inputs,
                                      return_core_outputs=True)  # [B, T, D]
    outputs, state = run.core.apply(run.core_params,
                                    jnp.swapaxes(inputs, 0, 1))  # [T, B, D]
    np.testing.assert_allclose(outputs, jnp.swapaxes(core_outputs, 0, 1),
                               rtol=1e-5, atol=1e-6)
    self.assertIsInstance(state, rmc.DNCState)


class LearnToExecuteRunTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # The run learn_to_execute_test's smoke test trains, made once.
    cls.workdir, _ = binary_testing.shared_run(
        learn_to_execute, '--preset=smoke', '--core=rmc', '--decoder=zeros',
        '--separate_cores=False')

  def test_evaluate_equals_the_final_evaluation(self):
    workdir = _copy(self.workdir)
    binary_testing.run_main(learn_to_execute, '--mode=evaluate',
                            f'--workdir={workdir}')
    records = _records(workdir)
    logged = [r for r in records if r['split'] == 'eval'][-1]
    evaluated = records[-1]
    self.assertEqual((evaluated['split'], evaluated['step']),
                     ('evaluate', 30))
    for name in ('eval_loss', 'eval_accuracy', 'eval_solved'):
      self.assertAlmostEqual(evaluated[name], logged[name], places=6)

  def test_config_json_counts_the_parameters_of_the_core_and_model(self):
    _assert_counts_the_parameters(self, rmc.load_run(self.workdir))

  def test_parameter_counts_of_the_lstm_and_of_separate_cores(self):
    config = rmc.load_run(self.workdir).hyperparameters
    vocab_size = len(config.task.vocabulary())
    task = learn_to_execute.TASK
    for hidden in (16, 45):
      # Two LSTM layers with skips: the second reads the input and the
      # first layer's output; each has 4 gates of weights and biases.
      lstm = config.replace(core='lstm', lstm_hidden_size=hidden)
      first = 4 * hidden * (vocab_size + hidden + 1)
      second = 4 * hidden * (vocab_size + 2 * hidden + 1)
      counts = task.parameter_counts(lstm)
      self.assertEqual(counts['core'], first + second)
    for core in ('rmc', 'lstm', 'dnc'):
      with self.subTest(core=core):
        shared = task.parameter_counts(config.replace(core=core))
        separate = task.parameter_counts(
            config.replace(core=core, separate_cores=True))
        # The decoder is a second core: the model grows by one core.
        self.assertEqual(separate['core'], 2 * shared['core'])
        self.assertEqual(separate['model'] - shared['model'], shared['core'])

  def test_eval_seed_chooses_the_held_out_programs(self):
    config = rmc.load_run(self.workdir).hyperparameters
    self.assertIsNone(config.task.eval_seed)

    def programs(config, seed):
      return learn_to_execute.held_out_set(config, seed)['inputs']

    # By default, the run's seed's own set; with eval_seed, that seed's set
    # whatever the run's seed.
    self.assertFalse(np.array_equal(programs(config, 0), programs(config, 1)))
    fixed = config.replace(eval_seed=7)
    np.testing.assert_array_equal(programs(fixed, 0), programs(fixed, 1))
    np.testing.assert_array_equal(programs(fixed, 0), programs(config, 7))
    # A config.json from before eval_seed existed scores its seed's set.
    old = learn_to_execute.TASK.config(
        {k: v for k, v in config.flat().items() if k != 'eval_seed'})
    np.testing.assert_array_equal(programs(old, 3), programs(config, 3))

  def test_evaluate_with_another_eval_seed_scores_that_set(self):
    workdir = _copy(self.workdir)
    binary_testing.run_main(learn_to_execute, '--mode=evaluate',
                            f'--workdir={workdir}', '--eval_seed=5')
    evaluated = _records(workdir)[-1]
    run = rmc.load_run(workdir)
    expected = learn_to_execute.make_evaluate(
        run.hyperparameters.replace(eval_seed=5), 0)(run.params)
    logged = [r for r in _records(workdir) if r['split'] == 'eval'][-1]
    self.assertNotAlmostEqual(evaluated['eval_loss'], logged['eval_loss'],
                              places=4)
    for name in ('loss', 'accuracy', 'solved'):
      self.assertAlmostEqual(evaluated[f'eval_{name}'], float(expected[name]),
                             places=6)

  def test_evaluate_of_a_run_from_before_eval_seed(self):
    workdir = _copy(self.workdir)
    config = run_config.read(workdir)
    del config['hyperparameters']['eval_seed']
    del config['parameters']
    run_config.write(workdir, config)
    binary_testing.run_main(learn_to_execute, '--mode=evaluate',
                            f'--workdir={workdir}')
    records = _records(workdir)
    logged = [r for r in records if r['split'] == 'eval'][-1]
    for name in ('eval_loss', 'eval_accuracy', 'eval_solved'):
      self.assertAlmostEqual(records[-1][name], logged[name], places=6)

  def test_predict_answers_held_out_programs_as_evaluation_does(self):
    run = rmc.load_run(self.workdir)
    config = run.hyperparameters
    batch = jax.tree.map(lambda x: x[0], learn_to_execute.held_out_set(
        config, run.seed))
    programs = [run.vocabulary.decode(batch['inputs'][:n, b])
                for b, n in enumerate(batch['input_lengths'])]
    results = learn_to_execute.predict(run, programs)
    argmax = np.asarray(jnp.argmax(run.model.apply(run.params, batch), -1))
    for b, result in enumerate(results):
      length = batch['target_lengths'][b]
      self.assertEqual(result['target'],
                       run.vocabulary.decode(batch['targets'][:length, b]))
      self.assertEqual(result['answer'],
                       run.vocabulary.decode(argmax[:length, b]))
    figures = learn_to_execute.make_metrics_fn(config)(run.params, batch)
    self.assertAlmostEqual(np.mean([r['answer'] == r['target']
                                    for r in results]),
                           float(figures['solved']), places=6)

  def test_predict_reads_flags_or_stdin(self):
    printed = binary_testing.run_main(
        learn_to_execute, '--mode=predict', f'--workdir={self.workdir}',
        '--program=12+34', '--program=(99+1)+50')
    self.assertIn('12+34\n  true value 46, model ', printed)
    self.assertIn('(99+1)+50\n  true value 150, model ', printed)
    with mock.patch('sys.stdin', io.StringIO('11+22\n\n 5+5 \n')):
      printed = binary_testing.run_main(learn_to_execute, '--mode=predict',
                                        f'--workdir={self.workdir}')
    self.assertIn('11+22\n  true value 33', printed)
    self.assertIn('5+5\n  true value 10', printed)
    self.assertIn('of 2 solved.', printed)
    for program, regex in (('(12+3', "expected '\\)'"),
                           ('12#3', 'expected the end'),
                           ('1' * 60 + '+1', 'more than the')):
      with self.subTest(program=program):
        with self.assertRaisesRegex(app.UsageError, regex):
          binary_testing.run_main(learn_to_execute, '--mode=predict',
                                  f'--workdir={self.workdir}',
                                  f'--program={program}')

  def test_teacher_forcing_decodes_greedily_from_its_own_tokens(self):
    config = rmc.load_run(self.workdir).hyperparameters.replace(
        decoder='teacher_forcing', task='all', max_length=1)
    model = learn_to_execute.TASK.model(config)
    vocabulary = config.task.vocabulary()
    batch = lte.make_batch(random.Random(0), 2, 'all',
                           lte.BaselineCurriculum(1, 2), vocabulary)
    params = jax.jit(model.init)(jax.random.key(1), vars(batch))
    run = runs.Run(workdir='', config={'binary': 'learn_to_execute',
                                       'hyperparameters': config.flat()},
                   hyperparameters=config, step=0, params=params, model=model, core_params={},
                   core_input_size=len(vocabulary), vocabulary=vocabulary)
    programs = [vocabulary.decode(batch.inputs[:n, b])
                for b, n in enumerate(batch.input_lengths)]
    results = learn_to_execute.predict(run, programs)
    apply = jax.jit(model.apply)
    for b, result in enumerate(results):
      # One token at a time, each fed back behind the start symbol.
      fed = [vocabulary.id(lte.SOS)]
      one = {k: v[..., b:b + 1] for k, v in vars(batch).items()}
      for t in range(batch.target_lengths[b]):
        inputs = np.full_like(one['targets'], vocabulary.id(lte.SOS))
        inputs[:len(fed), 0] = fed
        logits = apply(params, dict(one, decoder_inputs=inputs))
        fed.append(int(jnp.argmax(logits[t, 0])))
      self.assertEqual(result['answer'], vocabulary.decode(fed[1:]))


class LanguageModelRunTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # The run wikitext103_test's smoke test trains, made once.
    cls.data_dir, _ = binary_testing.shared_wikitext_corpus()
    cls.workdir, _ = binary_testing.shared_run(
        wikitext103, '--preset=smoke', '--core=rmc', '--softmax=tied',
        '--adaptive_cutoffs=4,9', f'--data_dir={cls.data_dir}')
    cls.trained = rmc.load_run(cls.workdir)

  def test_config_names_the_corpus_and_the_vocabulary_is_saved(self):
    data = self.trained.data
    self.assertEqual(data['data_dir'], os.path.abspath(self.data_dir))
    self.assertEqual(data['splits'], {'train': 'train', 'valid': 'valid',
                                      'test': 'test'})
    self.assertEqual(set(data['sources']), {'train', 'valid', 'test'})
    for split, source in data['sources'].items():
      self.assertLen(source['sha256'], 64)
      self.assertLen(np.load(os.path.join(data['cache_dir'],
                                          f'{split}.npy')), source['tokens'])
    self.assertEqual(data['vocab_size'], len(self.trained.vocabulary))
    self.assertIn('the', self.trained.vocabulary.index)
    _assert_counts_the_parameters(self, self.trained)

  def test_evaluate_equals_the_test_and_validation_scores(self):
    workdir = _copy(self.workdir)
    records = _records(workdir)
    test = [r for r in records if r['split'] == 'test'][-1]
    valid = [r for r in records if r['split'] == 'eval'][-1]
    printed = binary_testing.run_main(wikitext103, '--mode=evaluate',
                                      f'--workdir={workdir}')
    evaluated = _records(workdir)[-1]
    self.assertEqual((evaluated['eval_split'], evaluated['step']),
                     ('test', 40))
    self.assertEqual(evaluated['eval_tokens'], test['test_tokens'])
    self.assertAlmostEqual(evaluated['eval_perplexity'],
                           test['test_perplexity'], places=4)
    self.assertIn(f'test perplexity {test["test_perplexity"]:.2f}', printed)
    # Another split, from a copy of the corpus elsewhere (the run's cache
    # stays where it was).
    moved = os.path.join(tempfile.mkdtemp(), 'moved')
    shutil.copytree(self.data_dir, moved, ignore=shutil.ignore_patterns(
        'rmc_cache'))
    binary_testing.run_main(wikitext103, '--mode=evaluate', '--split=valid',
                            f'--data_dir={moved}', f'--workdir={workdir}')
    evaluated = _records(workdir)[-1]
    self.assertEqual(evaluated['eval_split'], 'valid')
    self.assertAlmostEqual(evaluated['eval_perplexity'],
                           valid['eval_perplexity'], places=4)
    # Another corpus is refused.
    other = tempfile.mkdtemp()
    for name in os.listdir(self.data_dir):
      if name.endswith('.tokens'):
        with open(os.path.join(self.data_dir, name)) as f:
          text = f.read()
        with open(os.path.join(other, name), 'w') as f:
          f.write(text.replace(' cat ', ' cow '))
    with self.assertRaisesRegex(app.UsageError, 'is not the one the run'):
      binary_testing.run_main(wikitext103, '--mode=evaluate',
                              f'--data_dir={other}', f'--workdir={workdir}')

  def _log_probs_after(self, prompt, words):
    """``(ids of <eos> and the prompt [P], text [P + W], log-probabilities
    [P + W, V])`` of one pass over the prompt and ``words``."""
    vocabulary = self.trained.vocabulary
    ids, _ = wikitext103.prompt_ids(vocabulary, prompt)
    text = np.concatenate([ids, [vocabulary.id(w) for w in words]])
    log_probs = hk.without_apply_rng(hk.transform(
        lambda x: wikitext103.TASK.module(
            self.trained.hyperparameters, len(vocabulary)).log_probs(
                x, self.trained.initial_state.apply(None, 1))[0])).apply(
                    self.trained.params, jnp.asarray(text)[:, None])
    return ids, text, np.asarray(log_probs[:, 0])

  def _sample(self, prompt='the cat', num_words=12, temperature=1.0,
              top_k=0, seed=0):
    return wikitext103.sample(self.trained, prompt, num_words, temperature,
                              top_k, seed)[0]

  def test_sampling_is_deterministic_given_the_seed(self):
    self.assertEqual(self._sample(seed=1), self._sample(seed=1))
    self.assertNotEqual(self._sample(seed=1), self._sample(seed=2))
    self.assertLen(self._sample(num_words=7), 7)

  def test_low_temperature_and_top_1_are_greedy(self):
    greedy = self._sample(temperature=0.0)
    self.assertEqual(self._sample(temperature=1e-6, seed=5), greedy)
    self.assertEqual(self._sample(top_k=1, seed=6), greedy)

  def test_greedy_words_are_the_argmax_of_one_pass_over_the_text(self):
    # The samples carry the state from word to word: feeding the prompt and
    # the words in one pass gives, at each position, the next word.
    greedy = self._sample(temperature=0.0)
    ids, text, log_probs = self._log_probs_after('the cat', greedy)
    predicted = np.argmax(log_probs, axis=-1)  # [P + W]
    np.testing.assert_array_equal(predicted[len(ids) - 1:-1], text[len(ids):])

  def test_top_k_draws_only_the_k_most_likely_words(self):
    words = self._sample(num_words=20, top_k=3, temperature=2.0, seed=4)
    ids, text, log_probs = self._log_probs_after('the cat', words)
    top3 = np.argsort(-log_probs, axis=-1)[:, :3]
    for position in range(len(ids) - 1, len(text) - 1):
      self.assertIn(text[position + 1], top3[position])

  def test_sample_mode_prints_the_prompt_and_the_words(self):
    printed = binary_testing.run_main(
        wikitext103, '--mode=sample', f'--workdir={self.workdir}',
        '--prompt=the zebra sat', '--num_words=5', '--temperature=0')
    self.assertIn('Not in the vocabulary, read as <unk>: zebra', printed)
    greedy = wikitext103.sample(self.trained, 'the zebra sat', 5, 0.0, 0, 0)[0]
    self.assertIn('the zebra sat >>> ' + ' '.join(greedy).replace(
        ' <eos> ', '\n').replace('<eos>', '\n'), printed)
    with self.assertRaisesRegex(app.UsageError, 'top_k must be in'):
      binary_testing.run_main(wikitext103, '--mode=sample',
                              f'--workdir={self.workdir}',
                              '--top_k=100000')


if __name__ == '__main__':
  absltest.main()
