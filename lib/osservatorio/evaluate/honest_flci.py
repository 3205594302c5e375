"""Fixed-length confidence interval under smoothness, Delta^SD(M) (R ``HonestDiD::findOptimalFLCI``).

Delta^SD(M): the second differences of the trend violation are at most M in absolute
value (M = 0: the violation is linear, extrapolated from the pre-periods). The FLCI of
Armstrong and Kolesar is the affine estimator a'beta (post weights l fixed, pre weights
free) and half-length cv_alpha(M * bias / sd) * sd that minimises that half-length,
where bias is the worst-case bias over Delta^SD(1) and cv_alpha(b) the 1 - alpha quantile
of |N(b, 1)| (folded normal). As R, the pre weights are parametrised by
W_i = w_1 + ... + w_i (w the "w-space" of R ``.wToLFn``) with W_K = sum_s s l_s fixed;
worst-case bias = M (const + sum_i |W_i|).

Differences from R: the folded-normal quantile is computed exactly (R simulates 10^6
draws with seed 0); the bias-sd frontier (R: least bias for sd <= h, one conic program
per h with ECOS) is the exact lasso path of the cumulative pre weights, and the point
on it is chosen by bounded scalar minimisation (the half-length is convex along the
frontier, as R's bisection in h assumes) instead of R's numerical-derivative bisection.
"""

from __future__ import annotations

import numpy as np

from osservatorio import distributions as dist


def folded_normal_quantile(p: float, mu: float) -> float:
    """c with P(|N(mu, 1)| <= c) = p."""
    from scipy.optimize import brentq

    mu = abs(mu)
    lo, hi = max(0.0, mu + float(dist.norm.ppf(p)) - 1.0), mu + float(dist.norm.ppf((1 + p) / 2)) + 1.0
    return float(brentq(lambda c: dist.norm.cdf(c - mu) - dist.norm.cdf(-c - mu) - p, lo, hi, xtol=1e-14))


def _bias_constant(l_vec: np.ndarray) -> float:
    t = len(l_vec)
    s = np.arange(1, t + 1)
    total = sum(abs(np.arange(1, k + 1) @ l_vec[t - k:]) for k in range(1, t + 1))
    return float(total - s @ l_vec)


def _pre_weights_from_cum(cum: np.ndarray) -> np.ndarray:
    """Pre-period weights (R ``optimal.l``) from W = cumsum(w): l_pre = wToL(diff(W))."""
    w = np.diff(np.concatenate([[0.0], cum]))
    return w - np.concatenate([[0.0], w[:-1]])


class _Problem:
    """Variance of the estimator as a quadratic in the free cumulative weights W_1..W_{K-1}."""

    def __init__(self, sigma: np.ndarray, num_pre: int, l_vec: np.ndarray):
        k = num_pre
        self.k, self.l_vec = k, l_vec
        self.w_last = float(np.arange(1, len(l_vec) + 1) @ l_vec)
        basis = np.eye(k)
        # l_pre is linear in W: columns = l_pre of unit W_i (free i < K) and of W_K
        maps = np.column_stack([_pre_weights_from_cum(basis[:, i]) for i in range(k)])
        self.lin_free, self.lin_fixed = maps[:, : k - 1], maps[:, k - 1] * self.w_last
        s_pre, s_pp, s_post = sigma[:k, :k], sigma[:k, k:], sigma[k:, k:]
        self.q = self.lin_free.T @ s_pre @ self.lin_free
        self.g = 2 * self.lin_free.T @ (s_pre @ self.lin_fixed + s_pp @ l_vec)
        self.c = float(self.lin_fixed @ s_pre @ self.lin_fixed + 2 * self.lin_fixed @ s_pp @ l_vec
                       + l_vec @ s_post @ l_vec)
        self.const = _bias_constant(l_vec) + abs(self.w_last)

    def variance(self, cum_free: np.ndarray) -> float:
        return float(cum_free @ self.q @ cum_free + self.g @ cum_free + self.c)

    def pre_weights(self, cum_free: np.ndarray) -> np.ndarray:
        return self.lin_free @ cum_free + self.lin_fixed

    def min_variance(self) -> np.ndarray:
        if self.k == 1:
            return np.zeros(0)
        return np.linalg.lstsq(2 * self.q, -self.g, rcond=None)[0]

    def lasso_path(self) -> list[tuple[float, np.ndarray]]:
        """Knots (lam, W) of argmin variance(W) + lam sum|W_i| over lam >= 0 (homotopy).

        Every point of the bias-sd frontier of R ``.findWorstCaseBiasGivenH`` (least
        sum|W_i| at variance <= h^2) is on this path; between knots W is linear in lam.
        KKT with A = 2Q, c = g: (A W + c)_i = -lam sign(W_i) on the active set, |.| <= lam
        off it. Events (a coefficient reaching 0, an inactive gradient reaching lam) that
        coincide are processed together; the coefficient that just moved is not moved back.
        """
        n = self.k - 1
        a, c = 2 * self.q, self.g
        lam = float(np.abs(c).max()) if n else 0.0
        w = np.zeros(n)
        signs: dict[int, float] = {}
        knots = [(lam, w.copy())]
        just: set[int] = set()
        for _ in range(20 * n + 20):
            if lam <= 0:
                break
            grad = a @ w + c
            for i in range(n):  # entries at the current lam (start, ties, rounding)
                if i not in signs and i not in just and abs(grad[i]) >= lam * (1 - 1e-10):
                    signs[i] = -float(np.sign(grad[i]))
            idx = np.array(sorted(signs))
            sg = np.array([signs[i] for i in idx])
            a_inv = np.linalg.inv(a[np.ix_(idx, idx)])
            slope = a_inv @ sg  # W_S(lm) = W_S(lam) + (lam - lm) slope
            base = w[idx]
            events = []
            tol = 1e-12 * max(lam, 1e-300)
            for pos_, i in enumerate(idx):
                if slope[pos_] != 0 and i not in just:
                    lm = lam + base[pos_] / slope[pos_]
                    if -tol <= lm < lam - tol:
                        events.append((lm, i))
            for i in range(n):
                if i in signs:
                    continue
                r0, dr = -grad[i], a[i, idx] @ slope  # r_i(lm) = r0 - (lam - lm) dr ... as r0 + (lm - lam) dr
                for sgn in (1.0, -1.0):
                    den = sgn - dr
                    if den != 0:
                        lm = (r0 - lam * dr) / den
                        if -tol <= lm < lam - tol:
                            events.append((lm, None))
            new_lam = max([0.0] + [e[0] for e in events])
            new_lam = max(new_lam, 0.0)
            w = np.zeros(n)
            w[idx] = base + (lam - new_lam) * slope
            just = set()
            for lm, i in events:
                if i is not None and lm >= new_lam - tol:
                    w[i] = 0.0
                    signs.pop(i)
                    just.add(i)
            lam = new_lam
            knots.append((lam, w.copy()))
        return knots


class FLCISolver:
    """FLCIs for one (Sigma, num_pre, l_vec, alpha) at any M, sharing the bias-sd frontier.

    The frontier (least worst-case bias for each sd) does not depend on M: it is the
    exact lasso path of the pre weights (``_Problem.lasso_path``), computed once; for
    each M the half-length is minimised over the path (grid of its knots and midpoints,
    then bounded scalar minimisation around the best).
    """

    def __init__(self, sigma: np.ndarray, num_pre: int, l_vec: np.ndarray, alpha: float):
        self.prob = _Problem(sigma, num_pre, l_vec)
        self.num_pre, self.l_vec, self.alpha = num_pre, l_vec, alpha
        self.knots = self.prob.lasso_path() if num_pre > 1 else [(0.0, np.zeros(0))]
        self.lams = np.array([k[0] for k in self.knots])  # decreasing

    def _w(self, lam: float) -> np.ndarray:
        lams, knots = self.lams, self.knots
        if len(knots) == 1 or lam >= lams[0]:
            return knots[0][1]
        if lam <= lams[-1]:
            return knots[-1][1]
        i = int(np.searchsorted(-lams, -lam))  # lams[i-1] > lam >= lams[i]
        l0, w0 = knots[i - 1]
        l1, w1 = knots[i]
        f = (l0 - lam) / (l0 - l1) if l0 != l1 else 1.0
        return w0 + f * (w1 - w0)

    def _half_length(self, lam: float, m: float) -> float:
        cum = self._w(lam)
        bias = m * (self.prob.const + np.abs(cum).sum())
        sd = np.sqrt(max(self.prob.variance(cum), 0.0))
        return folded_normal_quantile(1 - self.alpha, bias / sd) * sd

    def weights(self, m: float) -> tuple[np.ndarray, float]:
        """Weights a (pre then post) and half-length of the FLCI a'betahat -/+ half-length at M = m."""
        from scipy.optimize import minimize_scalar

        if len(self.knots) == 1:
            lam = self.lams[0]
        else:
            pts = np.unique(np.concatenate([self.lams, (self.lams[1:] + self.lams[:-1]) / 2]))
            vals = [self._half_length(x, m) for x in pts]
            i = int(np.argmin(vals))
            lo, hi = pts[max(i - 1, 0)], pts[min(i + 1, len(pts) - 1)]
            res = minimize_scalar(lambda x: self._half_length(x, m), bounds=(lo, hi), method="bounded",
                                  options={"xatol": 1e-12 * max(self.lams[0], 1e-300)})
            lam = min((float(res.x), pts[i]), key=lambda x: self._half_length(x, m))
        cum = self._w(lam)
        return np.concatenate([self.prob.pre_weights(cum), self.l_vec]), float(self._half_length(lam, m))

    def interval(self, betahat: np.ndarray, m: float) -> tuple[float, float]:
        a, half = self.weights(m)
        est = float(a @ betahat)
        return est - half, est + half


def flci_weights(sigma: np.ndarray, num_pre: int, l_vec: np.ndarray, m: float,
                 alpha: float) -> tuple[np.ndarray, float]:
    """Weights a (pre then post) and half-length of the FLCI a'betahat -/+ half-length.

    Neither depends on betahat: the interval moves with the estimate, its length not.
    """
    return FLCISolver(sigma, num_pre, l_vec, alpha).weights(m)


def flci(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, l_vec: np.ndarray,
         m_values: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """FLCI lower and upper bounds for each M in ``m_values`` (R ``findOptimalFLCI``)."""
    solver = FLCISolver(sigma, num_pre, l_vec, alpha)
    out = np.array([solver.interval(betahat, float(m)) for m in m_values])
    return out[:, 0], out[:, 1]
