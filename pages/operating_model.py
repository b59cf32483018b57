"""Operating model: a short questionnaire, prefilled from the data, and the RevOps model that fits, with why."""
import streamlit as st

from revops import charts
from revops import operating_model as om
from revops.errors import user_message
from revops.format import format_value
from ui import auth, components, sidebar, state

filters, period = sidebar.current()
frames = state.frames(filters)
currency = frames.settings.currency
try:
    prefilled = state.cached(om.prefill, filters, period)
except Exception as exc:  # the user gets one sentence, never a traceback
    st.warning(f"The questionnaire could not be prefilled from the data ({user_message(exc)}); answer it by hand.")
    prefilled = om.Answers()

st.title("Operating model")
st.caption("Answer a few questions about the company (the data has filled in what it can) and get the RevOps "
           "operating model that fits: centralized, federated, hybrid or center of excellence. Every point of "
           "the score comes from a rule listed below it.")


def _from_data(field: str) -> None:
    note = prefilled.from_data.get(field)
    if note:
        st.caption(f":material/database: {note}")


def _on_save(answers: om.Answers, rec: om.Recommendation) -> None:
    reason = auth.edit_blocked_reason()
    if reason:
        st.session_state["_om_message"] = ("warning", reason)
        return
    try:
        assessment_id = om.save_assessment(state.db_path(), answers, rec)
    except Exception as exc:  # the user gets one sentence, never a traceback
        st.session_state["_om_message"] = ("error", user_message(exc))
        return
    st.session_state["_om_message"] = ("success", f"Saved assessment #{assessment_id}: {rec.label}.")


@st.fragment
def assessment() -> None:
    """The questionnaire and its recommendation: reruns alone when an answer changes."""
    st.subheader("Questionnaire")
    left, middle, right = st.columns(3)
    with left:
        arr = st.number_input(f"ARR ({currency})", min_value=0.0, value=float(prefilled.arr), step=100_000.0,
                              format="%.0f", key="om_arr")
        _from_data("arr")
        stages = list(om.STAGE_LABELS)
        stage = st.selectbox("Funding stage", stages, index=stages.index(prefilled.funding_stage),
                             format_func=om.STAGE_LABELS.get, key="om_stage")
        _from_data("funding_stage")
        units = st.number_input("Business units", min_value=1, value=int(prefilled.business_units), step=1,
                                key="om_units")
        _from_data("business_units")
        segments = st.number_input("Customer segments", min_value=0, value=int(prefilled.segments), step=1,
                                   key="om_segments")
        _from_data("segments")
    with middle:
        sales = st.number_input("Sales headcount", min_value=0, value=int(prefilled.sales_headcount), step=1,
                                key="om_sales")
        _from_data("sales_headcount")
        marketing = st.number_input("Marketing headcount", min_value=0, value=int(prefilled.marketing_headcount),
                                    step=1, key="om_marketing")
        cs = st.number_input("Customer-success headcount", min_value=0, value=int(prefilled.cs_headcount), step=1,
                             key="om_cs")
    with right:
        motions = list(om.MOTION_LABELS)
        motion = st.selectbox("Sales motion", motions, index=motions.index(prefilled.motion),
                              format_func=om.MOTION_LABELS.get, key="om_motion")
        _from_data("motion")
        prices = list(om.PRICING_LABELS)
        pricing = st.selectbox("Pricing model", prices, index=prices.index(prefilled.pricing),
                               format_func=om.PRICING_LABELS.get, key="om_pricing")
        strength = st.select_slider("Strength of the functional leaders", list(om.STRENGTH_LABELS),
                                    value=prefilled.leader_strength, format_func=om.STRENGTH_LABELS.get,
                                    key="om_strength")
        shared = st.toggle("Shared revenue incentives", value=prefilled.shared_incentives, key="om_shared",
                           help="On when sales, marketing and customer success are paid on one shared revenue "
                                "number.")

    signals = [("Self-serve share", prefilled.self_serve_share, "ratio"),
               ("Handoff leakage", prefilled.handoff_leak_rate, "ratio"),
               ("Average won deal", prefilled.avg_deal_size, "money"),
               ("North Star metrics tracked", float(prefilled.north_star_metrics), "count")]
    st.markdown("**Signals from the data**")
    for column, (label, value, unit) in zip(st.columns(len(signals)), signals):
        column.metric(label, format_value(value, unit, currency))

    answers = prefilled.model_copy(update={
        "arr": arr, "funding_stage": stage, "business_units": int(units), "segments": int(segments),
        "sales_headcount": int(sales), "marketing_headcount": int(marketing), "cs_headcount": int(cs),
        "motion": motion, "pricing": pricing, "leader_strength": strength, "shared_incentives": shared,
    })
    answers = om.Answers.model_validate(answers.model_dump())
    rec = om.recommend(answers, frames.settings.slas)

    st.subheader(f"Recommended: {rec.label}")
    st.success(f"**{rec.label}.** {rec.summary} Fits: {rec.fits}", icon=":material/account_tree:")
    chart_col, reasons_col = st.columns([2, 3])
    with chart_col:
        st.plotly_chart(charts.score_bars(om.scores_table(rec), title="Score of each model"), key="om_scores",
                        config={"displayModeBar": False})
    with reasons_col:
        st.markdown("**What moved the scores**")
        st.dataframe(om.reasons_table(rec), hide_index=True, key="om_reasons",
                     column_config={"model": st.column_config.TextColumn(width="small"),
                                    "points": st.column_config.NumberColumn(format="%+d", width="small"),
                                    "reason": st.column_config.TextColumn(width="large")})

    risk_col, pattern_col, maturity_col = st.columns(3)
    with risk_col:
        st.markdown("**Risks**")
        for risk in rec.risks:
            st.markdown(f"- {risk}")
    with pattern_col:
        st.markdown(f"**Strategic pattern: {rec.pattern_label}**")
        st.caption(f"{rec.pattern_reason} {om.PATTERNS[rec.pattern]}")
        st.markdown(f"**Go-to-market framework: {rec.gtm_label}**")
        st.caption(f"{rec.gtm_reason} {om.FRAMEWORKS[rec.gtm_framework]}")
    with maturity_col:
        st.markdown(f"**Maturity: {rec.maturity}**")
        st.caption(rec.maturity_detail)

    st.markdown("**First 90 days**")
    for step in rec.plan:
        st.markdown(f"- **{step.days}** — {step.action}")
    if rec.pitfalls:
        st.markdown("**Pitfalls to watch**")
        for pitfall in rec.pitfalls:
            st.warning(pitfall, icon=":material/warning:")

    st.button("Save this assessment", key="om_save", on_click=_on_save, args=(answers, rec),
              icon=":material/save:", disabled=not auth.can_edit())
    message = st.session_state.pop("_om_message", None)
    if message:
        getattr(st, message[0])(message[1])

    st.subheader("History")
    try:
        history = om.list_assessments(state.db_path())
    except Exception as exc:  # the user gets one sentence, never a traceback
        st.error(user_message(exc))
        return
    components.data_table(history, file_name="operating_model_assessments.csv", key="om_history",
                          empty="No assessment saved yet: save one to see how the answer changes over time.",
                          currency=currency)


assessment()
