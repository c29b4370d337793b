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
"""The Relational Memory Core and the DNC for Flax NNX.

Flax NNX recurrent cells (``nnx.RNNCellBase``: ``__call__(carry, inputs) ->
(carry, outputs)``, ``initialize_carry``, ``num_feature_axes``) on the same
equations as the Haiku cores :class:`rmc.RelationalMemory` and
:class:`rmc.DNC`: both front-ends call the same functions, so the two give
the same numbers from the same parameters. :func:`from_haiku` and
:func:`to_haiku` convert the parameters both ways::

  from flax import nnx
  import rmc.nnx

  cell = rmc.nnx.RelationalMemory(16, mem_slots=4, head_size=32, num_heads=2,
                                  rngs=nnx.Rngs(0))
  outputs = nnx.RNN(cell)(inputs)  # inputs [B, T, 16] -> [B, T, 4 * 64]
  carry, outputs = cell.unroll(inputs)  # The same, faster to differentiate.

Needs Flax (``pip install 'rmc[flax]'``); ``import rmc`` does not import it.
"""

try:
  from flax import nnx as _nnx  # noqa: F401  # pylint: disable=unused-import
except ImportError:
  raise ImportError(
      "rmc.nnx needs Flax NNX: pip install 'rmc[flax]'."
  ) from None

# pylint: disable=g-import-not-at-top
from rmc.nnx._weights import from_haiku
from rmc.nnx._weights import to_haiku
from rmc.nnx.dnc import DNC
from rmc.nnx.relational_memory import RelationalMemory

__all__ = ('DNC', 'RelationalMemory', 'from_haiku', 'to_haiku')
