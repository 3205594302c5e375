"""Command line: only argument parsing and printing; the work is in runner, batch, site."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from osservatorio import paths
from osservatorio.exceptions import OsservatorioError, ThemeError
from osservatorio.running.locks import DEFAULT_TIMEOUT_S
from osservatorio.running.stopping import Interrupted, install_handlers
from osservatorio.languages import Language

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="osservatorio: action-research workbench for the Observatory of the Social Economy.")
out = Console()
err = Console(stderr=True)


# Text from files, options and errors is printed with markup off or escaped: rich reads
# "[a-z0-9]" in a pattern, or "[red]" in a theme title, as markup and swallows it.

LockTimeoutOption = Annotated[float, typer.Option(
    "--lock-timeout", help="seconds to wait for another run of the same theme or build of the site "
    "(negative: no limit)")]


def _fail(exc: OsservatorioError) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def _say(text: str, console: Console = out) -> None:
    """Print plain text as it is (no markup, no highlighting)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _latest_links() -> dict[str, str]:
    """Where each theme's ``latest`` points: compared after an interrupt, to tell whether
    a run was published before it (the site then has to show it)."""
    from osservatorio.running.runner import LATEST

    root = paths.outputs_dir()
    links = root.glob(f"*/{LATEST}") if root.is_dir() else []
    return {link.parent.name: os.readlink(link) for link in links if link.is_symlink()}


def _stopped(exc: Interrupted, before: dict[str, str], what: str, known: list | None = None) -> NoReturn:
    """One line after an interrupt: what stopped, what was not started, what finished
    (``known``: outcomes the command had before the interrupt); the site is rebuilt when
    a run was published before the stop (or the stop cut a rebuild short), so it shows
    every ``latest`` run."""
    parts = []
    outcomes = exc.outcomes or known or []
    by_status: dict[str, list[str]] = {}
    for o in outcomes:
        by_status.setdefault(o.status, []).append(o.theme_id)
    if outcomes:
        stopped = by_status.pop("interrupted", [])
        not_started = by_status.pop("not started", [])
        if stopped:
            parts.append(f"stopped, not published: {', '.join(stopped)}")
        if not_started:
            parts.append(f"not started: {', '.join(not_started)}")
        parts += [f"{status}: {', '.join(ids)}" for status, ids in sorted(by_status.items())]
    else:
        parts.append(f"{what} stopped, not published")
    if _latest_links() != before:
        try:
            _rebuild_site([], always=True)
            parts.append("site rebuilt")
        except (OsservatorioError, OSError) as problem:
            parts.append(f"site not rebuilt ({problem}): run osservatorio site")
    _say(f"interrupted ({exc}): " + "; ".join(parts), err)
    raise typer.Exit(exc.exit_code)


@app.command("themes")
def list_themes() -> None:
    """List the themes in params/themes with design and outcome."""
    from osservatorio.themes import list_theme_ids, load_theme

    table = Table("theme", "design", "outcome", "unit", "title")
    for tid in list_theme_ids():
        try:
            t = load_theme(tid)
            table.add_row(*map(escape, (tid, t.design, t.outcome, t.unit_level, t.title.it)))
        except OsservatorioError as exc:  # one bad file is listed as such, the others still shown
            table.add_row(escape(tid), "[red]invalid[/]", "", "", escape(str(exc).splitlines()[-1]))
    out.print(table)


@app.command()
def validate(themes: Annotated[Optional[list[str]], typer.Argument(help="theme ids or files (default: all)")] = None) -> None:
    """Validate theme files and their data sources without running anything."""
    from osservatorio.running.batch import validate_all
    from osservatorio.themes import list_theme_ids

    try:
        prepared = validate_all(themes or list_theme_ids(), header="bad input")
    except OsservatorioError as exc:
        _fail(exc)
    for note in dict.fromkeys(n for p in prepared for n in p.notes):  # each once, however many themes
        _say(f"note: {note}", err)
    out.print(f"[green]valid:[/] {escape(', '.join(p.theme.id for p in prepared))}", highlight=False)


@app.command()
def demo(seed: Annotated[int, typer.Option(help="seed of the generator")] = 20261125) -> None:
    """Generate the synthetic demo sources into data/demo (same seed, same bytes)."""
    from osservatorio.data.demo import generate_demo

    files = generate_demo(paths.demo_dir(), seed=seed)
    _say(f"synthetic demo data written to {paths.demo_dir()} ({len(files)} files)")


@app.command()
def run(theme: Annotated[str, typer.Argument(help="a theme id or the path of a theme file")],
        force: Annotated[bool, typer.Option("--force", help="rerun every stage even if nothing changed")] = False,
        from_stage: Annotated[Optional[int], typer.Option(
            "--from-stage", help="rerun this stage (10, 20, 30, 40) and the later ones; reuse the earlier")] = None,
        lang: Annotated[Optional[Language], typer.Option(help="report language (overrides the theme)")] = None,
        lock_timeout: LockTimeoutOption = DEFAULT_TIMEOUT_S) -> None:
    """Run one theme: the stages whose inputs changed (the others are reused from the last
    successful run), report, findings, then rebuild the site. Another run of the same
    theme is waited for. Ctrl-C stops it: nothing is published (exit 130)."""
    from osservatorio.exceptions import InputError
    from osservatorio.running.runner import early_kernel, run_theme

    install_handlers()
    before = _latest_links()
    overrides = {"language": lang} if lang else None
    outcome = None
    try:
        # the kernel boots while the theme is read and the run planned; ended if not used
        with early_kernel(), Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=err, transient=False) as progress:
            task = progress.add_task(escape(theme), total=None)

            def on_stage(tid: str, stage: int, status: str) -> None:
                if status == "start":
                    progress.update(task, description=escape(f"{tid}: stage {stage}"))
                else:
                    progress.advance(task)

            def on_wait(text: str) -> None:
                _say(f"{theme}: {text}", progress.console)

            try:
                if from_stage is not None:
                    from osservatorio.themes import STAGE_NOTEBOOKS

                    if from_stage not in STAGE_NOTEBOOKS:
                        raise InputError(f"--from-stage {from_stage} is not a stage; allowed: "
                                         f"{', '.join(map(str, STAGE_NOTEBOOKS))}")
                outcome = run_theme(theme, force=force, overrides=overrides, on_stage=on_stage, from_stage=from_stage,
                                    lock_timeout=lock_timeout, on_wait=on_wait)
            except OsservatorioError as exc:
                progress.stop()
                _fail(exc)
        _rebuild_site([outcome], lock_timeout=lock_timeout)
    except Interrupted as exc:
        _stopped(exc, before, f"the run of {theme}", known=[outcome] if outcome else None)
    except OsservatorioError as exc:
        _fail(exc)
    _print_outcomes([outcome])
    raise typer.Exit(1 if outcome.status == "failed" else 0)


@app.command()
def batch(themes: Annotated[Optional[list[str]], typer.Argument(help="theme ids or files (default: all)")] = None,
          workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="parallel processes")] = 2,
          force: Annotated[bool, typer.Option("--force", help="rerun themes even if nothing changed")] = False,
          scheduler: Annotated[Optional[str], typer.Option(help="address of a Dask scheduler (tcp://host:8786)")] = None,
          lock_timeout: LockTimeoutOption = DEFAULT_TIMEOUT_S) -> None:
    """Run several themes in parallel (all by default), then rebuild the site. Ctrl-C
    stops every worker and kernel within seconds; nothing half done is published (exit 130)."""
    from osservatorio.running.batch import run_batch
    from osservatorio.themes import list_theme_ids

    install_handlers()
    before = _latest_links()
    selected = themes or list_theme_ids()
    outcomes = []
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err) as progress:
            task = progress.add_task("themes", total=len(selected))

            def on_done(outcome) -> None:
                _say(f"  {outcome.theme_id}: {outcome.status}" + (f" ({outcome.error})" if outcome.error else ""),
                     progress.console)
                progress.advance(task)

            def on_notice(text: str) -> None:
                _say(f"  {text}", progress.console)

            try:
                outcomes = run_batch(selected, workers=workers, force=force, scheduler=scheduler, on_done=on_done,
                                     on_notice=on_notice, lock_timeout=lock_timeout)
            except OsservatorioError as exc:
                progress.stop()
                _fail(exc)
        index = _rebuild_site(outcomes, lock_timeout=lock_timeout)
    except Interrupted as exc:
        _stopped(exc, before, "the batch", known=outcomes)
    except OsservatorioError as exc:
        _fail(exc)
    _print_outcomes(outcomes)
    _say(f"site: {index}")
    raise typer.Exit(1 if any(o.status == "failed" for o in outcomes) else 0)


@app.command()
def site(lang: Annotated[Language, typer.Option(help="language of the index and catalogue pages")] = "it",
         lock_timeout: LockTimeoutOption = DEFAULT_TIMEOUT_S) -> None:
    """Rebuild outputs/site (index, findings catalogue) from the latest runs (another build
    running at the same time is waited for)."""
    install_handlers()
    try:
        index = _rebuild_site([], always=True, lang=lang, lock_timeout=lock_timeout)
    except OsservatorioError as exc:
        _fail(exc)
    except Interrupted as exc:
        _say(f"interrupted ({exc}): the site may be partly rebuilt; run osservatorio site again", err)
        raise typer.Exit(exc.exit_code)
    _say(f"site: {index}")


@app.command()
def clean(dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be removed")] = False) -> None:
    """Remove what killed runs left behind: temporary run folders and `latest` links of
    processes that are no longer alive, connection files of their kernels. A live run's
    files are never touched."""
    from osservatorio.running.leftovers import all_leftovers, remove_leftovers

    found = all_leftovers()
    done = found if dry_run else remove_leftovers(found)
    for item in done:
        _say(f"{'would remove' if dry_run else 'removed'} {item.kind}: {item.path}")
    _say(f"{len(done)} leftover{'s' if len(done) != 1 else ''} {'found' if dry_run else 'removed'}")


@app.command("new-theme")
def new_theme(theme_id: Annotated[str, typer.Argument(help="id of the new theme (lowercase, dashes)")],
              like: Annotated[str, typer.Option(help="theme to copy")] = "patti-beni-comuni") -> None:
    """Scaffold params/themes/<id>.yaml from an existing theme, validated."""
    from osservatorio.themes import check_theme_id, resolve_theme_path, validate_theme_data
    from osservatorio.yamlfile import parse_yaml, read_text

    try:
        check_theme_id(theme_id)  # a name, never a path: nothing is written outside params/themes
        target = paths.themes_dir() / f"{theme_id}.yaml"
        if target.exists():
            raise ThemeError(f"{target} already exists: choose another id or edit that file")
        text = read_text(resolve_theme_path(like))
        lines = [f"id: {theme_id}" if line.startswith("id:") else line for line in text.splitlines()]
        text = "\n".join(lines) + "\n"
        data = parse_yaml(text, str(target))
        validate_theme_data(data if isinstance(data, dict) else {}, target)  # before anything is written
        with open(target, "x", encoding="utf-8") as fh:  # never over a file made meanwhile
            fh.write(text)
    except OsservatorioError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(ThemeError(f"{target}: cannot write the new theme file ({exc.strerror or exc})"))
    _say(f"created {target}: edit title, question, outcome and design, then `osservatorio run {theme_id}`")


@app.command()
def lab(theme: Annotated[str, typer.Argument(help="a theme id or the path of a theme file")],
        stage: Annotated[Optional[int], typer.Argument(help="stage notebook to open first (10, 20, 30, 40)")] = None,
        reset: Annotated[bool, typer.Option("--reset", help="replace copies you edited with fresh ones")] = False,
        browser: Annotated[bool, typer.Option("--browser/--no-browser", help="open a browser tab")] = True,
        port: Annotated[Optional[int], typer.Option(help="port of the server (default: Jupyter's, 8888 or next free)")] = None) -> None:
    """Open a theme's stage notebooks in JupyterLab: untracked copies with the theme injected."""
    from osservatorio.running.lab import lab_command, prepare_lab, start_lab

    try:
        copies = prepare_lab(theme, stage, reset=reset)
    except OsservatorioError as exc:
        _fail(exc)
    folder = copies.folder
    if copies.written:
        _say(f"wrote {', '.join(p.name for p in copies.written)} to {folder}")
    if copies.kept:
        _say(f"kept your edited {', '.join(p.name for p in copies.kept)} (pass --reset to replace them)")
    _say("JupyterLab: Ctrl-C stops it")
    root = paths.project_root()  # lib/ within reach of the file browser and of jump to definition
    raise typer.Exit(start_lab(lab_command(root, copies.notebook(stage), port, browser), cwd=root))


def _rebuild_site(outcomes, always: bool = False, lang: str = "it", lock_timeout: float = DEFAULT_TIMEOUT_S) -> Path:
    """Rebuild the site when a theme ran (or there is none yet): when every theme was
    skipped, the site already shows their latest runs. An OS error (disk full) becomes one
    line."""
    index = paths.site_dir() / "index.html"
    if not always and index.is_file() and all(o.status == "skipped" for o in outcomes):
        return index
    from osservatorio.publishing.site import build_site
    from osservatorio.running.writing import OutputError, os_error_message

    try:
        return build_site(lang=lang, lock_timeout=lock_timeout, on_wait=lambda text: _say(f"site: {text}", err))
    except OSError as exc:
        raise OutputError(f"{os_error_message(exc)}; the site was not rebuilt") from None


def _stages_text(stages: list[dict]) -> str:
    """'30 40 (10 20 reused)': the stages executed, then those copied from the last run."""
    ran = [str(s["stage"]) for s in stages if s.get("status") != "reused"]
    reused = [str(s["stage"]) for s in stages if s.get("status") == "reused"]
    return " ".join(ran) + (f" ({' '.join(reused)} reused)" if reused else "") if stages else "–"


def _print_outcomes(outcomes) -> None:
    table = Table("theme", "status", "stages run", "seconds", "run folder / error")
    for o in sorted(outcomes, key=lambda o: o.theme_id):
        colour = {"success": "green", "skipped": "cyan", "failed": "red", "interrupted": "yellow"}.get(o.status, "white")
        table.add_row(escape(o.theme_id), f"[{colour}]{escape(o.status)}[/]", _stages_text(o.stages),
                      f"{o.duration_s:.0f}", escape(str(o.error if o.status == "failed" else o.run_dir)))
    out.print(table)


def main() -> NoReturn:
    """The ``osservatorio`` command: run it, then exit without the interpreter's teardown.

    Freeing the modules a run imported (pandas, matplotlib, nbconvert, zmq) takes about
    0.4 s after the work is done, on every command. Once the atexit handlers have run
    (logging, jupyter_client's and multiprocessing's cleanups) and the output is flushed,
    nothing in that teardown is needed, so the process ends at once with the command's
    exit code. With another non-daemon thread still alive it exits normally, which waits
    for it; daemon threads (jupyter_client's heartbeat channels, jupyter_core's event
    loop runner after a theme run) would be stopped by the teardown all the same."""
    import atexit
    import sys
    import threading

    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written to it
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
