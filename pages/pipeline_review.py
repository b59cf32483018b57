"""Pipeline review: the weekly meeting's page — waterfall, slipped, stalled and past-due deals, roll-up, owners."""
import polars as pl
import streamlit as st

from revops import charts, pipeline_review as review
from revops.errors import UserError, user_message
from revops.format import currency_symbol, describe_filters, format_date, format_value
from ui import components, sidebar, state

filters, period = sidebar.current()
settings = state.all_frames().settings
currency = settings.currency
as_of = period.as_of

st.title("Pipeline review", anchor=False)
st.caption(f"As of **{format_date(as_of)}** · {describe_filters(filters)}")

def money_columns(*names: str) -> dict:
    """Money format for the named columns of a table."""
    return {n: st.column_config.NumberColumn(n.replace("_", " ").capitalize(),
                                             format=f"{currency_symbol(currency)}%,.0f") for n in names}


def date_columns(frame: pl.DataFrame) -> dict:
    """Dates and timestamps shown as a leader reads them (no midnight times)."""
    return {name: st.column_config.DateColumn(format="D MMM YYYY") if dtype == pl.Date
            else st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm")
            for name, dtype in frame.schema.items() if dtype == pl.Date or isinstance(dtype, pl.Datetime)}


def deal_table(frame: pl.DataFrame, key: str, file_name: str, empty: str, **config) -> None:
    """A list of deals with formatted money and its CSV download, or a sentence when there is none."""
    if frame.height == 0:
        st.success(empty, icon=":material/check_circle:")
        return
    st.dataframe(components.shown(frame), hide_index=True, key=key, placeholder="—",
                 column_config={**date_columns(frame), **money_columns("amount"), **config})
    info, button = st.columns([3, 1], vertical_alignment="center")
    info.caption(components.count_note(frame, "deal"))
    with button:
        components.download_csv(frame, file_name=f"{file_name}_{as_of.isoformat()}.csv", key=f"{key}_csv")


# --- The waterfall -------------------------------------------------------------------------
default_start, default_end = review.default_review_dates(as_of)
pick_from, pick_to, pick_scope = st.columns([1, 1, 2], vertical_alignment="bottom")
start = pick_from.date_input("From", value=default_start, key="review_from",
                             help="The earlier date of the comparison (default: a week before as-of).")
start = start or default_start
end = pick_to.date_input("To", value=default_end, key="review_to", help="The later date (default: as-of).")
end = end or default_end
SCOPES = {"quarter": "Pipeline closing this quarter", "all": "All open pipeline"}
scope = pick_scope.segmented_control("Pipeline", list(SCOPES), format_func=SCOPES.get, default="quarter",
                                     key="review_scope", label_visibility="collapsed") or "quarter"

try:
    with st.spinner("Comparing the pipeline…"):
        wf = state.cached(review.pipeline_waterfall, filters, start, end, scope)
except UserError as exc:
    st.error(user_message(exc), icon=":material/error:")
    st.stop()

scope_text = (f"deals closing {format_date(wf.scope_start)} – {format_date(wf.scope_end)}"
              if wf.scope_start and wf.scope_end else "every open deal")
st.subheader(f"Pipeline from {format_date(wf.start)} to {format_date(wf.end)}", anchor=False)
st.caption(f"Open amount of {scope_text}. {wf.note}")
cards = st.columns(4)
cards[0].metric("Start", format_value(wf.total("start"), "money", currency), border=True)
cards[1].metric("End", format_value(wf.total("end"), "money", currency), border=True,
                delta=format_value(wf.net_change, "money", currency, signed=True))
cards[2].metric("Won", format_value(wf.won_amount, "money", currency), border=True,
                help="Pipeline amount of the deals won between the two dates.")
cards[3].metric("Advanced a stage", format_value(wf.advanced_deals, "count"), border=True,
                help=f"Deals in the pipeline at both dates that moved to a later stage, worth "
                     f"{format_value(wf.advanced_amount, 'money', currency)} now.")
st.plotly_chart(charts.waterfall(wf.steps, currency=currency), key="review_waterfall",
                config={"displayModeBar": False})
with st.expander(f"The {wf.deals.height:,} deals behind the bars", icon=":material/list:"):
    deal_table(wf.deals, "review_moves", "pipeline_changes", "No deal moved the pipeline between these dates.",
               **money_columns("amount_start", "amount_end", "change"))

# --- The lists -----------------------------------------------------------------------------
st.subheader("This week's lists", anchor=False)
tabs = st.tabs(["Slipped", "Stalled", "Past due", "Forecast vs target", "Top deals", "Owners"])

with tabs[0]:
    st.caption("Open deals whose expected close date was pushed later at least once (stage history and snapshots); "
               f"“pushed recently” means after {format_date(start)}.")
    slipped = state.cached(review.slipped_deals, filters, as_of, start)
    deal_table(slipped, "review_slipped", "slipped_deals", "No open deal has had its close date pushed.",
               pushes=st.column_config.NumberColumn("Pushes", format="%d"),
               days_pushed=st.column_config.NumberColumn("Days pushed", format="%d"))

with tabs[1]:
    stall_days = st.number_input("No stage change for at least (days)", min_value=1, max_value=365,
                                 value=settings.stall_days, step=1, key="review_stall_days")
    stalled = state.cached(review.stalled_deals, filters, as_of, int(stall_days))
    deal_table(stalled, "review_stalled", "stalled_deals", f"No open deal has gone {stall_days} days without a "
               "stage change.", days_since_change=st.column_config.NumberColumn("Days since change", format="%d"))

with tabs[2]:
    st.caption(f"Open deals whose expected close date is before {format_date(as_of)}.")
    past_due = state.cached(review.past_due_deals, filters, as_of)
    deal_table(past_due, "review_past_due", "past_due_deals", "No open deal is past its close date.",
               days_overdue=st.column_config.NumberColumn("Days overdue", format="%d"))

with tabs[3]:
    rollup = state.cached(review.forecast_rollup, filters, as_of)
    st.caption(f"Quarter {format_date(rollup.quarter_start)} – {format_date(rollup.quarter_end)}: won so far, then "
               f"open deals closing by quarter end, added up category by category.")
    target_cards = st.columns(3)
    target_cards[0].metric("Quarter target", format_value(rollup.target, "money", currency), border=True)
    target_cards[1].metric("Closed won", format_value(rollup.closed, "money", currency), border=True)
    target_cards[2].metric("Coverage of the remaining target", format_value(rollup.coverage, "multiple"),
                           border=True, help="Open amount (omitted excluded) ÷ (target − closed won).")
    if rollup.reason:
        st.caption(f":material/info: {rollup.reason}")
    st.dataframe(rollup.table, hide_index=True, key="review_rollup", placeholder="—", column_order=[
        "label", "deals", "amount", "cumulative", "attainment"], column_config={
        "label": st.column_config.TextColumn("Forecast category"),
        "deals": st.column_config.NumberColumn("Deals", format="localized"),
        **money_columns("amount", "cumulative"),
        "attainment": st.column_config.ProgressColumn("Cumulative ÷ target", format="percent", min_value=0,
                                                      max_value=1)})
    components.download_csv(rollup.table, file_name=f"forecast_rollup_{as_of.isoformat()}.csv",
                            key="review_rollup_csv")

with tabs[4]:
    top = state.cached(review.top_deals, filters, as_of, review.TOP_DEALS)
    deal_table(top, "review_top", "top_deals", "No open deals.",
               probability=st.column_config.NumberColumn("Probability", format="percent"))

with tabs[5]:
    st.caption(f"Open pipeline as of {format_date(as_of)}; won, lost and win rate over the window "
               f"{format_date(period.start)} – {format_date(period.end)}; stalled after {settings.stall_days} days.")
    owners = state.cached(review.owner_table, filters, period, None)
    if owners.height == 0:
        st.info("No deals for these filters.", icon=":material/info:")
    else:
        st.dataframe(owners, hide_index=True, key="review_owners", placeholder="—", column_config={
            "owner": st.column_config.TextColumn("Owner"),
            **money_columns("open_pipeline", "won_amount"),
            "win_rate": st.column_config.NumberColumn("Win rate", format="percent")})
        components.download_csv(owners, file_name=f"owners_{as_of.isoformat()}.csv", key="review_owners_csv")

with st.expander("How it is counted", icon=":material/help:"):
    st.markdown(review.HOW_COUNTED)
