"""Funnel: the lead funnel and the opportunity stage funnel, conversion and time in stage, by cohort and breakdown."""
import streamlit as st

from revops import charts, funnel
from revops.format import describe_filters, format_date, format_value
from ui import components, sidebar, state

filters, period = sidebar.current()

st.title("Funnel", anchor=False)
st.caption(f"As of **{format_date(period.as_of)}** · cohort: records created {format_date(period.start)} – "
           f"{format_date(period.end)} · {describe_filters(filters)}")

kind = st.segmented_control("Funnel", list(funnel.FUNNEL_KINDS), format_func=funnel.FUNNEL_KINDS.get,
                            default="opportunity", key="funnel_kind", label_visibility="collapsed") or "opportunity"
unit = "leads" if kind == "lead" else "deals"
name = funnel.FUNNEL_KINDS[kind]

with st.spinner("Counting the funnel…"):
    table = state.cached(funnel.funnel_table, filters, period, kind, None)

if not table["entered"].max():
    st.info(f"No {unit} were created in this window with these filters, so there is no funnel to show. "
            "Widen the window or clear a filter in the sidebar.", icon=":material/info:")
    st.stop()

first, last = table.row(0, named=True), table.row(-1, named=True)
bottleneck = funnel.find_bottleneck(table, unit=unit)
cards = st.columns(4)
cards[0].metric(f"Cohort ({first['stage']})", format_value(first["entered"], "count"), border=True,
                help=f"{unit.capitalize()} created in the window.")
cards[1].metric(f"Reached {last['stage']}", format_value(last["entered"], "count"), border=True,
                help=f"{unit.capitalize()} of the cohort that reached the last step so far.")
cards[2].metric("Cohort to won", format_value(last["cumulative_rate"], "ratio"), border=True,
                help="Share of the cohort that reached the last step so far; young cohorts are still converting.")
cards[3].metric("Bottleneck", bottleneck.stage or "—", border=True,
                help=f"Lowest conversion among the stages entered by at least {funnel.MIN_STAGE_VOLUME} {unit}.")
if bottleneck.stage:
    st.warning(bottleneck.message, icon=":material/filter_alt:")
else:
    st.info(bottleneck.message, icon=":material/info:")

COLUMNS = {
    "stage": st.column_config.TextColumn("Stage"),
    "entered": st.column_config.NumberColumn("Entered", format="localized"),
    "converted": st.column_config.NumberColumn("Converted", format="localized",
                                               help="Reached the next stage."),
    "rate": st.column_config.NumberColumn("Conversion", format="percent"),
    "cumulative_rate": st.column_config.NumberColumn("Share of cohort", format="percent"),
    "median_days": st.column_config.NumberColumn("Median days", format="%.1f", help="Median days in the stage."),
    "p90_days": st.column_config.NumberColumn("90th pct days", format="%.1f",
                                              help="90th percentile of days in the stage."),
    "timed": st.column_config.NumberColumn("Timed", format="localized",
                                           help="Records whose time in the stage is known (they have left it)."),
}
ORDER = ["stage", "entered", "converted", "rate", "cumulative_rate", "median_days", "p90_days", "timed"]

st.plotly_chart(charts.funnel_chart(table, unit=unit, title=f"{name}: {unit} created in the window"),
                key="funnel_chart", config={"displayModeBar": False})
st.markdown("**Conversion and time in stage**")
st.dataframe(table, hide_index=True, column_config=COLUMNS, column_order=ORDER, key="funnel_table",
             placeholder="—")
components.download_csv(table, file_name=f"funnel_{kind}_{period.as_of.isoformat()}.csv", key="funnel_csv")

st.subheader("By cohort", anchor=False)
st.caption("Each row is the month the records were created; younger cohorts have had less time to convert.")
MEASURES = {"cumulative_rate": "Share of the cohort reaching the stage", "rate": "Conversion to the next stage"}
measure = st.radio("Show", list(MEASURES), format_func=MEASURES.get, horizontal=True, key="funnel_cohort_measure",
                   label_visibility="collapsed") or "cumulative_rate"
cohorts = state.cached(funnel.funnel_table, filters, period, kind, "cohort")
st.plotly_chart(charts.heatmap(funnel.heatmap_cells(cohorts, measure), x="stage", y="cohort", z=measure),
                key="funnel_heatmap", config={"displayModeBar": False})

st.subheader("Breakdown", anchor=False)
by = st.selectbox("Break the funnel down by", ["segment", "source", "owner"], key="funnel_by",
                  format_func=funnel.BY_OPTIONS.get) or "segment"
split = state.cached(funnel.funnel_table, filters, period, kind, by)
st.plotly_chart(charts.heatmap(funnel.heatmap_cells(split, "rate"), x="stage", y=by, z="rate",
                               title=f"Conversion to the next stage by {by}"),
                key="funnel_by_heatmap", config={"displayModeBar": False})
st.dataframe(split, hide_index=True, key="funnel_by_table", column_order=[by, *ORDER], placeholder="—",
             column_config={by: st.column_config.TextColumn(by.capitalize()), **COLUMNS})
components.download_csv(split, file_name=f"funnel_{kind}_by_{by}_{period.as_of.isoformat()}.csv",
                        key="funnel_by_csv")

with st.expander("How it is counted", icon=":material/help:"):
    st.markdown(funnel.HOW_COUNTED)
