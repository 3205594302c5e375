#!/usr/bin/env Rscript
# Reference numbers for osservatorio.synthesis.meta, produced by R's metafor.
#
# Run from the repository root:
#     Rscript tests/reference/meta/make_reference.R
# Writes tests/reference/meta/metafor_reference.json (inputs and every quantity).
#
# Convergence controls are tightened (threshold 1e-12 on the change in tau2 for
# REML Fisher scoring, tol 1e-14 for the Paule-Mandel root) so that metafor's
# own stopping rule (default 1e-5) does not dominate the comparison at 1e-6.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-12, tol = 1e-14, maxiter = 10000)

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg,
              data = dat.bcg)
bcg$alloc <- as.character(bcg$alloc)

# Homogeneous studies: Q < k - 1, so every estimator must clamp tau2 at 0.
homog <- data.frame(yi = c(0.10, 0.12, 0.09, 0.11, 0.10, 0.13),
                    vi = c(0.010, 0.020, 0.015, 0.010, 0.030, 0.020))
k2 <- bcg[c(4, 8), ]  # two discordant precise studies: tau2 > 0
k3 <- bcg[c(4, 6, 8), ]

datasets <- list(
  bcg = list(yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi),
             ablat = bcg$ablat, year = bcg$year, alloc = bcg$alloc,
             author = bcg$author),
  homog = list(yi = homog$yi, vi = homog$vi),
  k2 = list(yi = as.numeric(k2$yi), vi = as.numeric(k2$vi), ablat = k2$ablat),
  k3 = list(yi = as.numeric(k3$yi), vi = as.numeric(k3$vi), ablat = k3$ablat)
)

# Simulated sets (seeded): k sites, true effect 0.2 + 0.1 x + N(0, tau2 = 0.05)
set.seed(20261125)
for (k in c(5, 8, 20, 40)) {
  vi <- runif(k, 0.01, 0.2)
  x <- round(rnorm(k), 3)
  yi <- round(0.2 + 0.1 * x + rnorm(k, 0, sqrt(0.05 + vi)), 4)
  datasets[[paste0("sim", k)]] <- list(yi = yi, vi = round(vi, 4), x = x)
}

fit_case <- function(name, data, method, mods = NULL, knha = FALSE, level = 95) {
  d <- as.data.frame(datasets[[data]][c("yi", "vi", mods)])
  if (is.null(mods)) {
    res <- rma(yi, vi, data = d, method = method, test = ifelse(knha, "knha", "z"),
               level = level, control = ctrl)
    pr <- predict(res)
  } else {
    f <- as.formula(paste("~", paste(mods, collapse = " + ")))
    res <- rma(yi, vi, mods = f, data = d, method = method,
               test = ifelse(knha, "knha", "z"), level = level, control = ctrl)
    # prediction interval at the intercept (all moderators at 0 / reference level)
    pr <- predict(res, newmods = rep(0, res$p - 1))
  }
  out <- list(
    name = name, data = data, method = method, mods = if (is.null(mods)) list() else mods,
    knha = knha, level = level / 100,
    k = res$k, p = res$p,
    estimate = as.numeric(res$b[1]), se = res$se[1], z = res$zval[1],
    p_value = res$pval[1], ci_low = res$ci.lb[1], ci_high = res$ci.ub[1],
    tau2 = res$tau2, i2 = res$I2 / 100, h2 = res$H2,
    qe = res$QE, qe_df = res$k - res$p, qe_p = res$QEp,
    qm = res$QM, qm_df = res$QMdf[1], qm_p = res$QMp,
    pi_low = as.numeric(pr$pi.lb), pi_high = as.numeric(pr$pi.ub),
    weights = as.numeric(weights(res)) / 100,
    coef_names = rownames(res$b), coef = as.numeric(res$b), coef_se = res$se,
    coef_z = res$zval, coef_p = res$pval, coef_ci_low = res$ci.lb,
    coef_ci_high = res$ci.ub,
    ddf = if (knha) res$ddf[1] else NULL,
    r2 = if (is.null(mods)) NULL else res$R2 / 100
  )
  # prediction intervals of the other pi.type conventions (at the intercept)
  for (pt in c("t", "riley")) {
    pr2 <- if (is.null(mods)) predict(res, pi.type = pt) else
      predict(res, newmods = rep(0, res$p - 1), pi.type = pt)
    out[[paste0("pi_low_", pt)]] <- as.numeric(pr2$pi.lb)
    out[[paste0("pi_high_", pt)]] <- as.numeric(pr2$pi.ub)
  }
  # Q-profile CI of tau2, I2, H2 (tau2.max raised so no bound is truncated)
  ci <- confint(res, control = list(tol = 1e-14, tau2.max = 1e6))$random
  out$tau2_ci_low <- ci["tau^2", "ci.lb"]
  out$tau2_ci_high <- ci["tau^2", "ci.ub"]
  out$i2_ci_low <- ci["I^2(%)", "ci.lb"] / 100
  out$i2_ci_high <- ci["I^2(%)", "ci.ub"] / 100
  out$h2_ci_low <- ci["H^2", "ci.lb"]
  out$h2_ci_high <- ci["H^2", "ci.ub"]
  out
}

cases <- list()
for (m in c("DL", "PM", "REML")) {
  cases[[length(cases) + 1]] <- fit_case(paste0("bcg_", m), "bcg", m)
  cases[[length(cases) + 1]] <- fit_case(paste0("bcg_", m, "_ablat"), "bcg", m, "ablat")
  cases[[length(cases) + 1]] <- fit_case(paste0("bcg_", m, "_ablat_year"), "bcg", m,
                                         c("ablat", "year"))
  cases[[length(cases) + 1]] <- fit_case(paste0("homog_", m), "homog", m)
  cases[[length(cases) + 1]] <- fit_case(paste0("k2_", m), "k2", m)
  cases[[length(cases) + 1]] <- fit_case(paste0("k3_", m), "k3", m)
  cases[[length(cases) + 1]] <- fit_case(paste0("k3_", m, "_ablat"), "k3", m, "ablat")
}
for (k in c(5, 8, 20, 40)) {
  for (m in c("DL", "PM", "REML")) {
    nm <- paste0("sim", k)
    cases[[length(cases) + 1]] <- fit_case(paste0(nm, "_", m), nm, m)
    cases[[length(cases) + 1]] <- fit_case(paste0(nm, "_", m, "_x"), nm, m, "x")
  }
}
cases[[length(cases) + 1]] <- fit_case("bcg_REML_knha", "bcg", "REML", knha = TRUE)
cases[[length(cases) + 1]] <- fit_case("bcg_REML_ablat_knha", "bcg", "REML", "ablat",
                                       knha = TRUE)
cases[[length(cases) + 1]] <- fit_case("bcg_REML_alloc", "bcg", "REML", "alloc")
cases[[length(cases) + 1]] <- fit_case("bcg_DL_level90", "bcg", "DL", level = 90)
cases[[length(cases) + 1]] <- fit_case("k3_REML_knha", "k3", "REML", knha = TRUE)

# predictions at new moderator values (meta-regression: "where the practice transfers")
pred_case <- function(name, data, mods, newmods, newdata, knha = FALSE) {
  d <- as.data.frame(datasets[[data]][c("yi", "vi", mods)])
  f <- as.formula(paste("~", paste(mods, collapse = " + ")))
  res <- rma(yi, vi, mods = f, data = d, method = "REML",
             test = ifelse(knha, "knha", "z"), control = ctrl)
  pr <- predict(res, newmods = newmods)
  list(name = name, data = data, mods = mods, knha = knha, newdata = newdata,
       pred = as.numeric(pr$pred), se = as.numeric(pr$se),
       ci_low = as.numeric(pr$ci.lb), ci_high = as.numeric(pr$ci.ub),
       pi_low = as.numeric(pr$pi.lb), pi_high = as.numeric(pr$pi.ub))
}
predictions <- list(
  pred_case("bcg_REML_ablat", "bcg", "ablat", c(10, 30, 50), list(ablat = c(10, 30, 50))),
  pred_case("bcg_REML_ablat_knha", "bcg", "ablat", c(10, 30, 50),
            list(ablat = c(10, 30, 50)), knha = TRUE),
  pred_case("bcg_REML_ablat_year", "bcg", c("ablat", "year"),
            rbind(c(20, 1950), c(40, 1970)),
            list(ablat = c(20, 40), year = c(1950, 1970))),
  # alloc levels sorted: alternate (reference), random, systematic
  pred_case("bcg_REML_alloc", "bcg", "alloc", rbind(c(0, 0), c(1, 0), c(0, 1)),
            list(alloc = c("alternate", "random", "systematic")))
)

l1o <- list()
for (m in c("DL", "REML")) {
  res <- rma(yi, vi, data = bcg, method = m, control = ctrl)
  l <- leave1out(res)
  l1o[[m]] <- list(estimate = l$estimate, se = l$se, z = l$zval, p_value = l$pval,
                   ci_low = l$ci.lb, ci_high = l$ci.ub, q = l$Q, q_p = l$Qp,
                   tau2 = l$tau2, i2 = l$I2 / 100, h2 = l$H2)
}

out <- list(metafor_version = as.character(packageVersion("metafor")),
            r_version = R.version.string, datasets = datasets, cases = cases,
            predictions = predictions, leave1out = l1o)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/reference/meta/metafor_reference.json")
