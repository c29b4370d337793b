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
"""Learning to Execute (Zaremba and Sutskever, 2014), as in Sonnet v1's example.

Programs are built from operations whose code strings contain no spaces:

============  ========  ===============================  =====================
operation     operands  code                             value
============  ========  ===============================  =====================
add           2         ``a+b``                          a + b
subtract      2         ``a-b``                          a - b
multiply      2         ``a*b``                          a * b
if            4         ``aifb<celsed`` (or ``>``)       a if b < c else d
for           2         ``x=afor[i]x+=b``                a + i * b, i in 1..9
copy          1         the operand's code               its value
reverse       1         the operand's code               its digits reversed
double        1         the operand's code               its digits twice
============  ========  ===============================  =====================

A program of nesting ``N`` applies ``N`` uniformly chosen operations; the first
operand of each is the previous operation's result (in parentheses), every
other operand a fresh literal of exactly ``length`` digits. Unless the last
operation is a memory operation (copy, reverse, double), the target is the
value modulo ``10 ** (length + 1)`` (Python's floor modulo, so negative values
wrap). Values are Python integers: nothing overflows.

Everything random is drawn from an explicit ``random.Random``.
"""

import abc
import collections
import dataclasses
import functools
import random
import re
from collections.abc import Sequence
from typing import Any

from absl import logging
import numpy as np

# Task types and their operations (Sonnet's TaskType). The paper's "addition",
# "control" and "program" tasks are most plausibly `addition`, `control` and
# `all`.
TASKS: dict[str, tuple[str, ...]] = {
    'algebra': ('add', 'subtract', 'multiply'),
    'control': ('if', 'for'),
    'all': ('add', 'subtract', 'multiply', 'if', 'for'),
    'alg_ctrl': ('add', 'subtract', 'if'),
    'addition': ('add',),
    'copy': ('copy',),
    'double': ('double',),
    'reverse': ('reverse',),
}
MEMORY_TASKS = ('copy', 'double', 'reverse')
_MEMORY_OPS = ('copy', 'double', 'reverse')

PAD, SOS, EOS = '.', '~', '!'  # Sonnet's padding, start and end symbols.
_SPECIAL = ('_unk_', '_null_', '_eos_', '|')
_LITERALS = (
    '+',
    '-',
    '*',
    '=',
    ':',
    '/',
    '(',
    ')',
    ' ',
    'x',
    '|',
    '<',
    '>',
    '[',
    ']',
    '~',
    '!',
    '.',
)
_KEYWORDS = ('if', 'for', 'else', 'range')


@dataclasses.dataclass(frozen=True)
class Program:
  """A generated program.

  Attributes:
    code: The program text, e.g. ``'(65125-15306)-77013'``.
    target: The expected output text, e.g. ``'972806'``.
  """

  code: str
  target: str


def _check_task(task: str) -> None:
  if task not in TASKS:
    raise ValueError(f'Unknown task {task!r}; choose from {sorted(TASKS)}.')


def generate_program(
    rng: random.Random, task: str, length: int, nesting: int
) -> Program:
  """Generates one program of a task.

  Args:
    rng: The random generator to draw from.
    task: A key of :data:`TASKS`.
    length: Digits of every literal, >= 1.
    nesting: Number of operations, >= 1 (memory tasks need 1).

  Returns:
    The program and its target.

  Raises:
    ValueError: For an unknown task or a size out of range.
  """
  _check_task(task)
  if length < 1 or nesting < 1:
    raise ValueError(
        f'length and nesting must be >= 1; got {length} and {nesting}.'
    )

  def literal() -> tuple[int, str]:
    value = rng.randint(10 ** (length - 1), 10**length - 1)
    return value, str(value)

  # (value, code): the value is an int, or digits (a str) after a memory op.
  stack: list[tuple[Any, str]] = []
  op = None
  for _ in range(nesting):
    op = rng.choice(TASKS[task])
    first = stack.pop() if stack else literal()
    a, a_code = first
    if op in ('add', 'subtract', 'multiply'):
      b, b_code = literal()
      symbol = {'add': '+', 'subtract': '-', 'multiply': '*'}[op]
      value = {'add': a + b, 'subtract': a - b, 'multiply': a * b}[op]
      code = f'{a_code}{symbol}{b_code}'
    elif op == 'if':
      (b, b_code), (c, c_code), (d, d_code) = literal(), literal(), literal()
      less = rng.random() < 0.5
      value = a if (b < c if less else b > c) else d
      code = f'{a_code}if{b_code}{"<" if less else ">"}{c_code}else{d_code}'
    elif op == 'for':
      b, b_code = literal()
      loops = rng.randint(1, 9)
      value = a + loops * b
      code = f'x={a_code}for[{loops}]x+={b_code}'
    else:  # Memory operations keep the code and act on the digits.
      digits = str(a)
      value = {'copy': digits, 'reverse': digits[::-1], 'double': digits * 2}[
          op
      ]
      code = a_code
    stack.append((value, f'({code})'))
  value, code = stack.pop()
  if op not in _MEMORY_OPS:
    value %= 10 ** (length + 1)
  return Program(code=code[1:-1], target=str(value))


class _ProgramReader:
  """Reads and evaluates a program of :func:`generate_program`'s grammar."""

  def __init__(self, code: str):
    self._code = code
    self._pos = 0
    self.literal_digits = 0  # The longest literal's digits.

  def _fail(self, expected: str) -> ValueError:
    return ValueError(
        f'Cannot read the program {self._code!r} at character {self._pos}: '
        f'expected {expected}.'
    )

  def _take(self, text: str) -> bool:
    if self._code.startswith(text, self._pos):
      self._pos += len(text)
      return True
    return False

  def _expect(self, text: str) -> None:
    if not self._take(text):
      raise self._fail(repr(text))

  def _digits(self) -> str:
    start = self._pos
    while self._pos < len(self._code) and self._code[self._pos].isdigit():
      self._pos += 1
    if self._pos == start:
      raise self._fail('a number')
    return self._code[start : self._pos]

  def _literal(self) -> int:
    digits = self._digits()
    self.literal_digits = max(self.literal_digits, len(digits))
    return int(digits)

  def _operand(self) -> int:
    if self._take('('):
      value = self._expression()
      self._expect(')')
      return value
    return self._literal()

  def _expression(self) -> int:
    if self._take('x='):  # x=a for[n] x+=b: a + n * b.
      a = self._operand()
      self._expect('for[')
      loops = int(self._digits())
      self._expect(']x+=')
      return a + loops * self._literal()
    a = self._operand()
    for symbol, apply in (
        ('+', lambda x, y: x + y),
        ('-', lambda x, y: x - y),
        ('*', lambda x, y: x * y),
    ):
      if self._take(symbol):
        return apply(a, self._literal())
    if self._take('if'):  # a if b < c (or b > c) else d.
      b = self._literal()
      if self._take('<'):
        less = True
      elif self._take('>'):
        less = False
      else:
        raise self._fail("'<' or '>'")
      c = self._literal()
      self._expect('else')
      d = self._literal()
      return a if (b < c if less else b > c) else d
    return a

  def value(self) -> int:
    value = self._expression()
    if self._pos != len(self._code):
      raise self._fail('the end of the program')
    return value


def evaluate_program(code: str, task: str) -> str:
  """The target :func:`generate_program` gives a program's code.

  Reads the operations of the table above (nested in parentheses, as
  generated) and computes their value with Python integers. Unless the task
  is a memory task, the result is taken modulo ``10 ** (length + 1)``, where
  ``length`` is the number of digits of the literals (of the longest, for a
  program whose literals differ in length; the generator's all have the
  same). A memory task's program is one literal, whose digits are copied,
  reversed or doubled.

  Args:
    code: The program text, e.g. ``'(65125-15306)-77013'``.
    task: A key of :data:`TASKS`.

  Returns:
    The target text, e.g. ``'972806'``.

  Raises:
    ValueError: For an unknown task, or a program that is not of the
      grammar (the message says where).
  """
  _check_task(task)
  if task in MEMORY_TASKS:
    if not code.isdigit():
      raise ValueError(f'A {task} program is a number; got {code!r}.')
    return {'copy': code, 'reverse': code[::-1], 'double': code * 2}[task]
  reader = _ProgramReader(code)
  value = reader.value()
  return str(value % 10 ** (reader.literal_digits + 1))


def sequence_lengths(
    task: str, max_length: int, max_nesting: int, token_by_char: bool = True
) -> tuple[int, int]:
  """Padded input and target lengths (Sonnet's formulas).

  Args:
    task: A key of :data:`TASKS`.
    max_length: Largest literal length.
    max_nesting: Largest nesting.
    token_by_char: Character tokens (else word tokens; memory tasks always
      use characters).

  Returns:
    ``(num_steps, num_steps_out)``: every program and target of the task at
    these maxima fits.
  """
  _check_task(task)
  length, nest = max_length, max_nesting
  if task in MEMORY_TASKS:
    if nest != 1:
      raise ValueError(
          f'Memory task {task!r} needs max_nesting=1; got {max_nesting}.'
      )
    return length + 1, (2 * length + 1 if task == 'double' else length + 1)
  if token_by_char:
    return (
        (3 * length + 10) * (nest - 1) + (4 * length + 10) + 2 * (nest - 1),
        2 * length,
    )
  return 10 * (nest - 1) + 11 + 2 * (nest - 1), 1


class _ScriptedOps(random.Random):
  """A ``random.Random`` whose ``choice`` returns given operations in turn."""

  def __init__(self, ops: Sequence[str]):
    super().__init__(0)
    self._ops = list(ops)

  def choice(self, seq: Any) -> Any:
    del seq  # Only the operations are chosen with `choice`.
    return self._ops.pop(0)


@functools.cache  # Every batch asks for it.
def max_program_length(
    task: str, max_length: int, max_nesting: int, token_by_char: bool = True
) -> int:
  """Tokens in the longest program of a task: the tight input padding.

  Every literal of :func:`generate_program` has exactly ``length`` digits and
  each operation adds the same tokens wherever it is in the program (its
  operand in parentheses, never merged into a neighbouring token), so a
  program's length is the sum of its operations' and the longest program
  applies the longest operation ``max_nesting`` times, with literals of
  ``max_length`` digits. This is the program itself, measured, for each
  operation of the task. Sonnet's padding (:func:`sequence_lengths`) holds
  any task: 36 characters at length 2 and nesting 2 where an addition has at
  most 10. Padding never changes a result (the steps past a program's length
  are masked) but costs time. The arguments are those of
  :func:`sequence_lengths`.

  Returns:
    The most tokens of any program of the task at these maxima (for memory
    tasks, Sonnet's input length).
  """
  steps_in, _ = sequence_lengths(
      task, max_length, max_nesting, token_by_char
  )  # Validates the arguments.
  if task in MEMORY_TASKS:
    return steps_in

  def longest(op: str) -> int:
    ops = _ScriptedOps([op] * max_nesting)
    program = generate_program(ops, task, max_length, max_nesting)
    return len(tokenize(program.code, token_by_char))

  return max(longest(op) for op in TASKS[task])


_WORD_SPLIT = re.compile(r'\d+|[a-z]+|.')


def tokenize(text: str, by_char: bool = True) -> list[str]:
  """Splits text into characters, or (word mode) into words.

  Words are digit runs, letter runs and other single characters.
  """
  if by_char:
    return list(text)
  return _WORD_SPLIT.findall(text)


class Vocabulary:
  """Token <-> id map in Sonnet's order, without its silent ``_unk_``.

  Ids: ``_unk_``, ``_null_``, ``_eos_``, ``|``, then the sorted set of
  number strings (``0``..``9`` in character mode; every number below
  ``10 ** (max_length + 1)`` in word mode), literals, keywords and the
  characters in them. Character mode has 45 symbols. Sonnet's word mode only
  held numbers below ``10 ** max_length``, so results with one more digit
  became ``_unk_``; here they are in the vocabulary. An unknown token is an
  error, not id 0.
  """

  def __init__(self, by_char: bool = True, max_length: int = 1):
    numbers = 10 if by_char else 10 ** (max_length + 1)
    symbols = (
        {str(i) for i in range(numbers)}
        | set(_LITERALS)
        | set(_KEYWORDS)
        | {c for w in _LITERALS + _KEYWORDS for c in w}
    )
    tokens = list(_SPECIAL) + sorted(symbols - set(_SPECIAL))
    self.by_char = by_char
    self.tokens = tuple(tokens)
    self._ids = {token: i for i, token in enumerate(tokens)}

  def __len__(self) -> int:
    return len(self.tokens)

  def id(self, token: str) -> int:
    """The id of ``token``; a ValueError names unknown tokens."""
    try:
      return self._ids[token]
    except KeyError:
      raise ValueError(
          f'Token {token!r} is not in the {len(self)}-symbol '
          f'{"character" if self.by_char else "word"} vocabulary.'
      ) from None

  def encode(self, text: str, pad_to: int) -> tuple[list[int], int]:
    """Token ids of ``text`` padded to ``pad_to``, and the unpadded count.

    Padding is with PAD.

    Raises:
      ValueError: For an unknown token, or more than ``pad_to`` tokens.
    """
    tokens = tokenize(text, self.by_char)
    if len(tokens) > pad_to:
      raise ValueError(
          f'{text!r} has {len(tokens)} tokens, more than the {pad_to} '
          'allowed.'
      )
    return (
        [self.id(t) for t in tokens] + [self.id(PAD)] * (pad_to - len(tokens))
    ), len(tokens)

  def decode(self, ids: Sequence[int]) -> str:
    """Joins the tokens of ``ids``."""
    return ''.join(self.tokens[i] for i in ids)


class Curriculum(abc.ABC):
  """Chooses (length, nesting) per sample; Sonnet's progress signal.

  ``update(loss)`` keeps a window of the last ``clamp(min_tries, 5, 10)``
  losses. From the ``min_tries``-th call on, it signals progress when the
  mean consecutive change of the window, relative to its mean, is below
  ``loss_threshold`` (a falling loss always qualifies), then starts afresh.
  """

  def __init__(
      self,
      max_length: int,
      max_nesting: int,
      loss_threshold: float = 0.1,
      min_tries: int = 10,
  ):
    if max_length < 1 or max_nesting < 1:
      raise ValueError(
          f'max_length and max_nesting must be >= 1; got '
          f'{max_length} and {max_nesting}.'
      )
    self.max_length = max_length
    self.max_nesting = max_nesting
    self.length = 1
    self.nesting = 1
    self._threshold = loss_threshold
    self._min_tries = min_tries
    self._losses: collections.deque[float | None] = collections.deque(
        maxlen=min(max(min_tries, 5), 10)
    )
    self._tries = 0

  @abc.abstractmethod
  def fetch(self, rng: random.Random) -> tuple[int, int]:
    """The (length, nesting) of the next sample."""

  def _signal(self, loss: float | None, force: bool) -> bool:
    if force:
      self._losses.clear()
      self._tries = 0
      return True
    self._losses.append(loss)
    self._tries += 1
    if self._tries < self._min_tries:
      return False
    losses = np.asarray(self._losses, np.float64)
    change = np.mean(np.diff(losses)) / np.mean(losses)
    if change < self._threshold:
      self._losses.clear()
      self._tries = 0
      return True
    return False

  def update(self, loss: float | None = None, force: bool = False) -> bool:
    """Feeds a training loss; returns whether the level advanced."""
    return self._signal(loss, force)

  def state(self) -> dict[str, np.ndarray]:
    """Level, counter and loss window, as fixed-shape arrays."""
    window = np.full([self._losses.maxlen or 0], np.nan)
    window[: len(self._losses)] = list(self._losses)
    return {
        'length': np.asarray(self.length, np.int64),
        'nesting': np.asarray(self.nesting, np.int64),
        'tries': np.asarray(self._tries, np.int64),
        'losses': window,
    }

  def restore(self, state: dict[str, np.ndarray]) -> None:
    """Sets what :meth:`state` returned."""
    self.length = int(state['length'])
    self.nesting = int(state['nesting'])
    self._tries = int(state['tries'])
    self._losses.clear()
    self._losses.extend(float(x) for x in state['losses'] if np.isfinite(x))

  def _advance(self) -> bool:
    if self.length < self.max_length:
      self.length += 1
      return True
    if self.nesting < self.max_nesting:
      self.nesting += 1
      return True
    return False


class BaselineCurriculum(Curriculum):
  """Always the maximum length and nesting (also the evaluation setting)."""

  def fetch(self, rng):
    """The (length, nesting) of the next sample."""
    del rng
    return self.max_length, self.max_nesting

  def update(self, loss=None, force=False):
    """Feeds a training loss; returns whether the level advanced."""
    del loss, force
    return False


class NaiveCurriculum(Curriculum):
  """The current level exactly; on progress, length grows, then nesting."""

  def fetch(self, rng):
    """The (length, nesting) of the next sample."""
    del rng
    return self.length, self.nesting

  def update(self, loss=None, force=False):
    """Feeds a training loss; returns whether the level advanced."""
    return self._signal(loss, force) and self._advance()


class MixCurriculum(Curriculum):
  """Length and nesting uniform up to the maxima (the paper's strategy).

  There is no progression.
  """

  def fetch(self, rng):
    """The (length, nesting) of the next sample."""
    return (rng.randint(1, self.max_length), rng.randint(1, self.max_nesting))

  def update(self, loss=None, force=False):
    """Feeds a training loss; returns whether the level advanced."""
    del loss, force
    return False


class CombineCurriculum(Curriculum):
  """Length and nesting uniform up to the current level (Sonnet's default).

  The level progresses as in :class:`NaiveCurriculum`.
  """

  def fetch(self, rng):
    """The (length, nesting) of the next sample."""
    return rng.randint(1, self.length), rng.randint(1, self.nesting)

  def update(self, loss=None, force=False):
    """Feeds a training loss; returns whether the level advanced."""
    return self._signal(loss, force) and self._advance()


CURRICULA: dict[str, type[Curriculum]] = {
    'baseline': BaselineCurriculum,
    'naive': NaiveCurriculum,
    'mix': MixCurriculum,
    'combine': CombineCurriculum,
}


@dataclasses.dataclass(frozen=True)
class Batch:
  """A batch of token ids, time-major.

  Attributes:
    inputs: ``[T_in, B]`` int32 program tokens, PAD-padded.
    targets: ``[T_out, B]`` int32 target tokens, PAD-padded.
    decoder_inputs: ``[T_out, B]`` int32, SOS then the targets shifted by one
      (for teacher forcing).
    input_lengths: ``[B]`` int32 unpadded program lengths.
    target_lengths: ``[B]`` int32 unpadded target lengths.
  """

  inputs: np.ndarray
  targets: np.ndarray
  decoder_inputs: np.ndarray
  input_lengths: np.ndarray
  target_lengths: np.ndarray


def make_batch(
    rng: random.Random,
    batch_size: int,
    task: str,
    curriculum: Curriculum,
    vocabulary: Vocabulary,
    token_by_char: bool = True,
) -> Batch:
  """Generates a batch: one (length, nesting) per sample from the curriculum.

  Programs are padded to :func:`max_program_length` and targets to
  :func:`sequence_lengths` at the curriculum's maxima.
  """
  return _batch_from(
      [rng] * batch_size, task, curriculum, vocabulary, token_by_char
  )


def _batch_from(
    rngs: Sequence[random.Random],
    task: str,
    curriculum: Curriculum,
    vocabulary: Vocabulary,
    token_by_char: bool,
) -> Batch:
  """A batch whose sample ``i`` draws from ``rngs[i]``."""
  batch_size = len(rngs)
  _, num_steps_out = sequence_lengths(
      task, curriculum.max_length, curriculum.max_nesting, token_by_char
  )
  num_steps = max_program_length(
      task, curriculum.max_length, curriculum.max_nesting, token_by_char
  )
  inputs, targets, input_lengths, target_lengths = [], [], [], []
  for rng in rngs:
    length, nesting = curriculum.fetch(rng)
    program = generate_program(rng, task, length, nesting)
    ids, n = vocabulary.encode(program.code, num_steps)
    inputs.append(ids)
    input_lengths.append(n)
    ids, n = vocabulary.encode(program.target, num_steps_out)
    targets.append(ids)
    target_lengths.append(n)
  target_ids = np.asarray(targets, np.int32).T  # [T_out, B]
  sos = np.full([1, batch_size], vocabulary.id(SOS), np.int32)
  return Batch(
      inputs=np.asarray(inputs, np.int32).T,  # [T_in, B]
      targets=target_ids,
      decoder_inputs=np.concatenate([sos, target_ids[:-1]], axis=0),
      input_lengths=np.asarray(input_lengths, np.int32),
      target_lengths=np.asarray(target_lengths, np.int32),
  )


def stack_batches(batches: Sequence[Batch]) -> dict[str, np.ndarray]:
  """Stacks batches into a dict of arrays with a leading batch-index axis."""
  return {
      field.name: np.stack([getattr(b, field.name) for b in batches])
      for field in dataclasses.fields(Batch)
  }


class TrainingData:
  """Training batches for :func:`rmc.toolkit.training.train` (its ``HostData``).

  Sample ``i`` of the batch of step ``s`` is drawn from ``random.Random``
  seeded with ``(seed, s, i)`` and the curriculum's state, which checkpoints
  keep; so a resumed run sees the uninterrupted run's data, and a process
  that makes only some rows of each batch (``rows``) makes exactly those
  rows of the whole batch. Each logged training loss is fed to the
  curriculum.
  """

  def __init__(
      self,
      task: str,
      curriculum: Curriculum,
      batch_size: int,
      vocabulary: Vocabulary,
      seed: int,
      token_by_char: bool = True,
      rows: slice | None = None,
  ):
    """Constructs the data.

    Args:
      task: The program task.
      curriculum: The training curriculum.
      batch_size: The global batch size ``B``.
      vocabulary: Token ids.
      seed: The data seed.
      token_by_char: Character (or word) tokens.
      rows: The rows of every batch to make (this process's part); all
        ``B`` by default.
    """
    sequence_lengths(
        task, curriculum.max_length, curriculum.max_nesting, token_by_char
    )  # Validates the combination.
    self._rows = range(batch_size)[rows or slice(None)]
    self._task = task
    self._curriculum = curriculum
    self._vocabulary = vocabulary
    self._seed = seed
    self._token_by_char = token_by_char

  def batches(self, first_step: int, num_steps: int) -> dict[str, np.ndarray]:
    """Batches of steps ``first_step ..``, leaves ``[num_steps, T or B...]``.

    Only the rows of ``rows``: ``B`` is their number.
    """
    return stack_batches(
        [
            _batch_from(
                [
                    random.Random(f'{self._seed}:{step}:{row}')
                    for row in self._rows
                ],
                self._task,
                self._curriculum,
                self._vocabulary,
                self._token_by_char,
            )
            for step in range(first_step, first_step + num_steps)
        ]
    )

  def state(self) -> dict[str, np.ndarray]:
    """What a checkpoint keeps of this data."""
    return self._curriculum.state()

  def restore(self, state: dict[str, np.ndarray]) -> None:
    """Continues from what :meth:`state` returned."""
    self._curriculum.restore(state)

  def observe(self, record: dict[str, float]) -> None:
    """Sees a logged training record (e.g. to advance a curriculum)."""
    if self._curriculum.update(record['loss']):
      logging.info(
          'Curriculum advanced to length %d, nesting %d.',
          self._curriculum.length,
          self._curriculum.nesting,
      )
