"""Data: real reference comuni, source schemas and loading, demo generator, name matching.

Names are imported on first use: ``osservatorio.data.files`` (hashing the sources) must
not import pandas with the package."""

__all__ = ["comuni", "comuni_geometry", "population_by_age", "match_comuni"]


def __getattr__(name):
    if name in ("comuni", "comuni_geometry", "population_by_age"):
        from osservatorio.data import reference

        return getattr(reference, name)
    if name == "match_comuni":
        from osservatorio.data.names import match_comuni

        return match_comuni
    raise AttributeError(name)
