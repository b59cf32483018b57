"""Forecast: what-if levers over a baseline from history, sensitivity, named scenarios, and how far to trust it."""
import streamlit as st

from revops import backtest, charts, scenarios
from revops import forecast as fcast
from revops.errors import user_message
from revops.format import axis_format, delta, format_date, format_value
from ui import auth, components, sidebar, state

BASELINE = "Historical baseline"
CURRENT = "Current sliders"

filters, period = sidebar.current()
frames = state.frames(filters)
currency = frames.settings.currency
money_axis = axis_format("money", currency)

st.title("Forecast")
try:
    inputs = state.cached(fcast.prepare, filters, period)
except Exception as exc:  # the user gets one sentence, never a traceback
    st.error(f"The forecast could not be built: {user_message(exc)}")
    st.stop()
specs = fcast.slider_specs(inputs.baseline, currency)
st.caption(f"Bookings and ARR for the four quarters from {format_date(inputs.months[0])}, month by month, "
           f"as known on **{format_date(period.as_of)}**. Every lever starts at its historical value; move one "
           "and the forecast follows.")
with st.expander("How the forecast is built"):
    st.markdown(fcast.__doc__.split("\n\n", 1)[1])
    st.caption(inputs.past_due.note)
if inputs.gaps:
    missing = "\n".join(f"- **{fcast.LEVERS[name].label}**: {reason.rstrip('.')}."
                        for name, reason in inputs.gaps.items())
    st.info(f"These levers have no history, so they start at 0; set them by hand:\n{missing}", icon=":material/info:")


def _slider_key(name: str) -> str:
    return f"fc_{name}"


def _apply(levers: fcast.Levers) -> None:
    """Move the sliders to a set of levers (a saved scenario or the baseline)."""
    for spec in specs:
        value = getattr(levers, spec.name)
        if value is not None:
            st.session_state[_slider_key(spec.name)] = min(max(float(value), spec.min_value), spec.max_value)


def _on_scenario(saved: dict[str, fcast.Levers]) -> None:
    chosen = st.session_state.get("fc_scenario")
    _apply(saved.get(chosen, inputs.baseline))


def _on_save(levers: fcast.Levers) -> None:
    reason = auth.edit_blocked_reason()
    if reason:
        st.session_state["_fc_message"] = ("warning", reason)
        return
    try:
        name = scenarios.save_scenario(state.db_path(), st.session_state.get("fc_new_name", ""), levers)
    except Exception as exc:  # the user gets one sentence, never a traceback
        st.session_state["_fc_message"] = ("error", user_message(exc))
        return
    st.session_state["_fc_message"] = ("success", f"Saved the scenario “{name}”.")
    st.session_state["fc_scenario"] = name


def _on_delete() -> None:
    name = st.session_state.get("fc_delete")
    reason = auth.edit_blocked_reason()
    if reason or not name:
        st.session_state["_fc_message"] = ("warning", reason or "Pick a scenario to delete.")
        return
    try:
        scenarios.delete_scenario(state.db_path(), name)
    except Exception as exc:  # the user gets one sentence, never a traceback
        st.session_state["_fc_message"] = ("error", user_message(exc))
        return
    st.session_state["_fc_message"] = ("success", f"Deleted the scenario “{name}”.")
    if st.session_state.get("fc_scenario") == name:
        st.session_state["fc_scenario"] = BASELINE


def _card(column, label: str, value: float, reference: float | None, against: str, help_text: str) -> None:
    """A headline number with its difference to the target or the baseline (no arrow when equal)."""
    change = delta(value, reference, "money", currency)
    kwargs: dict = {}
    if change is not None:
        kwargs = {"delta": f"{change.text} {against}", "delta_color": "normal" if change.direction else "off"}
        if not change.direction:
            kwargs["delta_arrow"] = "off"
    column.metric(label, format_value(value, "money", currency), help=help_text, **kwargs)


# New data or other filters give a new history: the levers start again from it.
if st.session_state.get("_fc_baseline") not in (None, inputs.baseline):
    _apply(inputs.baseline)
st.session_state["_fc_baseline"] = inputs.baseline


@st.fragment
def what_if() -> None:
    """Sliders, the forecast against target and baseline, sensitivity and scenarios: reruns alone on a move."""
    try:
        saved = scenarios.load_scenarios(state.db_path())
    except Exception as exc:  # the user gets one sentence, never a traceback
        st.error(user_message(exc))
        saved = {}
    # A link carrying only ?fc_scenario=… opens that scenario's levers.
    if "_fc_opened" not in st.session_state:
        st.session_state["_fc_opened"] = True
        chosen = st.query_params.get("fc_scenario")
        if chosen in saved and not any(_slider_key(s.name) in st.query_params for s in specs):
            _apply(saved[chosen])

    top_left, top_right = st.columns([2, 3], vertical_alignment="bottom")
    top_left.selectbox("Scenario", [BASELINE, *saved], key="fc_scenario", bind="query-params",
                       on_change=_on_scenario, args=(saved,),
                       help="Load a saved scenario's levers (the link in the address bar shares it).")

    st.markdown("**Levers**")
    values: dict[str, float] = {}
    columns = st.columns(4)
    for i, spec in enumerate(specs):
        with columns[i % 4]:
            values[spec.name] = st.slider(
                spec.label, min_value=spec.min_value, max_value=spec.max_value, value=spec.value, step=spec.step,
                format=spec.fmt, key=_slider_key(spec.name), bind="query-params", help=spec.help)
            st.caption(f"History: {format_value(spec.value, spec.unit, currency)}")
    levers = fcast.levers_from_values(inputs.baseline, values)

    with top_right:
        name_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
        name_col.text_input("Save these levers as", key="fc_new_name", placeholder="e.g. Hire 2 SDRs",
                            max_chars=scenarios.MAX_NAME)
        button_col.button("Save", key="fc_save", on_click=_on_save, args=(levers,), icon=":material/save:",
                          disabled=not auth.can_edit())
    message = st.session_state.pop("_fc_message", None)
    if message:
        getattr(st, message[0])(message[1])

    fc = fcast.project(inputs, levers)
    base_fc = fcast.project(inputs, inputs.baseline)
    head = fcast.headline(fc, base_fc)
    quarter = f"{format_date(head.quarter_start)} – {format_date(head.quarter_end)}"
    cards = st.columns(3)
    _card(cards[0], f"Bookings, quarter {quarter}", head.quarter_bookings, head.quarter_target, "vs target",
          "Won so far + open pipeline + new pipeline expected in the quarter, against its target.")
    if head.quarter_target is None:
        cards[0].caption("No target loaded for this quarter.")
    _card(cards[1], "Bookings, next four quarters", head.total_bookings, head.baseline_total_bookings,
          "vs baseline", "The twelve months' bookings under these levers, against the historical baseline.")
    _card(cards[2], f"ARR on {format_date(head.arr_date)}", head.year_end_arr, head.baseline_year_end_arr,
          "vs baseline", "ARR at the end of the twelfth month under these levers, against the baseline.")

    chart_tab, arr_tab, table_tab = st.tabs(["Bookings vs target", "ARR", "Table"])
    with chart_tab:
        st.plotly_chart(charts.forecast_vs_target(fc, base_fc, axis=money_axis), key="fc_chart",
                        config={"displayModeBar": False})
    with arr_tab:
        st.plotly_chart(charts.arr_forecast(fc, base_fc, axis=money_axis), key="fc_arr_chart",
                        config={"displayModeBar": False})
    with table_tab:
        st.markdown("**By quarter**")
        components.data_table(fcast.quarterly(fc), file_name="forecast_by_quarter.csv", key="fc_quarters",
                              empty="No forecast.")
        st.markdown("**By month**")
        components.data_table(fc, file_name="forecast_by_month.csv", key="fc_months", empty="No forecast.",
                              currency=currency)

    st.subheader("Sensitivity")
    output = st.radio("Measure", ["arr", "bookings"], horizontal=True, key="fc_sens_output",
                      format_func={"arr": "ARR at month 12", "bookings": "Bookings over the four quarters"}.get)
    sens = fcast.sensitivity_of(inputs, levers)
    st.caption("How much ±10 % on each lever moves the number; the lever at the top matters most.")
    st.plotly_chart(charts.tornado(sens, output, axis=money_axis), key="fc_tornado",
                    config={"displayModeBar": False})

    st.subheader("Scenarios")
    options = [BASELINE, CURRENT, *saved]
    picked = st.multiselect("Compare", options, default=[BASELINE, CURRENT, *list(saved)[:3]], key="fc_compare")
    compared = {n: inputs.baseline if n == BASELINE else levers if n == CURRENT else saved[n] for n in picked}
    if compared:
        summary, lines = fcast.compare(inputs, compared)
        st.plotly_chart(charts.scenario_lines(lines, "cumulative", title="Cumulative bookings", axis=money_axis),
                        key="fc_compare_chart", config={"displayModeBar": False})
        components.data_table(summary, file_name="scenarios.csv", key="fc_compare_table", empty="No scenario.",
                              currency=currency)
    if saved:
        del_left, del_right = st.columns([3, 1], vertical_alignment="bottom")
        del_left.selectbox("Delete a saved scenario", list(saved), key="fc_delete")
        del_right.button("Delete", key="fc_delete_button", on_click=_on_delete, icon=":material/delete:",
                         disabled=not auth.can_edit())
    else:
        st.caption("No saved scenario yet: move the levers, name them and save.")


what_if()

st.subheader("How far to trust it")
bt = state.cached(backtest.backtest, filters, period)
st.markdown(backtest.accuracy_sentence(bt))
if bt["forecast_bookings"].drop_nulls().len():
    st.plotly_chart(charts.backtest_bars(bt, axis=money_axis), key="fc_backtest_chart",
                    config={"displayModeBar": False})
components.data_table(bt, file_name="forecast_backtest.csv", key="fc_backtest", empty="No past quarter to test.",
                      currency=currency)
st.caption("Each past quarter is forecast from the data as it stood the day before it began (deals created by "
           "then, their stage then from stage history or snapshots, subscriptions started by then) and compared "
           "with the bookings actually won in it.")
