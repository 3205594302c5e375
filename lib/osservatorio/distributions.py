"""The t, normal, chi-squared and F distribution functions the estimators use, from
``scipy.special``: the same functions, hence the same numbers, as ``scipy.stats``
(which calls them), without its import.

``import scipy.stats`` takes about a second (it builds every distribution of the
package); a stage kernel imported it only for critical values and p-values, and paid it
on every run. Each function here is the one ``scipy.stats`` evaluates for the same call
(scipy 1.17, ``_continuous_distns``): ``t.ppf(q, df)`` is ``stdtrit(df, q)``,
``norm.sf(x)`` is ``ndtr(-x)``, ``chi2.ppf(q, df)`` is ``2 * gammaincinv(df / 2, q)``,
and so on, with scipy's answer outside the domain (nan for a bad parameter or a
probability outside [0, 1]). ``tests/test_distributions.py`` checks every function
against ``scipy.stats`` on grids that include the edges.

Scalars give a numpy float64, arrays an array of the broadcast shape, as in scipy.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from scipy import special as sc

__all__ = ["t", "norm", "chi2", "f"]


def _out(value, valid) -> np.ndarray | np.float64:
    value = np.where(valid, value, np.nan)
    return value[()] if value.ndim == 0 else value


def _prob(q) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    return (q >= 0) & (q <= 1)


def _quantile(value, q, low: float, *, upper: bool = False):
    """scipy's bounds at the ends: the quantile of probability 0 is the support's lower
    end ``low``, of probability 1 its upper end (inf); reversed for ``upper`` (isf)."""
    at_zero, at_one = (np.inf, low) if upper else (low, np.inf)
    return np.where(q == 0, at_zero, np.where(q == 1, at_one, value))


def _positive(*params) -> np.ndarray:
    ok = np.bool_(True)
    for p in params:
        ok = ok & (np.asarray(p, dtype=float) > 0)
    return ok


def _x(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return ~np.isnan(x)


def _args(*values):
    return [np.asarray(v, dtype=float) for v in values]


# Student's t with ``df`` degrees of freedom (df > 0; inf is the normal).
def _t_cdf(x, df):
    x, df = _args(x, df)
    return _out(sc.stdtr(df, x), _positive(df) & _x(x))


def _t_sf(x, df):
    x, df = _args(x, df)
    return _out(sc.stdtr(df, -x), _positive(df) & _x(x))


def _t_ppf(q, df):
    q, df = _args(q, df)
    return _out(_quantile(sc.stdtrit(df, q), q, -np.inf), _positive(df) & _prob(q))


def _t_isf(q, df):
    q, df = _args(q, df)
    return _out(_quantile(-sc.stdtrit(df, q), q, -np.inf, upper=True), _positive(df) & _prob(q))


# Standard normal.
def _norm_cdf(x):
    (x,) = _args(x)
    return _out(sc.ndtr(x), _x(x))


def _norm_sf(x):
    (x,) = _args(x)
    return _out(sc.ndtr(-x), _x(x))


def _norm_ppf(q):
    (q,) = _args(q)
    return _out(_quantile(sc.ndtri(q), q, -np.inf), _prob(q))


def _norm_isf(q):
    (q,) = _args(q)
    return _out(_quantile(-sc.ndtri(q), q, -np.inf, upper=True), _prob(q))


# Chi-squared with ``df`` degrees of freedom (df > 0); support x >= 0.
def _chi2_cdf(x, df):
    x, df = _args(x, df)
    return _out(np.where(x < 0, 0.0, sc.chdtr(df, np.maximum(x, 0))), _positive(df) & _x(x))


def _chi2_sf(x, df):
    x, df = _args(x, df)
    return _out(np.where(x < 0, 1.0, sc.chdtrc(df, np.maximum(x, 0))), _positive(df) & _x(x))


def _chi2_ppf(q, df):
    q, df = _args(q, df)
    return _out(_quantile(2 * sc.gammaincinv(df / 2, q), q, 0.0), _positive(df) & _prob(q))


def _chi2_isf(q, df):
    q, df = _args(q, df)
    return _out(_quantile(sc.chdtri(df, q), q, 0.0, upper=True), _positive(df) & _prob(q))


# F with ``dfn`` and ``dfd`` degrees of freedom (both > 0); support x >= 0.
def _f_sf(x, dfn, dfd):
    x, dfn, dfd = _args(x, dfn, dfd)
    return _out(np.where(x < 0, 1.0, sc.fdtrc(dfn, dfd, np.maximum(x, 0))), _positive(dfn, dfd) & _x(x))


def _f_cdf(x, dfn, dfd):
    x, dfn, dfd = _args(x, dfn, dfd)
    return _out(np.where(x < 0, 0.0, sc.fdtr(dfn, dfd, np.maximum(x, 0))), _positive(dfn, dfd) & _x(x))


t = SimpleNamespace(cdf=_t_cdf, sf=_t_sf, ppf=_t_ppf, isf=_t_isf)
norm = SimpleNamespace(cdf=_norm_cdf, sf=_norm_sf, ppf=_norm_ppf, isf=_norm_isf)
chi2 = SimpleNamespace(cdf=_chi2_cdf, sf=_chi2_sf, ppf=_chi2_ppf, isf=_chi2_isf)
f = SimpleNamespace(cdf=_f_cdf, sf=_f_sf)
