"""osservatorio.distributions gives the numbers of scipy.stats, bit for bit, edges included."""

import numpy as np
import pytest
from scipy import stats

from osservatorio import distributions as dist

X = np.array([-np.inf, -40.0, -3.2, -1.0, -1e-9, 0.0, 1e-9, 0.3, 1.0, 1.959963984540054, 2.5, 7.0, 40.0, 1e3,
              np.inf, np.nan])
Q = np.array([-0.1, 0.0, 1e-300, 1e-12, 0.001, 0.025, 0.05, 0.3, 0.5, 0.7, 0.95, 0.975, 0.999, 1 - 1e-12, 1.0,
              1.1, np.nan])
DF = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 7.5, 30.0, 1e3, 1e8, np.inf])


def same(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("fn", ["cdf", "sf", "ppf", "isf"])
def test_t_equals_scipy(fn):
    points = X if fn in ("cdf", "sf") else Q
    grid_x, grid_df = np.meshgrid(points, DF)
    same(getattr(dist.t, fn)(grid_x, grid_df), getattr(stats.t, fn)(grid_x, grid_df))


@pytest.mark.parametrize("fn", ["cdf", "sf", "ppf", "isf"])
def test_norm_equals_scipy(fn):
    points = X if fn in ("cdf", "sf") else Q
    same(getattr(dist.norm, fn)(points), getattr(stats.norm, fn)(points))


@pytest.mark.parametrize("fn", ["cdf", "sf", "ppf", "isf"])
def test_chi2_equals_scipy(fn):
    points = X if fn in ("cdf", "sf") else Q
    grid_x, grid_df = np.meshgrid(points, DF[DF < np.inf])
    same(getattr(dist.chi2, fn)(grid_x, grid_df), getattr(stats.chi2, fn)(grid_x, grid_df))


@pytest.mark.parametrize("fn", ["cdf", "sf"])
def test_f_equals_scipy(fn):
    grid_x, grid_n, grid_d = np.meshgrid(X, DF[DF < np.inf], DF[DF < np.inf])
    same(getattr(dist.f, fn)(grid_x, grid_n, grid_d), getattr(stats.f, fn)(grid_x, grid_n, grid_d))


def test_scalars_give_numpy_floats_as_scipy():
    for ours, theirs in [(dist.t.ppf(0.975, 12), stats.t.ppf(0.975, 12)), (dist.norm.isf(0.025), stats.norm.isf(0.025)),
                         (dist.chi2.sf(3.1, 2), stats.chi2.sf(3.1, 2)), (dist.f.sf(2.0, 3, 40), stats.f.sf(2.0, 3, 40))]:
        assert type(ours) is type(theirs) is np.float64
        assert ours == theirs


def test_known_values():
    # textbook tables: t(10) 97.5% = 2.228, z 97.5% = 1.960, chi2(1) 95% = 3.841, F(3, 40) 95% = 2.839
    assert dist.t.ppf(0.975, 10) == pytest.approx(2.2281389, abs=1e-7)
    assert dist.norm.ppf(0.975) == pytest.approx(1.9599640, abs=1e-7)
    assert dist.chi2.isf(0.05, 1) == pytest.approx(3.8414588, abs=1e-7)
    assert dist.f.sf(2.8387454, 3, 40) == pytest.approx(0.05, abs=1e-7)


def test_importing_it_does_not_import_scipy_stats():
    import subprocess
    import sys

    code = "import sys, osservatorio.distributions; print('scipy.stats' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
