"""The evaluation designs: which estimators a theme's ``design`` uses, with what options,
which diagnostics, and what the design cannot show.

One class per design, one interface, so that adding a design touches this file only::

    design = designs.for_theme(theme)      # options from the theme file
    problems = design.check(panel)         # can it work on these data? (validate uses it)
    ev = design.estimate(panel)            # an Evaluation: headline, pre-trend, result objects
    ev.staggered.aggregate("cohort")       # the Callaway-Sant'Anna object, when the design has one
    placebo = design.placebo(panel)        # a fake adoption date: should find nothing
    het = design.heterogeneity(panel)      # effects by moderator level and their equality test

Designs and headline estimators:
- ``staggered_did``: Callaway-Sant'Anna ATT(g,t), simple aggregation, comparison never or
  not-yet treated, influence-function errors clustered.
- ``did_few_treated``: TWFE DiD with a restricted wild cluster bootstrap (Webb weights) and
  randomization inference over clusters as a check.
- ``event_study_its``: comparative interrupted time series aligned on adoption (headline),
  with the Callaway-Sant'Anna event study for the pre-trend diagnosis.
- ``synthetic_control``: synthetic control with in-space placebos (RMSPE-ratio rank p).
- ``synthetic_did``: synthetic difference-in-differences (Arkhangelsky et al. 2021) for one
  or a few treated units, placebo variance with one treated unit; synthetic control and
  DiD from the same code path beside it, and an in-time placebo.

Sensitivity to broken parallel trends (every design with an event study,
``design.sensitivity(ev)``): Rambachan and Roth (2023) relative-magnitudes intervals
(C-LF) for the average post-adoption event-study effect at Mbar in ``HONEST_MBAR``, and
the breakdown value (the smallest Mbar at which the interval reaches zero), which the
evidence rules read when the pre-trend test rejects.

Pre-trend test (every design with leads): Wald statistic on the leads -event_window..-1
referred to a restricted wild cluster bootstrap (the chi2 Wald over-rejects with few
treated clusters per cohort; ``benchmarks/calibrate_pretrend.py``).

Each diagnostic the evidence rules read (``ev.pretrend``, ``design.placebo(...)``) is a
record with a ``status`` (``evaluate.results``): "computed" with its p-value;
"not_applicable" only where the design has no such test by construction, the pre-trend
test of ``synthetic_control`` (no leads: the pre-adoption fit is its diagnostic); or
"failed" when it was tried and could not be computed (an exception, no usable lead, an
undefined p-value), with the reason. The evidence rules count a failed diagnostic as a
failing one. Every design has a placebo: a fake adoption date (in-space placebos for the
synthetic control). A timing placebo with too few periods before the first adoption is
recorded as not applicable (see ``Design.placebo``).
Pure computation: no I/O, no display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from osservatorio.evaluate.results import (
    EffectResult,
    diagnostic_computed,
    diagnostic_failed,
    diagnostic_not_applicable,
    diagnostic_value,
    one_line,
)

N_BOOT = 999  # multiplier / cluster bootstrap draws and randomization-inference permutations
N_BOOT_WILD = 9999  # wild cluster bootstrap of the few-treated headline
SYNTH_RMSPE_CUTOFF = 5.0  # Abadie et al. (2010): drop placebos fitting 5x worse before treatment
MAX_SYNTH_DONORS = 1000  # one fit per placebo: measured 0.7 s at 600 donors, 3 s at 1,000, >15 min at 7,400
MIN_PRE_PERIODS = 1  # a cohort needs a period before adoption (its base period) to be estimated
SYNTH_MIN_PRE = 2  # pre-treatment periods the synthetic control fits on
MIN_ITS_CONTROLS = 2  # never-treated units the comparative ITS needs
ITS_MIN_PRE = 6  # common pre-adoption periods of the comparative ITS (its own default)
PLACEBO_MIN_PERIODS = 3  # periods before the first adoption a timing placebo estimates on
SDID_REPS = 200  # placebo / bootstrap replications of synthetic DiD (R synthdid's default)
SDID_MIN_PRE = 2  # pre-adoption periods synthetic DiD's time weights need
HONEST_MBAR = (0.0, 0.5, 1.0, 1.5, 2.0)  # relative magnitudes shown in the report (Rambachan-Roth)


@dataclass
class Evaluation:
    """What a design estimated on one panel: the headline effect, its diagnostics, the
    result objects of the estimators (to aggregate or plot further) and the options used."""

    design: str
    estimator: str
    headline: EffectResult
    twfe: EffectResult
    pretrend: dict[str, Any]
    baseline: float
    n_units: int
    n_treated: int
    n_treated_clusters: int
    options: dict[str, Any]
    cohorts_one_cluster: list[int] | None = None
    comparisons: dict[str, EffectResult] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    staggered: Any = None  # StaggeredResult: .aggregate("simple" | "event" | "cohort" | "calendar")
    its: Any = None  # comparative ITS result
    synth: Any = None  # SynthResult
    sdid: Any = None  # SynthDidResult (design synthetic_did)

    def __repr__(self) -> str:
        h, pre = self.headline, self.pretrend or {}
        p = pre.get("p_value")
        return (f"<Evaluation {self.design}: {self.estimator} {h.estimate:.4g} "
                f"({100 * h.level:.0f}% CI {h.ci_low:.4g} to {h.ci_high:.4g}, p={h.p_value:.3g}); "
                f"{self.n_treated} treated of {self.n_units} units, {self.n_treated_clusters} treated clusters; "
                f"pre-trend {f'p={p:.3g}' if p is not None else pre.get('status', 'missing')}>")

    @property
    def event_study(self) -> pd.DataFrame | None:
        """Effects by event time (leads and lags within the window), when estimated."""
        return self.frames.get("event_study")

    def to_dict(self) -> dict[str, Any]:
        """The record written to ``estimates.json`` (plain JSON types)."""
        out: dict[str, Any] = {"design": self.design, "baseline": self.baseline,
                               "n_treated_clusters": self.n_treated_clusters, "n_units": self.n_units,
                               "n_treated": self.n_treated, "caveats": []}
        if self.cohorts_one_cluster is not None:
            out["cohorts_one_cluster"] = self.cohorts_one_cluster
        out.update(headline=effect_dict(self.headline), estimator=self.estimator)
        out.update({k: effect_dict(v) for k, v in self.comparisons.items()})
        out.update(self.info)
        out["pretrend"] = self.pretrend
        out["event_source"] = (self.design if self.design in ("synthetic_control", "synthetic_did")
                               else "callaway_santanna")
        out["twfe"] = effect_dict(self.twfe)
        out["options"] = self.options
        return out


def effect_dict(r: EffectResult) -> dict[str, Any]:
    """An effect as JSON: scalar extras only."""
    d = r.to_dict()
    d["extra"] = {k: v for k, v in d["extra"].items() if isinstance(v, (int, float, str, bool, type(None)))}
    return d


def treated_clusters(panel: pd.DataFrame) -> int:
    return int(panel.loc[panel["cohort"] > 0, "cluster"].nunique())


def baseline(panel: pd.DataFrame) -> float:
    """Weighted mean outcome of the treated units before adoption (the outcome's units)."""
    pre = panel[(panel["cohort"] > 0) & (panel["time"] < panel["cohort"])]
    return float(np.average(pre["y"], weights=pre["w"])) if len(pre) else float("nan")


def cohorts_one_cluster(panel: pd.DataFrame) -> list[int]:
    """Adoption cohorts whose treated units all sit in one cluster: their treated part of
    the clustered influence function is zero, so their se and band miss its shocks."""
    treated = panel[panel["cohort"] > 0].drop_duplicates("unit")
    n = treated.groupby("cohort")["cluster"].nunique()
    return [int(g) for g in n.index[n < 2]]


def shift_back(panel: pd.DataFrame, k: int) -> pd.DataFrame:
    """Pre-adoption data only, with adoption moved k periods earlier (placebo timing)."""
    last_pre = panel.loc[panel["cohort"] > 0, "cohort"].min()
    df = panel[panel["time"] < last_pre].copy()
    df["cohort"] = np.where(df["cohort"] > 0, df["cohort"] - k, 0)
    df.loc[df["cohort"] <= df["time"].min(), "cohort"] = 0
    df["treated"] = ((df["cohort"] > 0) & (df["time"] >= df["cohort"])).astype("int64")
    return df


class Design:
    """A design's recipe. Subclasses set ``name``, ``estimator`` and implement ``_estimate``."""

    name: ClassVar[str]
    estimator: ClassVar[str]
    has_cohort_effects: ClassVar[bool] = False  # an effect per adoption cohort, pooled in stage 40
    has_heterogeneity: ClassVar[bool] = True  # effects by moderator level

    def __init__(self, *, comparison: str = "notyet", anticipation: int = 0, event_window: int = 4,
                 seed: int = 20261125, n_boot: int = N_BOOT, moderators: tuple[str, ...] = (),
                 disclosure_threshold: int = 5) -> None:
        self.comparison = comparison
        self.anticipation = anticipation
        self.event_window = event_window
        self.seed = seed
        self.n_boot = n_boot
        self.moderators = tuple(moderators)
        self.disclosure_threshold = disclosure_threshold

    @classmethod
    def from_theme(cls, theme) -> "Design":
        return cls(comparison=theme.comparison, anticipation=theme.anticipation, event_window=theme.event_window,
                   seed=theme.seed, moderators=tuple(theme.moderators),
                   disclosure_threshold=theme.disclosure_threshold)

    def options(self) -> dict[str, Any]:
        """The options that produced an estimate (recorded with it)."""
        return {"design": self.name, "comparison": self.comparison, "anticipation": self.anticipation,
                "event_window": self.event_window, "seed": self.seed, "n_boot": self.n_boot}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items() if k != "design")
        return f"{type(self).__name__}({opts})"

    # -- can the design work on these data? ---------------------------------------------
    def check(self, panel: pd.DataFrame) -> list[str]:
        """Reasons the design cannot work on this panel (empty when it can), each with
        what would work instead. Cheap: run by ``validate`` before any notebook starts."""
        problems = []
        treated = panel.loc[panel["cohort"] > 0, "unit"].nunique()
        if treated == 0:
            return ["no treated unit in the panel: no pilot of the theme adopted within the periods"]
        last = panel.loc[panel["cohort"] > 0, "cohort"].max()
        n_pre = int((np.sort(panel["time"].unique()) < last).sum())
        if n_pre < MIN_PRE_PERIODS:
            problems.append(f"{n_pre} period(s) before the last adoption: no cohort has a period before adopting "
                            "to compare with; move period_start earlier")
        return problems + self._check(panel)

    def _check(self, panel: pd.DataFrame) -> list[str]:
        return []

    # -- estimation ----------------------------------------------------------------------
    def estimate(self, panel: pd.DataFrame) -> Evaluation:
        """Run the design's estimators on the analysis panel (columns unit, time, cohort,
        treated, y, w, cluster)."""
        from osservatorio.evaluate import twfe

        fields = self._estimate(panel)
        return Evaluation(design=self.name, estimator=self.estimator, baseline=baseline(panel),
                          n_units=int(panel["unit"].nunique()),
                          n_treated=int(panel.loc[panel["cohort"] > 0, "unit"].nunique()),
                          n_treated_clusters=treated_clusters(panel), options=self.options(),
                          cohorts_one_cluster=cohorts_one_cluster(panel),
                          twfe=twfe(panel, "y", "treated", "unit", "time", cluster="cluster").effect, **fields)

    def _estimate(self, panel: pd.DataFrame) -> dict[str, Any]:
        raise NotImplementedError

    def _staggered(self, panel: pd.DataFrame, control: str | None = None):
        from osservatorio.evaluate import staggered_did

        return staggered_did(panel, "y", "unit", "time", "cohort", control=control or self.comparison,
                             anticipation=self.anticipation if control is None else 0, cluster="cluster",
                             n_boot=self.n_boot, seed=self.seed)

    def _event(self, res) -> pd.DataFrame:
        return res.aggregate("event", min_e=-self.event_window, max_e=self.event_window)

    def leads_pretrend(self, res) -> dict[str, Any]:
        """Pre-trend test on the leads -event_window..-1 with the wild cluster bootstrap; a
        test that raises (e.g. no lead with a usable se) is recorded as failed, with why."""
        try:
            test = res.pretrend_test(on="event", window=self.event_window, method="wild_bootstrap",
                                     n_boot=self.n_boot, seed=self.seed)
        except Exception as exc:  # whatever the cause, the evidence rules count it as failed
            return diagnostic_failed(exc, statistic=None, df=0)
        return diagnostic_computed(**test)

    # -- diagnostics ---------------------------------------------------------------------
    def placebo(self, panel: pd.DataFrame, ev: Evaluation | None = None) -> dict[str, Any]:
        """A fake adoption date event_window // 2 periods before the real one, on the data
        before the first adoption; an effect there questions the design.

        Fewer than ``PLACEBO_MIN_PERIODS`` periods before the first adoption (or no unit
        still treated after the shift), an estimator that raises or an undefined p-value:
        the placebo could not be computed, and a diagnostic that could not be computed
        counts as failed (docs/decisions.md, 24): the design was not put to this test, so
        its evidence is not graded as if it had passed it.
        """
        k = max(1, self.event_window // 2)
        df = shift_back(panel, k)
        n_pre = int(df["time"].nunique())
        if df.loc[df["cohort"] > 0, "unit"].nunique() == 0 or n_pre < PLACEBO_MIN_PERIODS:
            return diagnostic_failed(
                f"too few periods before the first adoption for a timing placebo: {n_pre}, "
                f"{PLACEBO_MIN_PERIODS} needed with adoption moved {k} earlier", kind="timing", shift=k)
        try:
            r = self._placebo_effect(df)
        except Exception as exc:  # counted as a failed placebo by the evidence rules
            return diagnostic_failed(exc, kind="timing", shift=k)
        return diagnostic_computed(r.p_value, estimate=r.estimate, ci_low=r.ci_low, ci_high=r.ci_high,
                                   shift=k, kind="timing")

    def _placebo_effect(self, df: pd.DataFrame) -> EffectResult:
        from osservatorio.evaluate import staggered_did

        return staggered_did(df, "y", "unit", "time", "cohort", control=self.comparison, cluster="cluster",
                             bootstrap=False).aggregate("simple")

    def subgroup_effect(self, data: pd.DataFrame) -> EffectResult:
        """The design's estimator on a subgroup (no bootstrap); failures become
        EstimationError so that ``by_moderator`` records them and moves on."""
        from osservatorio.exceptions import EstimationError

        try:
            return self._placebo_effect(data)
        except EstimationError:
            raise
        except Exception as exc:  # e.g. a subgroup without comparisons
            raise EstimationError(str(exc)[:120]) from exc

    def heterogeneity(self, panel: pd.DataFrame) -> "Heterogeneity":
        """Effects by level of each moderator and the test that they are equal.

        One row per level (moderatore, livello, n_trattati, stima, se, ci_low, ci_high,
        p_value, stato); the equality test (Wald / Cochran Q, chi2 with levels - 1 df)
        uses the levels with at least ``disclosure_threshold`` treated units, and treats
        subgroups as independent (exact when no cluster spans two levels).
        """
        from osservatorio.evaluate import by_moderator, equality_test

        rows, tests = [], []
        if not self.has_heterogeneity:
            return Heterogeneity(pd.DataFrame(), [], self.disclosure_threshold)
        for mod in self.moderators:
            if mod not in panel.columns:
                continue
            frame = by_moderator(lambda d, cohort: self.subgroup_effect(d), panel, mod, cohort="cohort")
            n_tr = panel[panel["cohort"] > 0].groupby(mod, observed=True)["unit"].nunique()
            for r in frame.to_dict("records"):
                rows.append({"moderatore": mod, "livello": str(r[mod]), "n_trattati": int(n_tr.get(r[mod], 0)),
                             "stima": r["estimate"], "se": r["se"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                             "p_value": r["p_value"], "stato": r["status"]})
            # a level with fewer treated units than the disclosure threshold has an
            # unreliable se (few clusters) and is hidden: it does not enter the test
            ok = [r for r in rows if r["moderatore"] == mod and r["stato"] == "ok"
                  and r["n_trattati"] >= self.disclosure_threshold and np.isfinite(r["se"]) and r["se"] > 0]
            eq = equality_test([r["stima"] for r in ok], [r["se"] for r in ok]) if len(ok) >= 2 else None
            spans = panel.groupby("cluster", observed=True)[mod].nunique().max() > 1
            tests.append({"moderatore": mod, "statistic": None if eq is None else eq.statistic,
                          "df": None if eq is None else eq.df, "p_value": None if eq is None else eq.p_value,
                          "clusters_span_levels": bool(spans)})
        return Heterogeneity(pd.DataFrame(rows), tests, self.disclosure_threshold)

    def sensitivity(self, panel: pd.DataFrame, ev: Evaluation) -> dict[str, Any]:
        """How large a violation of parallel trends would overturn the event study's effect.

        Rambachan and Roth (2023), relative magnitudes: robust intervals (conditional /
        hybrid C-LF, as R HonestDiD) for the average of the post-adoption event-study
        effects 0..event_window, allowing post-adoption divergences up to Mbar times the
        largest one between consecutive pre-adoption periods, at each Mbar of
        ``HONEST_MBAR``; and the breakdown value, the smallest Mbar at which the interval
        includes zero. A design without an event study: not applicable; a computation that
        raises: failed (the evidence rules then never soften a rejected pre-trend).

        The event study is refitted with a universal base period (every lead relative to
        the period before adoption, as HonestDiD requires; the design's own event study
        uses R did's varying base for its leads), same comparison group, no bootstrap.
        """
        if ev.staggered is None:
            return diagnostic_not_applicable("the design has no event study to put to the sensitivity analysis",
                                             restriction="relative_magnitudes")
        from osservatorio.evaluate import staggered_did
        from osservatorio.evaluate.honest import honest_sensitivity

        try:
            universal = staggered_did(panel, "y", "unit", "time", "cohort", control=ev.staggered.info["control"],
                                      anticipation=self.anticipation, cluster="cluster", bootstrap=False,
                                      base_period="universal")
            res = honest_sensitivity(universal, restriction="relative_magnitudes", m=HONEST_MBAR,
                                     l_vec="average", window=self.event_window)
        except Exception as exc:  # the rules read a failed analysis as 'not robust'
            return diagnostic_failed(exc, restriction="relative_magnitudes")
        return sensitivity_record(res)

    # -- what the design cannot show -----------------------------------------------------
    def limits(self, ev: Evaluation | dict) -> list[tuple[str, dict]]:
        """Label keys (with values) of the caveats that apply to this estimate."""
        est = ev.to_dict() if isinstance(ev, Evaluation) else ev
        out: list[tuple[str, dict]] = [(f"eval.limits.{self.name}", {})]
        pre = est.get("pretrend") or {}
        p = pre.get("p_value")
        if pre.get("status") == "failed":
            out.append(("eval.limits.pretrend_not_computed", {"reason": pre.get("reason")}))
        elif p is not None and p == p and p < 0.05:
            out.append(("eval.limits.pretrend_failed", {}))
            sens = est.get("sensitivity") or {}
            if sens.get("status") == "computed":
                out.append(("eval.limits.breakdown", {"k": sens["breakdown"]}))
        placebo = est.get("placebo") or {}  # in estimates.json (stage 40), not in an Evaluation
        if placebo.get("status") == "failed":
            out.append(("eval.limits.placebo_not_computed", {"reason": placebo.get("reason")}))
        if est.get("n_treated_clusters", 99) < 10:
            out.append(("eval.limits.few_clusters", {"n": est["n_treated_clusters"]}))
        if est.get("cohorts_one_cluster"):
            out.append(("eval.limits.one_cluster_cohorts", {"cohorts": est["cohorts_one_cluster"]}))
        return out


@dataclass
class Heterogeneity:
    """Effects by moderator level (``table``), equality tests, and the disclosure threshold
    under which a level is not shown."""

    table: pd.DataFrame
    tests: list[dict[str, Any]]
    threshold: int

    @property
    def shown(self) -> pd.DataFrame:
        """The levels that may be shown: estimated, with at least ``threshold`` treated units."""
        if self.table.empty:
            return self.table
        t = self.table
        return t[(t["n_trattati"] >= self.threshold) & (t["stato"] == "ok")]

    def __repr__(self) -> str:  # never the hidden levels
        return (f"<Heterogeneity: {len(self.shown)} of {len(self.table)} levels shown "
                f"(at least {self.threshold} treated units); {len(self.tests)} equality tests>")

    def _repr_html_(self) -> str:  # a bare cell shows what may be shown, never the hidden levels
        return self.shown.drop(columns=["stato", "se"], errors="ignore").to_html(index=False)


class StaggeredDiD(Design):
    name = "staggered_did"
    estimator = "callaway_santanna"
    has_cohort_effects = True

    def _check(self, panel: pd.DataFrame) -> list[str]:
        if self.comparison == "never" and panel.loc[panel["cohort"] == 0, "unit"].nunique() == 0:
            return ["comparison: never needs never-treated units and there are none; use comparison: notyet"]
        return []

    def _estimate(self, panel: pd.DataFrame) -> dict[str, Any]:
        res = self._staggered(panel)
        frames = {"event_study": self._event(res), "cohorts": res.aggregate("cohort"), "att_gt": res.att_gt}
        return {"headline": res.aggregate("simple"), "pretrend": self.leads_pretrend(res), "frames": frames,
                "staggered": res}


class FewTreatedDiD(Design):
    name = "did_few_treated"
    estimator = "twfe_wild_cluster_bootstrap"

    def _check(self, panel: pd.DataFrame) -> list[str]:
        problems = []
        treated = panel[panel["cohort"] > 0]
        mixed = panel.groupby("cluster", observed=True)["cohort"].nunique()
        mixed = mixed[mixed > 1]
        if len(mixed):
            problems.append(
                f"adoption varies within {len(mixed)} cluster(s) (e.g. {', '.join(map(str, mixed.index[:3]))}): "
                "randomization inference permutes whole clusters; use design: staggered_did, or a cluster level "
                "at which all units adopt together (the unit level itself, e.g. cluster: comune for comuni)")
        n_cl = panel["cluster"].nunique()
        if n_cl < 6:
            problems.append(f"only {n_cl} clusters: the wild cluster bootstrap needs at least 6; "
                            "choose a finer cluster level")
        if treated["cohort"].nunique() > 1 and panel.loc[panel["cohort"] == 0, "unit"].nunique() == 0:
            problems.append("no never-treated unit for the event study; use design: staggered_did")
        return problems

    def _estimate(self, panel: pd.DataFrame) -> dict[str, Any]:
        from osservatorio.evaluate import randomization_inference, wild_cluster_bootstrap

        wcr = wild_cluster_bootstrap(panel, "y", "treated", "unit", "time", "cluster", weights_type="webb",
                                     n_boot=N_BOOT_WILD, seed=self.seed)
        ri = randomization_inference(panel, "y", "treated", "unit", "time", cluster="cluster", n_perm=self.n_boot,
                                     seed=self.seed)
        # event study and pre-trend: cohort DiD against never-treated units (with one
        # adoption date it is the 2x2 DiD of each period), wild bootstrap on the leads
        es = self._staggered(panel, control="never")
        return {"headline": wcr, "comparisons": {"randomization_inference": ri}, "pretrend": self.leads_pretrend(es),
                "frames": {"event_study": self._event(es)}, "staggered": es}

    def _placebo_effect(self, df: pd.DataFrame) -> EffectResult:
        from osservatorio.evaluate import twfe

        return twfe(df, "y", "treated", "unit", "time", cluster="cluster").effect


class EventStudyITS(Design):
    name = "event_study_its"
    estimator = "comparative_its"
    has_heterogeneity = False  # subgroups of a few districts: no usable ITS per level

    def _check(self, panel: pd.DataFrame) -> list[str]:
        problems = []
        n_never = panel.loc[panel["cohort"] == 0, "unit"].nunique()
        if n_never < MIN_ITS_CONTROLS:
            problems.append(f"{n_never} never-treated unit(s): the comparative ITS needs at least {MIN_ITS_CONTROLS}; "
                            "use design: staggered_did with comparison: notyet")
        counts = panel.groupby("unit")["time"].nunique()
        if counts.nunique() > 1:
            problems.append("the panel is unbalanced (units observed in different periods): the comparative ITS "
                            "needs every unit in every period; use design: staggered_did")
        times = np.sort(panel["time"].unique())
        cohorts = panel.loc[panel["cohort"] > 0, "cohort"].unique()
        if len(cohorts):
            common_pre = int((times < cohorts.min()).sum())
            common_post = int((times >= cohorts.max()).sum())
            if common_pre < ITS_MIN_PRE or common_post < 2:
                problems.append(f"the cohorts share {common_pre} pre-adoption and {common_post} post-adoption "
                                f"periods; the ITS aligned on adoption needs at least {ITS_MIN_PRE} and 2: widen the "
                                "periods (monthly data) or use design: staggered_did")
        return problems

    def _estimate(self, panel: pd.DataFrame) -> dict[str, Any]:
        from osservatorio.evaluate.comparative_its import comparative_its

        res = self._staggered(panel)
        its = comparative_its(panel, "y", "unit", "time", "cohort", cluster="cluster", weight="w",
                              n_boot=self.n_boot, seed=self.seed, min_pre=ITS_MIN_PRE)
        s = its.series
        its_frame = pd.DataFrame({"e": s["e"], "osservato": s["gap"], "stimato": s["fitted"],
                                  "controfattuale": s["counterfactual"]})
        return {"headline": its.level_change,
                "comparisons": {"its_average": its.average_effect, "its_slope_change": its.slope_change,
                                "did_simple": res.aggregate("simple")},
                "pretrend": self.its_pretrend(self.leads_pretrend(res), panel),
                "frames": {"event_study": self._event(res), "its": its_frame}, "staggered": res, "its": its}

    @staticmethod
    def its_pretrend(leads: dict, panel: pd.DataFrame) -> dict:
        """Leads test combined (Bonferroni) with a test of a linear differential pre-trend.

        With monthly data the event-window leads are one-month differences and have little
        power against a slow differential drift (12 leads: p ~ 0.06 on case-comunita's
        -0.004/month). The second test uses every pre-adoption period: on the observations
        before adoption (never-treated units throughout), the outcome on unit and period
        effects and treated x period, the slope's CRV1 t-test clustered as the theme,
        t(G-1) (the HAC t-test of the ITS gap's own slope over-rejected a true null 20% of
        the time in a simulation on this structure, as its residuals share the comparison
        mean). The decision uses 2 x the smaller p-value (size <= 5%). The combined test is
        failed when either part could not be computed (the reason names the part).
        """
        from osservatorio.evaluate import twfe

        pre = panel[(panel["cohort"] == 0) | (panel["time"] < panel["cohort"])]
        pre = pre.assign(treated_trend=(pre["cohort"] > 0) * (pre["time"] - pre["time"].mean()))
        fields = {k: v for k, v in leads.items() if k not in ("status", "reason", "p_value")}
        fields["method"] = (leads.get("method", "") + "; combined (Bonferroni) with the clustered t-test of a "
                            "linear treated x period trend on all pre-adoption observations")
        p_leads = leads.get("p_value")
        fields["p_value_leads"] = p_leads
        problems = [] if leads.get("status") == "computed" else [f"leads test: {leads.get('reason')}"]
        try:
            slope = twfe(pre, "y", "treated_trend", "unit", "time", cluster="cluster").effect
        except Exception as exc:
            problems.append(f"linear pre-trend test: {one_line(exc)}")
        else:
            fields.update({"trend_per_period": slope.estimate, "trend_se": slope.se, "p_value_trend": slope.p_value})
            if not np.isfinite(slope.p_value):
                problems.append(f"linear pre-trend test: the p-value is undefined ({slope.p_value})")
        if problems:
            return diagnostic_failed("; ".join(problems), **fields)
        return diagnostic_computed(min(1.0, 2 * min(slope.p_value, p_leads)), **fields)


class SyntheticControl(Design):
    name = "synthetic_control"
    estimator = "synthetic_control"
    has_heterogeneity = False

    def _check(self, panel: pd.DataFrame) -> list[str]:
        problems = []
        treated = panel.loc[panel["cohort"] > 0, "unit"].unique()
        if len(treated) != 1:
            problems.append(f"{len(treated)} treated units: synthetic control estimates one treated unit; "
                            "use design: staggered_did (or did_few_treated when all units of a cluster adopt together)")
        if len(treated) == 1:
            t0 = panel.loc[panel["cohort"] > 0, "cohort"].iloc[0]
            n_pre = int((np.sort(panel["time"].unique()) < t0).sum())
            if n_pre < SYNTH_MIN_PRE:
                problems.append(f"{n_pre} period(s) before adoption: the synthetic control fits on at least "
                                f"{SYNTH_MIN_PRE}; move period_start earlier")
        donors = panel.loc[panel["cohort"] == 0, "unit"].nunique()
        if donors > MAX_SYNTH_DONORS:
            problems.append(f"{donors} donor units: one synthetic control per placebo makes this too slow (limit "
                            f"{MAX_SYNTH_DONORS}); narrow the donors, e.g. universe: sopra_100000 or capoluoghi")
        elif donors < 2:
            problems.append("fewer than 2 donor units: synthetic control needs untreated units to weigh")
        return problems

    def _estimate(self, panel: pd.DataFrame) -> dict[str, Any]:
        from osservatorio.evaluate import synthetic_control

        treated = panel.loc[panel["cohort"] > 0, ["unit", "cohort"]].drop_duplicates()
        unit, t0 = treated.iloc[0]["unit"], int(treated.iloc[0]["cohort"])
        donors = panel[(panel["cohort"] == 0) | (panel["unit"] == unit)]
        res = synthetic_control(donors, "y", "unit", "time", treated_unit=unit, treatment_time=t0,
                                placebo_rmspe_cutoff=SYNTH_RMSPE_CUTOFF)
        kept = res.placebos.set_index("unit")
        post = res.placebo_gaps.loc[res.placebo_gaps.index >= t0]
        good = [c for c in post.columns if c in kept.index and not bool(kept.loc[c, "excluded"])]
        spread = float(post[good].mean().std(ddof=1)) if len(good) > 1 else float("nan")
        eff = res.effect
        from dataclasses import replace

        headline = replace(eff, se=spread, ci_low=eff.estimate - 1.96 * spread, ci_high=eff.estimate + 1.96 * spread,
                           inference=(f"RMSPE-ratio rank p-value over {len(good) + 1} units (placebos with pre-RMSPE > "
                                      f"{SYNTH_RMSPE_CUTOFF}x the treated excluded); interval = estimate +/- 1.96 x SD "
                                      f"of the donors' average post-period placebo gaps"))
        frames = {"synth": pd.DataFrame({"time": res.treated.index, "trattato": res.treated.to_numpy(),
                                         "sintetico": res.synthetic.to_numpy()}),
                  "synth_weights": res.weights.rename("peso").reset_index()}
        info = {"treated_unit": unit, "treatment_time": t0, "pre_rmspe": res.pre_rmspe, "post_rmspe": res.post_rmspe,
                "rank": res.rank, "n_placebos": len(good)}
        pretrend = diagnostic_not_applicable("synthetic control: no leads, the fit before adoption is the "
                                             "diagnostic", statistic=None, df=0)
        return {"headline": headline, "pretrend": pretrend,
                "frames": frames, "info": info, "synth": res}

    def estimate(self, panel: pd.DataFrame) -> Evaluation:
        ev = super().estimate(panel)
        ev.cohorts_one_cluster = None  # one treated unit: not a clustered design
        return ev

    def placebo(self, panel: pd.DataFrame, ev: Evaluation | None = None) -> dict[str, Any]:
        """In-space placebos: the rank p-value of the treated unit's RMSPE ratio."""
        ev = ev if ev is not None else self.estimate(panel)
        return diagnostic_computed(ev.headline.p_value, kind="in_space")


class SyntheticDiD(Design):
    """Synthetic difference-in-differences: the headline for one or a few treated units.

    Unit weights make the never-treated units' weighted average move like the treated
    before adoption, time weights make the pre-adoption periods' weighted average look
    like the post-adoption ones, and the effect is the weighted DiD (Arkhangelsky et al.
    2021). Synthetic control (unit weights only, no intercept) and DiD (equal weights) come
    from the same code path and are shown beside it. Variance: placebo with one treated
    unit (each placebo replication treats donors drawn at random), as the paper's
    section 5; ``sdid.synthetic_did`` documents the choice for several. The panel's
    population weights ``w`` are not used (the estimator weighs units itself).
    """

    name = "synthetic_did"
    estimator = "synthetic_did"
    has_heterogeneity = False

    def _check(self, panel: pd.DataFrame) -> list[str]:
        problems = []
        n_treated = panel.loc[panel["cohort"] > 0, "unit"].nunique()
        n_never = panel.loc[panel["cohort"] == 0, "unit"].nunique()
        if n_never < max(2, n_treated + 1):
            problems.append(f"{n_never} never-treated unit(s) for {n_treated} treated: synthetic DiD's placebo "
                            "variance needs more never-treated than treated units; widen the universe")
        counts = panel.groupby("unit")["time"].nunique()
        if counts.nunique() > 1:
            problems.append("the panel is unbalanced (units observed in different periods): synthetic DiD needs "
                            "every unit in every period; narrow the periods or the universe")
        if n_treated:
            t0 = panel.loc[panel["cohort"] > 0, "cohort"].min()
            n_pre = int((np.sort(panel["time"].unique()) < t0).sum())
            if n_pre < SDID_MIN_PRE:
                problems.append(f"{n_pre} period(s) before the first adoption: synthetic DiD weighs at least "
                                f"{SDID_MIN_PRE}; move period_start earlier")
        return problems

    def options(self) -> dict[str, Any]:
        return {**super().options(), "n_reps": SDID_REPS}

    def _sdid_data(self, panel: pd.DataFrame) -> pd.DataFrame:
        return panel.loc[:, ["unit", "time", "y", "treated"]]

    def _estimate(self, panel: pd.DataFrame) -> dict[str, Any]:
        from osservatorio.evaluate.sdid import synthdid_compare

        fits = synthdid_compare(self._sdid_data(panel), "y", "unit", "time", "treated", n_reps=SDID_REPS,
                                seed=self.seed)
        res = fits["sdid"]
        treated = panel.loc[panel["cohort"] > 0, ["unit", "cohort"]].drop_duplicates()
        info = {"treated_unit": ", ".join(map(str, treated["unit"])), "treatment_time": int(treated["cohort"].min()),
                "n_pre": res.n_pre, "n_post": res.n_post, "vcov": res.vcov, "n_reps": SDID_REPS}
        weights = res.unit_weights
        weights = (weights.rename("peso").rename_axis("unit").reset_index() if isinstance(weights, pd.Series)
                   else weights)
        frames = {"sdid": res.series, "sdid_weights": weights,
                  "sdid_time_weights": res.time_weights.rename("peso").rename_axis("time").reset_index()}
        pretrend = diagnostic_not_applicable("synthetic DiD: no leads; the weighted pre-adoption fit and the "
                                             "in-time placebo are its diagnostics", statistic=None, df=0)
        return {"headline": res.effect, "comparisons": {"sc_sdid": fits["sc"].effect, "did_sdid": fits["did"].effect},
                "pretrend": pretrend, "frames": frames, "info": info, "sdid": res}

    def estimate(self, panel: pd.DataFrame) -> Evaluation:
        ev = super().estimate(panel)
        ev.cohorts_one_cluster = None  # unit-level inference by placebo: not a clustered design
        return ev

    def _placebo_effect(self, df: pd.DataFrame) -> EffectResult:
        from osservatorio.evaluate.sdid import synthetic_did

        return synthetic_did(self._sdid_data(df), "y", "unit", "time", "treated", n_reps=SDID_REPS,
                             seed=self.seed).effect


def sensitivity_record(res) -> dict[str, Any]:
    """The Rambachan-Roth result as the record estimates.json keeps (plain JSON types):
    rows m, lb, ub, the plain interval, and the breakdown value (0 when the plain interval
    already includes zero; the cap of the search, ``honest.RM_BREAKDOWN_CAP``, flagged
    ``breakdown_beyond``, when no Mbar up to it overturns the effect)."""
    from osservatorio.evaluate.honest import RM_BREAKDOWN_CAP

    frame = res.frame
    b = res.breakdown
    beyond = b is not None and not np.isfinite(b)
    value = 0.0 if b is None else (RM_BREAKDOWN_CAP if beyond else float(b))
    return diagnostic_value(
        "breakdown", value, restriction=res.restriction, method=str(frame["method"].iloc[0]),
        estimand="average of the post-adoption event-study effects 0..event_window", alpha=res.alpha,
        num_pre=res.num_pre, num_post=res.num_post, breakdown_beyond=bool(beyond),
        original_lb=float(res.original[0]), original_ub=float(res.original[1]),
        rows=[{"m": float(r["m"]), "lb": float(r["lb"]), "ub": float(r["ub"])} for r in frame.to_dict("records")])


DESIGNS: dict[str, type[Design]] = {d.name: d for d in (StaggeredDiD, FewTreatedDiD, EventStudyITS, SyntheticControl,
                                                        SyntheticDiD)}


def for_theme(theme) -> Design:
    """The design object of a theme, with the theme's options."""
    return DESIGNS[theme.design].from_theme(theme)
