"""The shared sidebar: filters and the time frame, bound to the URL so a link reproduces a view."""
from __future__ import annotations

import datetime as dt

import streamlit as st

from revops.frames import Filters
from revops.period import Period, quarter_bounds
from ui import state

WINDOWS: dict[str, str] = {
    "365d": "Last 365 days",
    "180d": "Last 180 days",
    "90d": "Last 90 days",
    "30d": "Last 30 days",
    "qtd": "Quarter to date",
    "ytd": "Year to date",
    "custom": "Custom range",
}
_VIEW_KEY = "_revops_view"


def _window(as_of: dt.date, choice: str, fiscal_start: int, custom: tuple[dt.date, ...]) -> Period:
    if choice.endswith("d"):
        return Period.ending(as_of, int(choice[:-1]), fiscal_start)
    if choice == "qtd":
        start = quarter_bounds(as_of, fiscal_start)[0]
    elif choice == "ytd":
        start = quarter_bounds(as_of, fiscal_start)[0]
        while start.month != fiscal_start:
            start = quarter_bounds(start - dt.timedelta(days=1), fiscal_start)[0]
    else:
        if len(custom) == 2 and custom[0] <= custom[1]:
            return Period(as_of, custom[0], custom[1], fiscal_start)
        return Period.ending(as_of, 365, fiscal_start)
    return Period(as_of, start, as_of, fiscal_start)


def render() -> tuple[Filters, Period]:
    """Draw the sidebar filters and remember the view for the page that runs next."""
    data = state.all_frames()
    default = state.default_period()
    choices = state.filter_choices()
    sb = st.sidebar
    sb.markdown("**Time frame**")
    as_of = sb.date_input("As of", value=default.as_of, key="as_of", bind="query-params",
                          help="The day the cockpit looks from. Default: the latest event in the data.")
    as_of = as_of or default.as_of
    choice = sb.selectbox("Window", list(WINDOWS), format_func=WINDOWS.get, key="window", bind="query-params",
                          help="The period the metrics count over, ending at the as-of date.")
    custom: tuple[dt.date, ...] = ()
    if choice == "custom":
        picked = sb.date_input("Range", value=(default.start, default.end), key="range")
        custom = tuple(picked) if isinstance(picked, (list, tuple)) else (picked,)
    period = _window(as_of, choice or "365d", data.settings.fiscal_year_start_month, custom)
    sb.markdown("**Filters**")
    picked_filters = {
        dim: tuple(sb.multiselect(dim.capitalize(), choices[dim], key=dim, bind="query-params",
                                  placeholder=f"All {dim}s"))
        for dim in ("segment", "region", "owner", "source")
    }
    filters = Filters(**picked_filters)
    st.session_state[_VIEW_KEY] = (filters, period)
    return filters, period


def current() -> tuple[Filters, Period]:
    """The filters and period chosen in the sidebar on this run."""
    state.require_router()
    if _VIEW_KEY not in st.session_state:
        return render()
    return st.session_state[_VIEW_KEY]
