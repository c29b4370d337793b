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
"""Tests for rmc.adaptive_softmax."""

from absl.testing import absltest
from absl.testing import parameterized
import haiku as hk
import jax
from jax.test_util import check_grads
import jax.numpy as jnp
import numpy as np
from rmc import adaptive_softmax

jax.config.update('jax_numpy_rank_promotion', 'raise')

_VOCAB = 50
_WIDTH = 16


def _transform(cutoffs, div_value=2.0):
  def both(inputs, targets):
    module = adaptive_softmax.AdaptiveSoftmax(_VOCAB, cutoffs, div_value)
    return module(inputs, targets), module.full_log_probs(inputs)
  return hk.without_apply_rng(hk.transform(both))


def _data(seed=0, shape=(3, 5)):
  rng = np.random.default_rng(seed)
  inputs = jnp.asarray(rng.normal(size=shape + (_WIDTH,)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, _VOCAB, size=shape), jnp.int32)
  return inputs, targets


class AdaptiveSoftmaxTest(parameterized.TestCase):

  @parameterized.parameters(((10,),), ((10, 30),), ((5, 20, 40, 49),))
  def test_normalised_and_equal_to_a_gather(self, cutoffs):
    model = _transform(cutoffs)
    inputs, targets = _data()
    # Every word of every cluster is a target somewhere.
    targets = targets.at[0].set(jnp.arange(5) * 10 % _VOCAB)
    targets = targets.at[1].set(jnp.arange(5) * 10 % _VOCAB + 9)
    params = jax.jit(model.init)(jax.random.key(0), inputs, targets)
    log_probs, full = jax.jit(model.apply)(params, inputs, targets)
    self.assertEqual(full.shape, (3, 5, _VOCAB))
    np.testing.assert_allclose(jax.nn.logsumexp(full, axis=-1), 0.0,
                               atol=1e-5)
    np.testing.assert_allclose(
        log_probs, jnp.take_along_axis(full, targets[..., None], -1)[..., 0],
        rtol=1e-6, atol=1e-6)
    # The tail projections narrow by div_value per cluster.
    for i in range(len(cutoffs)):
      width = params[f'adaptive_softmax/tail_{i}_projection']['w'].shape
      self.assertEqual(width, (_WIDTH, max(1, _WIDTH // 2 ** (i + 1))))

  def test_without_cutoffs_it_is_a_plain_softmax(self):
    model = _transform(())
    inputs, targets = _data(1)
    params = jax.jit(model.init)(jax.random.key(1), inputs, targets)
    self.assertEqual(list(params), ['adaptive_softmax/head'])
    head = params['adaptive_softmax/head']
    expected = jax.nn.log_softmax(inputs @ head['w'] + head['b'][None, None],
                                  axis=-1)
    log_probs, full = jax.jit(model.apply)(params, inputs, targets)
    np.testing.assert_allclose(full, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        log_probs,
        jnp.take_along_axis(expected, targets[..., None], -1)[..., 0],
        rtol=1e-6, atol=1e-6)

  def test_gradients(self):
    model = _transform((10, 30))
    inputs, targets = _data(2, shape=(4,))
    params = model.init(jax.random.key(2), inputs, targets)
    to_float64 = lambda t: jax.tree.map(lambda x: np.asarray(x, np.float64), t)
    with jax.enable_x64():
      def loss(params, inputs):
        return jnp.sum(model.apply(params, inputs, targets)[0])
      check_grads(loss, (to_float64(params), to_float64(inputs)), order=1,
                  modes=('rev',), atol=1e-4, rtol=1e-4)

  @parameterized.parameters(((0,),), ((50,),), ((20, 10),), ((10, 10),))
  def test_bad_cutoffs(self, cutoffs):
    with self.assertRaisesRegex(ValueError, 'strictly increasing'):
      _transform(cutoffs).init(jax.random.key(0), *_data())

  def test_bad_div_value(self):
    with self.assertRaisesRegex(ValueError, 'div_value must be >= 1'):
      _transform((10,), div_value=0.5).init(jax.random.key(0), *_data())


if __name__ == '__main__':
  absltest.main()
