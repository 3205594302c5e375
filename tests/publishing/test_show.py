"""Figures in the reports carry alternative text for screen readers."""

from __future__ import annotations

from matplotlib.figure import Figure

from osservatorio.publishing import show


def _shown_alt(monkeypatch, fig, **kw) -> str | None:
    shown = []
    monkeypatch.setattr(show, "display", shown.append)
    show.figure(fig, **kw)
    rendered = shown[0]._repr_png_()  # (bytes, metadata) when the image carries alt text
    return rendered[1].get("alt") if isinstance(rendered, tuple) else None


def test_alt_text_is_the_title_or_the_axis_labels(monkeypatch):
    fig = Figure()
    fig.subplots().set_title("Effetto per tempo dall'adozione")
    assert _shown_alt(monkeypatch, fig) == "Effetto per tempo dall'adozione"
    fig = Figure()
    ax = fig.subplots()
    ax.set_xlabel("effetto")
    ax.set_ylabel("potenza")
    assert _shown_alt(monkeypatch, fig) == "potenza / effetto"
    assert _shown_alt(monkeypatch, Figure(), alt="mappa") == "mappa"


def test_a_saved_figure_is_shown_from_the_same_png_drawn_once(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from osservatorio.publishing import show
    from osservatorio.running.stage import StageContext

    shown = []
    monkeypatch.setattr(show, "display", lambda obj: shown.append(obj))
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    ax.set_title("andamento")
    draws = []
    real = fig.savefig
    monkeypatch.setattr(fig, "savefig", lambda *a, **k: (draws.append(1), real(*a, **k))[1])
    path = StageContext.save_figure(SimpleNamespace(figures_dir=tmp_path), fig, "andamento")
    show.figure(fig)
    assert len(draws) == 1
    assert shown[0].data == path.read_bytes() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shown[0].alt == "andamento"
    fig2, ax2 = plt.subplots()  # not saved: drawn for display
    ax2.plot([0, 1])
    show.figure(fig2)
    assert shown[1].data[:8] == b"\x89PNG\r\n\x1a\n"
