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
"""Typed hyperparameters: each defined once, with its type, bounds and help.

A group of hyperparameters is a frozen dataclass deriving from
:class:`Hyperparameters`, each field made by :func:`hyperparameter`::

  @dataclasses.dataclass(frozen=True)
  class DNC(hyperparameters.Hyperparameters):
    PREFIX = 'dnc_'
    memory_size: int = hyperparameter('DNC: memory slots N.', lower=1)

From the class come the command-line flags (:func:`define_flags`: one per
field, named ``PREFIX + field``, here ``--dnc_memory_size``, with the
field's type, bounds, choices and help), and the flat ``{name: value}``
form that presets and ``config.json`` hold (:meth:`Hyperparameters.flat`,
:meth:`Hyperparameters.from_flat`). An object checks its values when made,
with the one-line messages the flags give.

Types: ``int``, ``float`` (finite), ``str``, ``bool``, a ``Literal`` of
strings (a choice), ``tuple[int, ...]`` (a comma-separated list on the
command line, a list in ``config.json``), and any of them ``| None``.
"""

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

from absl import flags


def hyperparameter(
    help: str,  # pylint: disable=redefined-builtin
    *,
    default: Any = dataclasses.MISSING,
    lower: float | None = None,
    upper: float | None = None,
    flag: str | None = None,
) -> Any:
  """A field of a :class:`Hyperparameters` dataclass.

  Args:
    help: The flag's help: what it is, with its unit.
    default: The value when none is given; none means it must be given.
    lower: The smallest value allowed (numbers, and each of a tuple's).
    upper: The largest value allowed (numbers, and each of a tuple's).
    flag: The flag's name (and the flat key), if not the group's ``PREFIX``
      and the field's name.
  """
  return dataclasses.field(
      default=default,
      metadata={'help': help, 'lower': lower, 'upper': upper, 'flag': flag},
  )


@dataclasses.dataclass(frozen=True)
class Spec:
  """What one hyperparameter is: its flag's name, type and limits."""

  field: str
  flag: str
  kind: type  # int, float, str or bool; of each item if `sequence`.
  optional: bool
  sequence: bool
  choices: tuple[str, ...] | None
  lower: float | None
  upper: float | None
  help: str


def _spec(cls: type['Hyperparameters'], field: dataclasses.Field) -> Spec:
  annotation = typing.get_type_hints(cls)[field.name]
  args = typing.get_args(annotation)
  optional = isinstance(annotation, types.UnionType) and type(None) in args
  if optional:
    (annotation,) = [a for a in args if a is not type(None)]
  sequence = typing.get_origin(annotation) is tuple
  if sequence:
    annotation, ellipsis = typing.get_args(annotation)
    assert ellipsis is Ellipsis, (cls, field.name)
  choices = None
  if typing.get_origin(annotation) is Literal:
    choices = typing.get_args(annotation)
    annotation = str
  if annotation not in (int, float, str, bool):
    raise TypeError(f'{cls.__name__}.{field.name}: unsupported {annotation}.')
  return Spec(
      field=field.name,
      flag=field.metadata['flag'] or cls.PREFIX + field.name,
      kind=annotation,
      optional=optional,
      sequence=sequence,
      choices=choices,
      lower=field.metadata['lower'],
      upper=field.metadata['upper'],
      help=field.metadata['help'],
  )


def check(spec: Spec, value: Any) -> None:
  """Raises ValueError, naming the flag, if ``value`` is not allowed."""
  if value is None:
    if not spec.optional:
      raise ValueError(f'--{spec.flag} must be given.')
    return
  if spec.sequence:
    if not isinstance(value, tuple):
      raise ValueError(f'--{spec.flag} must be a tuple; got {value!r}.')
    for item in value:
      _check_one(spec, item, value)
    return
  _check_one(spec, value, value)


def _check_one(spec: Spec, value: Any, whole: Any) -> None:
  """Checks one value (or one item of a tuple, ``whole``)."""
  kind_ok = (
      isinstance(value, (int, float)) and not isinstance(value, bool)
      if spec.kind is float
      else isinstance(value, spec.kind)
      and (spec.kind is bool or not isinstance(value, bool))
  )
  if not kind_ok:
    what = 'integers' if spec.sequence else f'of type {spec.kind.__name__}'
    raise ValueError(f'--{spec.flag} must be {what}; got {whole!r}.')
  if spec.choices is not None and value not in spec.choices:
    raise ValueError(
        f'--{spec.flag} must be one of {list(spec.choices)}; got {value!r}.'
    )
  if spec.kind is float and not math.isfinite(value):
    raise ValueError(f'--{spec.flag} must be a finite number.')
  if spec.lower is not None and value < spec.lower:
    raise ValueError(f'--{spec.flag} must be >= {spec.lower}; got {value}.')
  if spec.upper is not None and value > spec.upper:
    raise ValueError(f'--{spec.flag} must be <= {spec.upper}; got {value}.')


class Hyperparameters:
  """Base of the typed groups of hyperparameters (frozen dataclasses).

  Attributes:
    PREFIX: Put before each field's name to make its flag's (and its
      ``config.json`` key's), e.g. ``'dnc_'``.
  """

  PREFIX: ClassVar[str] = ''

  def __post_init__(self):
    for spec in self.specs():
      check(spec, getattr(self, spec.field))

  @classmethod
  def specs(cls) -> tuple[Spec, ...]:
    """Every hyperparameter of the group, in the order of its fields."""
    assert dataclasses.is_dataclass(cls), cls
    return tuple(_spec(cls, f) for f in dataclasses.fields(cls))

  @classmethod
  def flag_names(cls) -> tuple[str, ...]:
    """The flags' names (the flat keys), in the order of the fields."""
    return tuple(spec.flag for spec in cls.specs())

  @classmethod
  def from_flat(cls, values: Mapping[str, Any]) -> Self:
    """The group from flat ``{flag name: value}`` (a preset, config.json).

    Names the group does not have are ignored; one it has that ``values``
    lacks takes its default (or is an error naming it, if it has none).
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    missing = [
        spec.flag
        for spec, f in zip(cls.specs(), fields, strict=True)
        if spec.flag not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
      raise ValueError(
          f'{cls.__name__} needs {", ".join("--" + m for m in missing)}.'
      )
    return cls(
        **{
            s.field: _from_flat_value(s, values[s.flag])
            for s in cls.specs()
            if s.flag in values
        }
    )

  def flat(self) -> dict[str, Any]:
    """``{flag name: value}``, as presets and config.json hold them."""
    return {spec.flag: getattr(self, spec.field) for spec in self.specs()}


def _from_flat_value(spec: Spec, value: Any) -> Any:
  """A tuple's value from its flat form: a list, of ints or of int strings.

  The command line gives strings (``--adaptive_cutoffs=20000,40000``), and
  config.json a list (of strings in files written before the typed
  hyperparameters).
  """
  if not spec.sequence or not isinstance(value, list | tuple):
    return value
  try:
    return tuple(
        int(item) if isinstance(item, str) and spec.kind is int else item
        for item in value
    )
  except ValueError:
    raise ValueError(
        f'--{spec.flag} must be integers; got {list(value)!r}.'
    ) from None


def define_flags(
    cls: type[Hyperparameters], flag_values: flags.FlagValues = flags.FLAGS
) -> None:
  """Defines a flag per hyperparameter of ``cls``, each defaulting to None.

  None means "not given": the binary takes the value from its preset. A flag
  already defined (a hyperparameter two tasks share, e.g. ``--eval_batches``)
  is left as it is; its help must be the same.
  """
  for spec in cls.specs():
    name, values = spec.flag, flag_values
    if name in values:
      if values[name].help != spec.help:
        raise ValueError(f'--{name} is defined twice, with different help.')
      continue
    if spec.sequence:
      flags.DEFINE_list(name, None, spec.help, flag_values=values)
    elif spec.choices is not None:
      flags.DEFINE_enum(
          name, None, list(spec.choices), spec.help, flag_values=values
      )
    elif spec.kind is bool:
      flags.DEFINE_bool(name, None, spec.help, flag_values=values)
    elif spec.kind is str:
      flags.DEFINE_string(name, None, spec.help, flag_values=values)
    elif spec.kind is int:
      flags.DEFINE_integer(
          name,
          None,
          spec.help,
          lower_bound=None if spec.lower is None else int(spec.lower),
          upper_bound=None if spec.upper is None else int(spec.upper),
          flag_values=values,
      )
    else:
      flags.DEFINE_float(
          name,
          None,
          spec.help,
          lower_bound=spec.lower,
          upper_bound=spec.upper,
          flag_values=values,
      )
      if spec.kind is float:
        flags.register_validator(
            spec.flag,
            lambda x: x is None or math.isfinite(x),
            message=f'--{spec.flag} must be a finite number.',
            flag_values=flag_values,
        )
