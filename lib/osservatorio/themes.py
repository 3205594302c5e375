"""Theme files: ``params/themes/<id>.yaml`` merged over ``params/defaults.yaml``.

A theme is validated by pydantic before any work starts. Unknown keys, wrong types and
values outside the allowed options fail with a message naming the file, the key and what
is allowed (``ThemeError``, exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from osservatorio import paths
from osservatorio.exceptions import ThemeError, quoted
from osservatorio.languages import Language
from osservatorio.yamlfile import read_yaml_mapping

Design = Literal["staggered_did", "did_few_treated", "event_study_its", "synthetic_control", "synthetic_did"]
Comparison = Literal["never", "notyet"]
UnitLevel = Literal["comune", "distretto_sanitario", "ambito_sociale"]
ClusterLevel = Literal["comune", "ambito_sociale", "distretto_sanitario", "asl", "provincia", "regione"]
Frequency = Literal["year", "month"]
DataSource = Literal["demo", "raw"]
Stage = Literal[10, 20, 30, 40]
Moderator = Literal["classe_ampiezza", "ripartizione", "piccolo_comune", "capoluogo"]

STAGE_NOTEBOOKS: dict[int, str] = {
    10: "10_indicators.ipynb",
    20: "20_selection.ipynb",
    30: "30_evaluation.ipynb",
    40: "40_synthesis.ipynb",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A label in Italian and English."""

    it: str = Field(min_length=1)
    en: str = Field(min_length=1)


SizeClass = Literal["0-1.000", "1.001-5.000", "5.001-10.000", "10.001-20.000", "20.001-60.000", "60.001-100.000",
                    "100.001-250.000", ">250.000"]
ActType = Literal["regolamento", "patto", "co-programmazione", "co-progettazione", "convenzione"]
Matching = Literal["mahalanobis", "propensity"]
# The 20 regions as ISTAT names them (column ``regione`` of the reference comuni).
Region = Literal["Abruzzo", "Basilicata", "Calabria", "Campania", "Emilia-Romagna", "Friuli-Venezia Giulia", "Lazio",
                 "Liguria", "Lombardia", "Marche", "Molise", "Piemonte", "Puglia", "Sardegna", "Sicilia", "Toscana",
                 "Trentino-Alto Adige/Südtirol", "Umbria", "Valle d'Aosta/Vallée d'Aoste", "Veneto"]


class Selection(_Strict):
    """Stage 20: which units are eligible, how many pilots to propose, how to match
    comparison units, and the planned design for power (periods in the theme's frequency)."""

    n_pilots: int = Field(20, ge=1, le=2000)
    max_population: int | None = Field(None, ge=1)
    min_population: int | None = Field(None, ge=0)
    macro_areas: list[Literal["Nord-ovest", "Nord-est", "Centro", "Sud", "Isole"]] | None = None
    regions: list[Region] | None = Field(None, description="pilots proposed only in these regions (ISTAT names)")
    size_classes: list[SizeClass] | None = None
    min_share_over65: float | None = Field(None, ge=0, le=1, description="share 0-1 of residents aged 65+")
    inner_area_min_km: float | None = Field(
        None, ge=0, le=300,
        description="proxy of inner areas: straight-line km from the nearest provincial capital (not SNAI)")
    exclude_prior_act: ActType | None = None
    matching: Matching = "mahalanobis"
    caliper: float | None = Field(
        None, gt=0, description="None: 0.2 SD of the logit propensity score, or 3 Mahalanobis units")
    n_matches: int = Field(1, ge=1, le=10)
    pre_periods: int = Field(3, ge=1, le=240)
    post_periods: int = Field(3, ge=1, le=240)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    target_power: float = Field(0.8, gt=0.5, lt=1)


THEME_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
THEME_ID_MAX_LENGTH = 64
MAX_LISTED_ERRORS = 20


class Theme(_Strict):
    """One research theme: what is evaluated, where, and how."""

    id: str = Field(pattern=THEME_ID_PATTERN, max_length=THEME_ID_MAX_LENGTH)
    pilot_theme: str | None = Field(
        None, pattern=THEME_ID_PATTERN, max_length=THEME_ID_MAX_LENGTH,
        description="value of `tema` in pilot.csv and in the acts (default: this theme's id); a variant of a theme "
                    "(another region, another selection) names the theme whose pilots it studies")
    title: Text
    question: Text
    practice: Text
    outcome: str = Field(min_length=1, description="value of `indicatore` in esiti.csv")
    outcome_label: Text
    outcome_unit: Text
    higher_is_better: bool = True
    outcome_area: Literal["salute", "servizi_sociali", "lavoro", "partecipazione", "territorio"] | None = Field(
        None, description="area of the outcome, to filter practices on the site's index")
    unit_level: UnitLevel = "comune"
    design: Design
    comparison: Comparison = "notyet"
    cluster: ClusterLevel = "comune"
    frequency: Frequency = "year"
    period_start: str
    period_end: str
    anticipation: int = Field(0, ge=0, le=24)
    event_window: int = Field(4, ge=1, le=48, description="leads and lags shown, in periods")
    moderators: list[Moderator] = ["classe_ampiezza", "ripartizione"]
    universe: Literal["tutti", "capoluoghi", "sopra_100000"] = "tutti"
    stages: list[Stage] = [10, 20, 30, 40]
    language: Language = "it"
    seed: int = Field(20261125, ge=0)
    disclosure_threshold: int = Field(5, ge=1, le=100)
    data_source: DataSource = "demo"
    selection: Selection = Selection()

    @property
    def pilot_tema(self) -> str:
        """The ``tema`` of this theme's rows in pilot.csv and in the acts."""
        return self.pilot_theme or self.id

    @field_validator("stages")
    @classmethod
    def _stages_sorted_unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or not v:
            raise ValueError("stages must be a non-empty list of distinct values among 10, 20, 30, 40")
        return sorted(v)

    @model_validator(mode="after")
    def _periods_match_frequency(self) -> "Theme":
        pattern = r"^\d{4}$" if self.frequency == "year" else r"^\d{4}-\d{2}$"
        import re

        for key in ("period_start", "period_end"):
            value = getattr(self, key)
            if not re.match(pattern, value):
                fmt = "YYYY" if self.frequency == "year" else "YYYY-MM"
                raise ValueError(f"{key}={value!r} must be {fmt} when frequency is {self.frequency!r}")
        if self.period_start >= self.period_end:
            raise ValueError("period_start must come before period_end")
        return self

    def notebook_parameters(self) -> dict[str, Any]:
        """The theme as papermill parameters (plain JSON types)."""
        return self.model_dump(mode="json")


def _format_error(err: dict, source: str) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key {quoted(loc)}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{source}: key '{loc}' = {quoted(err.get('input'))} is not allowed; allowed: {expected}"
    if kind == "missing":
        return f"{source}: missing required key '{loc}'"
    return f"{source}: key '{loc}': {err['msg']} (got {quoted(err.get('input'))})"


def read_yaml(path: Path) -> dict[str, Any]:
    """A theme file (or the defaults) as a mapping, read by the bounded loader
    (``osservatorio.yamlfile``): size, encoding, aliases and duplicate keys checked."""
    return read_yaml_mapping(path)


def check_theme_id(theme_id: str) -> None:
    """A new theme's id must be a plain name (it becomes ``params/themes/<id>.yaml`` and
    ``outputs/<id>/``): ``ThemeError`` when it is not, before anything touches the disk."""
    import re

    if "/" in theme_id or "\\" in theme_id or ".." in theme_id:
        raise ThemeError(f"theme id {quoted(theme_id, 200)} is a path: give a name, such as 'patti-beni-comuni'; "
                         f"the file is always created in {paths.themes_dir()}")
    if len(theme_id) > THEME_ID_MAX_LENGTH or not re.fullmatch(THEME_ID_PATTERN, theme_id):
        raise ThemeError(f"theme id {quoted(theme_id, 200)} is not allowed: lowercase letters, digits and dashes, "
                         f"starting with a letter or digit, at most {THEME_ID_MAX_LENGTH} characters "
                         f"(pattern {THEME_ID_PATTERN})")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_theme_path(theme: str | Path) -> Path:
    """A theme id (``params/themes/<id>.yaml``) or the path of a theme file."""
    candidate = Path(theme)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ThemeError(f"{candidate}: theme file not found")
        return candidate.resolve()
    path = paths.themes_dir() / f"{theme}.yaml"
    if not path.is_file():
        known = ", ".join(list_theme_ids()) or "(none)"
        raise ThemeError(f"unknown theme '{theme}': no file {path}; known themes: {known}")
    return path


def load_theme(theme: str | Path, overrides: dict[str, Any] | None = None) -> Theme:
    """Read, merge over defaults, validate. Raises ThemeError naming file and key."""
    path = resolve_theme_path(theme)
    return validate_theme_data(read_yaml(path), path, overrides)


def validate_theme_data(data: dict[str, Any], path: Path, overrides: dict[str, Any] | None = None) -> Theme:
    """A theme file's mapping (read from ``path``) merged over the defaults, then the
    overrides, validated."""
    if overrides is not None and not isinstance(overrides, dict):
        raise ThemeError(f"overrides must be a mapping of theme keys to values, not {quoted(overrides)}")
    defaults = read_yaml_mapping(paths.defaults_file(), "defaults file") if paths.defaults_file().is_file() else {}
    data = _merge(_merge(defaults, data), overrides or {})
    data.setdefault("id", path.stem)
    try:
        return Theme.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        lines = [_format_error(e, str(path)) for e in errors[:MAX_LISTED_ERRORS]]
        if len(errors) > MAX_LISTED_ERRORS:
            lines.append(f"... and {len(errors) - MAX_LISTED_ERRORS} more")
        raise ThemeError("invalid theme file:\n  " + "\n  ".join(lines)) from None


def list_theme_ids() -> list[str]:
    return sorted(p.stem for p in paths.themes_dir().glob("*.yaml"))
