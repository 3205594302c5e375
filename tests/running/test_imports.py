"""What is imported, and when: deferred imports, and what must not come before a kernel starts."""

from __future__ import annotations

import os
import subprocess
import sys


def _python_ok(code: str, project=None) -> None:
    """Run ``code`` in a new interpreter (on ``project``'s outputs); it must exit 0."""
    env = {**os.environ, "OSSERVATORIO_ROOT": str(project)} if project else None
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert res.returncode == 0, res.stderr


def test_deferred_module_imports_the_real_one_on_first_use():
    code = ("import sys, osservatorio.running, papermill\n"
            "from jsonschema import _format\n"
            "assert getattr(sys.modules['rfc3987_syntax'], '__doc__', '').startswith('stand-in')\n"
            "from rfc3987_syntax import is_valid_syntax\n"
            "assert is_valid_syntax('iri', 'https://example.org/a') and not is_valid_syntax('iri', 'no spaces ok?')\n"
            "assert 'Lark' in repr(type(sys.modules['rfc3987_syntax'].__dict__.get('parser', object())))"
            " or sys.modules['rfc3987_syntax'].__doc__ != 'stand-in: the real module is imported on first use'\n")
    _python_ok(code)


def test_a_run_decides_and_starts_its_kernel_before_importing_pandas():
    """The command line, the runner and the up-to-date check import no pandas: the kernel
    starts (and imports the scientific stack) while this process imports it."""
    code = ("import sys, osservatorio.cli, osservatorio.running.runner as r\n"
            "p = r.prepare_run('finanza-sociale-neet', validate=False)\n"
            "r.is_up_to_date(p); r.validated_before(p)\n"
            "assert 'pandas' not in sys.modules, 'pandas imported'\n")
    _python_ok(code)


def test_the_kernel_imports_of_every_stage_leave_out_scipy_stats_statsmodels_and_optimize():
    """What a stage kernel imports while booting (runner.warm_imports) skips the packages
    only some estimators need (about 1.5 s): they are imported where used."""
    from osservatorio.running.runner import STAGE_MODULES, warm_imports

    code = (warm_imports(list(STAGE_MODULES)) + "\nimport sys\n"
            "heavy = [m for m in ('scipy.stats', 'statsmodels', 'scipy.optimize') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    _python_ok(code)


def test_validating_a_design_imports_no_matplotlib(fresh_project):
    """A batch validates every theme's design in its own process before any worker starts:
    that check needs the estimators' package, not its figure (matplotlib is 0.9 s)."""
    code = ("import sys\n"
            "from osservatorio.running import runner\n"
            "p = runner.prepare_run('patti-beni-comuni')\n"  # sources and design checked
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
            "from osservatorio import evaluate\n"
            "from osservatorio.publishing.event_plots import plot_event_study\n"
            "assert evaluate.plot_event_study is plot_event_study\n")
    _python_ok(code, fresh_project)


def test_a_run_starts_its_kernel_before_importing_papermill(tmp_path):
    """The kernel manager imports its client class when it is created: that class must not
    bring papermill and nbformat (0.5 s) in before the kernel starts booting."""
    code = ("import sys, pathlib\n"
            "from osservatorio.running import runner\n"
            f"with runner.theme_kernel(pathlib.Path({str(tmp_path)!r})) as get:\n"
            "    km = get()\n"
            "    assert km.has_kernel\n"
            "    late = [m for m in ('papermill', 'nbformat', 'pandas') if m in sys.modules]\n"
            "    assert not late, late\n")
    _python_ok(code)


def test_the_fork_server_preloads_modules_that_exist_and_a_bad_batch_starts_no_server(fresh_project, tmp_path):
    """multiprocessing skips a preload module it cannot import without a word: each one must
    import. The server is started only once a theme is to be validated and run."""
    import importlib

    from osservatorio.running.batch import WORKER_PRELOAD

    for name in WORKER_PRELOAD:
        importlib.import_module(name)
    theme = tmp_path / "bad.yaml"
    theme.write_text("id: bad\ndesign: nessuno\n", encoding="utf-8")
    code = ("import multiprocessing.forkserver as f, sys\n"
            "from osservatorio.running.batch import run_batch\n"
            "from osservatorio.exceptions import InputError\n"
            "try:\n"
            f"    run_batch([{str(theme)!r}], workers=1)\n"
            "except InputError:\n"
            "    pass\n"
            "assert f._forkserver._forkserver_pid is None, 'fork server started'\n")
    _python_ok(code, fresh_project)
