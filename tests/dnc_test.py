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
"""Tests for rmc/dnc.py: the reference's access_test.py re-expressed, a NumPy
re-computation of a 3-step unroll, invariants and Haiku integration."""

from absl.testing import absltest
from absl.testing import parameterized
import haiku as hk
import jax
import jax.test_util  # pylint: disable=unused-import
import jax.numpy as jnp
import numpy as np
import pytest
from rmc import dnc

jax.config.update('jax_numpy_rank_promotion', 'raise')

_ACCESS = dict(memory_size=6, word_size=4, num_reads=2, num_writes=2)
_CONTROLLER = dict(hidden_size=8)


def _core(**overrides):
  kwargs = dict(access_config=_ACCESS, controller_config=_CONTROLLER,
                output_size=3, clip_value=20.0)
  kwargs.update(overrides)
  return dnc.DNC(**kwargs)


def _unroll_model(time_major=True, **overrides):
  def unroll(inputs):
    core = _core(**overrides)
    batch = inputs.shape[1] if time_major else inputs.shape[0]
    return hk.dynamic_unroll(core, inputs, core.initial_state(batch),
                             time_major=time_major)
  return hk.without_apply_rng(hk.transform(unroll))


# NumPy, float64: the reference's equations, written out independently.


def _softplus(x):
  return np.logaddexp(0, x)


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _linear(params, name, x):
  return x @ params[name]['w'] + params[name]['b']


_STRENGTH_OPS = {'softplus': _softplus,
                 'oneplus': lambda x: 1 + _softplus(x)}


def _cosine(memory, keys, strengths, activation):
  eps = 1e-6
  norm_m = np.sqrt((memory ** 2).sum(-1) + eps)  # [B, N]
  norm_k = np.sqrt((keys ** 2).sum(-1) + eps)  # [B, K]
  dot = np.einsum('bkw,bnw->bkn', keys, memory)
  similarity = dot / (norm_k[:, :, None] * norm_m[:, None, :] + eps)
  return _softmax(similarity * _STRENGTH_OPS[activation](strengths)[..., None])


def _allocation(usage):
  """As the reference: sort the non-usage descending (ties: lower slot
  first), and take the sorted usage as one minus it."""
  eps = 1e-6
  nonusage = 1 - (eps + (1 - eps) * usage)
  result = np.zeros_like(usage)
  for b in range(usage.shape[0]):
    product = 1.0
    for slot in np.argsort(-nonusage[b], kind='stable'):
      result[b, slot] = nonusage[b, slot] * product
      product *= 1 - nonusage[b, slot]
  return result


def _numpy_access(params, prefix, inputs, state, r, h, n, w, activation):
  """One step of the access module; state is a dict of NumPy arrays."""
  def lin(name, *shape):
    return _linear(params, f'{prefix}/{name}', inputs).reshape(
        (inputs.shape[0],) + shape)
  write_vectors = lin('write_vectors', h, w)
  erase_vectors = _sigmoid(lin('erase_vectors', h, w))
  free_gate = _sigmoid(lin('free_gate', r))
  allocation_gate = _sigmoid(lin('allocation_gate', h))
  write_gate = _sigmoid(lin('write_gate', h))
  read_mode = _softmax(lin('read_mode', r, 1 + 2 * h))
  write_keys, write_strengths = lin('write_keys', h, w), lin(
      'write_strengths', h)
  read_keys, read_strengths = lin('read_keys', r, w), lin('read_strengths', r)

  usage = state['usage'] + (1 - state['usage']) * (
      1 - np.prod(1 - state['write_weights'], axis=1))
  usage = usage * np.prod(1 - free_gate[..., None] * state['read_weights'], 1)
  content = _cosine(state['memory'], write_keys, write_strengths, activation)
  allocation = []
  simulated = usage.copy()
  for head in range(h):
    allocation.append(_allocation(simulated))
    simulated = simulated + (1 - simulated) * (
        allocation_gate[:, head:head + 1] * write_gate[:, head:head + 1]
        * allocation[-1])
  allocation = np.stack(allocation, 1)
  write_weights = write_gate[..., None] * (
      allocation_gate[..., None] * allocation
      + (1 - allocation_gate[..., None]) * content)
  memory = state['memory'].copy()
  for b in range(memory.shape[0]):
    erase = np.ones([n, w])
    for head in range(h):
      erase *= 1 - np.outer(write_weights[b, head], erase_vectors[b, head])
    memory[b] = memory[b] * erase + write_weights[b].T @ write_vectors[b]
  link = np.zeros_like(state['link'])
  for b in range(link.shape[0]):
    for head in range(h):
      ww, p = write_weights[b, head], state['precedence'][b, head]
      for i in range(n):
        for j in range(n):
          if i != j:
            link[b, head, i, j] = ((1 - ww[i] - ww[j])
                                   * state['link'][b, head, i, j]
                                   + ww[i] * p[j])
  precedence = ((1 - write_weights.sum(-1, keepdims=True)) * state['precedence']
                + write_weights)
  content = _cosine(memory, read_keys, read_strengths, activation)
  read_weights = np.zeros_like(state['read_weights'])
  for b in range(read_weights.shape[0]):
    for head in range(r):
      previous = state['read_weights'][b, head]
      weights = read_mode[b, head, 2 * h] * content[b, head]
      for k in range(h):
        weights = weights + read_mode[b, head, h + k] * (link[b, k] @ previous)
        weights = weights + read_mode[b, head, k] * (link[b, k].T @ previous)
      read_weights[b, head] = weights
  read_words = np.einsum('brn,bnw->brw', read_weights, memory)
  return read_words, dict(memory=memory, read_weights=read_weights,
                          write_weights=write_weights, link=link,
                          precedence=precedence, usage=usage)


def _numpy_dnc(params, inputs, clip, activation):
  """A time-major unroll ``[T, B, D]`` of the DNC of ``_core``, in NumPy."""
  _, batch, _ = inputs.shape
  r, h = _ACCESS['num_reads'], _ACCESS['num_writes']
  n, w = _ACCESS['memory_size'], _ACCESS['word_size']
  hidden = _CONTROLLER['hidden_size']
  state = dict(memory=np.zeros([batch, n, w]),
               read_weights=np.zeros([batch, r, n]),
               write_weights=np.zeros([batch, h, n]),
               link=np.zeros([batch, h, n, n]),
               precedence=np.zeros([batch, h, n]), usage=np.zeros([batch, n]))
  reads = np.zeros([batch, r * w])
  lstm_h, lstm_c = np.zeros([batch, hidden]), np.zeros([batch, hidden])
  outputs = []
  for x in inputs:
    gates = _linear(params, 'dnc/~/lstm/linear',
                    np.concatenate([x, reads, lstm_h], -1))
    i, g, f, o = np.split(gates, 4, axis=-1)  # Haiku's LSTM gate order.
    lstm_c = _sigmoid(f + 1) * lstm_c + _sigmoid(i) * np.tanh(g)
    lstm_h = _sigmoid(o) * np.tanh(lstm_c)
    lstm_h, lstm_c = (np.clip(lstm_h, -clip, clip),
                      np.clip(lstm_c, -clip, clip))
    read_words, state = _numpy_access(params, 'dnc/~/memory_access', lstm_h,
                                      state, r, h, n, w, activation)
    reads = read_words.reshape(batch, -1)
    outputs.append(np.clip(_linear(params, 'dnc/output_linear',
                                   np.concatenate([lstm_h, reads], -1)),
                           -clip, clip))
  return np.stack(outputs), state


class EraseAndWriteTest(absltest.TestCase):

  def test_gradient_against_numpy_and_check_grads(self):
    # The hand-written VJP of erase_and_write, with two write heads.
    rng = np.random.RandomState(0)
    memory = rng.randn(2, 5, 3)
    writes = rng.rand(2, 2, 5) / 5
    erase = rng.rand(2, 2, 3)
    vectors = rng.randn(2, 2, 3)
    d_result = rng.randn(2, 5, 3)
    args = (memory, writes, erase, vectors)
    with jax.enable_x64():
      _, vjp = jax.vjp(dnc.erase_and_write, *args)
      got = [np.asarray(g) for g in vjp(d_result)]
      jax.test_util.check_grads(dnc.erase_and_write, args, order=2,
                                modes=['rev'])
    # Element by element: result[b, n, w] = memory[b, n, w] * keep[0] *
    # keep[1] + sum_h writes[b, h, n] * vectors[b, h, w], with
    # keep[h] = 1 - writes[b, h, n] * erase[b, h, w].
    want = [np.zeros_like(a) for a in args]
    for b in range(2):
      for n in range(5):
        for w in range(3):
          g = d_result[b, n, w]
          keep = [1 - writes[b, h, n] * erase[b, h, w] for h in range(2)]
          want[0][b, n, w] = g * keep[0] * keep[1]
          for h in range(2):
            other = keep[1 - h]
            want[1][b, h, n] += g * (
                vectors[b, h, w] - memory[b, n, w] * other * erase[b, h, w])
            want[2][b, h, w] -= g * memory[b, n, w] * other * writes[b, h, n]
            want[3][b, h, w] += g * writes[b, h, n]
    for got_one, want_one in zip(got, want):
      np.testing.assert_allclose(got_one, want_one, rtol=1e-12, atol=1e-12)


class DNCTest(parameterized.TestCase):

  def test_parameter_names_and_shapes(self):
    model = _unroll_model()
    params = model.init(jax.random.key(0), jnp.zeros([3, 2, 5]))
    shapes = {f'{m}/{n}': v.shape for m, p in params.items()
              for n, v in p.items()}
    d = _CONTROLLER['hidden_size']
    h, r, w = 2, 2, 4
    access = 'dnc/~/memory_access/'
    self.assertEqual(shapes, {
        'dnc/~/lstm/linear/w': (5 + r * w + d, 4 * d),
        'dnc/~/lstm/linear/b': (4 * d,),
        **{f'{access}{name}/w': (d, size) for name, size in (
            ('write_vectors', h * w), ('erase_vectors', h * w),
            ('free_gate', r), ('allocation_gate', h), ('write_gate', h),
            ('read_mode', r * (1 + 2 * h)), ('write_keys', h * w),
            ('write_strengths', h), ('read_keys', r * w),
            ('read_strengths', r))},
        **{f'{access}{name}/b': (size,) for name, size in (
            ('write_vectors', h * w), ('erase_vectors', h * w),
            ('free_gate', r), ('allocation_gate', h), ('write_gate', h),
            ('read_mode', r * (1 + 2 * h)), ('write_keys', h * w),
            ('write_strengths', h), ('read_keys', r * w),
            ('read_strengths', r))},
        'dnc/output_linear/w': (d + r * w, 3),
        'dnc/output_linear/b': (3,)})

  @parameterized.parameters(None, 'softplus')  # The default is oneplus.
  @pytest.mark.slow
  def test_three_steps_against_numpy(self, activation):
    inputs = np.random.RandomState(0).randn(3, 2, 5)
    with jax.enable_x64():
      model = _unroll_model(**({} if activation is None else dict(
          access_config=dict(_ACCESS, strength_activation=activation))))
      params = model.init(jax.random.key(0), jnp.asarray(inputs))
      # Larger weights than the initialiser's, so every gate matters.
      params = jax.tree.map(lambda p: 3 * p + 0.1, params)
      outputs, state = model.apply(params, jnp.asarray(inputs))
      np_params = jax.tree.map(np.asarray, params)
      expected, np_state = _numpy_dnc(np_params, inputs, clip=20.0,
                                      activation=activation or 'oneplus')
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-6)
    access = state.access_state
    for name, value in (('memory', access.memory),
                        ('read_weights', access.read_weights),
                        ('write_weights', access.write_weights),
                        ('link', access.linkage.link),
                        ('precedence', access.linkage.precedence_weights),
                        ('usage', access.usage)):
      np.testing.assert_allclose(value, np_state[name], rtol=1e-6, atol=1e-6,
                                 err_msg=name)

  @pytest.mark.slow
  def test_invariants_over_an_unroll(self):
    model = _unroll_model()
    inputs = jax.random.normal(jax.random.key(1), [12, 3, 5])
    params = model.init(jax.random.key(2), inputs)
    params = jax.tree.map(lambda p: 3 * p, params)
    _, state = jax.jit(model.apply)(params, inputs)
    access = jax.tree.map(np.asarray, state.access_state)
    for weights in (access.read_weights, access.write_weights):
      self.assertGreaterEqual(weights.min(), 0)
      self.assertLessEqual(weights.sum(-1).max(), 1 + 1e-5)
    self.assertGreaterEqual(access.usage.min(), 0)
    self.assertLessEqual(access.usage.max(), 1)
    link = access.linkage.link
    n = _ACCESS['memory_size']
    np.testing.assert_array_equal(link[..., range(n), range(n)], 0)
    self.assertGreaterEqual(link.min(), 0)
    self.assertLessEqual(link.sum(-1).max(), 1 + 1e-5)
    self.assertGreater(access.usage.max(), 0.1)  # It did write.

  @pytest.mark.slow
  def test_layouts_vmap_and_reset_core(self):
    inputs = jax.random.normal(jax.random.key(3), [4, 2, 5])  # [T, B, D]
    model = _unroll_model()
    params = model.init(jax.random.key(4), inputs)
    time_major, _ = model.apply(params, inputs)
    batch_major, _ = _unroll_model(time_major=False).apply(
        params, jnp.swapaxes(inputs, 0, 1))
    np.testing.assert_allclose(jnp.swapaxes(batch_major, 0, 1), time_major,
                               rtol=1e-5, atol=1e-6)

    def unbatched(x):  # [T, D], one sequence with an unbatched state.
      core = _core()
      return hk.dynamic_unroll(core, x[:, None], jax.tree.map(
          lambda s: s[None], core.initial_state(None)))[0][:, 0]
    single = hk.without_apply_rng(hk.transform(unbatched))
    vmapped = jax.vmap(single.apply, in_axes=(None, 1), out_axes=1)(
        params, inputs)
    np.testing.assert_allclose(vmapped, time_major, rtol=1e-5, atol=1e-6)

    def reset(x, should_reset):  # Resets at t = 2 equal a fresh start there.
      core = hk.ResetCore(_core())
      return hk.dynamic_unroll(core, (x, should_reset),
                               core.initial_state(x.shape[1]))[0]
    reset_model = hk.without_apply_rng(hk.transform(reset))
    should_reset = jnp.zeros([4, 2], bool).at[2].set(True)
    with_reset = reset_model.apply(params, inputs, should_reset)
    fresh, _ = model.apply(params, inputs[2:])
    np.testing.assert_allclose(with_reset[2:], fresh, rtol=1e-5, atol=1e-6)

  @pytest.mark.slow
  def test_gradients(self):
    # From a state whose usages differ: at ties (the all-zero initial usage)
    # the sort in the allocation is not differentiable, as in the reference.
    rng = np.random.RandomState(5)
    b, n, w, r, h = 2, _ACCESS['memory_size'], 4, 2, 2

    def normalised(*shape):
      x = rng.rand(*shape)
      return x / (x.sum(-1, keepdims=True) + 0.5)

    def step(x, state):
      return _core()(x, state)

    model = hk.without_apply_rng(hk.transform(step))
    with jax.enable_x64():
      link = normalised(b, h, n, n) * (1 - np.eye(n))
      state = dnc.DNCState(
          access_output=jnp.asarray(rng.randn(b, r, w)),
          access_state=dnc.AccessState(
              memory=jnp.asarray(rng.randn(b, n, w)),
              read_weights=jnp.asarray(normalised(b, r, n)),
              write_weights=jnp.asarray(normalised(b, h, n)),
              linkage=dnc.addressing.TemporalLinkageState(
                  link=jnp.asarray(link),
                  precedence_weights=jnp.asarray(normalised(b, h, n))),
              usage=jnp.asarray(rng.rand(b, n))),
          controller_state=hk.LSTMState(
              hidden=jnp.asarray(rng.randn(b, 8)),
              cell=jnp.asarray(rng.randn(b, 8))))
      inputs = jnp.asarray(rng.randn(b, 5))
      params = model.init(jax.random.key(6), inputs, state)
      # Not with respect to the state: the usage's stopped gradient of the
      # previous write weights (the reference's) is not the true derivative.
      jax.test_util.check_grads(
          jax.jit(lambda p, x: model.apply(p, x, state)), (params, inputs),
          order=1, modes=('rev',), eps=1e-6, atol=1e-5, rtol=1e-5)

  @parameterized.parameters(
      (dict(access_config=dict(memory_size=0)), 'memory_size'),
      (dict(access_config=dict(word_size=2.5)), 'word_size'),
      (dict(access_config=dict(strength_activation='exp')),
       'strength_activation'),
      (dict(controller_config=dict(hidden_size=0)), 'hidden_size'),
      (dict(controller_config=dict(hidden_size=4, layers=2)),
       'Unknown controller_config'),
      (dict(output_size=0), 'output_size'),
      (dict(clip_value=-1.0), 'clip_value'))
  def test_bad_arguments(self, overrides, regex):
    with self.assertRaisesRegex(ValueError, regex):
      hk.transform(lambda: _core(**overrides)).init(None)

  def test_the_step_has_no_loop_over_slots_or_heads(self):
    def equations(memory_size, num_reads, num_writes):
      def step(x):
        core = _core(access_config=dict(
            memory_size=memory_size, word_size=4, num_reads=num_reads,
            num_writes=num_writes))
        return core(x, core.initial_state(2))
      model = hk.without_apply_rng(hk.transform(step))
      x = jax.ShapeDtypeStruct((2, 5), jnp.float32)
      params = jax.eval_shape(model.init, jax.random.key(0), x)
      return len(jax.make_jaxpr(model.apply)(params, x).jaxpr.eqns)

    # The same program for more slots and heads: only the shapes change.
    self.assertEqual(equations(4, 1, 1), equations(9, 4, 1))
    self.assertEqual(equations(4, 2, 2), equations(9, 3, 5))

  @pytest.mark.slow
  def test_deep_controller(self):
    model = _unroll_model(controller_config=dict(hidden_size=8, num_layers=2))
    inputs = jnp.ones([2, 1, 5])
    params = model.init(jax.random.key(0), inputs)
    self.assertIn('dnc/~/lstm_1/linear', params)
    outputs, _ = model.apply(params, inputs)
    self.assertEqual(outputs.shape, (2, 1, 3))


if __name__ == '__main__':
  absltest.main()
