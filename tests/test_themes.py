"""Theme files: the shipped ones validate; bad ones name the key and what is allowed."""

from __future__ import annotations

import pytest

from osservatorio import paths
from osservatorio.exceptions import ThemeError
from osservatorio.themes import STAGE_NOTEBOOKS, check_theme_id, list_theme_ids, load_theme

DEMO_THEMES = ["case-comunita", "citta-pilota", "cooperative-aree-interne", "coprogettazione-anziani",
               "finanza-sociale-neet", "patti-beni-comuni"]


def test_the_six_demo_themes_validate():
    assert list_theme_ids() == DEMO_THEMES
    for tid in DEMO_THEMES:
        theme = load_theme(tid)
        assert theme.id == tid
        assert theme.title.it and theme.title.en
        assert set(theme.stages) <= set(STAGE_NOTEBOOKS)


def _write(tmp_path, text: str):
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = (paths.themes_dir() / "patti-beni-comuni.yaml")


def test_unknown_key_is_named(tmp_path):
    path = _write(tmp_path, BASE.read_text() + "colour: blue\n")
    with pytest.raises(ThemeError, match=r"unknown key 'colour'") as exc:
        load_theme(path)
    assert exc.value.exit_code == 2
    assert str(path) in str(exc.value)


def test_bad_option_lists_allowed_values(tmp_path):
    path = _write(tmp_path, BASE.read_text().replace("design: staggered_did", "design: magic"))
    with pytest.raises(ThemeError, match=r"key 'design' = 'magic' is not allowed; allowed: .*'staggered_did'"):
        load_theme(path)


def test_wrong_type_is_named(tmp_path):
    path = _write(tmp_path, BASE.read_text().replace("n_pilots: 40", "n_pilots: many"))
    with pytest.raises(ThemeError, match=r"key 'selection.n_pilots'"):
        load_theme(path)


def test_period_format_follows_frequency(tmp_path):
    path = _write(tmp_path, BASE.read_text().replace('period_start: "2014"', 'period_start: "2014-01"'))
    with pytest.raises(ThemeError, match="period_start='2014-01' must be YYYY"):
        load_theme(path)


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ThemeError, match="not valid YAML"):
        load_theme(_write(tmp_path, "id: [unclosed\n"))
    with pytest.raises(ThemeError, match="unknown theme 'nope'.*known themes"):
        load_theme("nope")


def test_language_override_and_defaults():
    theme = load_theme("patti-beni-comuni", {"language": "en"})
    assert theme.language == "en"
    assert theme.disclosure_threshold == 5  # from params/defaults.yaml


def test_unknown_key_and_bad_value_are_quoted_short(tmp_path):
    path = _write(tmp_path, BASE.read_text().replace('period_start: "2014"', "period_start: [" + ", ".join(
        ["'xxxxxxxxxx'"] * 5000) + "]"))
    with pytest.raises(ThemeError) as exc:
        load_theme(path)
    msg = str(exc.value)
    assert "key 'period_start'" in msg and "characters)" in msg and len(msg) < 400


def test_defaults_file_is_read_by_the_same_loader(fresh_project):
    defaults = fresh_project / "params" / "defaults.yaml"
    defaults.write_text(defaults.read_text() + "seed: 1\n")  # seed is already set above
    with pytest.raises(ThemeError, match=r"defaults.yaml, line \d+, column 1: key 'seed' is written twice"):
        load_theme("patti-beni-comuni")


def test_overrides_must_be_a_mapping():
    with pytest.raises(ThemeError, match="overrides must be a mapping"):
        load_theme("patti-beni-comuni", "language: en")


@pytest.mark.parametrize("theme_id", ["/tmp/evil", "../../tmp/evil", "a/b", "..", "x..y"])
def test_theme_id_that_is_a_path_is_refused(theme_id):
    with pytest.raises(ThemeError, match="is a path: give a name"):
        check_theme_id(theme_id)


@pytest.mark.parametrize("theme_id", ["Bad", "-x", ".hidden", "a_b", "x" * 65, "é"])
def test_theme_id_outside_the_pattern_is_refused(theme_id):
    with pytest.raises(ThemeError, match=r"is not allowed: lowercase .*\(pattern \^\[a-z0-9\]\[a-z0-9-\]\*\$\)"):
        check_theme_id(theme_id)
    check_theme_id("ok-2")


def test_many_errors_are_counted_not_all_listed(tmp_path):
    path = _write(tmp_path, BASE.read_text() + "".join(f"chiave_{i}: {i}\n" for i in range(500)))
    with pytest.raises(ThemeError) as exc:
        load_theme(path)
    lines = str(exc.value).splitlines()
    assert len(lines) == 22 and lines[-1] == "  ... and 480 more"
