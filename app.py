"""RevOps cockpit: the router. Sections, the shared sidebar, the demo banner; pages do the rest."""
import streamlit as st

from revops.store import StoreBusy
from ui import auth, sidebar, state

st.set_page_config(page_title="RevOps cockpit", page_icon=":material/monitoring:", layout="wide")

PAGES = {
    "Metrics": [
        st.Page("pages/north_star.py", title="North Star", icon=":material/star:", default=True),
        st.Page("pages/operational.py", title="Operational", icon=":material/speed:"),
        st.Page("pages/diagnostic.py", title="Diagnostic", icon=":material/troubleshoot:"),
        st.Page("pages/leading.py", title="Leading", icon=":material/trending_up:"),
    ],
    "Pipeline": [
        st.Page("pages/pipeline_review.py", title="Pipeline review", icon=":material/view_week:"),
        st.Page("pages/funnel.py", title="Funnel", icon=":material/filter_alt:"),
        st.Page("pages/handoffs.py", title="Handoffs", icon=":material/swap_horiz:"),
    ],
    "Plan": [
        st.Page("pages/forecast.py", title="Forecast", icon=":material/query_stats:"),
        st.Page("pages/operating_model.py", title="Operating model", icon=":material/account_tree:"),
    ],
    "Data": [
        st.Page("pages/data.py", title="Data", icon=":material/database:"),
    ],
}

if auth.gate():
    page = st.navigation(PAGES)
    try:
        state.ensure_data()
        demo = state.is_demo()
    except Exception as exc:  # a broken or busy database file: one sentence, not a traceback
        st.error(state.open_problem(exc), icon=":material/error:")
        st.stop()
    if demo:
        st.info("You are looking at **demo data** for a made-up company. Load your own exports on the "
                "**Data** page to see your numbers.", icon=":material/science:")
    try:
        sidebar.render()
        page.run()
    except StoreBusy as exc:  # an upload from another process took the file while this page was reading it
        st.warning(f"{exc} The page shows its numbers again once the upload is done.", icon=":material/hourglass_top:")
