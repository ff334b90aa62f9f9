"""What a configuration value may be: its type, its range or vocabulary, and its description.

Every field of the config dataclasses is declared with :func:`option`, which stores its
description (``help``), its :class:`Interval` or :class:`PathRule` (``rule``), or a text for
values that a check function of another module checks (``allowed``) in the field's
``metadata``. :func:`coerce` checks a value against the field's type: TOML values must have
the field's TOML type, while command-line values may also arrive as strings (``"4"``,
``"true"``, ``"vgg16,resnet50"``). :func:`field_problem` checks it against the rule.
:mod:`leukoscope.pipeline.config_docs` renders the same metadata as ``docs/config.md``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

#: list items that stand for every choice / for none
ALL, NONE = "all", "none"


class ConfigError(ValueError):
    """A configuration file or override holds an unknown key or a wrong value."""


class Rule(Protocol):
    """A check of one value beyond its type."""

    def describe(self) -> str:
        """The allowed values, for error messages and docs/config.md."""

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value``, or ``None`` when it is allowed."""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Interval:
    """Numbers between ``low`` and ``high`` (``None``: unbounded), plus the ``extra`` values.

    ``meaning`` explains special values (e.g. ``"0: each backbone's default"``); an open end
    excludes its bound; ``multiple_of`` asks for multiples (2: even numbers).
    """

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    extra: tuple[int, ...] = ()
    multiple_of: int = 1
    meaning: str = ""

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            text = (f"{'(' if self.open_low else '['}{_number(self.low)}, "
                    f"{_number(self.high)}{')' if self.open_high else ']'}")
        elif self.low is not None:
            text = f"{'>' if self.open_low else '>='} {_number(self.low)}"
        else:
            text = "any"
        if self.multiple_of != 1:
            text = f"{'even' if self.multiple_of == 2 else f'a multiple of {self.multiple_of}'}, {text}"
        if self.extra:
            text += "".join(f" or {v}" for v in self.extra)
        return f"{text} ({self.meaning})" if self.meaning else text

    def problem(self, value: Any) -> str | None:
        if value in self.extra:
            return None
        inside = (
            (self.low is None or (value > self.low if self.open_low else value >= self.low))
            and (self.high is None or (value < self.high if self.open_high else value <= self.high))
            and (self.multiple_of == 1 or value % self.multiple_of == 0)
        )
        return None if inside else f"{value!r} is out of range"


@dataclass(frozen=True)
class PathRule:
    """An existing file or folder (relative to the current directory), or one of ``words``.

    ``empty`` allows ``""`` (the field is then unset).
    """

    kind: str  # "file" or "folder"
    what: str
    words: tuple[str, ...] = ()
    empty: bool = False

    def describe(self) -> str:
        choices = [repr(w) for w in self.words] + (["'' (unset)"] if self.empty else [])
        existing = f"an existing {self.kind} ({self.what})"
        return f"{', '.join(choices)} or {existing}" if choices else existing

    def problem(self, value: Any) -> str | None:
        if value in self.words or (self.empty and value == ""):
            return None
        path = Path(value).expanduser()  # Path("") is the current directory: "" never exists here
        if value and (path.is_file() if self.kind == "file" else path.is_dir()):
            return None
        if not value or not path.exists():
            return f"{value!r} is no keyword and no existing {self.kind}" if self.words else \
                f"{self.kind} '{value}' does not exist"
        return f"'{value}' is not a {self.kind}"


def option(default: Any, help: str, rule: Rule | None = None, *, allowed: str = "",
           resolve: Callable[[Any], Any] | None = None) -> Any:
    """A dataclass field that carries its description and its rule.

    Parameters
    ----------
    default : Any
        Default value (immutable: a tuple for lists).
    help : str
        One-sentence description for docs/config.md.
    rule : Interval or PathRule, optional
        Checked whenever the value is set.
    allowed : str
        Allowed values of a field that a check function elsewhere checks (for the docs).
    resolve : callable, optional
        Maps a checked value to the one stored (e.g. ``-1`` jobs to the number of cores).
    """
    return dataclasses.field(default=default, metadata={"help": help, "rule": rule, "allowed": allowed,
                                                        "resolve": resolve})


def all_cores(jobs: int) -> int:
    """``jobs``, with ``-1`` replaced by the number of CPU cores this process may use."""
    if jobs != -1:
        return jobs
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(usable))


def type_name(annotation: Any) -> str:
    """How docs and errors name a field type: ``integer``, ``list of strings``, ..."""
    if typing.get_origin(annotation) is tuple:
        return "list of strings"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "string"
    return {int: "integer", float: "number", bool: "boolean", str: "string"}[annotation]


def choices_text(annotation: Any) -> str:
    """The vocabulary of an enum or list-of-enum field (``""`` for other types)."""
    if typing.get_origin(annotation) is tuple:
        (item, _ellipsis) = typing.get_args(annotation)
        return f"{choices_text(item)}; [\"{ALL}\"] for every one, [] for none"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return ", ".join(repr(m.value) for m in annotation)
    return ""


def plain(value: Any) -> Any:
    """A config value as JSON and TOML write it: enums as their values, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


def _shown(value: Any) -> str:
    kind = {str: "the string", bool: "the boolean", int: "the integer", float: "the number",
            list: "the list", dict: "the table"}.get(type(value), "the value")
    return f"{kind} {value!r}"


def _from_text(value: str, annotation: Any) -> Any:
    """A command-line string as ``annotation``; the string itself when it does not parse."""
    if annotation is bool and value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        if annotation is kind:
            try:
                return kind(value)
            except ValueError:
                return value
    return value


def _coerce_list(value: Any, item: Any, where: str, strict: bool) -> tuple[Any, ...]:
    if isinstance(value, str) and not strict:
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of strings, e.g. [\"{next(iter(item)).value}\"], "
                          f"got {_shown(value)}; allowed: {choices_text(tuple[item, ...])}")
    if list(value) == [ALL]:
        return tuple(item)
    if list(value) == [NONE]:
        return ()
    items = tuple(coerce(v, item, where, strict=strict) for v in value)
    if len(set(items)) < len(items):
        twice = sorted({v.value for v in items if items.count(v) > 1})
        raise ConfigError(f"{where}: {', '.join(map(repr, twice))} listed more than once; list each once")
    return items


def coerce(value: Any, annotation: Any, where: str, *, strict: bool) -> Any:
    """Check ``value`` against the field type ``annotation``; convert strings to enums.

    Parameters
    ----------
    value : Any
        A TOML value (``strict``) or a command-line value (strings are parsed).
    annotation : type
        ``int``, ``float``, ``bool``, ``str``, a ``str`` Enum or ``tuple[Enum, ...]``.
    where : str
        ``"<file>: key '<section>.<key>'"``, the start of every error message.
    strict : bool
        Refuse strings for numbers, booleans and lists (TOML); otherwise parse them.

    Raises
    ------
    ConfigError
        The value has the wrong type or is no member of the vocabulary.
    """
    if typing.get_origin(annotation) is tuple:
        (item, _ellipsis) = typing.get_args(annotation)
        return _coerce_list(value, item, where, strict)
    if isinstance(value, str) and not strict:
        value = _from_text(value, annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return annotation(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not allowed; allowed: {choices_text(annotation)}") from None
    expected = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}[annotation]
    if isinstance(value, bool) is not (annotation is bool) or not isinstance(value, expected):
        hint = "; in TOML write numbers and true/false without quotes" if strict and isinstance(value, str) else ""
        raise ConfigError(f"{where}: expected {'a ' if annotation is not int else 'an '}"
                          f"{type_name(annotation)}, got {_shown(value)}{hint}")
    return float(typing.cast(float, value)) if annotation is float else value


def field_problem(field: dataclasses.Field[Any], value: Any) -> str | None:
    """What the field's rule refuses in ``value`` (``None``: allowed), with the allowed values."""
    rule = field.metadata.get("rule")
    if rule is None or (problem := rule.problem(value)) is None:
        return None
    return f"{problem}; allowed: {rule.describe()}"


def allowed_text(field: dataclasses.Field[Any], annotation: Any) -> str:
    """The allowed values of a field, as docs/config.md shows them."""
    rule = field.metadata.get("rule")
    fallback = {bool: "true, false", str: "any"}.get(annotation, "")
    return field.metadata.get("allowed") or (rule.describe() if rule else "") or choices_text(annotation) or fallback


__all__ = [
    "ALL",
    "NONE",
    "ConfigError",
    "Interval",
    "PathRule",
    "all_cores",
    "allowed_text",
    "choices_text",
    "coerce",
    "field_problem",
    "option",
    "plain",
    "type_name",
]
