"""Command line: only argument parsing and printing; the work is in runner, batch, site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from osservatorio import paths
from osservatorio.exceptions import OsservatorioError, ThemeError
from osservatorio.themes import Language

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="osservatorio: action-research workbench for the Observatory of the Social Economy.")
out = Console()
err = Console(stderr=True)


# Text from files, options and errors is printed with markup off or escaped: rich reads
# "[a-z0-9]" in a pattern, or "[red]" in a theme title, as markup and swallows it.

def _fail(exc: OsservatorioError) -> None:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def _say(text: str, console: Console = out) -> None:
    """Print plain text as it is (no markup, no highlighting)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


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
        lang: Annotated[Optional[Language], typer.Option(help="report language (overrides the theme)")] = None) -> None:
    """Run one theme: the stages whose inputs changed (the others are reused from the last
    successful run), report, findings, then rebuild the site."""
    from osservatorio.exceptions import InputError
    from osservatorio.running.runner import run_theme
    from osservatorio.themes import STAGE_NOTEBOOKS

    overrides = {"language": lang} if lang else None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        task = progress.add_task(escape(theme), total=None)

        def on_stage(tid: str, stage: int, status: str) -> None:
            if status == "start":
                progress.update(task, description=escape(f"{tid}: stage {stage}"))
            else:
                progress.advance(task)

        try:
            if from_stage is not None and from_stage not in STAGE_NOTEBOOKS:
                raise InputError(f"--from-stage {from_stage} is not a stage; allowed: "
                                 f"{', '.join(map(str, STAGE_NOTEBOOKS))}")
            outcome = run_theme(theme, force=force, overrides=overrides, on_stage=on_stage, from_stage=from_stage)
        except OsservatorioError as exc:
            progress.stop()
            _fail(exc)
    _rebuild_site([outcome])
    _print_outcomes([outcome])
    raise typer.Exit(1 if outcome.status == "failed" else 0)


@app.command()
def batch(themes: Annotated[Optional[list[str]], typer.Argument(help="theme ids or files (default: all)")] = None,
          workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="parallel processes")] = 2,
          force: Annotated[bool, typer.Option("--force", help="rerun themes even if nothing changed")] = False,
          scheduler: Annotated[Optional[str], typer.Option(help="address of a Dask scheduler (tcp://host:8786)")] = None) -> None:
    """Run several themes in parallel (all by default), then rebuild the site."""
    from osservatorio.running.batch import run_batch
    from osservatorio.themes import list_theme_ids

    selected = themes or list_theme_ids()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        task = progress.add_task("themes", total=len(selected))

        def on_done(outcome) -> None:
            _say(f"  {outcome.theme_id}: {outcome.status}" + (f" ({outcome.error})" if outcome.error else ""),
                 progress.console)
            progress.advance(task)

        try:
            outcomes = run_batch(selected, workers=workers, force=force, scheduler=scheduler, on_done=on_done)
        except OsservatorioError as exc:
            progress.stop()
            _fail(exc)
    index = _rebuild_site(outcomes)
    _print_outcomes(outcomes)
    _say(f"site: {index}")
    raise typer.Exit(1 if any(o.status == "failed" for o in outcomes) else 0)


@app.command()
def site(lang: Annotated[Language, typer.Option(help="language of the index and catalogue pages")] = "it") -> None:
    """Rebuild outputs/site (index, findings catalogue) from the latest runs."""
    from osservatorio.publishing.site import build_site

    _say(f"site: {build_site(lang=lang)}")


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


def _rebuild_site(outcomes) -> Path:
    """Rebuild the site when a theme ran (or there is none yet): when every theme was
    skipped, the site already shows their latest runs."""
    index = paths.site_dir() / "index.html"
    if index.is_file() and all(o.status == "skipped" for o in outcomes):
        return index
    from osservatorio.publishing.site import build_site

    return build_site()


def _stages_text(stages: list[dict]) -> str:
    """'30 40 (10 20 reused)': the stages executed, then those copied from the last run."""
    ran = [str(s["stage"]) for s in stages if s.get("status") != "reused"]
    reused = [str(s["stage"]) for s in stages if s.get("status") == "reused"]
    return " ".join(ran) + (f" ({' '.join(reused)} reused)" if reused else "") if stages else "–"


def _print_outcomes(outcomes) -> None:
    table = Table("theme", "status", "stages run", "seconds", "run folder / error")
    for o in sorted(outcomes, key=lambda o: o.theme_id):
        colour = {"success": "green", "skipped": "cyan", "failed": "red"}.get(o.status, "white")
        table.add_row(escape(o.theme_id), f"[{colour}]{escape(o.status)}[/]", _stages_text(o.stages),
                      f"{o.duration_s:.0f}", escape(str(o.error if o.status == "failed" else o.run_dir)))
    out.print(table)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
