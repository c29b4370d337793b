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
r"""WikiText-103 word-level language modelling (Santoro et al., 2018, 4.3).

Usage (from the repository root):

  python -m experiments.wikitext103 --preset=paper \
      --data_dir=/data/wikitext-103 --workdir=/tmp/wt103
  # Small scale on WikiText-2's validation and test text (data/): train on
  # valid, test on test.
  python -m experiments.wikitext103 \
      --data_dir=data/wikitext-2-subset \
      --vocab_split=valid --train_split=valid --valid_split=test \
      --cache_dir=/tmp/wt2_cache --workdir=/tmp/wt2
  # A trained run (its configuration from <workdir>/config.json):
  python -m experiments.wikitext103 --mode=evaluate --workdir=/tmp/wt2
  python -m experiments.wikitext103 --mode=sample --workdir=/tmp/wt2 \
      --prompt='The game was' --num_words=50 --temperature=0.8 --top_k=40

``--data_dir`` holds ``wiki.{train,valid,test}.tokens`` (or
``{train,valid,test}.txt``); the first run encodes them into a cache
(``<data_dir>/rmc_cache`` or ``--cache_dir``) that later runs reuse.

Presets (explicit flags override them):

* ``paper``: Adam 1e-3, gradient clipping at global norm 0.1, BPTT 100,
  batch 64, embedding 512 with dropout 0.5 tied to the softmax, and an RMC
  with 1 memory of 2500 units (4 heads of 625), a 5-layer attention MLP and 1
  block. The paper does not give the gate style (we use Sonnet's default,
  ``unit``), the training length (we give 250K steps) or how the core output
  reaches the 512-wide softmax (we use a linear projection). The softmax
  loss is computed 10 time steps at a time (``--loss_chunk_size``), which
  changes no result and halves the step's memory.
* ``cpu`` (the default): a small RMC for 2 CPU cores (see docs/wikitext103.md).
* ``smoke``: tiny, for tests.

Training carries the core state across segments (truncated BPTT). Every
``--eval_every`` steps the validation split is scored, and at the end the
test split: every token exactly once, with the state carried through each of
``--eval_batch_size`` columns (1 carries it through the whole split, as the
paper does). ``eval_perplexity`` is ``exp`` of the mean negative
log-likelihood over ``eval_tokens`` targets.
"""

from experiments import startup

if __name__ == '__main__':
  startup.start()  # Before the heavy imports: see experiments/startup.py.

import functools
import os
from typing import Any

from absl import app
from absl import flags
from absl import logging
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli
from experiments import devices
from experiments import launch
from experiments import trained_runs
from rmc.data import wikitext
from rmc.tasks import language_model as lm_task
from rmc.tasks import runs
from rmc.toolkit import parallel as rmc_parallel
from rmc.toolkit import training

_DATA_DIR = flags.DEFINE_string(
    'data_dir',
    None,
    'Directory with wiki.{train,valid,test}.tokens or '
    '{train,valid,test}.txt.',
)
_CACHE_DIR = flags.DEFINE_string(
    'cache_dir',
    None,
    'Where the encoded splits and vocab.txt are cached; '
    'default <data_dir>/rmc_cache.',
)
_VOCAB_SPLIT = flags.DEFINE_string(
    'vocab_split', 'train', 'Split the vocabulary is built from.'
)
_TRAIN_SPLIT = flags.DEFINE_string('train_split', 'train', 'Split trained on.')
_VALID_SPLIT = flags.DEFINE_string(
    'valid_split', 'valid', 'Split scored every --eval_every steps.'
)
_TEST_SPLIT = flags.DEFINE_string(
    'test_split', 'test', 'Split scored at the end.'
)

_SPLIT = flags.DEFINE_string(
    'split', 'test', 'With --mode=evaluate: the split to score.'
)
_PROMPT = flags.DEFINE_string(
    'prompt',
    '',
    'With --mode=sample: the text to continue (words split on '
    'spaces, as in WikiText; words not in the vocabulary become <unk>). The '
    'model first reads <eos>, as at the start of a line.',
)
_NUM_WORDS = flags.DEFINE_integer(
    'num_words', 50, 'With --mode=sample: words to draw.', lower_bound=1
)
_TEMPERATURE = flags.DEFINE_float(
    'temperature',
    1.0,
    'With --mode=sample: divides the log-probabilities '
    'before drawing; 0 takes the most likely word (greedy).',
    lower_bound=0.0,
)
_TOP_K = flags.DEFINE_integer(
    'top_k',
    0,
    'With --mode=sample: draw only from the k most likely words; 0 for all.',
    lower_bound=0,
)
cli.finite_floats('temperature')

TASK = lm_task.TASK
PRESETS = TASK.presets
Config = lm_task.Config


def _model(
    config: Config, vocab_size: int
) -> tuple[hk.Transformed, hk.Transformed]:
  """``(model, initial_state)`` transforms of the language model."""
  return TASK.model(config, vocab_size), TASK.initial_state(config, vocab_size)


def make_split_evaluator(
    config: Config,
    corpus: wikitext.Corpus,
    split: str,
    parallel: rmc_parallel.DataParallel | None = None,
):
  """``evaluate(params) -> {loss, perplexity, tokens}`` of one split.

  Every token is scored once, with the state carried through each of
  ``eval_batch_size`` columns
  (:func:`rmc.toolkit.training.make_stream_evaluator`).
  """
  model, initial = _model(config, len(corpus.vocabulary))

  def eval_apply(params, inputs, targets, state):
    return model.apply(params, None, inputs, targets, state, None, False)

  segments = wikitext.eval_segments(
      corpus.splits[split],
      config.task.eval_batch_size,
      config.task.unroll_length,
      corpus.vocabulary.id(wikitext.EOS),
  )
  return training.make_stream_evaluator(
      eval_apply,
      initial.apply(None, config.task.eval_batch_size),
      segments,
      parallel,
  )


def run(
    config: Config,
    workdir: str,
    seed: int,
    parallel: rmc_parallel.DataParallel | None = None,
    *,
    corpus: wikitext.Corpus,
    splits: dict[str, str],
) -> dict[str, Any]:
  """Trains, validates and finally tests one language model.

  Args:
    config: The run's configuration.
    workdir: Checkpoint and metrics directory (resumed from if non-empty).
    seed: Seed for initialisation and dropout.
    parallel: The data-parallel mesh; by default all devices. The training
      columns and the recurrent state are split over it; the evaluation
      columns too when ``eval_batch_size`` divides evenly.
    corpus: The encoded corpus.
    splits: ``{'train': name, 'valid': name, 'test': name}``.

  Returns:
    The summary of :func:`rmc.toolkit.training.train`; its ``test`` record holds
    the test split's ``test_loss``, ``test_perplexity`` and ``test_tokens``.
  """
  vocabulary = corpus.vocabulary
  model, initial = _model(config, len(vocabulary))
  parallel = parallel or rmc_parallel.DataParallel()
  batch_size, unroll = config.optimizer.batch_size, config.task.unroll_length
  try:
    stream = wikitext.TrainStream(
        corpus.splits[splits['train']],
        batch_size,
        unroll,
        columns=parallel.process_rows(batch_size),
    )
  except wikitext.DataError as e:
    raise wikitext.DataError(
        f'The training split --train_split={splits["train"]}: {e}'
    ) from e
  init_key, train_key = jax.random.split(jax.random.key(seed))
  initial_carry = initial.apply(None, batch_size)
  example = jnp.zeros([unroll, batch_size], jnp.int32)  # [T, B]
  params = jax.jit(functools.partial(model.init, is_training=False))(
      init_key, example, example, initial_carry, None
  )
  logging.info(
      'Vocabulary: %d words; %d training segments per epoch.',
      len(vocabulary),
      stream.segments_per_epoch,
  )
  if parallel.is_primary:  # The run's own copy, for sampling and load_run.
    vocabulary.save(os.path.join(workdir, lm_task.VOCABULARY_FILE))

  optimizer, schedule = config.optimizer.make()
  return launch.train(
      config,
      workdir,
      parallel,
      state=training.init_state(
          params, optimizer, train_key, carry=initial_carry
      ),
      train_chunk=training.make_train_chunk(
          lm_task.make_loss_fn(model),
          optimizer,
          schedule,
          with_carry=True,
          parallel=parallel,
          batch_axes=lm_task.BATCH_AXES,
      ),
      evaluate=make_split_evaluator(config, corpus, splits['valid'], parallel),
      data=devices.training_data(stream, parallel, lm_task.BATCH_AXES),
      final_evaluate=make_split_evaluator(
          config, corpus, splits['test'], parallel
      ),
      tokens_per_step=stream.tokens_per_step,
  )


def _load_corpus(
    data_dir: str, splits: list[str], vocab_split: str, cache_dir: str | None
) -> wikitext.Corpus:
  try:
    return wikitext.load(
        data_dir,
        splits=sorted(set(splits)),
        vocab_split=vocab_split,
        cache_dir=cache_dir,
    )
  except wikitext.DataError as e:
    raise app.UsageError(str(e)) from e


def evaluate_main() -> None:
  """``--mode=evaluate``: a split, scored by a checkpoint of the run.

  The corpus is the run's (``data_dir`` and ``cache_dir`` from config.json,
  unless given), checked against its vocabulary and SHA-256 sums.
  """
  run, config = trained_runs.trained_run(
      TASK, may_override=('eval_batch_size',)
  )
  data = run.data
  data_dir = _DATA_DIR.value or data['data_dir']
  cache_dir = _CACHE_DIR.value or (
      None if _DATA_DIR.value else data['cache_dir']
  )
  split = _SPLIT.value
  corpus = _load_corpus(data_dir, [split], data['vocab_split'], cache_dir)
  if corpus.vocabulary.words != run.vocabulary.words:
    raise app.UsageError(
        f'The corpus in {data_dir} is not the one the run in {run.workdir} '
        f'was trained on: its vocabulary ({len(corpus.vocabulary)} words from '
        f'{data["vocab_split"]}) differs from the run\'s '
        f'{lm_task.VOCABULARY_FILE} ({len(run.vocabulary)} words). Pass the '
        "run's --data_dir."
    )
  saved = data.get('sources', {}).get(split)
  if saved is not None and saved['sha256'] != corpus.sources[split]['sha256']:
    raise app.UsageError(
        f'The {split} split in {data_dir} differs from the one the run was '
        f'trained with (SHA-256 {corpus.sources[split]["sha256"][:12]}..., '
        f'not {saved["sha256"][:12]}...).'
    )
  parallel = devices.data_parallel(('batch_size', config.optimizer.batch_size))
  figures = make_split_evaluator(config, corpus, split, parallel)(run.params)
  record = trained_runs.append_evaluation(
      run,
      figures,
      eval_split=split,
      eval_batch_size=config.task.eval_batch_size,
  )
  print(
      f'{split} perplexity {record["eval_perplexity"]:.2f} (loss '
      f'{record["eval_loss"]:.4f} nats) over {record["eval_tokens"]} '
      f'tokens, {config.task.eval_batch_size} columns, at step {run.step}.'
  )


def prompt_ids(
    vocabulary: wikitext.Vocabulary, prompt: str
) -> tuple[np.ndarray, list[str]]:
  """``(ids [P], unknown words)`` of ``<eos>`` and the prompt's words."""
  words = prompt.split()
  unknown = [w for w in words if w not in vocabulary.index]
  ids = [vocabulary.id(wikitext.EOS)] + [
      vocabulary.index.get(w, vocabulary.index.get(wikitext.UNK, 0))
      for w in words
  ]
  return np.asarray(ids, np.int32), unknown


def sample(
    run: runs.Run,
    prompt: str,
    num_words: int,
    temperature: float,
    top_k: int,
    seed: int,
) -> tuple[list[str], list[str]]:
  """Words drawn from a trained language model after ``prompt``.

  Args:
    run: A trained ``wikitext103`` run.
    prompt: The text to continue.
    num_words: Words to draw.
    temperature: As :meth:`rmc.models.LanguageModel.sample`; 0 is greedy.
    top_k: As :meth:`rmc.models.LanguageModel.sample`; 0 for all words.
    seed: Seed of the draws.

  Returns:
    ``(words, unknown)``: the words drawn, and the prompt's words that are
    not in the vocabulary (read as ``<unk>``).
  """
  vocabulary = run.vocabulary
  ids, unknown = prompt_ids(vocabulary, prompt)

  def draw(prompt, rng):  # prompt [P, 1] -> words [W, 1]
    module = TASK.module(run.hyperparameters, len(vocabulary))
    return module.sample(
        prompt, module.initial_state(1), num_words, rng, temperature, top_k
    )[0]

  words = jax.jit(hk.transform(draw).apply)(
      run.params, None, jnp.asarray(ids)[:, None], jax.random.key(seed)
  )
  return [vocabulary.words[i] for i in np.asarray(words)[:, 0]], unknown


def sample_main() -> None:
  """``--mode=sample``: continues ``--prompt``."""
  run, _ = trained_runs.trained_run(TASK)
  try:
    words, unknown = sample(
        run,
        _PROMPT.value,
        _NUM_WORDS.value,
        _TEMPERATURE.value,
        _TOP_K.value,
        launch.SEED.value,
    )
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  if unknown:
    print(
        f'Not in the vocabulary, read as {wikitext.UNK}: '
        f'{" ".join(unknown)}'
    )
  print(
      f'Step {run.step} of {run.workdir}: {len(words)} words after the '
      f'prompt, temperature {_TEMPERATURE.value}, top_k {_TOP_K.value}, '
      f'seed {launch.SEED.value}.'
  )
  text = (
      ' '.join(words)
      .replace(f' {wikitext.EOS} ', '\n')
      .replace(wikitext.EOS, '\n')
  )  # Line ends as in the corpus.
  prompt = ' '.join(_PROMPT.value.split())
  print(f'{prompt} >>> {text}' if prompt else text)


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if trained_runs.run_other_mode(
      TASK, {'evaluate': evaluate_main, 'sample': sample_main}
  ):
    return
  if not _DATA_DIR.value:
    raise app.UsageError('--data_dir is required.')
  config = launch.resolve(TASK)
  parallel = devices.data_parallel(('batch_size', config.optimizer.batch_size))
  launch.workdir(writable=parallel.is_primary)  # Before the corpus loads.
  splits = {
      'train': _TRAIN_SPLIT.value,
      'valid': _VALID_SPLIT.value,
      'test': _TEST_SPLIT.value,
  }
  corpus = _load_corpus(
      _DATA_DIR.value,
      list(splits.values()),
      _VOCAB_SPLIT.value,
      _CACHE_DIR.value,
  )
  cutoffs = list(config.task.adaptive_cutoffs)
  if cutoffs and cutoffs[-1] >= len(corpus.vocabulary):
    raise app.UsageError(
        f'--adaptive_cutoffs={cutoffs} must be below the vocabulary size '
        f'{len(corpus.vocabulary)}.'
    )
  evaluation = launch.run_and_report(
      TASK,
      functools.partial(run, corpus=corpus, splits=splits),
      config,
      parallel,
      data={
          'data_dir': os.path.abspath(_DATA_DIR.value),
          'cache_dir': os.path.abspath(corpus.cache_dir),
          'vocab_split': _VOCAB_SPLIT.value,
          'splits': splits,
          **corpus.fingerprint(),
      },
      vocab_size=len(corpus.vocabulary),
  )
  if evaluation is None:
    return
  print(
      f'Validation ({splits["valid"]}) perplexity '
      f'{evaluation["eval_perplexity"]:.2f} over '
      f'{evaluation["eval_tokens"]} tokens; test ({splits["test"]}) '
      f'perplexity {evaluation["test_perplexity"]:.2f} over '
      f'{evaluation["test_tokens"]} tokens, at step '
      f'{evaluation["step"]}, stopped by {evaluation["stopped_by"]}.'
  )


if __name__ == '__main__':
  cli.run(main)
