"""The command line on bad input: exit code 2, one line naming the file and what to do,
no traceback, nothing written (outputs/ and the disk outside params/themes untouched)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "osservatorio.cli"]


def _cli(args, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OSSERVATORIO_ROOT": str(root), "COLUMNS": "80"}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=600)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error_line(res: subprocess.CompletedProcess) -> str:
    """The one line of an input error (exit 2, no traceback)."""
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_new_theme_refuses_a_path_and_writes_nothing(fresh_project, tmp_path, where):
    outside = tmp_path / "outside"
    outside.mkdir()
    theme_id = str(outside / "evil") if where == "absolute" else os.path.relpath(
        outside / "evil", fresh_project / "params" / "themes")
    before = _files(fresh_project)
    line = _error_line(_cli(["new-theme", theme_id], fresh_project))
    assert f"theme id '{theme_id}' is a path" in line
    assert list(outside.iterdir()) == [] and _files(fresh_project) == before


def test_new_theme_pattern_is_printed_intact(fresh_project):
    line = _error_line(_cli(["new-theme", "Nuovo_Tema"], fresh_project))
    assert "theme id 'Nuovo_Tema' is not allowed" in line and "(pattern ^[a-z0-9][a-z0-9-]*$)" in line
    assert not (fresh_project / "params" / "themes" / "Nuovo_Tema.yaml").exists()


def test_new_theme_writes_a_valid_file(fresh_project):
    res = _cli(["new-theme", "nuovo-tema", "--like", "case-comunita"], fresh_project)
    assert res.returncode == 0, res.stderr
    text = (fresh_project / "params" / "themes" / "nuovo-tema.yaml").read_text(encoding="utf-8")
    assert "id: nuovo-tema\n" in text and "design: event_study_its" in text
    assert "already exists" in _error_line(_cli(["new-theme", "nuovo-tema"], fresh_project))


def test_a_theme_file_not_in_utf8_is_reported_not_crashed_on(fresh_project):
    """One UTF-16 file in params/themes: `themes` lists it as invalid beside the others,
    `validate` and `batch` name it and stop with exit 2 before any notebook."""
    themes = fresh_project / "params" / "themes"
    text = (themes / "patti-beni-comuni.yaml").read_text(encoding="utf-8").replace(
        "id: patti-beni-comuni", "id: zz-utf16")
    (themes / "zz-utf16.yaml").write_bytes(text.encode("utf-16"))
    (themes / "zz-cp1252.yaml").write_bytes(text.replace("zz-utf16", "zz-cp1252").replace(
        "title:", "# attività\ntitle:").encode("cp1252"))
    res = _cli(["themes"], fresh_project)
    assert res.returncode == 0 and "Traceback" not in res.stderr
    listed = " ".join(res.stdout.split())
    assert "patti-beni-c" in listed and "zz-utf16" in listed and "invalid" in listed
    before = _files(fresh_project / "outputs") if (fresh_project / "outputs").exists() else {}
    res = _cli(["validate", "zz-utf16", "patti-beni-comuni"], fresh_project)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert [line for line in res.stderr.splitlines() if line.strip()] == [
        "error: bad input:",
        f"{themes / 'zz-utf16.yaml'}: theme file is encoded as UTF-16 LE (byte order mark): save it as UTF-8"]
    res = _cli(["batch", "zz-utf16", "zz-cp1252", "patti-beni-comuni"], fresh_project)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "zz-utf16.yaml: theme file is encoded as UTF-16 LE" in res.stderr
    assert "zz-cp1252.yaml: theme file is not UTF-8 (byte 0xE0 at offset" in res.stderr
    assert "looks like Windows-1252): save it as UTF-8" in res.stderr
    after = _files(fresh_project / "outputs") if (fresh_project / "outputs").exists() else {}
    assert {k: v for k, v in after.items() if not k.startswith(".cache")} == before


def test_alias_bomb_in_a_theme_is_refused_quickly(fresh_project):
    theme = fresh_project / "params" / "themes" / "patti-beni-comuni.yaml"
    bomb = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    bomb += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    theme.write_text("\n".join(bomb) + "\n" + theme.read_text().replace('period_start: "2014"', "period_start: *l8"))
    res = _cli(["validate", "patti-beni-comuni"], fresh_project)
    assert res.returncode == 2 and len(res.stderr) < 400, res.stderr[:1000]
    assert "patti-beni-comuni.yaml, line 1, column 5: YAML anchors and aliases (&l0) are not allowed" in res.stderr


def test_bad_source_files_exit_2_each_named_in_one_line(fresh_project):
    """A corrupt workbook, a truncated gzip and a cell holding rich markup: `validate` and
    `batch` stop with exit 2 before any notebook, one line per file, the cell as written."""
    import gzip

    import pandas as pd

    demo = fresh_project / "data" / "demo"
    (demo / "pilot.csv").unlink()
    (demo / "pilot.xlsx").write_bytes(b"PK\x03\x04 a workbook cut short")
    data = gzip.compress((demo / "esiti.csv").read_bytes()[:2_000_000])
    (demo / "esiti.csv").unlink()
    (demo / "esiti.csv.gz").write_bytes(data[:-100])
    enti = pd.read_csv(demo / "enti_terzo_settore.csv", dtype=str, keep_default_na=False)
    enti.loc[4, "sezione"] = "[bold]ODV[/bold]"
    enti.to_csv(demo / "enti_terzo_settore.csv", index=False)
    outputs = fresh_project / "outputs"
    before = _files(outputs) if outputs.exists() else {}
    for args in (["validate", "patti-beni-comuni"], ["batch", "patti-beni-comuni", "case-comunita"]):
        res = _cli(args, fresh_project)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        lines = [line.strip() for line in res.stderr.splitlines() if line.strip() and "themes" not in line]
        assert lines[1] == f"3 problem(s) in the sources of {demo}:", res.stderr
        assert lines[2] == (f"{demo / 'enti_terzo_settore.csv'}, row 6, column 'sezione': value "
                            "'[bold]ODV[/bold]' is not one of: ODV, APS, Impresa sociale, Ente filantropico, "
                            "Rete associativa, Società di mutuo soccorso, Altri enti")
        assert lines[3].startswith(f"{demo / 'pilot.xlsx'}: not a readable XLSX workbook (not a zip archive")
        assert lines[4].startswith(f"{demo / 'esiti.csv.gz'}: not a valid gzip file (EOFError: Compressed file")
        assert len(lines) == 5
    after = _files(outputs) if outputs.exists() else {}
    assert {k: v for k, v in after.items() if not k.startswith(".cache")} == before


@pytest.mark.parametrize(("args", "code"), [(["themes"], 0), (["run", "no-such-theme"], 2), (["no-such-command"], 2)])
def test_the_command_exits_with_its_code_after_the_atexit_handlers_and_with_its_output(fresh_project, tmp_path,
                                                                                      args, code):
    # main() ends the process with os._exit (no interpreter teardown): the exit code, the
    # atexit handlers and everything printed must survive it, also through a pipe
    marker = tmp_path / "atexit-ran"
    script = ("import atexit, sys; from osservatorio import cli; "
              f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes')); "
              f"sys.argv = ['osservatorio', *{args!r}]; cli.main()")
    env = {**os.environ, "OSSERVATORIO_ROOT": str(fresh_project), "COLUMNS": "250"}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == code, res.stderr
    assert marker.read_text() == "yes"
    if code == 0:
        assert "coprogettazione-anziani" in res.stdout and res.stdout.rstrip().endswith("┘")  # the whole table
    else:
        assert res.stderr.strip()


@pytest.mark.parametrize("daemon", [True, False])
def test_the_command_skips_the_teardown_despite_daemon_threads_and_waits_for_the_others(fresh_project, tmp_path,
                                                                                       daemon):
    # a theme run leaves jupyter_client's heartbeat threads (daemon) behind: they must not
    # keep main() from ending at once; a non-daemon thread is waited for (its work done).
    # An object of __main__ is finalised by the interpreter's teardown only: its file
    # tells whether the teardown ran.
    done, teardown = tmp_path / "thread-done", tmp_path / "teardown-ran"
    # the threads run builtins: a function of __main__ would keep its globals alive
    thread = ("threading.Thread(target=time.sleep, args=(3600,), daemon=True)" if daemon else
              f"threading.Timer(1, os.write, (os.open({str(done)!r}, os.O_WRONLY | os.O_CREAT), b'yes'))")
    script = ("import os, sys, threading, time; from osservatorio import cli\n"
              f"fd = os.open({str(teardown)!r}, os.O_WRONLY | os.O_CREAT)\n"
              "class Finalised:  # no global looked up while the interpreter tears down\n"
              "    def __del__(self, write=os.write, fd=fd): write(fd, b'yes')\n"
              "keep = Finalised()\n"
              f"{thread}.start()\n"
              "sys.argv = ['osservatorio', 'themes']; cli.main()\n")
    env = {**os.environ, "OSSERVATORIO_ROOT": str(fresh_project), "COLUMNS": "250"}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "coprogettazione-anziani" in res.stdout
    if daemon:  # ended at once: no teardown, the sleeping thread cut short
        assert teardown.read_text() == "" and not done.exists()
    else:  # the Timer's thread waited for, then the normal teardown
        assert teardown.read_text() == "yes" and done.read_text() == "yes"


def test_the_installed_command_is_main():
    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["osservatorio"] == "osservatorio.cli:main"
