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
"""Language modelling on WikiText (Santoro et al., 2018, 4.3): settings, model.

The data is :mod:`rmc.data.wikitext`; the binary that trains it is
``experiments/wikitext103.py``.
"""

import dataclasses
import os
from typing import Literal

import haiku as hk
import jax
import jax.numpy as jnp

from rmc.data import wikitext
from rmc import models
from rmc.tasks import base
from rmc.toolkit import cores
from rmc.toolkit.hyperparameters import hyperparameter
from rmc.toolkit.hyperparameters import Hyperparameters
from rmc.toolkit import training

# The language model's vocabulary, copied into its work directory.
VOCABULARY_FILE = 'vocab.txt'


@dataclasses.dataclass(frozen=True, kw_only=True)
class LanguageModel(Hyperparameters):
  """The task's hyperparameters."""

  unroll_length: int = hyperparameter(
      'Truncated-BPTT segment length T (time steps).', lower=1
  )
  embed_size: int = hyperparameter('Word embedding width.', lower=1)
  dropout_rate: float = hyperparameter(
      'Dropout on the embeddings while training, in [0, 1).',
      lower=0.0,
      upper=0.99,
  )
  softmax: Literal['tied', 'adaptive'] = hyperparameter(
      "Output layer: a softmax tied to the embedding (the paper's) or an "
      'adaptive softmax.',
      default='tied',
  )
  adaptive_cutoffs: tuple[int, ...] = hyperparameter(
      'Adaptive softmax cluster starts (word ids, increasing), '
      'e.g. 20000,40000,200000 for WikiText-103.',
      default=(),
      lower=1,
  )
  adaptive_div_value: float = hyperparameter(
      'Adaptive softmax: each tail cluster projects to a width '
      'this many times smaller than the previous.',
      default=4.0,
      lower=1.0,
  )
  loss_chunk_size: int = hyperparameter(
      'Time steps whose [steps, batch, vocabulary] logits the softmax '
      'computes at once, forward and backward (recomputed there); 0 for the '
      'whole segment. Results are the same; smaller chunks need less memory.',
      default=0,
      lower=0,
  )
  eval_batch_size: int = hyperparameter(
      'Columns for evaluation; 1 carries the state through '
      "the whole split (the paper's protocol).",
      lower=1,
  )

  def __post_init__(self):
    super().__post_init__()
    if self.softmax == 'adaptive' and not self.adaptive_cutoffs:
      raise ValueError('--softmax=adaptive needs --adaptive_cutoffs.')


Config = base.Config[LanguageModel]

PRESETS: dict[str, Config] = {
    'paper': Config(
        task=LanguageModel(
            unroll_length=100,
            embed_size=512,
            dropout_rate=0.5,
            eval_batch_size=1,
            loss_chunk_size=10,
        ),
        optimizer=dataclasses.replace(
            training.Optimizer.constant(64, 1e-3), max_grad_norm=0.1
        ),
        loop=training.LoopConfig(
            num_steps=250_000,
            steps_per_chunk=10,
            log_every=100,
            eval_every=5000,
            checkpoint_every=5000,
        ),
        rmc=cores.RMC(
            mem_slots=1, head_size=625, num_heads=4, attention_mlp_layers=5
        ),
        lstm=cores.LSTM(hidden_size=2048),
        # The paper has no DNC language model; these sizes are ours.
        dnc=cores.DNC(
            memory_size=128,
            word_size=256,
            num_reads=4,
            num_writes=1,
            controller_size=1024,
        ),
    ),
    'cpu': Config(
        task=LanguageModel(
            unroll_length=35,
            embed_size=128,
            dropout_rate=0.5,
            eval_batch_size=16,
        ),
        optimizer=dataclasses.replace(
            training.Optimizer.constant(32, 1e-3), max_grad_norm=0.1
        ),
        loop=training.LoopConfig(
            num_steps=20_000,
            steps_per_chunk=10,
            log_every=100,
            eval_every=1000,
            checkpoint_every=1000,
        ),
        rmc=cores.RMC(mem_slots=1, head_size=64, num_heads=4),
        # An LSTM of 334 units has the RMC's parameter count.
        lstm=cores.LSTM(hidden_size=334),
        dnc=cores.DNC(
            memory_size=32,
            word_size=64,
            num_reads=4,
            num_writes=1,
            controller_size=256,
        ),
    ),
    'smoke': Config(
        task=LanguageModel(
            unroll_length=8,
            embed_size=16,
            dropout_rate=0.1,
            eval_batch_size=3,
            loss_chunk_size=3,
        ),
        optimizer=dataclasses.replace(
            training.Optimizer.constant(4, 3e-3), max_grad_norm=1.0
        ),
        loop=base.SMOKE_LOOP,
        rmc=cores.RMC(mem_slots=1, head_size=8, num_heads=2),
        lstm=base.SMOKE_LSTM,
        dnc=base.SMOKE_DNC,
    ),
}
PRESETS = {
    name: dataclasses.replace(config, preset=name)
    for name, config in PRESETS.items()
}


class Task(base.Task[LanguageModel]):
  """Word-level language modelling with a recurrent core."""

  name = 'wikitext103'
  hyperparameters = LanguageModel
  presets = PRESETS
  default_preset = 'cpu'

  def module(self, config: Config, vocab_size: int) -> models.LanguageModel:
    """The language model module (call inside ``hk.transform``).

    Args:
      config: The run's configuration.
      vocab_size: Words ``V``.
    """
    task = config.task
    return models.LanguageModel(
        self.make_core(config),
        vocab_size,
        embed_size=task.embed_size,
        dropout_rate=task.dropout_rate,
        softmax=task.softmax,
        cutoffs=task.adaptive_cutoffs,
        div_value=task.adaptive_div_value,
        loss_chunk_size=task.loss_chunk_size,
    )

  def model(
      self, config: Config, vocab_size: int | None = None
  ) -> hk.Transformed:
    """The language model.

    Returns:
      ``apply(params, rng, inputs [T, B], targets [T, B], state, reset [B]
      or None, is_training)`` gives ``(log_probs [T, B], state)``.
    """
    size = _vocab_size(vocab_size)

    def forward(inputs, targets, state, reset, is_training):
      return self.module(config, size)(
          inputs, targets, state, reset, is_training
      )

    return hk.transform(forward)

  def initial_state(
      self, config: Config, vocab_size: int | None = None
  ) -> hk.Transformed:
    """``apply(None, batch_size)`` gives the core's initial state."""
    size = _vocab_size(vocab_size)

    def initial(batch_size):
      return self.module(config, size).initial_state(batch_size)

    return hk.without_apply_rng(hk.transform(initial))

  def vocabulary(self, config: Config, workdir: str) -> wikitext.Vocabulary:
    """The vocabulary the run saved in its work directory (vocab.txt)."""
    del config
    return load_vocabulary(workdir)

  def core_input_size(
      self, config: Config, vocab_size: int | None = None
  ) -> int:
    """Word embeddings: ``E``."""
    return config.task.embed_size

  def example_inputs(self, config: Config, vocab_size: int | None = None):
    """``(inputs, targets, state, reset, is_training)`` of one column."""
    state = jax.eval_shape(
        lambda: self.initial_state(config, vocab_size).apply(None, 1)
    )
    words = jax.ShapeDtypeStruct((config.task.unroll_length, 1), jnp.int32)
    return (words, words, state, None, False)

  def params_shapes(self, config: Config, vocab_size: int | None = None):
    """The shapes and dtypes of the model's parameters (nothing computed)."""
    model = self.model(config, vocab_size)
    words, _, state, _, _ = self.example_inputs(config, vocab_size)
    return jax.eval_shape(
        lambda k, x, s: model.init(k, x, x, s, None, False),
        jax.random.key(0),
        words,
        state,
    )


# Batch axes of a training batch: tokens are time-major [T, B], reset [B].
BATCH_AXES = dict(inputs=1, targets=1, reset=0)


def make_loss_fn(model: hk.Transformed) -> training.LossFn:
  """The training loss: mean negative log-likelihood of a segment's targets.

  ``loss_fn(params, key, batch, carry)`` with ``batch`` holding ``inputs``
  and ``targets`` ``[T, B]`` and ``reset`` ``[B]`` returns
  ``(loss, ({}, carry))`` in the form of
  :func:`rmc.toolkit.training.make_train_chunk` with ``with_carry``.
  """

  def loss_fn(params, key, batch, carry):
    log_probs, carry = model.apply(
        params,
        key,
        batch['inputs'],
        batch['targets'],
        carry,
        batch['reset'],
        True,
    )
    return -jnp.mean(log_probs), ({}, carry)

  return loss_fn


def _vocab_size(vocab_size: int | None) -> int:
  if vocab_size is None:
    raise ValueError('A language model needs its vocab_size.')
  return vocab_size


def load_vocabulary(workdir: str) -> wikitext.Vocabulary:
  """The language model's vocabulary saved in its work directory.

  Raises:
    wikitext.DataError: If ``<workdir>/vocab.txt`` is missing or malformed.
  """
  target = os.path.join(workdir, VOCABULARY_FILE)
  if not os.path.exists(target):
    raise wikitext.DataError(
        f"{target} does not exist: the language model's vocabulary is "
        'saved there when it starts training.'
    )
  return wikitext.Vocabulary.load(target)


TASK = Task()
