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
draws with seed 0); the inner problem (least bias for sd <= h) is solved with SLSQP
instead of ECOS, and h is chosen by bounded scalar minimisation (the half-length is
convex in h, as R's bisection assumes) instead of R's numerical-derivative bisection.
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

    def least_bias(self, h: float, start: np.ndarray) -> np.ndarray:
        """Free W minimising sum |W_i| subject to variance <= h^2 (R ``.findWorstCaseBiasGivenH``)."""
        from scipy.optimize import minimize

        n = self.k - 1
        if n == 0:
            return np.zeros(0)
        x0 = np.concatenate([np.abs(start), start])
        cons = [
            {"type": "ineq", "fun": lambda x: x[:n] - x[n:], "jac": lambda x: np.hstack([np.eye(n), -np.eye(n)])},
            {"type": "ineq", "fun": lambda x: x[:n] + x[n:], "jac": lambda x: np.hstack([np.eye(n), np.eye(n)])},
            {"type": "ineq", "fun": lambda x: h * h - self.variance(x[n:]),
             "jac": lambda x: np.concatenate([np.zeros(n), -(2 * self.q @ x[n:] + self.g)])},
        ]
        res = minimize(lambda x: x[:n].sum(), x0, jac=lambda x: np.concatenate([np.ones(n), np.zeros(n)]),
                       constraints=cons, method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
        return res.x[n:]


def flci_weights(sigma: np.ndarray, num_pre: int, l_vec: np.ndarray, m: float,
                 alpha: float) -> tuple[np.ndarray, float]:
    """Weights a (pre then post) and half-length of the FLCI a'betahat -/+ half-length.

    Neither depends on betahat: the interval moves with the estimate, its length not.
    """
    from scipy.optimize import minimize_scalar

    prob = _Problem(sigma, num_pre, l_vec)
    w_min = prob.min_variance()
    h_min = np.sqrt(prob.variance(w_min))
    h_0 = np.sqrt(prob.variance(np.zeros(num_pre - 1)))
    cache: dict[float, np.ndarray] = {}

    def half_length(h: float) -> tuple[float, np.ndarray]:
        if h not in cache:
            cache[h] = np.zeros(num_pre - 1) if (num_pre == 1 or h >= h_0) else prob.least_bias(h, w_min)
        cum = cache[h]
        bias = m * (prob.const + np.abs(cum).sum())
        sd = np.sqrt(max(prob.variance(cum), 0.0))
        return folded_normal_quantile(1 - alpha, bias / sd) * sd, cum

    if num_pre == 1 or h_0 - h_min <= 1e-12 * h_0:
        hl, cum = half_length(h_0)
    else:
        res = minimize_scalar(lambda h: half_length(h)[0], bounds=(h_min, h_0), method="bounded",
                              options={"xatol": 1e-10 * h_0})
        _, h = min((half_length(h)[0], h) for h in (h_min, float(res.x), h_0))
        hl, cum = half_length(h)
    return np.concatenate([prob.pre_weights(cum), l_vec]), float(hl)


def flci(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, l_vec: np.ndarray,
         m_values: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """FLCI lower and upper bounds for each M in ``m_values`` (R ``findOptimalFLCI``)."""
    out = [flci_weights(sigma, num_pre, l_vec, float(m), alpha) for m in m_values]
    est = np.array([a @ betahat for a, _ in out])
    hl = np.array([h for _, h in out])
    return est - hl, est + hl
