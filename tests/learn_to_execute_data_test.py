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
"""Tests for rmc.data.learn_to_execute.

Targets are checked against an independent evaluator: a small parser of the
program text (which holds every random choice: the literals, the comparison
and the loop count), not the generator's own arithmetic.
"""

import collections
import random
import re

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from rmc.data import learn_to_execute as lte


_SPEC_EXAMPLES = (  # sonnet_rmc.md section 6.1, from running Sonnet.
    ('(65125-15306)-77013', 5, '972806'),
    ('(x=88892for[5]x+=29262)+19665', 5, '254867'),
    ('x=(x=21955for[6]x+=20544)for[5]x+=24294', 5, '266689'),
    ('37if74<27else46', 2, '46'),
    ('x=21for[7]x+=86', 2, '623'),
)

_SPEC_VOCABULARY = (
    ['_unk_', '_null_', '_eos_', '|', ' ', '!', '(', ')', '*', '+', '-', '.',
     '/'] + [str(d) for d in range(10)]
    + [':', '<', '=', '>', '[', ']', 'a', 'e', 'else', 'f', 'for', 'g', 'i',
       'if', 'l', 'n', 'o', 'r', 'range', 's', 'x', '~'])


class GeneratorTest(parameterized.TestCase):

  @parameterized.parameters(*_SPEC_EXAMPLES)
  def test_evaluator_on_spec_examples(self, code, length, target):
    del length  # The evaluator counts the literals' digits.
    self.assertEqual(lte.evaluate_program(code, 'all'), target)

  @parameterized.parameters(
      ('12+', 'at character 3: expected a number'),
      ('(12+3', "at character 5: expected '\\)'"),
      ('12if3=4else5', "expected '<' or '>'"),
      ('x=1for[2]y+=3', r"expected '\]x\+='"),
      ('1+2)', 'expected the end of the program'),
      ('', 'expected a number'))
  def test_evaluator_names_where_a_program_is_wrong(self, code, regex):
    with self.assertRaisesRegex(ValueError, regex):
      lte.evaluate_program(code, 'all')

  def test_evaluator_of_memory_tasks_and_mixed_literal_lengths(self):
    self.assertEqual(lte.evaluate_program('1230', 'copy'), '1230')
    self.assertEqual(lte.evaluate_program('1230', 'reverse'), '0321')
    self.assertEqual(lte.evaluate_program('12', 'double'), '1212')
    with self.assertRaisesRegex(ValueError, 'is a number'):
      lte.evaluate_program('1+2', 'copy')
    # The longest literal sets the modulus: 10 ** (3 + 1).
    self.assertEqual(lte.evaluate_program('999*99', 'all'), '8901')

  @parameterized.product(task=('algebra', 'control', 'all', 'alg_ctrl',
                               'addition'),
                         length=(1, 3, 5), nesting=(1, 2, 3))
  def test_program_targets_match_independent_evaluation(self, task, length,
                                                        nesting):
    rng = random.Random(f'{task}-{length}-{nesting}')
    for _ in range(300):
      program = lte.generate_program(rng, task, length, nesting)
      self.assertEqual(program.target,
                       lte.evaluate_program(program.code, task), program.code)
      self.assertNotIn(' ', program.code)
      # Every literal has exactly `length` digits (loop counts are [i]).
      literals = re.findall(r'\d+', re.sub(r'\[\d\]', '', program.code))
      self.assertTrue(all(len(l) == length for l in literals), program.code)
      self.assertEqual(program.code.count('('), nesting - 1)
      num_steps, num_steps_out = lte.sequence_lengths(task, length, nesting)
      self.assertLessEqual(len(program.code), num_steps)
      self.assertLessEqual(len(program.target), num_steps_out)

  def test_operations_used_by_each_task(self):
    markers = {'add': '+', 'subtract': '-', 'multiply': '*', 'if': 'if',
               'for': 'for'}
    for task in ('algebra', 'control', 'all', 'alg_ctrl', 'addition'):
      rng = random.Random(task)
      codes = ''.join(lte.generate_program(rng, task, 3, 1).code
                      for _ in range(200)).replace('x+=', '')  # For loops.
      for op, marker in markers.items():
        self.assertEqual(marker in codes, op in lte.TASKS[task], (task, op))

  def test_negative_results_wrap_with_floor_modulo(self):
    self.assertEqual(lte.evaluate_program('12-34', 'all'), '978')  # -22.
    rng = random.Random(0)
    seen_negative = False
    for _ in range(500):
      program = lte.generate_program(rng, 'alg_ctrl', 5, 2)
      # (a-b)... with b > a is negative before the modulus.
      first = re.match(r'\((\d+)-(\d+)\)', program.code)
      seen_negative |= bool(first) and int(first[1]) < int(first[2])
      self.assertGreaterEqual(int(program.target), 0)
      self.assertLess(int(program.target), 10 ** 6)
    self.assertTrue(seen_negative)

  def test_multiplication_does_not_overflow(self):
    rng = random.Random(1)
    program = lte.generate_program(rng, 'algebra', 9, 4)
    self.assertEqual(program.target,
                     lte.evaluate_program(program.code, 'algebra'))

  @parameterized.parameters(('copy', 1), ('reverse', 1), ('double', 1),
                            ('copy', 4), ('reverse', 6), ('double', 3))
  def test_memory_tasks(self, task, length):
    rng = random.Random(task)
    for _ in range(200):
      program = lte.generate_program(rng, task, length, 1)
      self.assertLen(program.code, length)
      expected = {'copy': program.code, 'reverse': program.code[::-1],
                  'double': program.code * 2}[task]
      self.assertEqual(program.target, expected)
      num_steps, num_steps_out = lte.sequence_lengths(task, length, 1)
      self.assertLessEqual(len(program.code), num_steps)
      self.assertLessEqual(len(program.target), num_steps_out)

  def test_deterministic_in_seed(self):
    first = [lte.generate_program(random.Random(3), 'all', 4, 2)
             for _ in range(3)]
    again = [lte.generate_program(random.Random(3), 'all', 4, 2)
             for _ in range(3)]
    self.assertEqual(first, again)

  @parameterized.parameters(
      (dict(task='nope', length=2, nesting=1), 'Unknown task'),
      (dict(task='all', length=0, nesting=1), 'length and nesting'),
      (dict(task='all', length=2, nesting=0), 'length and nesting'),
  )
  def test_bad_arguments(self, kwargs, regex):
    with self.assertRaisesRegex(ValueError, regex):
      lte.generate_program(random.Random(0), **kwargs)


class SequenceLengthTest(parameterized.TestCase):

  @parameterized.parameters(
      ('all', 5, 2, True, (57, 10)), ('all', 3, 2, True, (43, 6)),
      ('all', 6, 3, True, (94, 12)), ('all', 5, 2, False, (23, 1)),
      ('copy', 5, 1, True, (6, 6)), ('double', 5, 1, True, (6, 11)))
  def test_sonnet_formulas(self, task, length, nesting, by_char, expected):
    self.assertEqual(
        lte.sequence_lengths(task, length, nesting, by_char), expected)

  @parameterized.product(task=('algebra', 'control', 'all', 'alg_ctrl',
                               'addition'),
                         size=((1, 1), (2, 2), (3, 2), (2, 3)),
                         by_char=(True, False))
  def test_max_program_length_is_the_longest_program(self, task, size,
                                                     by_char):
    length, nesting = size
    bound = lte.max_program_length(task, length, nesting, by_char)
    self.assertLessEqual(bound, lte.sequence_lengths(task, length, nesting,
                                                     by_char)[0])
    rng = random.Random(f'{task}-{size}')
    longest = 0
    for _ in range(2000):
      program = lte.generate_program(rng, task, length, nesting)
      longest = max(longest, len(lte.tokenize(program.code, by_char)))
    # No program is longer, and the longest drawn reaches the bound.
    self.assertEqual(longest, bound)

  def test_max_program_length_by_hand(self):
    # '(12+34)+56'; 'x=(12if34<56else78)for[9]x+=90' has 30 characters.
    self.assertEqual(lte.max_program_length('addition', 2, 2), 10)
    self.assertEqual(lte.max_program_length('control', 2, 2), 30)
    self.assertEqual(lte.max_program_length('all', 5, 2), 51)
    self.assertEqual(lte.max_program_length('copy', 5, 1), 6)  # Sonnet's.

  def test_memory_tasks_need_nesting_one(self):
    with self.assertRaisesRegex(ValueError, 'max_nesting=1'):
      lte.sequence_lengths('copy', 3, 2)


class VocabularyTest(absltest.TestCase):

  def test_character_vocabulary_is_sonnets(self):
    vocabulary = lte.Vocabulary()
    self.assertEqual(list(vocabulary.tokens), _SPEC_VOCABULARY)
    self.assertLen(vocabulary, 45)

  def test_encode_pads_and_counts(self):
    vocabulary = lte.Vocabulary()
    ids, count = vocabulary.encode('x=21for[7]x+=86', 20)
    self.assertEqual(count, 15)
    self.assertEqual(vocabulary.decode(ids), 'x=21for[7]x+=86' + '.' * 5)
    with self.assertRaisesRegex(ValueError, 'more than the 10 allowed'):
      vocabulary.encode('x=21for[7]x+=86', 10)

  def test_unknown_token_is_an_error(self):
    with self.assertRaisesRegex(ValueError, "Token 'z' is not in the 45"):
      lte.Vocabulary().encode('3z', 5)

  def test_word_mode_holds_results_with_one_more_digit(self):
    vocabulary = lte.Vocabulary(by_char=False, max_length=2)
    self.assertEqual(lte.tokenize('x=21for[7]x+=86', by_char=False),
                     ['x', '=', '21', 'for', '[', '7', ']', 'x', '+', '=',
                      '86'])
    ids, count = vocabulary.encode('623', 1)  # Three digits for length 2.
    self.assertEqual((vocabulary.decode(ids), count), ('623', 1))
    self.assertNotEqual(ids[0], vocabulary.id('_unk_'))
    with self.assertRaisesRegex(ValueError, "'1000'"):
      vocabulary.encode('1000', 1)


class _FakeLoss:
  """Losses falling, flat, or rising by 50% per call."""

  def __init__(self, factor):
    self.value, self.factor = 1.0, factor

  def __call__(self):
    self.value *= self.factor
    return self.value


class CurriculumTest(parameterized.TestCase):

  def test_baseline_is_fixed(self):
    curriculum = lte.BaselineCurriculum(5, 2)
    rng = random.Random(0)
    self.assertEqual({curriculum.fetch(rng) for _ in range(50)}, {(5, 2)})
    self.assertFalse(any(curriculum.update(0.1 / (i + 1)) for i in range(30)))

  def test_mix_samples_every_level_uniformly(self):
    curriculum = lte.MixCurriculum(3, 2)
    rng = random.Random(0)
    samples = [curriculum.fetch(rng) for _ in range(6000)]
    counts = collections.Counter(samples)
    self.assertEqual(set(counts), {(l, n) for l in (1, 2, 3) for n in (1, 2)})
    np.testing.assert_allclose(np.array(list(counts.values())) / 6000, 1 / 6,
                               atol=0.02)
    self.assertFalse(curriculum.update(0.5, force=True))

  def test_update_signals_after_min_tries_when_loss_falls(self):
    curriculum = lte.NaiveCurriculum(3, 2, min_tries=10)
    loss = _FakeLoss(0.9)
    signals = [curriculum.update(loss()) for _ in range(30)]
    self.assertEqual([i for i, s in enumerate(signals) if s], [9, 19, 29])
    rising = lte.NaiveCurriculum(3, 2, min_tries=10)
    loss = _FakeLoss(1.5)
    self.assertFalse(any(rising.update(loss()) for _ in range(30)))

  def test_naive_progresses_length_then_nesting(self):
    curriculum = lte.NaiveCurriculum(3, 2)
    rng = random.Random(0)
    levels = [curriculum.fetch(rng)]
    while curriculum.update(force=True):
      levels.append(curriculum.fetch(rng))
    self.assertEqual(levels, [(1, 1), (2, 1), (3, 1), (3, 2)])

  def test_combine_samples_up_to_the_current_level(self):
    curriculum = lte.CombineCurriculum(4, 3)
    rng = random.Random(0)
    self.assertEqual({curriculum.fetch(rng) for _ in range(100)}, {(1, 1)})
    for _ in range(3):
      curriculum.update(force=True)
    self.assertEqual((curriculum.length, curriculum.nesting), (4, 1))
    curriculum.update(force=True)
    seen = {curriculum.fetch(rng) for _ in range(2000)}
    self.assertEqual(seen, {(l, n) for l in range(1, 5) for n in (1, 2)})


class BatchTest(absltest.TestCase):

  def test_batch_layout(self):
    vocabulary = lte.Vocabulary()
    batch = lte.make_batch(random.Random(0), 16, 'alg_ctrl',
                           lte.MixCurriculum(5, 2), vocabulary)
    # Programs padded to the longest alg_ctrl program (an `if` twice: 51
    # characters, where Sonnet pads to 57), targets to Sonnet's 10.
    self.assertEqual(batch.inputs.shape, (51, 16))
    self.assertEqual(batch.targets.shape, (10, 16))
    self.assertEqual(batch.decoder_inputs.shape, (10, 16))
    pad = vocabulary.id(lte.PAD)
    for b in range(16):
      n_in, n_out = batch.input_lengths[b], batch.target_lengths[b]
      code = vocabulary.decode(batch.inputs[:n_in, b])
      target = vocabulary.decode(batch.targets[:n_out, b])
      self.assertTrue(np.all(batch.inputs[n_in:, b] == pad))
      self.assertTrue(np.all(batch.targets[n_out:, b] == pad))
      nesting = code.count('(') + 1
      self.assertEqual(target, lte.evaluate_program(code, 'alg_ctrl'))
      self.assertLessEqual(nesting, 2)
      self.assertEqual(batch.decoder_inputs[0, b], vocabulary.id(lte.SOS))
      np.testing.assert_array_equal(batch.decoder_inputs[1:, b],
                                    batch.targets[:-1, b])

  def test_training_data_rows_are_rows_of_the_whole_batch(self):
    def data(rows=None):
      return lte.TrainingData('addition', lte.MixCurriculum(3, 2), 6,
                              lte.Vocabulary(), seed=1, rows=rows)
    whole, part = data().batches(5, 2), data(slice(2, 4)).batches(5, 2)
    for key in ('inputs', 'targets', 'decoder_inputs'):  # [S, T, B]
      np.testing.assert_array_equal(part[key], whole[key][:, :, 2:4])
    for key in ('input_lengths', 'target_lengths'):  # [S, B]
      np.testing.assert_array_equal(part[key], whole[key][:, 2:4])
    self.assertFalse(np.array_equal(whole['inputs'][0], whole['inputs'][1]))


if __name__ == '__main__':
  absltest.main()
