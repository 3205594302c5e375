"""Bounded YAML reading of parameter files: every refusal is one line naming the file
and where, and nothing is expanded, however the file was built."""

from __future__ import annotations

import pytest

from osservatorio.exceptions import ThemeError
from osservatorio.yamlfile import MAX_BYTES, parse_yaml, read_yaml_mapping


def _write(tmp_path, content: str | bytes, name: str = "t.yaml"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _alias_bomb(levels: int = 9) -> str:
    """The 'billion laughs': each level a list of nine aliases of the one before
    (9**9 strings once expanded), in about a kilobyte."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nperiod_start: *l{levels - 1}\n"


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 300, msg
    return msg


def test_alias_bomb_is_refused_before_expansion(tmp_path):
    path = _write(tmp_path, _alias_bomb())
    assert path.stat().st_size < 1500
    with pytest.raises(ThemeError) as exc:
        read_yaml_mapping(path)
    msg = _one_line(exc)
    assert str(path) in msg and "line 1" in msg and "anchors and aliases" in msg
    assert exc.value.exit_code == 2


def test_an_alias_alone_is_refused_too(tmp_path):
    with pytest.raises(ThemeError, match=r"line 2, column 15: YAML anchors and aliases \(\*a\)"):
        parse_yaml("x: 1\nperiod_start: *a\n", "t.yaml")


def test_duplicate_key_names_key_and_both_lines(tmp_path):
    path = _write(tmp_path, "design: staggered_did\nseed: 1\ndesign: synthetic_control\n")
    with pytest.raises(ThemeError) as exc:
        read_yaml_mapping(path)
    assert _one_line(exc) == f"{path}, line 3, column 1: key 'design' is written twice (first on line 1): keep one"


def test_duplicate_key_in_a_nested_mapping(tmp_path):
    with pytest.raises(ThemeError, match=r"line 4, column 3: key 'n_pilots' is written twice \(first on line 2\)"):
        parse_yaml("selection:\n  n_pilots: 3\n  matching: propensity\n  n_pilots: 4\n", "t.yaml")


def test_size_limit_is_stated(tmp_path):
    path = _write(tmp_path, "title: '" + "x" * MAX_BYTES + "'\n")
    with pytest.raises(ThemeError) as exc:
        read_yaml_mapping(path)
    assert "larger than 256 KiB" in _one_line(exc)


def test_deep_nesting_is_refused_without_recursion_error(tmp_path):
    path = _write(tmp_path, "a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ThemeError) as exc:
        read_yaml_mapping(path)
    assert "nested more than" in _one_line(exc)


@pytest.mark.parametrize(("encoding", "named"), [
    ("utf-16", "UTF-16 LE (byte order mark)"), ("utf-16-be", "UTF-16 BE (no byte order mark)"),
    ("utf-32", "UTF-32 LE (byte order mark)")])
def test_wide_encodings_are_named(tmp_path, encoding, named):
    path = _write(tmp_path, "id: prova\ntitle: {it: città, en: city}\n".encode(encoding))
    with pytest.raises(ThemeError) as exc:
        read_yaml_mapping(path)
    assert _one_line(exc) == f"{path}: theme file is encoded as {named}: save it as UTF-8"


def test_cp1252_is_named_with_the_first_bad_byte(tmp_path):
    path = _write(tmp_path, "id: prova\ntitle: {it: città, en: city}\n".encode("cp1252"))
    with pytest.raises(ThemeError) as exc:
        read_yaml_mapping(path)
    assert _one_line(exc) == (f"{path}: theme file is not UTF-8 (byte 0xE0 at offset 26, line 2; "
                              "looks like Windows-1252): save it as UTF-8")


def test_utf8_with_bom_is_read(tmp_path):
    path = _write(tmp_path, "\ufeffid: prova\n".encode("utf-8"))
    assert read_yaml_mapping(path) == {"id": "prova"}


def test_syntax_error_is_one_line_with_position(tmp_path):
    with pytest.raises(ThemeError) as exc:
        read_yaml_mapping(_write(tmp_path, "a: [1, 2\nb: 3\n"))
    assert "line 2, column 2: not valid YAML: expected ',' or ']'" in _one_line(exc)


def test_not_a_mapping(tmp_path):
    with pytest.raises(ThemeError, match="must be a mapping of keys to values, not a list"):
        read_yaml_mapping(_write(tmp_path, "- a\n- b\n"))
