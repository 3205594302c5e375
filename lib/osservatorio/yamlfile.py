"""Bounded reading of the YAML parameter files (theme files, ``params/defaults.yaml``).

A parameter file is small and hand-written, so anything else is refused with one line
naming the file and where: more than ``MAX_BYTES``, another encoding than UTF-8 (named:
UTF-16, Windows-1252, ...), YAML anchors and aliases (``&a`` / ``*a``: a 1.5 KB file of
nested aliases expands to gigabytes), nesting deeper than ``MAX_DEPTH``, and a key
written twice in one mapping (YAML would silently keep the last one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent

from osservatorio.exceptions import ThemeError, quoted
from osservatorio.textencoding import decode_utf8_text

MAX_BYTES = 256 * 1024
MAX_DEPTH = 20
MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(ConstructorError):
    """A construct this loader does not accept (alias, anchor, duplicate key, depth)."""


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases, duplicate keys or deep nesting.

    Composition is where aliases expand and where nesting recurses, so both are stopped
    there, before any object is built; the pure-Python loader is used on purpose (the C
    one composes in C, out of reach of these checks), which costs nothing on small files.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent) or event.anchor is not None:
            sign = "*" if isinstance(event, AliasEvent) else "&"
            raise _Refused(None, None, f"YAML anchors and aliases ({sign}{event.anchor}) are not allowed: "
                           "write the value out", event.start_mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # unhashable: the base constructor says so
                if first is not key_node.start_mark:
                    raise _Refused(None, None, f"key {quoted(key)} is written twice (first on line "
                                   f"{first.line + 1}): keep one", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """'line 4, column 3: <problem> (<context>)' on one line, without the file excerpt
    PyYAML appends (which could be long and spans lines)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if isinstance(exc, _Refused):
        return f"{where}{problem}"
    return f"{where}not valid YAML: {problem}" + (f" ({context})" if context else "")


def parse_yaml(text: str, source: str) -> Any:
    """The value of a YAML text with the bounded loader; ``ThemeError`` naming ``source``."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ThemeError(f"{source}, {describe_yaml_error(exc)}") from None
    finally:
        loader.dispose()


def read_text(path: Path, what: str = "theme file") -> str:
    """A parameter file's text: at most ``MAX_BYTES``, UTF-8; else ``ThemeError`` saying why."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ThemeError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_BYTES:
        raise ThemeError(f"{path}: {what} larger than {MAX_BYTES // 1024} KiB, the most allowed "
                         f"(a theme file is a page of keys)")
    try:
        return decode_utf8_text(data, f"{path}: {what}")
    except ValueError as exc:
        raise ThemeError(str(exc)) from None


def read_yaml_mapping(path: Path, what: str = "theme file") -> dict[str, Any]:
    """A parameter file as a mapping (empty file: empty mapping)."""
    data = parse_yaml(read_text(path, what), str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ThemeError(f"{path}: a {what} must be a mapping of keys to values, not a {type(data).__name__}")
    return data
