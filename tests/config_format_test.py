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
"""Work directories written before the typed hyperparameters still work.

``tests/fixtures/config_format_1/`` holds the ``config.json`` of a run of
each binary as the code before the typed hyperparameters wrote it (format
1, rmc 0.1.0 at commit 646dd64): the smoke preset, with ``--core=lstm`` for
Learning to Execute and an adaptive softmax for the language model, whose
``--adaptive_cutoffs`` were saved as strings. Each test trains the same run
with today's code (which trains bitwise as that code did), puts the old
``config.json`` in its place, and then loads, evaluates, predicts or samples,
and resumes it.
"""

import json
import os
import shutil

from absl.testing import absltest
import pytest
import rmc
from rmc.toolkit import checkpoint
from rmc.toolkit import run_config

import binary_testing
from experiments import learn_to_execute
from experiments import nth_farthest
from experiments import wikitext103

_FIXTURES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'config_format_1')
_CORPUS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'data', 'wikitext-2-subset')


class OldConfigTest(absltest.TestCase):

  def _old_run(self, binary, *args, substitutions=(), trained=None):
    """A run with the fixture's config.json.

    Trained by ``args``, or a copy of the trained run in ``trained``.
    """
    workdir = self.create_tempdir().full_path
    if trained is None:
      binary_testing.run_main(binary, *args, f'--workdir={workdir}')
    else:
      shutil.copytree(trained, workdir, dirs_exist_ok=True)
    with open(os.path.join(_FIXTURES, f'{binary.TASK.name}.json'),
              encoding='utf-8') as f:
      text = f.read()
    for old, new in substitutions:
      text = text.replace(old, new)
    old_config = json.loads(text)
    run_config.write(workdir, old_config)
    self.assertEqual(old_config['format'], 1)
    self.assertEqual(old_config['code']['git_commit'][:7], '646dd64')
    return workdir, old_config

  def _resumes(self, binary, workdir, args, steps):
    binary_testing.run_main(binary, *args, f'--workdir={workdir}',
                            f'--num_steps={steps}')
    self.assertEqual(checkpoint.list_steps(workdir)[-1], steps)

  def test_nth_farthest(self):
    # The smoke run other tests read (40 steps; the fixture's says 20).
    trained, _ = binary_testing.shared_run(nth_farthest, '--preset=smoke',
                                           '--core=rmc')
    workdir, old = self._old_run(nth_farthest, trained=trained)
    run = rmc.load_run(workdir)
    self.assertEqual(run.hyperparameters,
                     nth_farthest.PRESETS['smoke'].replace(num_steps=20))
    # Every value saved is read back; a hyperparameter added since takes
    # the preset's value (the assertion above).
    flat = run.hyperparameters.flat()
    self.assertEqual({name: flat[name] for name in old['hyperparameters']},
                     old['hyperparameters'])
    printed = binary_testing.run_main(nth_farthest, '--mode=evaluate',
                                      f'--workdir={workdir}')
    self.assertIn('at step 40', printed)
    printed = binary_testing.run_main(nth_farthest, '--mode=predict',
                                      f'--workdir={workdir}')
    self.assertIn('Nth Farthest, step 40', printed)
    self._resumes(nth_farthest, workdir, ['--preset=smoke'], 50)

  @pytest.mark.slow
  def test_learn_to_execute_with_an_lstm(self):
    args = ('--preset=smoke', '--core=lstm', '--num_steps=10')
    workdir, _ = self._old_run(learn_to_execute, *args)
    run = rmc.load_run(workdir)
    self.assertEqual(run.hyperparameters.core, 'lstm')
    self.assertIsNone(run.hyperparameters.task.eval_seed)
    self.assertEqual(run.hyperparameters.task.program, 'addition')
    printed = binary_testing.run_main(learn_to_execute, '--mode=evaluate',
                                      f'--workdir={workdir}')
    self.assertIn('at step 10', printed)
    printed = binary_testing.run_main(learn_to_execute, '--mode=predict',
                                      f'--workdir={workdir}', '--program=1+2')
    self.assertIn('1+2', printed)
    self._resumes(learn_to_execute, workdir, args[:2], 20)

  @pytest.mark.slow
  def test_language_model_with_cutoffs_saved_as_strings(self):
    data_dir = self.create_tempdir().full_path
    for split in ('valid', 'test'):
      shutil.copy(os.path.join(_CORPUS, f'{split}.txt'), data_dir)
    cache_dir = os.path.join(self.create_tempdir().full_path, 'cache')
    args = ('--preset=smoke', f'--data_dir={data_dir}',
            f'--cache_dir={cache_dir}', '--train_split=valid',
            '--valid_split=test', '--vocab_split=valid', '--softmax=adaptive',
            '--adaptive_cutoffs=50,200', '--num_steps=20')
    workdir, old = self._old_run(
        wikitext103, *args,
        substitutions=(('$DATA_DIR', data_dir), ('$CACHE_DIR', cache_dir)))
    self.assertEqual(old['hyperparameters']['adaptive_cutoffs'],
                     ['50', '200'])
    run = rmc.load_run(workdir)
    self.assertEqual(run.hyperparameters.task.adaptive_cutoffs, (50, 200))
    printed = binary_testing.run_main(wikitext103, '--mode=evaluate',
                                      f'--workdir={workdir}')
    self.assertIn('at step 20', printed)
    printed = binary_testing.run_main(wikitext103, '--mode=sample',
                                      f'--workdir={workdir}', '--num_words=3')
    self.assertIn('3 words', printed)
    self._resumes(wikitext103, workdir, args[:-1], 30)


if __name__ == '__main__':
  absltest.main()
