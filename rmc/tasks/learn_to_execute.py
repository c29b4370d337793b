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
"""Learning to Execute (Santoro et al., 2018, 4.2): settings and model.

The data is :mod:`rmc.data.learn_to_execute`; the binary that trains it is
``experiments/learn_to_execute.py``.
"""

import dataclasses
from typing import Literal

import haiku as hk
import jax
import jax.numpy as jnp

from rmc.data import learn_to_execute as data
from rmc import models
from rmc.tasks import base
from rmc.toolkit import cores
from rmc.toolkit.hyperparameters import hyperparameter
from rmc.toolkit.hyperparameters import Hyperparameters
from rmc.toolkit import training


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearnToExecute(Hyperparameters):
  """The task's hyperparameters."""

  program: Literal[
      'addition',
      'alg_ctrl',
      'algebra',
      'all',
      'control',
      'copy',
      'double',
      'reverse',
  ] = hyperparameter(
      "Program task (the paper's addition, control and program "
      'are addition, control and all).',
      default='addition',
      flag='task',
  )
  max_length: int = hyperparameter('Largest literal length (digits).', lower=1)
  max_nesting: int = hyperparameter('Largest nesting (operations).', lower=1)
  curriculum: Literal['baseline', 'combine', 'mix', 'naive'] = hyperparameter(
      'Training curriculum (the paper used mix).', default='mix'
  )
  token_mode: Literal['char', 'word'] = hyperparameter(
      'Character tokens, or words (digit and letter runs).', default='char'
  )
  decoder: Literal['zeros', 'teacher_forcing'] = hyperparameter(
      "Decoder inputs: zeros (non-autoregressive, the paper's "
      'best) or the target shifted right (evaluation also feeds '
      'the true previous token).',
      default='zeros',
  )
  separate_cores: bool = hyperparameter(
      'Separate encoder and decoder cores (Sonnet shares one).',
      default=False,
  )
  loss_average: Literal['valid_tokens', 'all_positions'] = hyperparameter(
      'Cross-entropy averaged over valid target tokens, or '
      "Sonnet's average over all padded positions.",
      default='valid_tokens',
  )
  curriculum_loss_threshold: float = hyperparameter(
      'Naive/combine curricula advance when the relative loss '
      'change over the window is below this.',
      default=0.1,
  )
  eval_seed: int | None = hyperparameter(
      "Seed of the held-out programs; by default the run's --seed. Give "
      'every run of a comparison the same value to score them all on the '
      'same programs.',
      default=None,
      lower=0,
  )
  eval_batches: int = base.eval_batches()

  def __post_init__(self):
    super().__post_init__()
    self.sequence_lengths()  # Its one-line error for programs too long.

  @property
  def by_char(self) -> bool:
    """Whether tokens are characters (else words)."""
    return self.token_mode == 'char'

  def sequence_lengths(self) -> tuple[int, int]:
    """``(T_in, T_out)``: the encoder's and decoder's steps."""
    return data.sequence_lengths(
        self.program, self.max_length, self.max_nesting, self.by_char
    )

  def vocabulary(self) -> data.Vocabulary:
    """The token vocabulary."""
    return data.Vocabulary(self.by_char, self.max_length)


Config = base.Config[LearnToExecute]

_LTE = LearnToExecute(max_length=2, max_nesting=2, eval_batches=20)
_PAPER_RMC = cores.RMC(
    mem_slots=4, head_size=64, num_heads=4, gate_style='memory'
)

PRESETS: dict[str, Config] = {
    'paper': Config(
        task=dataclasses.replace(_LTE, max_length=5, eval_batches=100),
        optimizer=training.Optimizer.constant(128, 1e-3),
        loop=training.LoopConfig(
            num_steps=200_000,
            steps_per_chunk=10,
            log_every=100,
            eval_every=2000,
            checkpoint_every=10_000,
        ),
        rmc=_PAPER_RMC,
        lstm=cores.LSTM(hidden_size=1024),
        # The paper's DNC: 80 slots of 64, 4 read and 1 write heads, a
        # 2-layer controller of 128, 256 or 512 (the largest here).
        dnc=cores.DNC(
            memory_size=80,
            word_size=64,
            num_reads=4,
            num_writes=1,
            controller_size=512,
        ),
    ),
    'cpu': Config(
        task=_LTE,
        # Batch 32: 2.4x the RMC's steps/s of batch 64 on one CPU core, and
        # as much learnt per step (experiments/results/lte_study.md).
        optimizer=training.Optimizer.constant(32, 1e-3),
        loop=training.LoopConfig(
            num_steps=20_000,
            steps_per_chunk=10,
            log_every=100,
            eval_every=1000,
            checkpoint_every=2000,
        ),
        # A gate per memory element: 7 to 20 points above the paper's scalar
        # `memory` gate on control at 12 minutes, 1.5 to 5 on the program,
        # level on addition, seeds 0-2 (experiments/results/lte_study.md).
        rmc=cores.RMC(mem_slots=4, head_size=32, num_heads=2),
        # About the RMC's parameter count; per wall-clock the strongest LSTM
        # of the study (256 units learn more per step, at 1/7 the steps/s).
        lstm=cores.LSTM(hidden_size=64),
        # The paper's DNC heads (4 read, 1 write) and 2-layer controller,
        # at 64 units, on 16 slots of 32: its 80 slots of 64 train at 1
        # step/s on one CPU core, these at 6.6.
        dnc=cores.DNC(
            memory_size=16,
            word_size=32,
            num_reads=4,
            num_writes=1,
            controller_size=64,
        ),
    ),
    'smoke': Config(
        task=dataclasses.replace(_LTE, eval_batches=2),
        optimizer=dataclasses.replace(
            training.Optimizer.constant(8, 3e-3), max_grad_norm=1.0
        ),
        loop=dataclasses.replace(
            base.SMOKE_LOOP, num_steps=30, eval_every=10, checkpoint_every=10
        ),
        rmc=cores.RMC(
            mem_slots=2, head_size=4, num_heads=2, gate_style='memory'
        ),
        lstm=base.SMOKE_LSTM,
        dnc=base.SMOKE_DNC,
    ),
}
PRESETS = {
    name: dataclasses.replace(config, preset=name)
    for name, config in PRESETS.items()
}


class Task(base.Task[LearnToExecute]):
  """Learning to Execute: short programs' outputs, as sequence to sequence."""

  name = 'learn_to_execute'
  hyperparameters = LearnToExecute
  presets = PRESETS
  default_preset = 'cpu'
  lstm_layers = 2  # The paper's baseline: two LSTMs with skip connections.

  def model(
      self, config: Config, vocab_size: int | None = None
  ) -> hk.Transformed:
    """The sequence-to-sequence model.

    Returns:
      ``apply(params, batch)`` gives the logits ``[T_out, B, V]`` of a batch
      (a dict of the fields of :class:`rmc.data.learn_to_execute.Batch`),
      without an RNG.
    """
    del vocab_size  # The configuration gives it.
    num_tokens = len(config.task.vocabulary())

    def forward(batch):
      encoder = self.make_core(config)
      decoder = (
          self.make_core(config, name='decoder')
          if config.task.separate_cores
          else encoder
      )
      model = models.Seq2Seq(
          encoder,
          decoder,
          num_tokens,
          teacher_forcing=config.task.decoder == 'teacher_forcing',
      )
      return model(
          batch['inputs'],
          batch['input_lengths'],
          batch['decoder_inputs'],
          batch['target_lengths'],
      )

    return hk.without_apply_rng(hk.transform(forward))

  def core_input_size(
      self, config: Config, vocab_size: int | None = None
  ) -> int:
    """One-hot tokens: ``V``."""
    return len(config.task.vocabulary())

  def example_inputs(
      self, config: Config, vocab_size: int | None = None
  ) -> tuple[dict[str, jax.ShapeDtypeStruct]]:
    """One program's batch: tokens ``[T, 1]``, lengths ``[1]``."""
    steps_in, steps_out = config.task.sequence_lengths()

    def tokens(steps):
      return jax.ShapeDtypeStruct((steps, 1), jnp.int32)

    lengths = jax.ShapeDtypeStruct((1,), jnp.int32)
    return (
        dict(
            inputs=tokens(steps_in),
            targets=tokens(steps_out),
            decoder_inputs=tokens(steps_out),
            input_lengths=lengths,
            target_lengths=lengths,
        ),
    )

  def vocabulary(self, config: Config, workdir: str) -> data.Vocabulary:
    """The token vocabulary (the configuration gives it)."""
    del workdir
    return config.task.vocabulary()

  def num_cores(self, config: Config) -> int:
    """Two with ``separate_cores`` (an encoder and a decoder), else one."""
    return 2 if config.task.separate_cores else 1


TASK = Task()
