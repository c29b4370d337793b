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
"""The NNX cells' weights, and their conversion to and from Haiku's.

A cell keeps its parameters in ``weights``, an ``nnx.Dict`` keyed
``'<module>/<name>'`` (e.g. ``'input_projection/w'``), initialised as the
Haiku core's are (``hk.Linear``'s truncated normal, zero biases and offsets,
unit scales). A cell class says where each weight lives in the Haiku core's
parameters (``haiku_module``), by the core's default module name
(``HAIKU_NAME``) and by a module every such core has (``HAIKU_ANCHOR``).
"""

import math
from collections.abc import Mapping
from typing import Any, Protocol

from flax import nnx
import jax
import jax.numpy as jnp


class Cell(Protocol):
  """What the converters need of a cell."""

  HAIKU_NAME: str
  HAIKU_ANCHOR: str
  weights: nnx.Dict

  @staticmethod
  def haiku_module(key: str) -> str:
    """The Haiku module, below the core's, of the weight ``key``."""

  def haiku_extras(self) -> dict[str, nnx.Param]:
    """Parameters held by the Haiku core's own module, by name."""


def initial_value(
    key: jax.Array, name: str, shape: tuple[int, ...], dtype: Any
) -> jax.Array:
  """The Haiku initialiser of the parameter ``name`` (its distribution)."""
  kind = name.rsplit('/', 1)[-1]
  if kind == 'w':  # hk.Linear's: a truncated normal of stddev 1/sqrt(fan_in).
    stddev = 1.0 / math.sqrt(shape[0])
    # hk.initializers.TruncatedNormal: truncated at 2 standard deviations,
    # rescaled to the given standard deviation.
    unscaled = jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
    return unscaled * jnp.asarray(stddev / 0.87962566103423978, dtype)
  if kind == 'scale':
    return jnp.ones(shape, dtype)
  return jnp.zeros(shape, dtype)  # Biases and LayerNorm offsets.


def initial_weights(
    shapes: Mapping[str, tuple[int, ...]], dtype: Any, rngs: nnx.Rngs
) -> nnx.Dict:
  """``weights`` of the given shapes, drawn in order from ``rngs.params``."""
  return nnx.Dict(
      {
          name: nnx.Param(initial_value(rngs.params(), name, shape, dtype))
          for name, shape in shapes.items()
      }
  )


def values(weights: nnx.Dict) -> dict[str, jax.Array]:
  """``{key: array}`` of ``weights``, as the equations take them."""
  return {name: param[...] for name, param in weights.items()}


def _prefix(cell: Cell, params: Mapping[str, Mapping[str, Any]]) -> str:
  """The module name of the one core in ``params`` that ``cell`` matches."""
  anchor = '/' + cell.HAIKU_ANCHOR
  candidates = sorted(
      module[: -len(anchor)] for module in params if module.endswith(anchor)
  )
  found = [
      prefix
      for prefix in candidates
      if all(
          f'{prefix}/{cell.haiku_module(key)}' in params for key in cell.weights
      )
  ]
  if len(found) != 1:
    raise ValueError(
        f'params must hold one {type(cell).__name__} core (one '
        f"'<name>/{cell.HAIKU_ANCHOR}' module and the rest of its modules); "
        f'found {found or candidates}.'
    )
  return found[0]


def _put(param: nnx.Param, value: Any, name: str) -> None:
  value = jnp.asarray(value)
  if value.shape != param[...].shape:
    raise ValueError(
        f'{name} has shape {value.shape}; the cell needs {param[...].shape}.'
    )
  param[...] = value.astype(param[...].dtype)


def from_haiku(cell: Cell, params: Mapping[str, Mapping[str, Any]]) -> None:
  """Puts a Haiku core's parameters into ``cell`` (in place).

  Args:
    cell: An ``rmc.nnx`` cell made with the Haiku core's arguments.
    params: The Haiku core's parameters, e.g. a trained run's
      ``rmc.load_run(workdir).core_params``, or a whole model's that holds
      one such core: ``{'<name>/<module>': {'w': ..., 'b': ...}, ...}``.

  Raises:
    ValueError: If ``params`` holds no such core, or several, or another
      shape.
  """
  prefix = _prefix(cell, params)
  for key, param in cell.weights.items():
    module = f'{prefix}/{cell.haiku_module(key)}'
    parameter = key.rsplit('/', 1)[1]
    _put(param, params[module][parameter], f'{module}/{parameter}')
  for name, param in cell.haiku_extras().items():
    _put(param, params[prefix][name], f'{prefix}/{name}')


def to_haiku(
    cell: Cell, name: str | None = None
) -> dict[str, dict[str, jax.Array]]:
  """The cell's parameters as its Haiku core holds them.

  Args:
    cell: An ``rmc.nnx`` cell.
    name: The Haiku core's module name; by default the Haiku core's own
      (``relational_memory``, ``dnc``).

  Returns:
    ``{'<name>/<module>': {'w': ..., 'b': ...}, ...}``.
  """
  name = name or cell.HAIKU_NAME
  params: dict[str, dict[str, jax.Array]] = {}
  for key, param in cell.weights.items():
    module = f'{name}/{cell.haiku_module(key)}'
    params.setdefault(module, {})[key.rsplit('/', 1)[1]] = param[...]
  extras = cell.haiku_extras()
  if extras:
    params[name] = {n: param[...] for n, param in extras.items()}
  return params
