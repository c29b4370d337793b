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
"""The experiments' models from their configurations, and trained runs.

The three binaries (``experiments/``) build their models here from their
resolved hyperparameters, so that :func:`load_run` builds the same model from
a work directory's ``config.json`` (:mod:`rmc.run_config`) and restores its
trained parameters::

  run = rmc.load_run('/tmp/nth_farthest')  # The newest checkpoint.
  logits = run.model.apply(run.params, inputs)  # The binary's model.
  run.core_params  # The trained core's parameters, for a model of your own.
"""

import dataclasses
import os
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp

from rmc import checkpoint
from rmc import cores
from rmc import models
from rmc import run_config
from rmc.data import learn_to_execute as lte
from rmc.data import nth_farthest
from rmc.data import wikitext

BINARIES = ('nth_farthest', 'learn_to_execute', 'wikitext103')
# The language model's vocabulary, copied into its work directory.
VOCABULARY_FILE = 'vocab.txt'


def core_config(
    hyperparameters: dict[str, Any],
) -> cores.RMC | cores.LSTM | cores.DNC:
  """The ``--core``'s typed hyperparameters, from resolved hyperparameters."""
  config = cores.CORES[hyperparameters['core']].from_flat(hyperparameters)
  assert isinstance(config, cores.RMC | cores.LSTM | cores.DNC), config
  return config


def core_description(hyperparameters: dict[str, Any]) -> dict[str, Any]:
  """The ``core`` entry of config.json: the core's type and arguments."""
  config = core_config(hyperparameters)
  if isinstance(config, cores.RMC):
    dtype = hyperparameters.get('compute_dtype', 'float32')
    return {'type': 'rmc', 'kwargs': config.kwargs(dtype)}
  if isinstance(config, cores.DNC):
    return {'type': 'dnc', 'kwargs': config.kwargs()}
  return {'type': 'lstm', 'hidden_size': config.hidden_size}


def make_core(
    binary: str,
    hyperparameters: dict[str, Any],
    name: str | None = None,
    **rmc_overrides: Any,
) -> hk.RNNCore:
  """The recurrent core a binary builds (inside ``hk.transform``).

  Args:
    binary: One of :data:`BINARIES`.
    hyperparameters: Its resolved hyperparameters.
    name: Module name of an RMC or DNC (by default ``relational_memory`` or
      ``dnc``).
    **rmc_overrides: Further arguments of an RMC (e.g.
      ``return_diagnostics=True``).

  Returns:
    :class:`rmc.RelationalMemory`; or a baseline: :class:`rmc.DNC`, or the
    LSTM, ``hk.LSTM`` or for Learning to Execute two stacked LSTMs with skip
    connections.
  """
  config = core_config(hyperparameters)
  if isinstance(config, cores.DNC):
    return config.make(name)
  if isinstance(config, cores.LSTM):
    return config.make(num_layers=2 if binary == 'learn_to_execute' else 1)
  return config.make(
      name, hyperparameters.get('compute_dtype', 'float32'), **rmc_overrides
  )


def nth_farthest_model(
    hyperparameters: dict[str, Any], return_diagnostics: bool = False
) -> hk.Transformed:
  """The Nth Farthest model.

  Args:
    hyperparameters: Resolved hyperparameters of ``nth_farthest``.
    return_diagnostics: Build the RMC with ``return_diagnostics=True``; the
      parameters are the same.

  Returns:
    ``apply(params, inputs [B, K, F + 3K], return_core_outputs=False)``
    gives the logits ``[B, K]`` (and, with ``return_core_outputs``, the
    core's outputs at every step, batch-major), without an RNG.
  """

  def forward(inputs, return_core_outputs=False):
    overrides = (
        {'return_diagnostics': True}
        if return_diagnostics and hyperparameters['core'] == 'rmc'
        else {}
    )
    core = make_core('nth_farthest', hyperparameters, **overrides)
    return models.SequenceClassifier(core, hyperparameters['num_objects'])(
        inputs, return_core_outputs=return_core_outputs
    )

  return hk.without_apply_rng(hk.transform(forward))


def learn_to_execute_vocabulary(
    hyperparameters: dict[str, Any],
) -> lte.Vocabulary:
  """The token vocabulary of a Learning to Execute configuration."""
  return lte.Vocabulary(
      hyperparameters['token_mode'] == 'char', hyperparameters['max_length']
  )


def learn_to_execute_model(hyperparameters: dict[str, Any]) -> hk.Transformed:
  """The Learning to Execute sequence-to-sequence model.

  Args:
    hyperparameters: Resolved hyperparameters of ``learn_to_execute``.

  Returns:
    ``apply(params, batch)`` gives the logits ``[T_out, B, V]`` of a batch
    (a dict of the fields of :class:`rmc.data.learn_to_execute.Batch`),
    without an RNG.
  """
  vocab_size = len(learn_to_execute_vocabulary(hyperparameters))

  def forward(batch):
    encoder = make_core('learn_to_execute', hyperparameters)
    decoder = (
        make_core('learn_to_execute', hyperparameters, name='decoder')
        if hyperparameters['separate_cores']
        else encoder
    )
    model = models.Seq2Seq(
        encoder,
        decoder,
        vocab_size,
        teacher_forcing=hyperparameters['decoder'] == 'teacher_forcing',
    )
    return model(
        batch['inputs'],
        batch['input_lengths'],
        batch['decoder_inputs'],
        batch['target_lengths'],
    )

  return hk.without_apply_rng(hk.transform(forward))


def language_model_module(
    hyperparameters: dict[str, Any], vocab_size: int
) -> models.LanguageModel:
  """The WikiText language model module (call inside ``hk.transform``).

  Args:
    hyperparameters: Resolved hyperparameters of ``wikitext103``.
    vocab_size: Words ``V``.
  """
  return models.LanguageModel(
      make_core('wikitext103', hyperparameters),
      vocab_size,
      embed_size=hyperparameters['embed_size'],
      dropout_rate=hyperparameters['dropout_rate'],
      softmax=hyperparameters['softmax'],
      cutoffs=[int(c) for c in hyperparameters['adaptive_cutoffs']],
      div_value=hyperparameters['adaptive_div_value'],
      loss_chunk_size=hyperparameters['loss_chunk_size'],
  )


def language_model(
    hyperparameters: dict[str, Any], vocab_size: int
) -> tuple[hk.Transformed, hk.Transformed]:
  """The transformed WikiText language model.

  Args:
    hyperparameters: Resolved hyperparameters of ``wikitext103``.
    vocab_size: Words ``V``.

  Returns:
    ``(model, initial)``: ``model.apply(params, rng, inputs [T, B],
    targets [T, B], state, reset [B] or None, is_training)`` gives
    ``(log_probs [T, B], state)``; ``initial.apply(None, batch_size)`` the
    core's initial state.
  """

  def forward(inputs, targets, state, reset, is_training):
    return language_model_module(hyperparameters, vocab_size)(
        inputs, targets, state, reset, is_training
    )

  def initial_state(batch_size):
    return language_model_module(hyperparameters, vocab_size).initial_state(
        batch_size
    )

  return (
      hk.transform(forward),
      hk.without_apply_rng(hk.transform(initial_state)),
  )


def core_input_size(
    binary: str, hyperparameters: dict[str, Any], vocab_size: int | None = None
) -> int:
  """The size of what the binary's model feeds its core at each step.

  Nth Farthest feeds each object's row (``F + 3K``), Learning to Execute
  one-hot tokens (``V``), the language model word embeddings (``E``).
  """
  if binary == 'nth_farthest':
    return nth_farthest.feature_size(
        hyperparameters['num_objects'], hyperparameters['num_features']
    )
  if binary == 'learn_to_execute':
    return len(learn_to_execute_vocabulary(hyperparameters))
  return hyperparameters['embed_size']


def params_shapes(
    binary: str, hyperparameters: dict[str, Any], vocab_size: int | None = None
) -> hk.Params:
  """The shapes and dtypes of a binary's parameters, without computing them.

  Args:
    binary: One of :data:`BINARIES`.
    hyperparameters: Its resolved hyperparameters.
    vocab_size: The language model's ``V`` (``wikitext103`` only).

  Returns:
    A pytree of ``jax.ShapeDtypeStruct``, like the parameters.
  """
  key = jax.random.key(0)
  if binary == 'nth_farthest':
    model = nth_farthest_model(hyperparameters)
    inputs = jax.ShapeDtypeStruct(
        (
            1,
            hyperparameters['num_objects'],
            core_input_size(binary, hyperparameters),
        ),
        jnp.float32,
    )
    return jax.eval_shape(model.init, key, inputs)
  if binary == 'learn_to_execute':
    steps_in, steps_out = lte.sequence_lengths(
        hyperparameters['task'],
        hyperparameters['max_length'],
        hyperparameters['max_nesting'],
        hyperparameters['token_mode'] == 'char',
    )

    def tokens(steps):
      return jax.ShapeDtypeStruct((steps, 1), jnp.int32)

    lengths = jax.ShapeDtypeStruct((1,), jnp.int32)
    batch = dict(
        inputs=tokens(steps_in),
        targets=tokens(steps_out),
        decoder_inputs=tokens(steps_out),
        input_lengths=lengths,
        target_lengths=lengths,
    )
    return jax.eval_shape(
        learn_to_execute_model(hyperparameters).init, key, batch
    )
  if binary == 'wikitext103':
    if vocab_size is None:
      raise ValueError('A language model needs its vocab_size.')
    model, initial = language_model(hyperparameters, vocab_size)
    state = jax.eval_shape(lambda: initial.apply(None, 1))
    words = jax.ShapeDtypeStruct(
        (hyperparameters['unroll_length'], 1), jnp.int32
    )
    return jax.eval_shape(
        lambda k, x, s: model.init(k, x, x, s, None, False), key, words, state
    )
  raise ValueError(
      f'Unknown binary {binary!r}; expected one of {list(BINARIES)}.'
  )


def core_unroll(binary: str, hyperparameters: dict[str, Any]) -> hk.Transformed:
  """A binary's core alone: ``apply(params, inputs [T, B, D_in])``.

  Unrolls the core (made by :func:`make_core` at the top of the transform)
  over time-major inputs from its initial state and gives ``(outputs [T, B,
  D_out], final_state)``; no RNG.
  """

  def unroll(inputs):  # [T, B, D_in]
    core = make_core(binary, hyperparameters)
    return models.unroll(core, inputs, core.initial_state(inputs.shape[1]))

  return hk.without_apply_rng(hk.transform(unroll))


def core_params_shapes(
    binary: str, hyperparameters: dict[str, Any], vocab_size: int | None = None
) -> hk.Params:
  """The shapes and dtypes of one recurrent core's parameters.

  The core is made as :func:`make_core` makes it at the top of a transform,
  so its parameters are named as in the binary's model (for Learning to
  Execute, the encoder's).

  Args:
    binary: One of :data:`BINARIES`.
    hyperparameters: Its resolved hyperparameters.
    vocab_size: The language model's ``V`` (``wikitext103`` only).

  Returns:
    A pytree of ``jax.ShapeDtypeStruct``.
  """
  input_size = core_input_size(binary, hyperparameters, vocab_size)
  return jax.eval_shape(
      core_unroll(binary, hyperparameters).init,
      jax.random.key(0),
      jax.ShapeDtypeStruct((1, 1, input_size), jnp.float32),
  )


def parameter_counts(
    binary: str, hyperparameters: dict[str, Any], vocab_size: int | None = None
) -> dict[str, int]:
  """How many parameters the recurrent cores and the whole model have.

  Counted from the shapes alone (nothing is initialised).

  Args:
    binary: One of :data:`BINARIES`.
    hyperparameters: Its resolved hyperparameters.
    vocab_size: The language model's ``V`` (``wikitext103`` only).

  Returns:
    ``{'core': C, 'model': M}``: ``C`` the recurrent cores' parameters (for
    Learning to Execute with ``separate_cores``, the encoder's and the
    decoder's together), ``M`` every parameter of the model, the cores
    included.
  """
  core = hk.data_structures.tree_size(
      core_params_shapes(binary, hyperparameters, vocab_size)
  )
  if binary == 'learn_to_execute' and hyperparameters['separate_cores']:
    core *= 2  # The decoder is a second core of the encoder's arguments.
  model = hk.data_structures.tree_size(
      params_shapes(binary, hyperparameters, vocab_size)
  )
  return {'core': core, 'model': model}


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained run of one of the experiment binaries.

  Attributes:
    workdir: Its work directory.
    config: Its ``config.json`` (see :mod:`rmc.run_config`).
    step: The step of the checkpoint the parameters are from.
    params: The whole model's parameters.
    model: The binary's model, ``hk.transform``-ed: for ``nth_farthest``
      ``apply(params, inputs [B, K, F + 3K])`` gives logits ``[B, K]``; for
      ``learn_to_execute`` ``apply(params, batch)`` gives logits
      ``[T_out, B, V]``; for ``wikitext103`` ``apply(params, rng,
      inputs [T, B], targets [T, B], state, reset, is_training)`` gives
      ``(log_probs [T, B], state)`` (see :func:`language_model`).
    core_params: The core's part of ``params``, named as a core made by
      :meth:`make_core` at the top of a transform (Learning to Execute's
      encoder, which is also its decoder unless ``separate_cores``).
    core_input_size: The size of the core's input at each step.
    vocabulary: The binary's vocabulary
      (:class:`rmc.data.learn_to_execute.Vocabulary` or
      :class:`rmc.data.wikitext.Vocabulary`), None for Nth Farthest.
    initial_state: The language model's ``initial_state`` transform
      (``apply(None, batch_size)``); None for the other binaries.
  """

  workdir: str
  config: dict[str, Any]
  step: int
  params: hk.Params
  model: hk.Transformed
  core_params: hk.Params
  core_input_size: int
  vocabulary: Any = None
  initial_state: hk.Transformed | None = None

  @property
  def binary(self) -> str:
    """The binary that trained the run."""
    return self.config['binary']

  @property
  def hyperparameters(self) -> dict[str, Any]:
    """The run's resolved hyperparameters."""
    return self.config['hyperparameters']

  def make_core(self, **rmc_overrides: Any) -> hk.RNNCore:
    """A core with the trained core's arguments (inside ``hk.transform``).

    Made at the top of a transform, its parameters are named as
    :attr:`core_params`, so ``hk.data_structures.merge(params,
    run.core_params)`` puts the trained values in.

    Args:
      **rmc_overrides: Further arguments of an RMC core, e.g.
        ``return_diagnostics=True``.
    """
    return make_core(self.binary, self.hyperparameters, **rmc_overrides)

  @property
  def core(self) -> hk.Transformed:
    """The core alone: ``apply(core_params, inputs [T, B, D_in])``.

    Unrolls the core over time-major inputs from its initial state and
    gives ``(outputs [T, B, D_out], final_state)``; no RNG.
    """
    return core_unroll(self.binary, self.hyperparameters)


def restore_params(
    workdir: str, template: hk.Params, step: int | None = None
) -> tuple[int, hk.Params]:
  """The parameters held by a checkpoint of a run's training state.

  Args:
    workdir: The run's work directory.
    template: The parameters' structure, shapes and dtypes (arrays or
      ``jax.ShapeDtypeStruct``s, e.g. from :func:`params_shapes`).
    step: The checkpoint's step; None means the newest.

  Returns:
    ``(step, params)``, NumPy arrays.

  Raises:
    checkpoint.CheckpointError: If there is no such checkpoint, or it does
      not hold parameters of this structure.
  """
  newest = step is None
  for _ in range(3):
    steps = checkpoint.list_steps(workdir)
    if not steps:
      raise checkpoint.CheckpointError(
          f'No checkpoint in {workdir}: train first (--mode=train), or pass '
          'the work directory of a trained run.'
      )
    if newest:
      step = steps[-1]
    elif step not in steps:
      raise checkpoint.CheckpointError(
          f'No checkpoint of step {step} in {workdir}; it holds steps {steps}.'
      )
    path = checkpoint.path_for_step(workdir, step)
    try:
      # Checkpoints hold (TrainState, data state); the parameters are at
      # [0].params (see rmc.training.train).
      return step, checkpoint.restore(path, template, prefix='[0].params')
    except checkpoint.CorruptCheckpointError:
      # A training beside us may have deleted the newest of a moment ago
      # (keep-last-k) between the listing and the read: list again.
      if not newest or os.path.exists(path):
        raise
  raise checkpoint.CheckpointError(
      f'The checkpoints in {workdir} changed under three reads in a row.'
  )


def load_run(workdir: str, step: int | None = None) -> Run:
  """Loads a trained run of an experiment binary from its work directory.

  Args:
    workdir: A work directory the binary trained in: it holds config.json
      and checkpoints (and, for the language model, vocab.txt).
    step: The checkpoint to load; None means the newest.

  Returns:
    The :class:`Run`: configuration, parameters and models.

  Raises:
    rmc.run_config.ConfigError: If config.json is missing or unreadable.
    rmc.checkpoint.CheckpointError: If there is no such checkpoint, or it
      does not match the configuration's model.
    rmc.data.wikitext.DataError: If a language model's vocab.txt is missing
      or unreadable.
  """
  config = run_config.read(workdir)
  binary = config.get('binary')
  if binary not in BINARIES:
    raise run_config.ConfigError(
        f'{run_config.path(workdir)} names the binary {binary!r}; expected '
        f'one of {list(BINARIES)}.'
    )
  hyperparameters = config['hyperparameters']
  vocabulary: lte.Vocabulary | wikitext.Vocabulary | None = None
  initial = None
  vocab_size = None
  if binary == 'nth_farthest':
    model = nth_farthest_model(hyperparameters)
  elif binary == 'learn_to_execute':
    model = learn_to_execute_model(hyperparameters)
    vocabulary = learn_to_execute_vocabulary(hyperparameters)
  else:
    words = load_vocabulary(workdir)
    vocabulary, vocab_size = words, len(words)
    model, initial = language_model(hyperparameters, vocab_size)
  template = params_shapes(binary, hyperparameters, vocab_size)
  step, params = restore_params(workdir, template, step)
  input_size = core_input_size(binary, hyperparameters, vocab_size)
  run = Run(
      workdir=workdir,
      config=config,
      step=step,
      params=params,
      model=model,
      core_params={},
      core_input_size=input_size,
      vocabulary=vocabulary,
      initial_state=initial,
  )
  core_shapes = core_params_shapes(binary, hyperparameters, vocab_size)
  core_params = {name: params[name] for name in core_shapes if name in params}
  if jax.tree.map(lambda x: (x.shape, x.dtype), core_shapes) != jax.tree.map(
      lambda x: (x.shape, x.dtype), core_params
  ):
    raise checkpoint.CheckpointError(
        f'The core parameters in {workdir} do not match its configuration.'
    )
  return dataclasses.replace(run, core_params=core_params)


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
