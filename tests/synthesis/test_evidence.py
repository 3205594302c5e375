"""Maryland levels, padlock rules (each rule and each boundary, each state of a
diagnostic: computed, not applicable, failed) and the rules tables."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from osservatorio.exceptions import InputError
from osservatorio.synthesis import evidence as ev
from osservatorio.synthesis.evidence import (
    Check,
    check_from_record,
    ci_width_ratio,
    failed,
    maryland_level,
    maryland_table,
    not_applicable,
    padlocks,
    reason_text,
    rules_table,
)

# every diagnostic computed and showing no threat
CLEAN = {"n_treated_clusters": 50, "pretrend_p": 0.6, "placebo_p": 0.4, "ci_width_ratio": 0.3, "i2": 0.2,
         "breakdown": 2.0}


def _pad(level: int, **kwargs):
    return padlocks(level, **{**CLEAN, **kwargs})

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
                 ci_width_ratio=0.3, synthetic_data=False, i2=0.2, breakdown=2.0)
    assert r.padlocks == level == r.uncapped == r.maryland
    assert r.reasons == ()


def test_not_applicable_diagnostics_skip_their_rules():
    na = not_applicable("the design has no such test")
    r = padlocks(4, n_treated_clusters=na, pretrend_p=na, placebo_p=na, ci_width_ratio=na, i2=na, breakdown=na)
    assert r.padlocks == 4 and r.reasons == ()


def test_missing_or_nan_diagnostics_count_as_failed():
    """None or NaN is a value that was expected and is missing: never read as 'does not apply'."""
    r = padlocks(5, n_treated_clusters=None, pretrend_p=None, placebo_p=float("nan"), ci_width_ratio=np.nan,
                 i2=Check("computed", float("nan")), breakdown=None)
    assert r.codes == ["pretrend_failed", "placebo_failed", "few_clusters", "wide_interval", "high_heterogeneity"]
    assert r.padlocks == 0 and all(x.failed == ev.NO_VALUE for x in r.reasons)


def test_every_diagnostic_must_be_given():
    """No default: a caller states each diagnostic, not_applicable(...) included."""
    with pytest.raises(TypeError, match="placebo_p"):
        padlocks(4, n_treated_clusters=50, pretrend_p=0.5, ci_width_ratio=0.3, i2=0.2, breakdown=2.0)
    with pytest.raises(TypeError, match="breakdown"):
        padlocks(4, n_treated_clusters=50, pretrend_p=0.5, placebo_p=0.5, ci_width_ratio=0.3, i2=0.2)


# --- padlocks: each rule at its boundary ---------------------------------------------


@pytest.mark.parametrize(
    "kwargs,code,removed",
    [
        ({"pretrend_p": 0.049, "breakdown": 0.99}, "pretrend_failed", 2),
        ({"pretrend_p": 0.0, "breakdown": 0.0}, "pretrend_failed", 2),
        ({"pretrend_p": 0.049, "breakdown": not_applicable("no event study")}, "pretrend_failed", 2),
        ({"pretrend_p": 0.049, "breakdown": failed("it raised")}, "pretrend_failed", 2),
        ({"pretrend_p": 0.049, "breakdown": None}, "pretrend_failed", 2),
        ({"pretrend_p": 0.049, "breakdown": 1.0}, "pretrend_failed_robust", 1),
        ({"pretrend_p": 0.0, "breakdown": math.inf}, "pretrend_failed_robust", 1),
        ({"placebo_p": 0.049}, "placebo_failed", 1),
        ({"n_treated_clusters": 9}, "few_clusters", 1),
        ({"n_treated_clusters": 1}, "few_clusters", 1),
        ({"ci_width_ratio": 1.0001}, "wide_interval", 1),
        ({"ci_width_ratio": math.inf}, "wide_interval", 1),
        ({"i2": 0.7501}, "high_heterogeneity", 1),
    ],
)
def test_rule_fires_just_past_threshold(kwargs, code, removed):
    r = _pad(5, **kwargs)
    assert r.codes == [code]
    assert r.reasons[0].removed == removed
    assert r.padlocks == 5 - removed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pretrend_p": 0.05}, {"pretrend_p": 1.0},
        {"pretrend_p": 0.6, "breakdown": 0.0}, {"pretrend_p": 0.6, "breakdown": failed("it raised")},
        {"placebo_p": 0.05},
        {"n_treated_clusters": 10},
        {"ci_width_ratio": 1.0}, {"ci_width_ratio": 0.0},
        {"i2": 0.75}, {"i2": 0.0},
    ],
)
def test_rule_silent_at_threshold(kwargs):
    r = _pad(5, **kwargs)
    assert r.reasons == () and r.padlocks == 5


def test_thresholds_are_the_named_constants():
    assert (ev.PRETREND_ALPHA, ev.PLACEBO_ALPHA, ev.MIN_TREATED_CLUSTERS,
            ev.MAX_CI_WIDTH_RATIO, ev.MAX_I2, ev.SYNTHETIC_DATA_CAP) == (0.05, 0.05, 10, 1.0,
                                                                           0.75, 0)
    assert (ev.BREAKDOWN_ROBUST, ev.PRETREND_PENALTY, ev.PRETREND_ROBUST_PENALTY) == (1.0, 2, 1)
    assert [r.code for r in ev.RULES] == ["pretrend_failed", "pretrend_failed_robust", "placebo_failed", "few_clusters",
                                          "wide_interval", "high_heterogeneity",
                                          "synthetic_data"]


def test_synthetic_data_caps_at_zero_and_keeps_uncapped():
    r = _pad(4, n_treated_clusters=5, synthetic_data=True)
    assert r.padlocks == 0
    assert r.uncapped == 3
    assert r.codes == ["few_clusters", "synthetic_data"]
    assert [x.removed for x in r.reasons] == [1, 3]


def test_synthetic_cap_on_already_zero_records_zero_removed():
    r = _pad(1, pretrend_p=0.01, breakdown=0.1, synthetic_data=True)
    assert r.padlocks == 0 and r.uncapped == 0
    assert [(x.code, x.removed) for x in r.reasons] == [("pretrend_failed", 1),
                                                        ("synthetic_data", 0)]


def test_all_threats_floor_at_zero_and_reasons_add_up():
    r = padlocks(4, n_treated_clusters=3, pretrend_p=0.01, placebo_p=0.01,
                 ci_width_ratio=2.0, i2=0.9, breakdown=0.2)
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
    r = _pad(level, n_treated_clusters=n, pretrend_p=pre, synthetic_data=synthetic)
    assert 0 <= r.padlocks <= r.uncapped <= r.maryland == level
    assert level - sum(x.removed for x in r.reasons) == r.padlocks


def test_typical_findings():
    no_cohorts = not_applicable("no effects per cohort")
    # staggered DiD, 40 treated comuni, clean diagnostics, tight CI
    assert padlocks(maryland_level("staggered_did"), n_treated_clusters=40, pretrend_p=0.5, placebo_p=0.6,
                    ci_width_ratio=0.4, i2=0.3, breakdown=3.0).padlocks == 4
    # one treated comune with synthetic control (no leads), clean in-space placebo
    assert padlocks(maryland_level("synthetic_control"), n_treated_clusters=1, pretrend_p=not_applicable("no leads"),
                    placebo_p=0.3, ci_width_ratio=0.5, i2=no_cohorts,
                    breakdown=not_applicable("no event study")).padlocks == 2
    # TWFE with failed pre-trends
    assert padlocks(maryland_level("twfe_did"), n_treated_clusters=30, pretrend_p=0.01, placebo_p=0.5,
                    ci_width_ratio=0.5, i2=no_cohorts, breakdown=0.3).padlocks == 1
    # the same with a rejected pre-trend but an effect robust to divergences up to 1.5x the pre-adoption one
    assert padlocks(maryland_level("twfe_did"), n_treated_clusters=30, pretrend_p=0.01, placebo_p=0.5,
                    ci_width_ratio=0.5, i2=no_cohorts, breakdown=1.5).padlocks == 2
    # the same TWFE whose pre-trend test raised: no better than with the failed test
    assert padlocks(maryland_level("twfe_did"), n_treated_clusters=30, pretrend_p=failed("no usable lead"),
                    placebo_p=0.5, ci_width_ratio=0.5, i2=no_cohorts, breakdown=0.3).padlocks == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"maryland": 0}, {"maryland": 6}, {"maryland": 3.0}, {"maryland": True},
     {"maryland": 3, "pretrend_p": 1.5}, {"maryland": 3, "placebo_p": -0.1},
     {"maryland": 3, "i2": 75}, {"maryland": 3, "ci_width_ratio": -1},
     {"maryland": 3, "n_treated_clusters": -2}, {"maryland": 3, "breakdown": -0.5}],
)
def test_invalid_padlock_inputs_raise(kwargs):
    with pytest.raises(InputError):
        padlocks(**{**CLEAN, **kwargs})


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
    assert list(t[cols[0]]) == ["start", *[r.code for r in ev.RULES], "failed", "not_applicable", "floor"]
    assert list(t[cols[2]])[1:-3] == ["-2", "-1", "-1", "-1", "-1", "-1",
                                      "max 0" if lang == "en" else "massimo 0"]
    assert list(t[cols[2]])[-3:-1] == (["= rule", "0"] if lang == "en" else ["= regola", "0"])


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


# --- states of a diagnostic: computed, not applicable, failed ----------------------------

# per diagnostic a rule reads: a computed value that passes, and one that shows the threat
VALUES = {"n_treated_clusters": (50, 3), "pretrend_p": (0.6, 0.01), "placebo_p": (0.4, 0.01),
          "ci_width_ratio": (0.3, 2.0), "i2": (0.2, 0.9), "breakdown": (2.0, 0.3)}
# modifiers: diagnostics that only choose between penalties; not applicable never softens one
MODIFIERS = {"breakdown"}
STATES = ("pass", "threat", "not_applicable", "failed")


def _args(states: dict[str, str]) -> dict:
    out = {}
    for name, state in states.items():
        ok, bad = VALUES[name]
        out[name] = {"pass": ok, "threat": bad, "not_applicable": not_applicable("by design"),
                     "failed": failed("it raised")}[state]
    return out


def test_the_property_covers_every_rule():
    assert set(VALUES) == {r.reads for r in ev.RULES if r.cap is None} | {r.given[0] for r in ev.RULES if r.given}


@pytest.mark.parametrize("synthetic", [False, True])
@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_a_failed_diagnostic_never_grades_higher_than_a_failing_one(level, synthetic):
    """Over every combination of states of every diagnostic: a failed diagnostic grades
    exactly as one showing the threat (same rating, same rules fired), so never higher,
    and never higher than a passing or not-applicable one; not applicable grades as a
    pass (its rule is skipped)."""
    names = list(VALUES)
    for combo in itertools.product(STATES, repeat=len(names)):
        states = dict(zip(names, combo, strict=True))
        r = padlocks(level, **_args(states), synthetic_data=synthetic)
        as_threat = padlocks(level, **_args({k: "threat" if v == "failed" else v for k, v in states.items()}),
                             synthetic_data=synthetic)
        as_pass = padlocks(level, **_args({k: ("threat" if k in MODIFIERS else "pass") if v == "not_applicable"
                                              else v for k, v in states.items()}), synthetic_data=synthetic)
        assert (r.padlocks, r.uncapped, r.codes) == (as_threat.padlocks, as_threat.uncapped, as_threat.codes), states
        assert [x.removed for x in r.reasons] == [x.removed for x in as_threat.reasons], states
        assert (r.padlocks, r.uncapped, r.codes) == (as_pass.padlocks, as_pass.uncapped, as_pass.codes), states
        assert 0 <= r.padlocks <= r.uncapped <= level and level - sum(x.removed for x in r.reasons) == r.padlocks
        for name, state in states.items():
            if state == "failed":
                for other in ("pass", "not_applicable"):
                    better = padlocks(level, **_args({**states, name: other}), synthetic_data=synthetic)
                    assert r.padlocks <= better.padlocks and r.uncapped <= better.uncapped, (states, name)
        # the reasons say which rules fired because their diagnostic failed, and why
        failed_codes = {x.code for x in r.reasons if x.failed is not None}
        assert failed_codes == {c for c in r.codes if states.get(ev._rule(c).reads) == "failed"}, states
        assert {ev._rule(c).reads for c in failed_codes} == {k for k, v in states.items()
                                                              if v == "failed" and k not in MODIFIERS}, states
        assert all(x.failed == "it raised" for x in r.reasons if x.failed is not None)


@pytest.mark.parametrize("rule", [r for r in ev.RULES if r.cap is None], ids=lambda r: r.code)
def test_each_rule_fires_on_its_failed_diagnostic_with_its_penalty(rule):
    modifier = {} if rule.given is None else {rule.given[0]: 2.0 if rule.given[1](ev.computed(2.0)) else 0.1}
    r = _pad(5, **{rule.reads: failed("too few periods")}, **modifier)
    assert r.codes == [rule.code] and r.reasons[0].removed == rule.removed
    assert r.reasons[0].failed == "too few periods"
    assert _pad(5, **{rule.reads: not_applicable("by design")}).reasons == ()


def test_reason_text_says_the_test_could_not_be_computed_and_counts_as_failed():
    r = _pad(5, pretrend_p=failed("no lead with a usable standard error"), placebo_p=0.01)
    assert reason_text(r.reasons[0], "it") == ("test pre-trend non calcolabile: no lead with a usable standard error "
                                               "— conta come non superato")
    assert reason_text(r.reasons[0], "en") == ("pre-trend test could not be computed: no lead with a usable "
                                               "standard error — counts as failed")
    # a test that ran and failed keeps the rule's own words
    assert reason_text(r.reasons[1], "it") == ev.rule_text("placebo_failed", "it")
    for rule in ev.RULES:  # every rule has both wordings of a failure, with the reason
        assert "{reason}" in rule.failed_it and "{reason}" in rule.failed_en and rule.failed_it != rule.failed_en


@pytest.mark.parametrize(
    "record,expected",
    [
        ({"status": "computed", "reason": None, "p_value": 0.3}, Check("computed", 0.3)),
        ({"status": "computed", "reason": None, "p_value": None}, failed(ev.NO_VALUE)),
        ({"status": "computed", "reason": None, "p_value": float("nan")}, failed(ev.NO_VALUE)),
        ({"status": "not_applicable", "reason": "no leads", "p_value": None}, not_applicable("no leads")),
        ({"status": "failed", "reason": "LinAlgError: singular", "p_value": None}, failed("LinAlgError: singular")),
        ({"status": "failed", "p_value": None}, failed("no reason recorded")),
        ({"p_value": 0.2}, Check("computed", 0.2)),  # a record without a status: its value decides
        ({"p_value": None}, failed(ev.NO_VALUE)),
        (None, failed("not recorded")),  # the diagnostic did not run
    ],
)
def test_check_from_a_stage_30_record(record, expected):
    assert check_from_record(record) == expected


def test_check_from_record_reads_another_key_and_refuses_an_unknown_status():
    assert check_from_record({"status": "computed", "i2": 0.8}, "i2") == Check("computed", 0.8)
    with pytest.raises(InputError, match="status must be one of"):
        check_from_record({"status": "skipped", "p_value": None})
