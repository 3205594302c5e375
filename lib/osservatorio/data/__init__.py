"""Data: real reference comuni, source schemas and loading, demo generator, name matching."""

from osservatorio.data.reference import comuni, comuni_geometry, population_by_age

__all__ = ["comuni", "comuni_geometry", "population_by_age", "match_comuni"]


def __getattr__(name):
    if name == "match_comuni":
        from osservatorio.data.names import match_comuni

        return match_comuni
    raise AttributeError(name)
