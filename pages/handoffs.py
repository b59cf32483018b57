"""Handoffs: the leakage map over the six handoffs, with SLA compliance, money at stake and the leaked records."""
import polars as pl
import streamlit as st

from revops import charts, handoffs
from revops.format import currency_symbol, describe_filters, format_date, format_value
from ui import components, sidebar, state

filters, period = sidebar.current()
currency = state.all_frames().settings.currency

st.title("Handoffs: the leakage map", anchor=False)
st.caption(f"As of **{format_date(period.as_of)}** · window {format_date(period.start)} – {format_date(period.end)}"
           f" · {describe_filters(filters)}")
st.markdown("Where the customer journey loses people between teams: from marketing to sales, sales to customer "
            "success, and on to value, expansion and renewal.")

with st.spinner("Following the journey…"):
    journey = state.cached(handoffs.journey, filters, period)

cards = st.columns(3)
cards[0].metric("Money at stake", format_value(journey.money_at_stake, "money", currency), border=True,
                help="Sum of the money at stake of the six handoffs (each handoff's basis is in the table).")
cards[1].metric("Records leaked", format_value(journey.leaked, "count"), border=True,
                help="Leaked MQLs, deals, customers and renewals together.")
cards[2].metric("Still in progress", format_value(journey.in_progress, "count"), border=True,
                help="Records whose handoff clock is still running.")
st.info(journey.headline, icon=":material/water_drop:")

st.subheader("The journey", anchor=False)
section = st.segmented_control("Part of the journey", list(handoffs.SANKEY_SECTIONS), default="all",
                               format_func=lambda k: handoffs.SANKEY_SECTIONS[k][0], key="handoffs_section",
                               label_visibility="collapsed") or "all"
nodes, links = journey.sections[section]
if links.height:
    st.plotly_chart(charts.sankey(nodes, links), key="handoffs_sankey", config={"displayModeBar": False})
    st.caption("Leads, then deals, then customers and renewals: red branches are leaks, light grey ones are still "
               "in progress, and dark grey nodes reconcile one handoff's cohort with the next.")
else:
    st.info("Nothing entered any handoff in this window with these filters.", icon=":material/info:")

st.subheader("Handoff by handoff", anchor=False)
MONEY = st.column_config.NumberColumn("Money at stake", format=f"{currency_symbol(currency)}%,.0f")
st.dataframe(
    journey.table, hide_index=True, key="handoffs_table", placeholder="—",
    column_order=["handoff", "team", "entered", "passed", "leaked", "in_progress", "leak_rate", "sla_compliance",
                  "money_at_stake", "median_time", "sla", "time_basis", "money_basis", "notes"],
    column_config={
        "handoff": st.column_config.TextColumn("Handoff", pinned=True),
        "team": st.column_config.TextColumn("Responsible"),
        "entered": st.column_config.NumberColumn("Entered", format="localized"),
        "passed": st.column_config.NumberColumn("Passed", format="localized"),
        "leaked": st.column_config.NumberColumn("Leaked", format="localized"),
        "in_progress": st.column_config.NumberColumn("In progress", format="localized"),
        "leak_rate": st.column_config.NumberColumn("Leak rate", format="percent",
                                                   help="Leaked ÷ (passed + leaked)."),
        "median_time": st.column_config.TextColumn("Median time"),
        "sla": st.column_config.TextColumn("SLA"),
        "time_basis": st.column_config.TextColumn("Time measured"),
        "money_basis": st.column_config.TextColumn("Money at stake is"),
        "sla_compliance": st.column_config.ProgressColumn("SLA compliance", format="percent", min_value=0,
                                                          max_value=1),
        "money_at_stake": MONEY,
        "notes": st.column_config.TextColumn("Notes", help="Why a number is empty."),
    },
)
components.download_csv(journey.table, file_name=f"handoffs_{period.as_of.isoformat()}.csv", key="handoffs_csv")

st.subheader("Leaked records", anchor=False)
labels = {h.key: f"{h.number} · {h.name} ({h.leaked:,} leaked)" for h in journey.handoffs}
key = st.selectbox("Handoff", list(labels), format_func=labels.get, key="handoffs_drill") or journey.handoffs[0].key
chosen = journey.by_key(key)
st.caption(f"{chosen.from_team} → {chosen.to_team}, responsible: {chosen.team}. {chosen.definition}")
leaks = chosen.leaks()
if leaks.height == 0:
    st.success(f"No leaked {chosen.unit} and no SLA breach in this handoff.", icon=":material/check_circle:")
else:
    dates = {name: st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm") if dtype != pl.Date
             else st.column_config.DateColumn(format="D MMM YYYY")
             for name, dtype in leaks.schema.items() if dtype == pl.Date or isinstance(dtype, pl.Datetime)}
    st.dataframe(components.shown(leaks), hide_index=True, key="handoffs_leaks", placeholder="—",
                 column_config={**dates, "money": st.column_config.NumberColumn(
                     "Money at stake", format=f"{currency_symbol(currency)}%,.0f"),
                     "sla_met": st.column_config.CheckboxColumn("Within SLA"),
                     "outcome": st.column_config.TextColumn("Outcome"), "issue": st.column_config.TextColumn("Issue")})
    st.caption(f"{components.count_note(leaks, chosen.unit, chosen.unit)} leaked or handed over outside the SLA")
    components.download_csv(leaks, file_name=f"handoff_{chosen.key}_leaks_{period.as_of.isoformat()}.csv",
                            key="handoffs_leaks_csv")

with st.expander("How it is counted", icon=":material/help:"):
    st.markdown(handoffs.HOW_COUNTED)
    for h in journey.handoffs:
        st.markdown(f"**{h.number}. {h.name}** ({h.from_team} → {h.to_team}, responsible: {h.team}). "
                    f"{h.definition}")
