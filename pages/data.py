"""Data: upload with preview and mapping, the upload log with undo, settings, data quality, the data dictionary."""
import datetime as dt

import polars as pl
import streamlit as st

from revops import store
from revops.errors import user_message
from revops.export import to_csv_bytes
from revops.format import markdown_text
from revops.frames import Filters
from revops.ingest import load, preview, undo, upload_log
from revops.ingest import dictionary as dd
from revops.ingest import settings_edit as se
from revops.ingest.aliases import targets
from revops.ingest.load import describe_size
from revops.schema import TABLES, Settings
from revops.stages import unknown_stages
from ui import auth, sidebar, state

GUESS = "(guess from the columns)"
ASIDE = ""
FLASH = "data_flash"
_, period = sidebar.current()


def flash(kind: str, text: str) -> None:
    """A message to show at the top of the next run (after st.rerun)."""
    st.session_state[FLASH] = (kind, text)


def show_flash() -> None:
    """Show and forget the message left by the last write action."""
    if FLASH in st.session_state:
        kind, text = st.session_state.pop(FLASH)
        (st.success if kind == "success" else st.error)(text)


def current_user() -> str:
    """Who is loading: the signed-in address, else 'local user'."""
    return auth.email() or "local user"


# ---------------------------------------------------------------------------------------
# Write actions: button callbacks (they run once, before the page reruns with the new data
# version), each checking the editor role on the server side before touching the file.


def _refused() -> bool:
    """True (with the reason left for the page) when this visitor may not change data."""
    reason = auth.edit_blocked_reason()
    if reason:
        flash("error", reason)
    return reason is not None


def load_upload(pv) -> None:
    """Load the previewed file in one transaction; the data version changes, so every cache refreshes."""
    if _refused():
        return
    as_of = st.session_state.get("data_as_of") if pv.table == "opportunities" else None
    try:
        with store.write_lock():  # another session's upload must not land between the comparison and the write
            result = load(state.db_path(), pv, as_of=as_of, user=current_user(),
                          strict=bool(st.session_state.get("data_strict")),
                          save_mapping=bool(st.session_state.get("data_remember")))
    except Exception as exc:  # one sentence for the user, never a traceback
        flash("error", user_message(exc))
        return
    st.session_state["data_uploader_round"] = st.session_state.get("data_uploader_round", 0) + 1
    st.session_state.pop("data_preview", None)
    flash("success", result.summary())


def undo_upload(upload_id: int) -> None:
    """Undo one upload (refused, with the reason, when a later upload overlapped it)."""
    if _refused():
        return
    try:
        with store.write_lock():  # the overlap check and the undo see the same uploads
            done = undo(state.db_path(), upload_id)
    except Exception as exc:
        flash("error", user_message(exc))
        return
    flash("success", f"Undid upload {done.upload_id} ({done.table}): restored {done.rows_restored} rows it had "
                     f"replaced and removed {done.rows_removed} rows it had added.")


def save_settings(build, what: str) -> None:
    """Build the new settings from the widgets and save them (a new data version)."""
    if _refused():
        return
    try:
        new = build()
        with store.connect(state.db_path()) as con:
            store.save_settings(con, new)
    except Exception as exc:
        flash("error", user_message(exc))
        return
    flash("success", f"Saved the {what}.")


def place_found_stages(settings: Settings, found: list[str]) -> None:
    """Save the placements chosen for stages found in the data."""
    placements = {f: st.session_state.get(f"data_place_{i}", "") for i, f in enumerate(found)}
    save_settings(lambda: se.place_stages(settings, placements), "stage placements")


def save_stage_table(settings: Settings, rows: list[dict]) -> None:
    """Save the edited stage table."""
    edited = se.apply_editor_changes(rows, st.session_state.get("data_stages"))
    save_settings(lambda: se.stages_from_rows(settings, edited), "stages")


GENERAL_FIELDS = ("sla_lead_response_minutes", "sla_kickoff_hours", "sla_first_value_days",
                  "sla_renewal_outreach_days", "fiscal_year_start_month", "currency", "gross_margin", "date_order",
                  "stall_days")


def save_general(settings: Settings) -> None:
    """Save SLAs, fiscal year, currency, margin, date order and stall days."""
    values = {f: st.session_state[f"data_set_{f}"] for f in GENERAL_FIELDS if f"data_set_{f}" in st.session_state}
    save_settings(lambda: se.with_general(settings, **values), "settings")


# ---------------------------------------------------------------------------------------
# Upload


def file_signature(upload, table: str | None) -> str:
    """Widget-key suffix of the mapping selectboxes: they start over for another file or table."""
    return f"{upload.file_id}_{table or 'guess'}"


def manual_mapping(headers: list[str], sig: str) -> dict[str, str]:
    """The mapping chosen in the selectboxes on the previous run (empty on the first run of a file)."""
    chosen = {h: st.session_state[f"map_{sig}_{i}"] for i, h in enumerate(headers)
              if f"map_{sig}_{i}" in st.session_state}
    return {h: ("" if v == ASIDE else v) for h, v in chosen.items()}


def get_preview(upload, table: str | None, mapping: dict[str, str]):
    """The file's preview, recomputed only when the file, table, mapping or data version changed."""
    key = (upload.file_id, table, tuple(sorted(mapping.items())), state.version())
    held = st.session_state.get("data_preview")
    if held is not None and held[0] == key:
        return held[1]
    with st.status(f"Reading and checking {upload.name} ({describe_size(upload.size)})…", expanded=False) as status:
        pv = preview(upload.getvalue(), upload.name, table, mapping or None, db=state.db_path())
        status.update(label=f"Read {pv.rows_read:,} rows of {upload.name}", state="complete")
    st.session_state["data_preview"] = (key, pv)
    return pv


def mapping_editor(pv, sig: str) -> None:
    """One selectbox per column of the file: the canonical column it fills, or kept aside."""
    options = [ASIDE] + targets(pv.table)
    samples = pv.samples()
    st.markdown("**Column mapping** — where each column of the file goes")
    cols = st.columns(3)
    for i, header in enumerate(pv.headers):
        key = f"map_{sig}_{i}"
        current = pv.mapping.get(header, ASIDE)
        kwargs = {} if key in st.session_state else {"index": options.index(current)}
        sample = samples.get(header)
        cols[i % 3].selectbox(
            markdown_text(header), options, key=key, format_func=lambda v: v or "(keep aside)",
            help=f"Example value: {str(sample)[:60]}" if sample is not None else "No value in this column.",
            **kwargs)
    if pv.unmatched:
        st.caption("Kept aside (stored with the upload, not lost): " + markdown_text(", ".join(pv.unmatched)))
    for header, why in pv.ambiguous.items():
        st.caption(f":material/help: “{markdown_text(header)}” {why}.")


def upload_section() -> None:
    """Upload → preview (mapping, rows to load, rejects) → Load."""
    round_ = st.session_state.get("data_uploader_round", 0)
    upload = st.file_uploader("A CSV, TSV or Excel export (Salesforce, HubSpot, a billing tool, a spreadsheet)",
                              type=["csv", "txt", "tsv", "xlsx"], key=f"data_uploader_{round_}",
                              help=f"Files up to {st.get_option('server.maxUploadSize')} MB: the limit set by "
                                   "server.maxUploadSize in .streamlit/config.toml (README, “Security and "
                                   "access”). Bigger exports load with `python -m revops ingest`, which has no "
                                   "limit.")
    picked = st.selectbox("Table", [GUESS, *TABLES], key="data_table",
                          help="Which canonical table the file fills; by default guessed from its column names.")
    if upload is None:
        st.caption("Nothing is written until you press Load; every upload can be undone below.")
        return
    table = None if picked == GUESS else picked
    try:
        sig = file_signature(upload, table)
        held = st.session_state.get("data_preview")
        headers = held[1].headers if held is not None and held[0][0] == upload.file_id else []
        pv = get_preview(upload, table, manual_mapping(headers, sig))
    except Exception as exc:
        st.error(user_message(exc))
        return
    for note in pv.notices:
        st.info(markdown_text(note), icon=":material/info:")
    mapping_editor(pv, file_signature(upload, table))
    c1, c2, c3 = st.columns(3)
    c1.metric("Rows read", f"{pv.rows_read:,}", border=True)
    c2.metric("Rows to load", f"{pv.rows_ok:,}", border=True)
    c3.metric("Rows rejected", f"{pv.rows_rejected:,}", border=True)
    if pv.problem:
        st.error(markdown_text(pv.problem))
    if pv.rows_rejected:
        st.markdown("**Rejected rows** — line in the file (header = line 1), column and reason")
        st.dataframe(pv.reasons(), hide_index=True, key="data_reasons")
        st.dataframe(pv.rejects.select("line", "column", "reason"), hide_index=True, key="data_rejects")
        st.download_button("Download the rejected rows (CSV with an error column)", pv.rejects_csv(),
                           file_name=f"rejected_{upload.name.rsplit('.', 1)[0]}.csv", mime="text/csv",
                           key="data_rejects_download")
    if pv.rows_ok:
        with st.expander(f"First rows to load into {pv.table}"):
            st.dataframe(pv.frame.head(50), hide_index=True)
    if pv.table == "opportunities":
        st.date_input("Snapshot date (as of)", value=state.today(), key="data_as_of",
                      help="The pipeline of this file is kept as a snapshot of this day.")
    st.checkbox("Save this mapping for files with the same columns", key="data_remember")
    st.checkbox("Load only if every row is valid", key="data_strict")
    blocked = auth.edit_blocked_reason()
    st.button(f"Load {pv.rows_ok:,} rows into {pv.table}", type="primary", key="data_load",
              disabled=bool(pv.problem) or blocked is not None, help=blocked, on_click=load_upload, args=(pv,))


# ---------------------------------------------------------------------------------------
# Upload log


def uploads_section() -> None:
    """The upload log, newest first, with an Undo button per live upload."""
    try:
        log = upload_log(state.db_path())
    except Exception as exc:
        st.error(user_message(exc))
        return
    if log.height == 0:
        st.info("No uploads yet.", icon=":material/info:")
        return
    st.dataframe(log.drop("sha256"), hide_index=True, key="data_log", column_config={
        "upload_id": "Upload", "table_name": "Table", "file_name": "File", "rows_read": "Read",
        "rows_loaded": "Loaded", "rows_rejected": "Rejected", "rows_inserted": "New", "rows_replaced": "Updated",
        "user_name": "By", "uploaded_at": "At", "as_of": "As of", "undone_at": "Undone"})
    blocked = auth.edit_blocked_reason()
    for row in log.filter(pl.col("undone_at").is_null()).head(20).iter_rows(named=True):
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.write(f"**{row['upload_id']}** · {row['table_name']} · {markdown_text(row['file_name'])} · "
                   f"{row['rows_loaded']:,} rows · {row['uploaded_at']:%Y-%m-%d %H:%M}")
        right.button("Undo", key=f"data_undo_{row['upload_id']}", disabled=blocked is not None, help=blocked,
                     on_click=undo_upload, args=(int(row["upload_id"]),))


# ---------------------------------------------------------------------------------------
# Settings


def stage_section(settings: Settings) -> None:
    """Stage order, won/lost, probability and aliases; stages in the data that the settings do not place."""
    blocked = auth.edit_blocked_reason()
    found = unknown_stages(state.all_frames().opportunities["stage"], settings)
    if found:
        st.warning("Stages in your data that the settings do not place (counted as open until placed): "
                   + ", ".join(found[:20]), icon=":material/help:")
        names = [s.name for s in sorted(settings.stages, key=lambda s: s.funnel_step)]
        choices = ["", se.NEW_STAGE, *names]
        label = {"": "(not placed)", se.NEW_STAGE: "a new open stage of its own"}
        for i, f in enumerate(found[:20]):
            st.selectbox(f"“{f}” is", choices, key=f"data_place_{i}",
                         format_func=lambda v: label.get(v, f"another name for {v}"))
        st.button("Place these stages", key="data_place", disabled=blocked is not None, help=blocked,
                  on_click=place_found_stages, args=(settings, found[:20]))
    rows = se.stage_rows(settings)
    st.data_editor(rows, num_rows="dynamic", hide_index=True, key="data_stages",
                            column_config={
                                "name": st.column_config.TextColumn("Stage", required=True),
                                "funnel_step": st.column_config.NumberColumn("Funnel step", step=1),
                                "is_closed": st.column_config.CheckboxColumn("Closed"),
                                "is_won": st.column_config.CheckboxColumn("Won"),
                                "probability": st.column_config.NumberColumn("Probability", min_value=0.0,
                                                                             max_value=1.0, step=0.05),
                                "aliases": st.column_config.TextColumn("Other names (comma-separated)")})
    st.button("Save stages", key="data_save_stages", disabled=blocked is not None, help=blocked,
              on_click=save_stage_table, args=(settings, rows.to_dicts()))


def general_section(settings: Settings) -> None:
    """SLAs, fiscal year, currency, gross margin, date order, stall days."""
    blocked = auth.edit_blocked_reason()
    with st.form("data_general"):
        c1, c2 = st.columns(2)
        c1.number_input("Lead response SLA (minutes)", min_value=0.0, value=float(settings.slas.lead_response_minutes),
                        key="data_set_sla_lead_response_minutes")
        c1.number_input("Kickoff SLA (hours after signature)", min_value=0.0, value=float(settings.slas.kickoff_hours),
                        key="data_set_sla_kickoff_hours")
        c1.number_input("First value SLA (days after signature)", min_value=0.0,
                        value=float(settings.slas.first_value_days), key="data_set_sla_first_value_days")
        c1.number_input("Renewal outreach (days before renewal)", min_value=0,
                        value=int(settings.slas.renewal_outreach_days), key="data_set_sla_renewal_outreach_days")
        c2.selectbox("Fiscal year starts in", list(range(1, 13)), index=settings.fiscal_year_start_month - 1,
                     format_func=lambda m: dt.date(2000, m, 1).strftime("%B"), key="data_set_fiscal_year_start_month")
        c2.text_input("Currency (three-letter code)", value=settings.currency, key="data_set_currency")
        c2.number_input("Gross margin", min_value=0.01, max_value=1.0, step=0.01, value=float(settings.gross_margin),
                        key="data_set_gross_margin")
        c2.selectbox("Ambiguous dates such as 03/04/2024 are", ["month_first", "day_first"],
                     index=0 if settings.date_order == "month_first" else 1, key="data_set_date_order",
                     format_func=lambda v: "month first (US)" if v == "month_first" else "day first (Europe)")
        c2.number_input("A deal stalls after (days without change)", min_value=1, value=int(settings.stall_days),
                        key="data_set_stall_days")
        st.form_submit_button("Save settings", disabled=blocked is not None, on_click=save_general,
                              args=(settings,))


# ---------------------------------------------------------------------------------------
# Data quality and dictionary


def quality_section() -> None:
    """Filled and valid share of the expected cells, per table and per column."""
    by_table = state.cached(dd.quality_by_table, Filters(), period)
    if by_table.height == 0:
        st.info("No data loaded yet.", icon=":material/info:")
        return
    share = st.column_config.ProgressColumn
    st.dataframe(by_table, hide_index=True, key="data_quality", column_config={
        "filled_share": share("Filled", format="percent", min_value=0, max_value=1),
        "quality": share("Filled and valid", format="percent", min_value=0, max_value=1)})
    with st.expander("Per column"):
        st.dataframe(state.cached(dd.quality_by_column, Filters(), period), hide_index=True,
                     key="data_quality_columns",
                     column_config={"quality": share("Filled and valid", format="percent", min_value=0,
                                                     max_value=1)})


def dictionary_section() -> None:
    """The canonical tables and columns, and every metric's definition."""
    st.dataframe(dd.table_descriptions(), hide_index=True, key="data_tables")
    columns = dd.data_dictionary()
    st.dataframe(columns, hide_index=True, key="data_columns")
    st.download_button("Download the data dictionary (CSV)", to_csv_bytes(columns), file_name="data_dictionary.csv",
                       mime="text/csv", key="data_dictionary_download")
    metrics = dd.metric_dictionary()
    st.markdown("**Metrics**")
    st.dataframe(metrics, hide_index=True, key="data_metrics")
    st.download_button("Download the metric definitions (CSV)", to_csv_bytes(metrics), file_name="metrics.csv",
                       mime="text/csv", key="data_metrics_download")


# ---------------------------------------------------------------------------------------

st.title("Data", anchor=False)
st.caption(auth.access_note())
show_flash()
upload_tab, log_tab, settings_tab, quality_tab, dictionary_tab = st.tabs(
    ["Upload", "Uploads", "Stages and settings", "Data quality", "Dictionary"])
with upload_tab:
    upload_section()
with log_tab:
    uploads_section()
with settings_tab:
    workspace = state.all_frames().settings
    stage_section(workspace)
    st.divider()
    general_section(workspace)
with quality_tab:
    quality_section()
with dictionary_tab:
    dictionary_section()
