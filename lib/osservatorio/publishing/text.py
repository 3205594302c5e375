"""Report text in Italian (default) or English, from one set of labels.

The YAML files of ``labels/`` (one per area: common, indicators, selection,
evaluation, synthesis, site) map each key to ``{it: ..., en: ...}``; values are
``str.format`` templates. A key may appear in one file only. Notebooks display text through ``show`` helpers so the report
has no code and speaks the theme's language.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

from osservatorio.languages import Language

Lang = Language
# libyaml's safe loader when PyYAML was built with it: 20x faster on our own label files.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=1)
def labels() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    folder = resources.files("osservatorio").joinpath("labels")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.load(entry.read_text(encoding="utf-8"), Loader=_LOADER) or {}
        for key, value in data.items():
            if key in merged:
                raise ValueError(f"label '{key}' is defined twice (second time in labels/{entry.name})")
            if set(value) != {"it", "en"}:
                raise ValueError(f"label '{key}' in labels/{entry.name} needs exactly 'it' and 'en'")
            merged[key] = value
    return merged


def t(key: str, lang: Lang = "it", **values: Any) -> str:
    """The label ``key`` in ``lang``, formatted with ``values``."""
    try:
        entry = labels()[key]
    except KeyError:
        raise KeyError(f"no label '{key}' in labels/*.yaml") from None
    return entry[lang].format(**values) if values else entry[lang]


def fmt_number(x: float | None, lang: Lang = "it", digits: int = 2) -> str:
    """A number with the decimal mark of the language (1.234,56 in Italian)."""
    if x is None or x != x:
        return "n.d." if lang == "it" else "n/a"
    s = f"{x:,.{digits}f}"
    if lang == "it":
        s = s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return s


def fmt_p(p: float | None, lang: Lang = "it") -> str:
    """A p-value with its relation sign: "p = 0,279", "p < 0,001" (labels write just {p})."""
    if p is None or p != p:
        return "p n.d." if lang == "it" else "p n/a"
    if p < 0.001:
        return "p < 0,001" if lang == "it" else "p < 0.001"
    return "p = " + fmt_number(p, lang, 3)
