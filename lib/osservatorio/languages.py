"""The languages a report is written in (a theme's ``language``, ``run --lang``).

A module of its own, importing nothing heavy: the command line declares its options with
it before it imports the theme model (pydantic) or the report's text."""

from __future__ import annotations

from typing import Literal

Language = Literal["it", "en"]
