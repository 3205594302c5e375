"""Display helpers for stage notebooks: what they show is what the report shows.

Headings and narrative come from the labels in the theme's language, with the values put
into them (theme texts, names from the sources) escaped so they show as written; tables are
shown with Italian or English number formats and their text escaped as HTML; figures are
closed after display so memory does not grow in long runs.
"""

from __future__ import annotations

import html

import pandas as pd
from IPython.display import HTML, Markdown, display

from osservatorio.publishing.safe import escape_markdown
from osservatorio.publishing.text import Lang, t


def _escaped(values: dict) -> dict:
    """Text values escaped for markdown; numbers kept (labels may format them)."""
    return {k: escape_markdown(v) if isinstance(v, str) else v for k, v in values.items()}


def heading(key: str, lang: Lang = "it", level: int = 2, **values) -> None:
    display(Markdown("#" * level + " " + t(key, lang, **_escaped(values))))


def para(key: str, lang: Lang = "it", **values) -> None:
    """The label ``key`` with ``values`` (shown as written: markdown in them is escaped)."""
    display(Markdown(t(key, lang, **_escaped(values))))


def markdown(text: str) -> None:
    """Markdown built by the caller, who escapes what users wrote (``safe.escape_markdown``)."""
    display(Markdown(text))


def table(df: pd.DataFrame, lang: Lang = "it", digits: int = 2, caption: str | None = None, max_rows: int = 30) -> None:
    """An HTML table with language-aware number formatting and no index clutter.

    Float columns holding only whole numbers (counts, populations) show no decimals. Cells,
    column names and caption are escaped as HTML (names come from users' files).
    """
    view = df.head(max_rows)
    dec, thou = (",", ".") if lang == "it" else (".", ",")
    whole = [c for c in view.columns if pd.api.types.is_float_dtype(view[c])
             and view[c].dropna().mod(1).eq(0).all() and view[c].notna().any()]
    styler = (view.style.format(precision=digits, decimal=dec, thousands=thou, na_rep="–", escape="html")
              .format_index(escape="html", axis="columns").hide(axis="index"))
    if whole:
        styler = styler.format(precision=0, decimal=dec, thousands=thou, na_rep="–", subset=whole, escape="html")
    if caption:
        styler = styler.set_caption(html.escape(caption))
    display(HTML(styler.to_html()))
    if len(df) > max_rows:
        display(Markdown(t("table.truncated", lang, shown=max_rows, total=len(df))))


FIGURE_DPI = 110
PNG_ATTRIBUTE = "_osservatorio_png"  # the PNG a stage saved (StageContext.save_figure)


def figure(fig, dpi: int = FIGURE_DPI, alt: str | None = None) -> None:
    """Display a matplotlib figure as PNG (whatever the backend) and release it; the PNG
    the stage saved when there is one (drawn once, shown and saved the same).

    ``alt`` is the image's alternative text in the report (for screen readers); by
    default the figure's title, the titles of its panels, or their axis labels."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image

    if alt is None:
        titles = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) else []
        titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
        if not titles:  # an untitled chart: what is plotted against what
            titles = [f"{ax.get_ylabel()} / {ax.get_xlabel()}" for ax in fig.axes if ax.get_ylabel() and ax.get_xlabel()]
        alt = "; ".join(titles)
    png = getattr(fig, PNG_ATTRIBUTE, None) if dpi == FIGURE_DPI else None
    if png is None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        png = buf.getvalue()
    plt.close(fig)
    display(Image(data=png, format="png", alt=alt or None))
