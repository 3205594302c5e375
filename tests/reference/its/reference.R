# Reference HAC results for osservatorio.evaluate.its (R 4.2, sandwich, lmtest).
#   Rscript tests/reference/its/reference.R
# Reads series.csv (made by make_series.py), builds the segmented-regression design
# independently and writes reference.csv: one row per (case, adjust, term).
suppressPackageStartupMessages({library(sandwich); library(lmtest)})
here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))))
d <- read.csv(file.path(here, "series.csv"))
n <- nrow(d); t0 <- which(d$period == "2022-01") - 1
d$time <- 0:(n - 1)
d$post <- as.numeric(d$time >= t0)
d$time_since <- (d$time - t0) * d$post
d$month <- factor(as.integer(substr(d$period, 6, 7)))
ang <- 2 * pi * as.integer(substr(d$period, 6, 7)) / 12
d$sin_1 <- sin(ang); d$cos_1 <- cos(ang); d$sin_2 <- sin(2 * ang); d$cos_2 <- cos(2 * ang)
d$diff <- d$y - d$control
cases <- list(
  month_dummies = list(f = y ~ time + post + time_since + month, lag = 3),
  fourier = list(f = y ~ time + post + time_since + sin_1 + cos_1 + sin_2 + cos_2, lag = 5),
  control_none = list(f = diff ~ time + post + time_since, lag = 2)
)
out <- list()
for (nm in names(cases)) {
  fit <- lm(cases[[nm]]$f, data = d)
  for (adj in c(TRUE, FALSE)) {
    V <- NeweyWest(fit, lag = cases[[nm]]$lag, prewhite = FALSE, adjust = adj)
    ct <- coeftest(fit, vcov. = V)
    out[[length(out) + 1]] <- data.frame(case = nm, adjust = adj, lag = cases[[nm]]$lag,
      term = rownames(ct), coef = ct[, 1], se = ct[, 2], row.names = NULL)
  }
}
res <- do.call(rbind, out)
res$term <- sub("^\\(Intercept\\)$", "const", res$term)
res$term <- sub("^month([0-9]+)$", "month_\\1", res$term)
res$term <- ifelse(grepl("^month_[0-9]$", res$term), sub("_", "_0", res$term), res$term)
res$coef <- sprintf("%.17g", res$coef); res$se <- sprintf("%.17g", res$se)
write.csv(res, file.path(here, "reference.csv"), row.names = FALSE)
cat(sprintf("R %s, sandwich %s, lmtest %s\n", getRversion(), packageVersion("sandwich"),
            packageVersion("lmtest")))
