"""Labels: one set, both languages, the same placeholders in each."""

from __future__ import annotations

import string

from osservatorio.publishing.text import fmt_number, fmt_p, labels, t


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_every_label_has_both_languages_with_same_placeholders():
    for key, entry in labels().items():
        assert entry["it"].strip() and entry["en"].strip(), key
        assert _fields(entry["it"]) == _fields(entry["en"]), key


def test_italian_and_english_number_formats():
    assert fmt_number(1234.5, "it", 1) == "1.234,5"
    assert fmt_number(1234.5, "en", 1) == "1,234.5"
    assert fmt_number(float("nan"), "it") == "n.d."
    assert fmt_p(0.0001, "it") == "p < 0,001" and fmt_p(0.0123, "en") == "p = 0.012"
    assert t("report.headline", "it") == "Risultato principale"
    assert t("report.headline", "en") == "Headline finding"
