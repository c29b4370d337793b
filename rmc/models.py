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
"""Models of the experiments: cores, classifier, seq2seq, language model."""

from collections.abc import Callable, Sequence
import functools
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp

from rmc import adaptive_softmax
from rmc import fast_unroll
from rmc import relational_memory


def unroll(
    core: hk.RNNCore,
    inputs: jax.Array,
    initial_state: Any,
    time_major: bool = True,
) -> tuple[Any, Any]:
  """``hk.dynamic_unroll``, through ``RelationalMemory.unroll`` for an RMC.

  The RMC's own unroll gives the same result faster (see its docstring);
  other cores are unrolled by ``hk.dynamic_unroll``.

  Args:
    core: The core.
    inputs: ``[T, B, ...]``, or ``[B, T, ...]`` if not ``time_major``.
    initial_state: The core's state, batch-leading leaves.
    time_major: Layout of ``inputs`` and of the outputs.

  Returns:
    ``(outputs [T, B, ...] or [B, T, ...], final_state)``.
  """
  if isinstance(core, relational_memory.RelationalMemory):
    return core.unroll(inputs, initial_state, time_major=time_major)
  return hk.dynamic_unroll(core, inputs, initial_state, time_major=time_major)


class SequenceClassifier(hk.Module):
  """Reads a sequence with a core and classifies its last output.

  As in the paper's Nth Farthest model: the core's output at the last time
  step, then an MLP with ReLU after every layer (including the last), then a
  linear map to the logits.
  """

  def __init__(
      self,
      core: hk.RNNCore,
      num_classes: int,
      mlp_sizes: Sequence[int] = (256, 256, 256, 256),
      name: str | None = None,
  ):
    """Constructs the classifier.

    Args:
      core: The recurrent core.
      num_classes: Number of logits ``C``.
      mlp_sizes: Widths of the MLP between the core and the logits.
      name: Module name.
    """
    super().__init__(name=name)
    self._core = core
    self._num_classes = num_classes
    self._mlp_sizes = tuple(mlp_sizes)

  def __call__(
      self, inputs: jax.Array, return_core_outputs: bool = False
  ) -> Any:
    """Maps batch-major inputs ``[B, T, d_in]`` to logits ``[B, C]``.

    Args:
      inputs: ``[B, T, d_in]``.
      return_core_outputs: Also return the core's outputs at every step,
        batch-major (e.g. the attention weights of an RMC built with
        ``return_diagnostics=True``).

    Returns:
      The logits ``[B, C]``, or ``(logits, core_outputs)`` with
      ``return_core_outputs``.
    """
    batch_size = inputs.shape[0]
    outputs, _ = unroll(
        self._core,
        inputs,
        self._core.initial_state(batch_size),
        time_major=False,
    )  # [B, T, d_out], or RelationalMemoryOutput.
    features = (
        outputs.output
        if isinstance(outputs, relational_memory.RelationalMemoryOutput)
        else outputs
    )  # [B, T, d_out]
    last = features[:, -1]  # [B, d_out]
    hidden = hk.nets.MLP(self._mlp_sizes, activate_final=True)(last)
    logits = hk.Linear(self._num_classes)(hidden)  # [B, C]
    return (logits, outputs) if return_core_outputs else logits


def classification_metrics(
    logits: jax.Array, labels: jax.Array
) -> dict[str, jax.Array]:
  """Mean softmax cross-entropy and accuracy.

  Args:
    logits: ``[B, C]``.
    labels: ``[B]`` integer classes.

  Returns:
    ``{'loss': [], 'accuracy': []}``.
  """
  loss = jnp.mean(
      jax.nn.logsumexp(logits, axis=-1)
      - jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
  )
  accuracy = jnp.mean(
      (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
  )
  return {'loss': loss, 'accuracy': accuracy}


def masked_unroll(
    core: hk.RNNCore,
    inputs: jax.Array,
    lengths: jax.Array,
    initial_state: Any,
) -> tuple[Any, Any]:
  """Time-major unroll with TF ``dynamic_rnn`` semantics for lengths.

  At steps ``t >= lengths[b]`` sample ``b``'s state is carried unchanged and
  its output is zero, so its final state is the state after its own last
  valid step. An RMC runs through its fast ``RelationalMemory.unroll``;
  other cores through :func:`rmc.fast_unroll.masked_dynamic_unroll`.

  Args:
    core: The core.
    inputs: ``[T, B, ...]``.
    lengths: ``[B]`` valid steps per sample.
    initial_state: The core's state, batch-leading leaves.

  Returns:
    ``(outputs [T, B, ...], final_state)``; the outputs are the core's (a
    ``RelationalMemoryOutput`` for an RMC with diagnostics).
  """
  if isinstance(core, relational_memory.RelationalMemory):
    return core.unroll(inputs, initial_state, lengths=lengths)
  return fast_unroll.masked_dynamic_unroll(core, inputs, lengths, initial_state)


class Seq2Seq(hk.Module):
  """Encoder-decoder over one-hot tokens (the paper's LTE model).

  The encoder reads the program; its final state starts the decoder, which
  is fed zeros (the paper's best, non-autoregressive setting) or, with
  ``teacher_forcing``, the target shifted right behind a start symbol. Each
  decoder output goes through an MLP with ReLU after every layer, then a
  linear map to the vocabulary.
  """

  def __init__(
      self,
      encoder: hk.RNNCore,
      decoder: hk.RNNCore,
      vocab_size: int,
      mlp_sizes: Sequence[int] = (256,) * 4,
      teacher_forcing: bool = False,
      name: str | None = None,
  ):
    """Constructs the model.

    Args:
      encoder: Core reading the program.
      decoder: Core writing the answer; pass the encoder itself to share all
        weights, as Sonnet's example does.
      vocab_size: Number of token ids ``V``.
      mlp_sizes: Widths of the MLP between decoder outputs and logits.
      teacher_forcing: Feed the decoder the shifted targets instead of zeros.
      name: Module name.
    """
    super().__init__(name=name)
    self._encoder = encoder
    self._decoder = decoder
    self._vocab_size = vocab_size
    self._mlp_sizes = tuple(mlp_sizes)
    self._teacher_forcing = teacher_forcing

  def __call__(
      self,
      inputs: jax.Array,
      input_lengths: jax.Array,
      decoder_inputs: jax.Array,
      target_lengths: jax.Array,
  ) -> jax.Array:
    """Logits ``[T_out, B, V]``.

    Args:
      inputs: ``[T_in, B]`` program token ids.
      input_lengths: ``[B]``.
      decoder_inputs: ``[T_out, B]`` start symbol then targets (only read
        with teacher forcing; its shape sets ``T_out``).
      target_lengths: ``[B]``.
    """
    batch_size = inputs.shape[1]
    one_hot = jax.nn.one_hot(inputs, self._vocab_size)  # [T_in, B, V]
    _, state = masked_unroll(
        self._encoder,
        one_hot,
        input_lengths,
        self._encoder.initial_state(batch_size),
    )
    if self._teacher_forcing:
      decoder_inputs = jax.nn.one_hot(decoder_inputs, self._vocab_size)
    else:
      decoder_inputs = jnp.zeros(decoder_inputs.shape + (self._vocab_size,))
    outputs, _ = masked_unroll(
        self._decoder, decoder_inputs, target_lengths, state
    )  # [T_out, B, D]
    hidden = hk.nets.MLP(self._mlp_sizes, activate_final=True)(outputs)
    return hk.Linear(self._vocab_size)(hidden)  # [T_out, B, V]


def sequence_metrics(
    logits: jax.Array,
    targets: jax.Array,
    lengths: jax.Array,
    loss_average: str = 'valid_tokens',
) -> dict[str, jax.Array]:
  """Token cross-entropy, per-token accuracy and fraction of sequences solved.

  Args:
    logits: ``[T, B, V]``.
    targets: ``[T, B]`` token ids.
    lengths: ``[B]`` valid target tokens per sample.
    loss_average: ``'valid_tokens'``: mean over valid tokens; or
      ``'all_positions'``: the sum over valid tokens divided by ``T * B``,
      Sonnet's example (padded positions count in the denominator).

  Returns:
    ``loss``; ``accuracy``, correct valid tokens over valid tokens (the
    paper's per-character accuracy); ``solved``, the fraction of sequences
    whose valid tokens are all correct.
  """
  if loss_average not in ('valid_tokens', 'all_positions'):
    raise ValueError(
        f'loss_average must be valid_tokens or all_positions; '
        f'got {loss_average!r}.'
    )
  mask = jnp.arange(targets.shape[0])[:, None] < lengths[None, :]  # [T, B]
  mask = mask.astype(logits.dtype)
  nll = (
      jax.nn.logsumexp(logits, axis=-1)
      - jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  )
  total = jnp.sum(nll * mask)
  if loss_average == 'valid_tokens':
    loss = total / jnp.maximum(jnp.sum(mask), 1.0)
  else:
    loss = total / mask.size
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(logits.dtype)
  accuracy = jnp.sum(correct * mask) / jnp.maximum(jnp.sum(mask), 1.0)
  wrong = jnp.sum((1.0 - correct) * mask, axis=0)  # [B]
  solved = jnp.mean((wrong == 0).astype(logits.dtype))
  return {'loss': loss, 'accuracy': accuracy, 'solved': solved}


SOFTMAXES = ('tied', 'adaptive')


class LanguageModel(hk.Module):
  """Word-level language model (the paper's WikiText-103 model).

  Embedding (uniform in [-0.1, 0.1]) with dropout, then the core, then a
  linear projection to the embedding size, then either a softmax whose
  weights are the embedding matrix (``'tied'``, the paper's) plus a bias, or
  an :class:`rmc.adaptive_softmax.AdaptiveSoftmax` (``'adaptive'``).
  """

  def __init__(
      self,
      core: hk.RNNCore,
      vocab_size: int,
      embed_size: int = 512,
      dropout_rate: float = 0.5,
      softmax: str = 'tied',
      cutoffs: Sequence[int] = (),
      div_value: float = 4.0,
      loss_chunk_size: int | None = None,
      name: str | None = None,
  ):
    """Constructs the model.

    Args:
      core: The recurrent core.
      vocab_size: Number of words ``V`` (ids in descending frequency order
        for the adaptive softmax).
      embed_size: Embedding width ``E``.
      dropout_rate: Dropout on the embeddings while training, in [0, 1).
      softmax: ``'tied'`` or ``'adaptive'``.
      cutoffs: Adaptive softmax cluster starts.
      div_value: Adaptive softmax width divisor.
      loss_chunk_size: Time steps whose logits are computed at once; None
        (or 0) for the whole segment. With ``C`` steps per chunk, only
        ``[C, B, V]`` logits exist at a time, in the forward pass and in the
        backward pass (each chunk's logits are recomputed there): see
        :func:`chunked_over_time`. The results are the same.
      name: Module name.

    Raises:
      ValueError: For an unknown softmax, a dropout rate outside [0, 1) or a
        negative ``loss_chunk_size``.
    """
    super().__init__(name=name)
    if softmax not in SOFTMAXES:
      raise ValueError(
          f'softmax must be one of {list(SOFTMAXES)}; got {softmax!r}.'
      )
    if not 0 <= dropout_rate < 1:
      raise ValueError(f'dropout_rate must be in [0, 1); got {dropout_rate}.')
    if loss_chunk_size is not None and loss_chunk_size < 0:
      raise ValueError(
          f'loss_chunk_size must be >= 0 or None; got {loss_chunk_size}.'
      )
    self._core = core
    self._vocab_size = vocab_size
    self._embed_size = embed_size
    self._dropout_rate = dropout_rate
    self._softmax = softmax
    self._cutoffs = tuple(cutoffs)
    self._div_value = div_value
    self._loss_chunk_size = loss_chunk_size or None

  def initial_state(self, batch_size: int) -> Any:
    """The core's initial state for ``batch_size`` columns."""
    return self._core.initial_state(batch_size)

  @hk.name_like('__call__')
  def _hidden(
      self,
      inputs: jax.Array,
      state: Any,
      reset: jax.Array | None,
      is_training: bool,
  ) -> tuple[jax.Array, hk.Embed, Any]:
    """``(hidden [T, B, E], the embedding module, state)`` of a segment."""
    batch_size = inputs.shape[1]
    if reset is not None:
      initial = self._core.initial_state(batch_size)
      state = jax.tree.map(
          lambda init, old: jnp.where(
              reset.reshape((-1,) + (1,) * (old.ndim - 1)), init, old
          ),
          initial,
          state,
      )
    embed = hk.Embed(
        self._vocab_size,
        self._embed_size,
        w_init=hk.initializers.RandomUniform(-0.1, 0.1),
    )
    embedded = embed(inputs)  # [T, B, E]
    if is_training and self._dropout_rate:
      embedded = hk.dropout(hk.next_rng_key(), self._dropout_rate, embedded)
    outputs, state = unroll(self._core, embedded, state)  # [T, B, d_out]
    hidden = hk.Linear(self._embed_size, name='projection')(outputs)
    return hidden, embed, state

  @hk.name_like('__call__')
  def _softmax_bias(self, dtype: Any) -> jax.Array:
    """The tied softmax's bias ``[V]``."""
    return hk.get_parameter(
        'softmax_bias', [self._vocab_size], dtype, init=jnp.zeros
    )

  def __call__(
      self,
      inputs: jax.Array,
      targets: jax.Array,
      state: Any,
      reset: jax.Array | None = None,
      is_training: bool = False,
  ) -> tuple[jax.Array, Any]:
    """Log-probabilities of the targets, and the state after the segment.

    Args:
      inputs: ``[T, B]`` word ids.
      targets: ``[T, B]`` next-word ids.
      state: Core state from the previous segment (batch-leading leaves).
      reset: Optional bool ``[B]``: columns whose stream starts here get the
        initial state instead of ``state``.
      is_training: Apply dropout (needs an ``rng`` in ``apply``).

    Returns:
      ``(log_probs [T, B], state)``.
    """
    hidden, embed, state = self._hidden(inputs, state, reset, is_training)
    target_log_probs: Callable[..., jax.Array]
    if self._softmax == 'adaptive':
      target_log_probs = adaptive_softmax.AdaptiveSoftmax(
          self._vocab_size, self._cutoffs, self._div_value
      )
    else:
      target_log_probs = functools.partial(
          tied_target_log_probs,
          embeddings=embed.embeddings,
          bias=self._softmax_bias(hidden.dtype),
      )
    return (
        chunked_over_time(
            target_log_probs, hidden, targets, self._loss_chunk_size
        ),
        state,
    )

  @hk.name_like('__call__')
  def log_probs(
      self, inputs: jax.Array, state: Any, reset: jax.Array | None = None
  ) -> tuple[jax.Array, Any]:
    """Log-probabilities of every next word (no dropout), and the state.

    The same parameters as ``__call__``; for sampling and for looking at the
    output distribution. It makes all ``[T, B, V]`` log-probabilities.

    Args:
      inputs: ``[T, B]`` word ids.
      state: Core state from the previous segment (batch-leading leaves).
      reset: Optional bool ``[B]``, as in ``__call__``.

    Returns:
      ``(log_probs [T, B, V], state)``; each row's ``logsumexp`` is 0.
    """
    hidden, embed, state = self._hidden(inputs, state, reset, False)
    if self._softmax == 'adaptive':
      return (
          adaptive_softmax.AdaptiveSoftmax(
              self._vocab_size, self._cutoffs, self._div_value
          ).full_log_probs(hidden),
          state,
      )
    logits = tied_logits(
        hidden, embed.embeddings, self._softmax_bias(hidden.dtype)
    )  # [T, B, V]
    return jax.nn.log_softmax(logits, axis=-1), state

  @hk.name_like('__call__')
  def sample(
      self,
      prompt: jax.Array,
      state: Any,
      num_words: int,
      rng: jax.Array,
      temperature: float = 1.0,
      top_k: int = 0,
  ) -> tuple[jax.Array, Any]:
    """Continues ``prompt`` with ``num_words`` words drawn from the model.

    The prompt is read with the state carried from ``state``; then each word
    is drawn from the model's next-word distribution, divided by
    ``temperature`` and restricted to the ``top_k`` most likely words, and
    fed back, in one ``hk.scan``.

    Args:
      prompt: ``[P, B]`` word ids, ``P >= 1``.
      state: Core state before the prompt (batch-leading leaves).
      num_words: Words to draw, ``>= 1``.
      rng: PRNG key of the draws (unused when ``temperature`` is 0).
      temperature: Divides the log-probabilities; 0 takes the most likely
        word (greedy decoding).
      top_k: Draw only from the ``top_k`` most likely words; 0 for all.

    Returns:
      ``(words [num_words, B], state)``: the state after the prompt and every
      word but the last, so that ``words[-1:]`` is the prompt that continues.

    Raises:
      ValueError: For ``num_words < 1``, a negative temperature, or
        ``top_k`` outside ``[0, V]``.
    """
    if num_words < 1:
      raise ValueError(f'num_words must be >= 1; got {num_words}.')
    if temperature < 0:
      raise ValueError(f'temperature must be >= 0; got {temperature}.')
    if not 0 <= top_k <= self._vocab_size:
      raise ValueError(
          f'top_k must be in [0, V={self._vocab_size}]; got {top_k}.'
      )

    def choose(log_probs, key):  # [B, V] -> [B]
      if temperature == 0:
        return jnp.argmax(log_probs, axis=-1)
      logits = log_probs / temperature
      if top_k:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]  # [B, 1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
      return jax.random.categorical(key, logits, axis=-1)

    keys = jax.random.split(rng, num_words)
    log_probs, state = self.log_probs(prompt, state)  # [P, B, V]
    first = choose(log_probs[-1], keys[0])  # [B]

    def step(carry, key):
      word, state = carry
      log_probs, state = self.log_probs(word[None], state)  # [1, B, V]
      return (choose(log_probs[0], key), state), word

    (last, state), words = hk.scan(step, (first, state), keys[1:])
    return jnp.concatenate([words, last[None]], axis=0), state  # [W, B]


def tied_logits(
    hidden: jax.Array, embeddings: jax.Array, bias: jax.Array
) -> jax.Array:
  """``hidden @ embeddings.T + bias``: ``[..., E]`` to ``[..., V]``."""
  logits = hidden @ embeddings.T.astype(hidden.dtype)  # [..., V]
  return logits + jnp.broadcast_to(bias, logits.shape)


def tied_target_log_probs(
    hidden: jax.Array,
    targets: jax.Array,
    embeddings: jax.Array,
    bias: jax.Array,
) -> jax.Array:
  """Log-probabilities of the targets under a softmax tied to an embedding.

  Args:
    hidden: ``[..., E]``.
    targets: Integer ``[...]`` word ids in ``[0, V)``.
    embeddings: ``[V, E]``, the softmax weights.
    bias: ``[V]``.

  Returns:
    ``[...]``: ``log_softmax(tied_logits(...))`` at the targets.
  """
  logits = tied_logits(hidden, embeddings, bias)  # [..., V]
  target_logits = jnp.take_along_axis(logits, targets[..., None], axis=-1)[
      ..., 0
  ]
  return target_logits - jax.nn.logsumexp(logits, axis=-1)


def chunked_over_time(
    fn: Callable[[jax.Array, jax.Array], jax.Array],
    hidden: jax.Array,
    targets: jax.Array,
    chunk_size: int | None,
) -> jax.Array:
  """``fn(hidden, targets)`` computed a few time steps at a time.

  The softmax of a language model makes ``[T, B, V]`` logits, which for a
  large vocabulary dwarf everything else in a training step (WikiText-103's
  267,735 words at ``T = 100``, ``B = 64``: 6.9 GB in float32, and as much
  again for their gradient). Here the ``T`` steps are cut into chunks of
  ``chunk_size`` (the last one padded), ``fn`` is mapped over the chunks by
  ``hk.scan`` and rematerialised (``hk.remat``): only one chunk's logits
  exist at a time, in the forward pass and in the backward pass, at the cost
  of computing the logits twice. Since ``fn`` treats every position alike
  the result, and its gradient, are those of ``fn(hidden, targets)``.

  Args:
    fn: Maps ``hidden [C, B, E]`` and ``targets [C, B]`` to ``[C, B]``,
      independently at each position. May create Haiku parameters.
    hidden: ``[T, B, E]``.
    targets: ``[T, B]``.
    chunk_size: Time steps per chunk ``C``; None, or ``C >= T``, calls
      ``fn`` on the whole segment.

  Returns:
    ``[T, B]``.
  """
  num_steps = hidden.shape[0]
  if not chunk_size or chunk_size >= num_steps:
    return fn(hidden, targets)
  num_chunks = -(-num_steps // chunk_size)
  pad = num_chunks * chunk_size - num_steps

  def chunks(x):  # [T, B, ...] -> [num_chunks, C, B, ...]
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape((num_chunks, chunk_size) + x.shape[1:])

  def body(carry, chunk):
    return carry, fn(*chunk)  # [C, B]

  _, outputs = hk.scan(hk.remat(body), (), (chunks(hidden), chunks(targets)))
  return outputs.reshape((num_chunks * chunk_size,) + outputs.shape[2:])[
      :num_steps
  ]  # [T, B]
