"""Which RevOps operating model fits the company: a short questionnaire, scored by transparent rules.

The seed framework: four operating models (centralized, federated, hybrid, center of
excellence), the maturity ladder (seed–Series A: a RevOps-minded operator; Series B: a
dedicated function; Series C+: a team), four strategic patterns (product-led, enterprise,
PLG-to-sales hybrid, consumption-based) and four go-to-market frameworks (waterfall, agile,
product-led, account-based). Every point a model gets comes from one rule in `RULES`, and
the recommendation lists each rule that fired with its points, so the score can be checked.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl
from pydantic import BaseModel, Field

from revops import store
from revops.frames import Frames
from revops.handoffs import handoffs_table
from revops.metrics import by_tier, compute
from revops.period import Period
from revops.reads import table_between
from revops.schema import SLAs
from revops.stages import normalize

ModelId = Literal["centralized", "federated", "hybrid", "center_of_excellence"]
FundingStage = Literal["seed", "series_a", "series_b", "series_c_plus", "public"]
Motion = Literal["self_serve", "sales_led", "hybrid"]
Pricing = Literal["seat", "subscription", "usage"]
Strength = Literal["weak", "mixed", "strong"]

# Thresholds of the framework (ARR in the workspace currency).
CENTRALIZE_ARR = 50_000_000.0  # above about $50M ARR a single ops leader can own everything
EARLY_ARR = 10_000_000.0  # below it, ops live close to each team
ENTERPRISE_ARR = 100_000_000.0
LEAKY = 0.30  # share of entries lost across the handoffs above which they count as leaky
SOME_LEAK = 0.15
MANY_UNITS = 3
SMALL_TEAM = 25  # revenue headcount below which no separate ops layer is needed
ENTERPRISE_DEAL = 50_000.0
MAX_NORTH_STAR = 5
# Lead / deal sources that mean the buyer came through the product (normalised: lower case, no punctuation).
SELF_SERVE_SOURCES = frozenset({"productsignup", "signup", "selfserve", "freetrial", "trial", "pql", "productled",
                                "inapp", "freemium"})

STAGE_LABELS: dict[str, str] = {"seed": "Seed", "series_a": "Series A", "series_b": "Series B",
                                "series_c_plus": "Series C or later", "public": "Public / late stage"}
MOTION_LABELS: dict[str, str] = {"self_serve": "Self-serve", "sales_led": "Sales-led", "hybrid": "Hybrid"}
PRICING_LABELS: dict[str, str] = {"seat": "Per seat", "subscription": "Flat subscription", "usage": "Usage-based"}
STRENGTH_LABELS: dict[str, str] = {"weak": "Still developing", "mixed": "Mixed", "strong": "Strong"}


@dataclass(frozen=True)
class ModelInfo:
    """One operating model of the framework."""

    label: str
    summary: str
    fits: str
    risk: str
    first_step: str


MODELS: dict[str, ModelInfo] = {
    "centralized": ModelInfo(
        "Centralized", "A single RevOps leader owns all revenue operations for sales, marketing and customer "
        "success.", "Companies above about $50M ARR seeking full alignment across the revenue teams.",
        "Distance from the front line: a central team can lose touch with what reps and CSMs need day to day.",
        "Name the single RevOps leader and bring the sales, marketing and CS ops roles under them; keep a weekly "
        "front-line review so the team stays close to the field."),
    "federated": ModelInfo(
        "Federated", "Ops people sit inside each revenue team and report to its leader.",
        "Early-stage companies with strong functional leaders.",
        "Silos: each team optimises its own numbers and the handoffs between teams leak.",
        "Name one ops owner inside each team and hold a fortnightly cross-team sync on the shared data "
        "dictionary and the handoff SLAs."),
    "hybrid": ModelInfo(
        "Hybrid", "A central RevOps team (data, systems, forecasting) plus ops specialists embedded in the teams.",
        "Mid-market companies in transition, e.g. from founder-led or product-led sales to a scaled motion.",
        "Needs strong communication cadences: without them central and embedded staff duplicate or contradict "
        "each other.",
        "Stand up the central core (data, systems, forecast) and place embedded specialists in each team; fix "
        "the cadence: a weekly ops stand-up and the monthly revenue council."),
    "center_of_excellence": ModelInfo(
        "Center of excellence", "A central team sets standards (definitions, tools, process); business units "
        "execute locally.", "Enterprises with several complex business units.",
        "Slow and governance-heavy: standards can hold up local teams that need to move fast.",
        "Publish the central standards and appoint a local ops lead per business unit; define a light change "
        "path so governance does not stall local work."),
}
# On a tie the lighter structure wins: adding structure later is easier than removing it.
TIE_ORDER: tuple[str, ...] = ("federated", "hybrid", "centralized", "center_of_excellence")

PATTERNS: dict[str, str] = {
    "product_led": "Product-led: users find, try and buy in the product; RevOps watches activation, PQLs and "
                   "self-serve conversion.",
    "enterprise": "Enterprise: a sales team runs long, multi-stakeholder deals; RevOps watches pipeline coverage, "
                  "stage conversion and forecast accuracy.",
    "plg_to_sales": "PLG-to-sales hybrid: the product brings users in and sales converts the larger accounts; "
                    "RevOps owns the PQL handoff from product to sales.",
    "consumption": "Consumption-based: revenue follows usage; RevOps watches usage trends, expansion and "
                   "churn signals more than bookings.",
}
PATTERN_LABELS: dict[str, str] = {"product_led": "Product-led", "enterprise": "Enterprise",
                                  "plg_to_sales": "PLG-to-sales hybrid", "consumption": "Consumption-based"}
FRAMEWORKS: dict[str, str] = {
    "waterfall": "Waterfall: the demand funnel from inquiry to MQL, SQL, opportunity and won, with conversion "
                 "targets at each step.",
    "agile": "Agile: short test-and-learn cycles on channels, offers and handoffs, reviewed every few weeks.",
    "product_led": "Product-led: the product is the main acquisition channel; sign-up, activation and PQLs "
                   "drive the funnel.",
    "account_based": "Account-based: named target accounts, coordinated plays across marketing, sales and CS.",
}
FRAMEWORK_LABELS: dict[str, str] = {"waterfall": "Waterfall", "agile": "Agile", "product_led": "Product-led",
                                    "account_based": "Account-based"}
MATURITY: dict[str, tuple[str, str]] = {
    "seed": ("RevOps-minded operator", "One operator who owns the data, the tools and the handoffs."),
    "series_a": ("RevOps-minded operator", "One operator who owns the data, the tools and the handoffs."),
    "series_b": ("Dedicated RevOps function", "A RevOps leader with analysts and a systems owner."),
    "series_c_plus": ("RevOps team", "A team with specialists for data, systems, enablement and deal desk."),
    "public": ("RevOps team", "A team with specialists for data, systems, enablement and deal desk."),
}


# ---------------------------------------------------------------------------------------
# The questionnaire


class Answers(BaseModel):
    """The questionnaire: the company's shape, its go-to-market, and signals read from the data."""

    arr: float = Field(0.0, ge=0, description="Annual recurring revenue.")
    funding_stage: FundingStage = "series_a"
    sales_headcount: int = Field(0, ge=0)
    marketing_headcount: int = Field(0, ge=0)
    cs_headcount: int = Field(0, ge=0)
    business_units: int = Field(1, ge=1)
    segments: int = Field(1, ge=0)
    motion: Motion = "sales_led"
    pricing: Pricing = "subscription"
    leader_strength: Strength = "mixed"
    shared_incentives: bool = Field(False, description="Sales, marketing and CS are paid on one shared revenue "
                                                       "number.")
    self_serve_share: float | None = Field(None, ge=0, le=1)
    handoff_leak_rate: float | None = Field(None, ge=0, le=1)
    avg_deal_size: float | None = Field(None, ge=0)
    north_star_metrics: int = Field(default_factory=lambda: len(by_tier("north_star")), ge=0)
    from_data: dict[str, str] = Field(default_factory=dict, description="Answers the data filled in, and from "
                                                                        "what.")

    @property
    def headcount(self) -> int:
        """People in the revenue teams."""
        return self.sales_headcount + self.marketing_headcount + self.cs_headcount


def _pct(x: float | None) -> str:
    return f"{(x or 0) * 100:.0f} %"


def _money(x: float) -> str:
    return f"${x / 1e6:,.1f}M"


@dataclass(frozen=True)
class Rule:
    """One scoring rule: when it applies, it gives `points` to `model`, with a reason in words."""

    model: str
    points: int
    applies: Callable[[Answers], bool]
    reason: Callable[[Answers], str]


EARLY = ("seed", "series_a")
LATE = ("series_c_plus", "public")

RULES: list[Rule] = [
    # centralized
    Rule("centralized", 3, lambda a: a.arr >= CENTRALIZE_ARR,
         lambda a: f"ARR of {_money(a.arr)} is above about $50M: enough scale for one leader to own all of RevOps."),
    Rule("centralized", 1, lambda a: EARLY_ARR <= a.arr < CENTRALIZE_ARR,
         lambda a: f"ARR of {_money(a.arr)} is between $10M and $50M: centralizing becomes possible."),
    Rule("centralized", -2, lambda a: a.arr < EARLY_ARR,
         lambda a: f"ARR of {_money(a.arr)} is below $10M: a central ops organization would come too early."),
    Rule("centralized", 2, lambda a: a.funding_stage in LATE,
         lambda a: f"{STAGE_LABELS[a.funding_stage]}: the company needs full alignment across its revenue teams."),
    Rule("centralized", -2, lambda a: a.funding_stage in EARLY,
         lambda a: f"{STAGE_LABELS[a.funding_stage]}: too early to centralize operations."),
    Rule("centralized", 1, lambda a: a.business_units <= 2,
         lambda a: f"{a.business_units} business unit(s): one central team can stay close to all of them."),
    Rule("centralized", -1, lambda a: a.business_units >= 4,
         lambda a: f"{a.business_units} business units: a single central team drifts away from the front line."),
    Rule("centralized", 2, lambda a: a.leader_strength == "weak",
         lambda a: "Functional leaders are still developing: a central owner fills the gap."),
    Rule("centralized", -1, lambda a: a.leader_strength == "strong",
         lambda a: "Strong functional leaders run their teams' operations well themselves."),
    Rule("centralized", 1, lambda a: a.handoff_leak_rate is not None and a.handoff_leak_rate >= LEAKY,
         lambda a: f"The handoffs leak {_pct(a.handoff_leak_rate)}: one owner of the whole journey closes gaps."),
    # federated
    Rule("federated", 3, lambda a: a.funding_stage in EARLY,
         lambda a: f"{STAGE_LABELS[a.funding_stage]}: ops work best embedded in each team."),
    Rule("federated", 2, lambda a: a.arr < EARLY_ARR,
         lambda a: f"ARR of {_money(a.arr)} is below $10M: each team can run its own operations."),
    Rule("federated", -3, lambda a: a.arr >= CENTRALIZE_ARR,
         lambda a: f"ARR of {_money(a.arr)}: at this scale separate ops teams turn into silos."),
    Rule("federated", 2, lambda a: a.leader_strength == "strong",
         lambda a: "Strong functional leaders can each own their team's operations."),
    Rule("federated", -2, lambda a: a.leader_strength == "weak",
         lambda a: "Without strong functional leaders, embedded ops drift apart."),
    Rule("federated", -2, lambda a: a.handoff_leak_rate is not None and a.handoff_leak_rate >= LEAKY,
         lambda a: f"The handoffs already leak {_pct(a.handoff_leak_rate)}: more separation would widen the gaps."),
    Rule("federated", 1, lambda a: a.headcount < SMALL_TEAM,
         lambda a: f"A revenue team of {a.headcount} people needs no separate ops layer."),
    Rule("federated", -1, lambda a: a.business_units >= 4,
         lambda a: f"{a.business_units} business units would each grow their own definitions."),
    # hybrid
    Rule("hybrid", 3, lambda a: a.funding_stage == "series_b",
         lambda a: "Series B: a company in transition, the hybrid model's home ground."),
    Rule("hybrid", 2, lambda a: EARLY_ARR <= a.arr < CENTRALIZE_ARR,
         lambda a: f"ARR of {_money(a.arr)}: mid-market scale, between a single operator and a central team."),
    Rule("hybrid", 2, lambda a: a.motion == "hybrid",
         lambda a: "Self-serve and sales together: central data with specialists embedded in each motion."),
    Rule("hybrid", 1, lambda a: a.segments >= 2,
         lambda a: f"{a.segments} segments: embedded specialists per segment on one shared backbone."),
    Rule("hybrid", 1, lambda a: a.leader_strength == "mixed",
         lambda a: "Leaders of mixed strength: central support where it is needed, embedded ops elsewhere."),
    Rule("hybrid", 1, lambda a: a.handoff_leak_rate is not None and SOME_LEAK <= a.handoff_leak_rate < LEAKY,
         lambda a: f"The handoffs leak {_pct(a.handoff_leak_rate)}: shared standards with local owners fix that."),
    Rule("hybrid", -1, lambda a: a.funding_stage == "seed",
         lambda a: "Seed stage: a hybrid structure is more than a seed company needs."),
    # center of excellence
    Rule("center_of_excellence", 3, lambda a: a.business_units >= MANY_UNITS,
         lambda a: f"{a.business_units} business units: central standards with local execution."),
    Rule("center_of_excellence", 2, lambda a: a.business_units >= 5,
         lambda a: f"{a.business_units} business units: governance keeps their numbers comparable."),
    Rule("center_of_excellence", 2, lambda a: a.arr >= ENTERPRISE_ARR,
         lambda a: f"ARR of {_money(a.arr)}: enterprise scale."),
    Rule("center_of_excellence", 1, lambda a: CENTRALIZE_ARR <= a.arr < ENTERPRISE_ARR,
         lambda a: f"ARR of {_money(a.arr)}: approaching enterprise scale."),
    Rule("center_of_excellence", 2, lambda a: a.funding_stage == "public",
         lambda a: "Public or late stage: governance and standards are expected."),
    Rule("center_of_excellence", 1, lambda a: a.funding_stage == "series_c_plus",
         lambda a: "Series C or later: standards start to matter across teams."),
    Rule("center_of_excellence", -3, lambda a: a.funding_stage in EARLY,
         lambda a: f"{STAGE_LABELS[a.funding_stage]}: a center of excellence is too slow and governance-heavy."),
    Rule("center_of_excellence", -2, lambda a: a.business_units == 1,
         lambda a: "A single business unit has no local execution to coordinate."),
    Rule("center_of_excellence", 1, lambda a: a.leader_strength == "strong",
         lambda a: "Strong local leaders can execute central standards."),
]


# ---------------------------------------------------------------------------------------
# The recommendation


class Reason(BaseModel):
    """A rule that fired: the model it scored, its points, and why."""

    model: str
    points: int
    reason: str


class PlanStep(BaseModel):
    """One step of the first 90 days."""

    days: str
    action: str


class Recommendation(BaseModel):
    """The recommended model with its scores and reasons, risks, pattern, framework, maturity, plan, pitfalls."""

    model: str
    label: str
    summary: str
    fits: str
    scores: dict[str, int]
    reasons: list[Reason]
    risks: list[str]
    pattern: str
    pattern_label: str
    pattern_reason: str
    gtm_framework: str
    gtm_label: str
    gtm_reason: str
    maturity: str
    maturity_detail: str
    plan: list[PlanStep]
    pitfalls: list[str]


def score(answers: Answers) -> tuple[dict[str, int], list[Reason]]:
    """Each model's points and the rules that gave them."""
    fired = [Reason(model=r.model, points=r.points, reason=r.reason(answers)) for r in RULES if r.applies(answers)]
    scores = {m: sum(r.points for r in fired if r.model == m) for m in MODELS}
    return scores, fired


def strategic_pattern(answers: Answers) -> tuple[str, str]:
    """The fitting strategic pattern and why."""
    if answers.pricing == "usage":
        return "consumption", "Pricing follows usage, so revenue grows and shrinks with consumption."
    if answers.motion == "self_serve":
        return "product_led", "Customers mostly sign up and buy in the product."
    if answers.motion == "hybrid":
        return "plg_to_sales", "Self-serve brings users in and sales converts the larger accounts."
    return "enterprise", "Sales-led deals are how revenue comes in."


def gtm_framework(answers: Answers, pattern: str) -> tuple[str, str]:
    """The go-to-market framework for the pattern and why."""
    if pattern == "product_led":
        return "product_led", "The product is the main acquisition channel."
    if pattern in ("plg_to_sales", "consumption"):
        return "agile", "Product and usage signals change fast; short test-and-learn cycles keep up with them."
    big = answers.avg_deal_size is not None and answers.avg_deal_size >= ENTERPRISE_DEAL
    if big or answers.arr >= ENTERPRISE_ARR:
        return "account_based", "Large deals with named accounts reward coordinated account plays."
    return "waterfall", "A sales-led funnel of mid-size deals is managed step by step, MQL to won."


def first_90_days(model: str, slas: SLAs) -> list[PlanStep]:
    """The first-90-days plan: council, charter, shared dictionary, SLAs, North Star, the model's own step."""
    return [
        PlanStep(days="Days 1–30", action="Form the revenue council: the sales, marketing and customer-success "
                 "leaders plus RevOps, every two weeks, one shared agenda."),
        PlanStep(days="Days 1–30", action=f"Write the RevOps charter: scope, decision rights, the "
                 f"{MODELS[model].label.lower()} model and when the council reviews it."),
        PlanStep(days="Days 31–60", action="Publish a shared data dictionary: one definition per metric (start "
                 "from this cockpit's) and one owner per field."),
        PlanStep(days="Days 31–60", action=f"Agree the handoff SLAs: lead response within "
                 f"{slas.lead_response_minutes:g} minutes, kickoff within {slas.kickoff_hours:g} hours of "
                 f"signature, first value within {slas.first_value_days:g} days, renewal outreach "
                 f"{slas.renewal_outreach_days} days before renewal."),
        PlanStep(days="Days 61–90", action=MODELS[model].first_step),
        PlanStep(days="Days 61–90", action=f"Pick at most {MAX_NORTH_STAR} North Star metrics the council owns, "
                 "and tie the teams' incentives to them."),
    ]


def pitfalls(answers: Answers, model: str) -> list[str]:
    """Warnings for the common pitfalls: premature centralization, metric overload, misaligned incentives."""
    out = []
    early = answers.funding_stage in EARLY or answers.arr < CENTRALIZE_ARR
    if model in ("centralized", "center_of_excellence") and early:
        out.append(f"Premature centralization: with ARR of {_money(answers.arr)} at "
                   f"{STAGE_LABELS[answers.funding_stage]}, a central ops layer can slow the teams down. "
                   "Centralize the data and definitions first, the people later.")
    if answers.north_star_metrics > MAX_NORTH_STAR:
        out.append(f"Metric overload: {answers.north_star_metrics} North Star metrics are tracked; a council "
                   f"can own at most {MAX_NORTH_STAR}. Keep the ones that matter and move the rest to the "
                   "operational tier.")
    if not answers.shared_incentives:
        leak = (f" The handoffs already leak {_pct(answers.handoff_leak_rate)}."
                if answers.handoff_leak_rate is not None and answers.handoff_leak_rate >= LEAKY else "")
        out.append("Misaligned incentives: sales, marketing and CS are paid on different numbers, so each "
                   f"optimises its own step of the journey.{leak} Tie part of every team's pay to one shared "
                   "revenue number.")
    return out


def recommend(answers: Answers, slas: SLAs | None = None) -> Recommendation:
    """Score the four models, pick the best (ties go to the lighter structure) and say what comes with it."""
    scores, reasons = score(answers)
    best = max(TIE_ORDER, key=lambda m: (scores[m], -TIE_ORDER.index(m)))
    info = MODELS[best]
    pattern, pattern_reason = strategic_pattern(answers)
    framework, framework_reason = gtm_framework(answers, pattern)
    maturity, maturity_detail = MATURITY[answers.funding_stage]
    return Recommendation(
        model=best, label=info.label, summary=info.summary, fits=info.fits, scores=scores, reasons=reasons,
        risks=[info.risk], pattern=pattern, pattern_label=PATTERN_LABELS[pattern], pattern_reason=pattern_reason,
        gtm_framework=framework, gtm_label=FRAMEWORK_LABELS[framework], gtm_reason=framework_reason,
        maturity=maturity, maturity_detail=maturity_detail, plan=first_90_days(best, slas or SLAs()),
        pitfalls=pitfalls(answers, best),
    )


def scores_table(rec: Recommendation) -> pl.DataFrame:
    """One row per model: label, score, whether it is the recommendation (for the bar chart)."""
    return pl.DataFrame({
        "model": list(MODELS), "label": [MODELS[m].label for m in MODELS],
        "score": [rec.scores[m] for m in MODELS], "recommended": [m == rec.model for m in MODELS],
    })


def reasons_table(rec: Recommendation) -> pl.DataFrame:
    """The rules that fired: model label, points, reason."""
    return pl.DataFrame(
        {"model": [MODELS[r.model].label for r in rec.reasons], "points": [r.points for r in rec.reasons],
         "reason": [r.reason for r in rec.reasons]},
        schema={"model": pl.String, "points": pl.Int64, "reason": pl.String})


# ---------------------------------------------------------------------------------------
# Prefill from the data


def _is_self_serve(source: str = "source") -> pl.Expr:
    return pl.col(source).cast(pl.String).fill_null("").str.to_lowercase().str.replace_all(r"[^0-9a-z]", "").is_in(
        list(SELF_SERVE_SOURCES))


def _self_serve_rows(sources: pl.Series) -> pl.Series:
    """Whether each row's source is a self-serve one, worked out once per distinct source (a handful, for
    millions of rows)."""
    distinct = sources.unique().to_frame("source").with_columns(self_serve=_is_self_serve())
    return (sources.to_frame("source").join(distinct, on="source", how="left", maintain_order="left", nulls_equal=True)
            ["self_serve"].fill_null(False))


def self_serve_share(frames: Frames, period: Period) -> float | None:
    """Share of leads created in the window that came through the product (self-serve source or a PQL);
    without leads, the share of deals created in the window with a self-serve source."""
    # The window's rows (a slice of tables kept in creation order, not a scan of millions of rows).
    leads = table_between(frames, "leads", "created_at", period.start, period.end).select("source", "pql_at")
    if leads.height:
        return float((_self_serve_rows(leads["source"]) | leads["pql_at"].is_not_null()).mean())  # type: ignore[arg-type]
    deals = table_between(frames, "opportunities", "created_at", period.start, period.end).select("source")
    if deals.height:
        return float(_self_serve_rows(deals["source"]).mean())  # type: ignore[arg-type]
    return None


def _distinct(*series: pl.Series) -> int:
    values: set[str] = set()
    for s in series:
        values.update(v for v in s.drop_nulls().unique().to_list() if str(v).strip())
    return len({normalize(v) for v in values})


def stage_from_arr(arr: float) -> FundingStage:
    """A first guess of the funding stage from ARR, for the user to correct."""
    if arr < 2_000_000:
        return "seed"
    if arr < EARLY_ARR:
        return "series_a"
    if arr < CENTRALIZE_ARR:
        return "series_b"
    return "series_c_plus"


def motion_from_share(share: float) -> Motion:
    """Self-serve when most buyers come through the product, sales-led when few do, hybrid between."""
    if share >= 0.6:
        return "self_serve"
    if share >= 0.2:
        return "hybrid"
    return "sales_led"


def handoff_leak_rate(frames: Frames, period: Period) -> float | None:
    """Mean leak rate of the handoffs that have one (None when none has): the six count different units
    (leads, deals, customers), so their rates are averaged rather than their counts added."""
    rates = handoffs_table(frames, period)["leak_rate"].drop_nulls()
    return float(rates.mean()) if rates.len() else None  # type: ignore[arg-type]


def prefill(frames: Frames, period: Period) -> Answers:
    """The questionnaire filled in from the data where it can be; `from_data` says which answers and how."""
    notes: dict[str, str] = {}
    arr = compute("arr", frames, period, details=False).value
    values: dict[str, object] = {}
    if arr is not None:
        values["arr"] = arr
        notes["arr"] = "ARR at the as-of date, from the subscriptions."
        values["funding_stage"] = stage_from_arr(arr)
        notes["funding_stage"] = "Guessed from ARR: please correct it."
    owners = _distinct(table_between(frames, "opportunities", "created_at", period.start, period.end)["owner"])
    if owners:
        values["sales_headcount"] = owners
        notes["sales_headcount"] = "Owners of the deals created in the window."
    units = _distinct(frames.accounts["business_unit"])
    if units:
        values["business_units"] = units
        notes["business_units"] = "Distinct business units of the accounts."
    segments = _distinct(frames.accounts["segment"], frames.opportunities["segment"])
    if segments:
        values["segments"] = segments
        notes["segments"] = "Distinct segments of the accounts and deals."
    share = self_serve_share(frames, period)
    if share is not None:
        values["self_serve_share"] = share
        values["motion"] = motion_from_share(share)
        notes["self_serve_share"] = "Leads (else deals) created in the window from a product sign-up or a PQL."
        notes["motion"] = f"{_pct(share)} of buyers came through the product."
    leak = handoff_leak_rate(frames, period)
    if leak is not None:
        values["handoff_leak_rate"] = leak
        notes["handoff_leak_rate"] = "Mean leak rate of the handoffs (Handoffs page) in the window."
    deal_size = compute("avg_deal_size", frames, period, details=False).value
    if deal_size is not None:
        values["avg_deal_size"] = deal_size
        notes["avg_deal_size"] = "Average won deal in the window."
    notes["north_star_metrics"] = "North Star metrics in the cockpit's registry."
    return Answers.model_validate({**values, "from_data": notes})


# ---------------------------------------------------------------------------------------
# Assessments over time


def save_assessment(db: str | os.PathLike[str] | None, answers: Answers, rec: Recommendation) -> int:
    """Save the answers and the recommendation with today's time; returns the assessment id."""
    with store.connect(db) as con, store.transaction(con):
        next_id = int(con.execute("SELECT coalesce(max(assessment_id), 0) + 1 FROM _assessments").fetchone()[0])
        con.execute("INSERT INTO _assessments VALUES (?, ?, ?, ?)",
                    [next_id, dt.datetime.now().replace(microsecond=0), answers.model_dump_json(),
                     rec.model_dump_json()])
    return next_id


def load_assessments(db: str | os.PathLike[str] | None) -> list[tuple[int, dt.datetime, Answers, Recommendation]]:
    """Every saved assessment, newest first."""
    with store.connect(db) as con:
        rows = con.execute("SELECT assessment_id, taken_at, answers, result FROM _assessments "
                           "ORDER BY taken_at DESC, assessment_id DESC").fetchall()
    return [(i, t, Answers.model_validate_json(a), Recommendation.model_validate_json(r)) for i, t, a, r in rows]


def list_assessments(db: str | os.PathLike[str] | None) -> pl.DataFrame:
    """The assessment history, newest first: when, the model recommended, its score and the key answers."""
    records = [{
        "assessment_id": i, "taken_at": t, "recommended": rec.label, "score": rec.scores[rec.model],
        "arr": a.arr, "funding_stage": STAGE_LABELS[a.funding_stage], "business_units": a.business_units,
        "motion": MOTION_LABELS[a.motion], "pattern": rec.pattern_label, "maturity": rec.maturity,
        **{f"score_{m}": rec.scores[m] for m in MODELS},
    } for i, t, a, rec in load_assessments(db)]
    schema = {"assessment_id": pl.Int64, "taken_at": pl.Datetime("us"), "recommended": pl.String,
              "score": pl.Int64, "arr": pl.Float64, "funding_stage": pl.String, "business_units": pl.Int64,
              "motion": pl.String, "pattern": pl.String, "maturity": pl.String,
              **{f"score_{m}": pl.Int64 for m in MODELS}}
    return pl.DataFrame(records, schema=schema)


__all__ = ["MODELS", "RULES", "Answers", "ModelInfo", "PlanStep", "Reason", "Recommendation", "Rule",
           "gtm_framework", "handoff_leak_rate", "list_assessments", "load_assessments", "prefill", "recommend",
           "reasons_table", "save_assessment", "score", "scores_table", "self_serve_share", "strategic_pattern"]
