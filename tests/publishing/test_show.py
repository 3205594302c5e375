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
