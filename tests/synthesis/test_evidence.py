"""Maryland levels, padlock rules (each rule and each boundary) and the rules tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from osservatorio.exceptions import InputError
from osservatorio.synthesis import evidence as ev
from osservatorio.synthesis.evidence import (
    ci_width_ratio,
    maryland_level,
    maryland_table,
    padlocks,
    rules_table,
)

# --- Maryland ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "design,level",
    [("rct", 5), ("staggered_did", 4), ("twfe_did", 3), ("did_few_treated", 3),
     ("synthetic_control", 3), ("event_study_its", 2), ("its", 2), ("cross_section", 2),
     ("correlation", 1)],
)
def test_maryland_level_of_each_design(design, level):
    assert maryland_level(design) == level


def test_cross_section_without_controls_is_level_1():
    assert maryland_level("cross_section", controls=False) == 1
    assert maryland_level("twfe_did", controls=False) == 3  # only cross-sections depend on it


def test_unknown_design_names_allowed_values():
    with pytest.raises(InputError, match="design must be one of"):
        maryland_level("diff_in_diff")


@pytest.mark.parametrize("lang,first", [("en", "design"), ("it", "disegno")])
def test_maryland_table_lists_every_design(lang, first):
    t = maryland_table(lang)
    assert t.columns[0] == first
    assert list(t.iloc[:, 0]) == list(ev.MARYLAND)
    assert t.iloc[:, 2].str.len().min() > 10


# --- padlocks: no threat -------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_clean_finding_keeps_maryland_level(level):
    r = padlocks(level, n_treated_clusters=50, pretrend_p=0.6, placebo_p=0.4,
                 ci_width_ratio=0.3, synthetic_data=False, i2=0.2)
    assert r.padlocks == level == r.uncapped == r.maryland
    assert r.reasons == ()


def test_missing_diagnostics_skip_their_rules():
    r = padlocks(4, None, None, float("nan"), None, False, i2=np.nan)
    assert r.padlocks == 4 and r.reasons == ()


# --- padlocks: each rule at its boundary ---------------------------------------------


@pytest.mark.parametrize(
    "kwargs,code,removed",
    [
        ({"pretrend_p": 0.049}, "pretrend_failed", 2),
        ({"pretrend_p": 0.0}, "pretrend_failed", 2),
        ({"placebo_p": 0.049}, "placebo_failed", 1),
        ({"n_treated_clusters": 9}, "few_clusters", 1),
        ({"n_treated_clusters": 1}, "few_clusters", 1),
        ({"ci_width_ratio": 1.0001}, "wide_interval", 1),
        ({"ci_width_ratio": math.inf}, "wide_interval", 1),
        ({"i2": 0.7501}, "high_heterogeneity", 1),
    ],
)
def test_rule_fires_just_past_threshold(kwargs, code, removed):
    r = padlocks(5, **kwargs)
    assert r.codes == [code]
    assert r.reasons[0].removed == removed
    assert r.padlocks == 5 - removed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pretrend_p": 0.05}, {"pretrend_p": 1.0},
        {"placebo_p": 0.05},
        {"n_treated_clusters": 10},
        {"ci_width_ratio": 1.0}, {"ci_width_ratio": 0.0},
        {"i2": 0.75}, {"i2": 0.0},
    ],
)
def test_rule_silent_at_threshold(kwargs):
    r = padlocks(5, **kwargs)
    assert r.reasons == () and r.padlocks == 5


def test_thresholds_are_the_named_constants():
    assert (ev.PRETREND_ALPHA, ev.PLACEBO_ALPHA, ev.MIN_TREATED_CLUSTERS,
            ev.MAX_CI_WIDTH_RATIO, ev.MAX_I2, ev.SYNTHETIC_DATA_CAP) == (0.05, 0.05, 10, 1.0,
                                                                           0.75, 0)
    assert [r.code for r in ev.RULES] == ["pretrend_failed", "placebo_failed", "few_clusters",
                                          "wide_interval", "high_heterogeneity",
                                          "synthetic_data"]


def test_synthetic_data_caps_at_zero_and_keeps_uncapped():
    r = padlocks(4, n_treated_clusters=5, synthetic_data=True)
    assert r.padlocks == 0
    assert r.uncapped == 3
    assert r.codes == ["few_clusters", "synthetic_data"]
    assert [x.removed for x in r.reasons] == [1, 3]


def test_synthetic_cap_on_already_zero_records_zero_removed():
    r = padlocks(1, pretrend_p=0.01, synthetic_data=True)
    assert r.padlocks == 0 and r.uncapped == 0
    assert [(x.code, x.removed) for x in r.reasons] == [("pretrend_failed", 1),
                                                        ("synthetic_data", 0)]


def test_all_threats_floor_at_zero_and_reasons_add_up():
    r = padlocks(4, n_treated_clusters=3, pretrend_p=0.01, placebo_p=0.01,
                 ci_width_ratio=2.0, i2=0.9)
    assert r.padlocks == 0
    assert r.codes == ["pretrend_failed", "placebo_failed", "few_clusters", "wide_interval",
                       "high_heterogeneity"]
    # removals hit the floor: the last ones record what they actually removed
    assert [x.removed for x in r.reasons] == [2, 1, 1, 0, 0]


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("pre", [None, 0.01, 0.5])
@pytest.mark.parametrize("n", [None, 2, 40])
@pytest.mark.parametrize("synthetic", [False, True])
def test_reasons_always_account_for_the_rating(level, pre, n, synthetic):
    r = padlocks(level, n_treated_clusters=n, pretrend_p=pre, synthetic_data=synthetic)
    assert 0 <= r.padlocks <= r.uncapped <= r.maryland == level
    assert level - sum(x.removed for x in r.reasons) == r.padlocks


def test_typical_findings():
    # staggered DiD, 40 treated comuni, clean diagnostics, tight CI
    assert padlocks(maryland_level("staggered_did"), 40, 0.5, 0.6, 0.4).padlocks == 4
    # one treated comune with synthetic control, clean placebo
    assert padlocks(maryland_level("synthetic_control"), 1, None, 0.3, 0.5).padlocks == 2
    # TWFE with failed pre-trends
    assert padlocks(maryland_level("twfe_did"), 30, 0.01, None, 0.5).padlocks == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"maryland": 0}, {"maryland": 6}, {"maryland": 3.0}, {"maryland": True},
     {"maryland": 3, "pretrend_p": 1.5}, {"maryland": 3, "placebo_p": -0.1},
     {"maryland": 3, "i2": 75}, {"maryland": 3, "ci_width_ratio": -1},
     {"maryland": 3, "n_treated_clusters": -2}],
)
def test_invalid_padlock_inputs_raise(kwargs):
    with pytest.raises(InputError):
        padlocks(**kwargs)


# --- helpers and tables --------------------------------------------------------------


def test_ci_width_ratio():
    assert ci_width_ratio(2.0, 1.0, 3.0) == pytest.approx(0.5)
    assert ci_width_ratio(-2.0, -5.0, 1.0) == pytest.approx(1.5)
    assert ci_width_ratio(0.0, -1.0, 1.0) == math.inf


@pytest.mark.parametrize("lang,cols", [("en", ["code", "rule", "effect"]),
                                       ("it", ["codice", "regola", "effetto"])])
def test_rules_table_has_every_rule(lang, cols):
    t = rules_table(lang)
    assert list(t.columns) == cols
    assert list(t[cols[0]]) == ["start", *[r.code for r in ev.RULES], "floor"]
    assert list(t[cols[2]])[1:-1] == ["-2", "-1", "-1", "-1", "-1",
                                      "max 0" if lang == "en" else "massimo 0"]


def test_rules_table_italian_uses_decimal_comma_and_differs_from_english():
    it, en = rules_table("it"), rules_table("en")
    assert "0,05" in it.loc[1, "regola"] and "0.05" in en.loc[1, "rule"]
    assert (it["regola"] != en["rule"]).all()


def test_bad_lang_names_allowed_values():
    with pytest.raises(InputError, match="lang must be one of"):
        rules_table("fr")


def test_rule_text_words_every_rule_in_both_languages():
    from osservatorio.synthesis.evidence import RULES, rule_text

    for r in RULES:
        assert rule_text(r.code, "it") == r.text_it and rule_text(r.code, "en") == r.text_en
    with pytest.raises(InputError, match="no padlock rule"):
        rule_text("nope")
