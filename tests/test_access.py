"""Access control: open as a local tool without [auth]; with it, sign-in and roles decide who sees and changes data."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.auth import EDITOR, NONE, VIEWER, auth_problem, resolve_role

APP = Path(__file__).resolve().parents[1] / "app.py"
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "not-a-real-secret-but-long-enough-0123456789",
    "client_id": "cockpit",
    "client_secret": "shh",
    "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
}
ROLES = {"editors": ["Ana@Acme.com"], "viewers": ["@acme.com"], "default_role": "none"}


def _probe() -> None:
    """A page behind the gate that shows the role and a write button guarded like the Data page's."""
    import streamlit as st

    from ui import auth

    if auth.gate():
        st.markdown(f"role={auth.role()} can_edit={auth.can_edit()}")
        st.caption(auth.access_note())
        if st.button("Load", disabled=not auth.can_edit(), help=auth.edit_blocked_reason()) and auth.allow_edit():
            st.markdown("WROTE")
        # A write action drawn enabled for everyone: allow_edit() alone must stop a viewer.
        if st.button("Save") and auth.allow_edit():
            st.markdown("SAVED")


def _app(user: dict | None, secrets: dict | None) -> AppTest:
    at = AppTest.from_function(_probe, default_timeout=30)
    if secrets:
        at.secrets.update(secrets)
    if user is not None:
        at.user = user
    return at.run()


def _texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error])


# --- role lookup -----------------------------------------------------------------------------------------------

def test_exact_address_is_case_insensitive():
    """An editor listed as Ana@Acme.com is recognised when the provider says ana@acme.com."""
    assert resolve_role("ana@acme.com", ROLES) == EDITOR


def test_domain_entry_matches_the_whole_domain_only():
    """"@acme.com" lets bob@acme.com view, but not bob@notacme.com nor bob@acme.com.evil.io."""
    assert resolve_role("bob@acme.com", ROLES) == VIEWER
    assert resolve_role("bob@notacme.com", ROLES) == NONE
    assert resolve_role("bob@acme.com.evil.io", ROLES) == NONE


def test_most_specific_entry_wins():
    """An address listed exactly as editor beats its domain listed as viewers."""
    roles = {"editors": ["boss@acme.com"], "viewers": ["@acme.com"]}
    assert resolve_role("boss@acme.com", roles) == EDITOR


def test_listed_both_ways_gets_the_smaller_right():
    """The same address among editors and viewers is a viewer: a config slip never grants more."""
    assert resolve_role("x@acme.com", {"editors": ["x@acme.com"], "viewers": ["x@acme.com"]}) == VIEWER


def test_unlisted_gets_default_role_which_defaults_to_none():
    """Nobody is let in by accident: without default_role an unlisted address has no access."""
    assert resolve_role("stranger@gmail.com", {"editors": ["a@x.com"]}) == NONE
    assert resolve_role("stranger@gmail.com", {"default_role": "viewer"}) == VIEWER
    assert resolve_role("stranger@gmail.com", None) == NONE


def test_unknown_default_role_falls_back_to_none():
    """A misspelt default_role ("admin") grants nothing rather than something."""
    assert resolve_role("a@x.com", {"default_role": "admin"}) == NONE


def test_wildcard_and_single_string_lists():
    """"*" matches anyone signed in, and a single string counts as a list of one."""
    assert resolve_role("anyone@x.io", {"viewers": "*"}) == VIEWER
    assert resolve_role("a@x.com", {"editors": "a@x.com"}) == EDITOR


def test_no_address_gets_default_role():
    """A sign-in without a (verified) address only gets the default role."""
    assert resolve_role(None, {"editors": ["*"], "default_role": "none"}) == NONE


def test_auth_problem_names_missing_keys():
    """An [auth] section without cookie_secret and client_id is reported by name."""
    problem = auth_problem({"redirect_uri": "http://x/oauth2callback", "client_secret": "s",
                            "server_metadata_url": "https://idp/.well-known/openid-configuration"})
    assert problem and "cookie_secret" in problem and "client_id" in problem
    assert auth_problem(AUTH) is None
    assert auth_problem({"redirect_uri": "r", "cookie_secret": "c", "google": {"client_id": "x"}}) is None


# --- the gate in a running script ------------------------------------------------------------------------------

def test_open_without_auth_section():
    """Without [auth] the app is open: everyone may edit, and the page says it runs as a local tool."""
    at = _app(None, None)
    assert not at.exception
    assert "role=open can_edit=True" in _texts(at)
    assert "local tool" in _texts(at)
    assert not at.button[0].disabled


def test_signed_out_sees_sign_in_and_no_data():
    """With [auth] configured a signed-out visitor gets the sign-in button and nothing behind the gate."""
    at = _app({"is_logged_in": False}, {"auth": AUTH, "roles": ROLES})
    assert not at.exception
    assert "role=" not in _texts(at)
    assert [b.label for b in at.button] == ["Sign in"]


def test_unlisted_user_is_refused():
    """A signed-in address on no list sees a refusal naming it, not the data."""
    at = _app({"is_logged_in": True, "email": "eve@gmail.com"}, {"auth": AUTH, "roles": ROLES})
    assert not at.exception
    assert "role=" not in _texts(at)
    assert "eve@gmail.com has no access" in _texts(at)


def test_viewer_sees_data_with_write_disabled_and_a_reason():
    """A viewer gets in, the write button is disabled, and the caption says why."""
    at = _app({"is_logged_in": True, "email": "bob@acme.com"}, {"auth": AUTH, "roles": ROLES})
    assert not at.exception
    assert "role=viewer can_edit=False" in _texts(at)
    load = next(b for b in at.button if b.label == "Load")
    assert load.disabled
    assert "view-only" in _texts(at)


def test_allow_edit_refuses_a_viewer_on_the_server():
    """A viewer's click on a write button that was not drawn disabled still writes nothing, with a reason."""
    at = _app({"is_logged_in": True, "email": "bob@acme.com"}, {"auth": AUTH, "roles": ROLES})
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert "SAVED" not in _texts(at)
    assert any("view-only" in w.value for w in at.warning)


def test_editor_may_write():
    """An editor's click on the write button goes through."""
    at = _app({"is_logged_in": True, "email": "ana@acme.com"}, {"auth": AUTH, "roles": ROLES})
    assert "role=editor can_edit=True" in _texts(at)
    next(b for b in at.button if b.label == "Load").click()
    at.run()
    assert "WROTE" in _texts(at)
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert "SAVED" in _texts(at)


def test_unverified_email_is_not_trusted():
    """An address the provider marks unverified does not match the editors list."""
    at = _app({"is_logged_in": True, "email": "ana@acme.com", "email_verified": False},
              {"auth": AUTH, "roles": {**ROLES, "default_role": "viewer"}})
    assert "role=viewer can_edit=False" in _texts(at)


def test_incomplete_auth_section_is_explained():
    """A half-written [auth] section shows what is missing instead of a sign-in button that would crash."""
    at = _app({"is_logged_in": False}, {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback"}})
    assert not at.exception
    assert "cookie_secret" in _texts(at)
    assert not at.button


@pytest.mark.parametrize("email,expected", [("ana@acme.com", True), ("bob@acme.com", False)])
def test_sidebar_names_the_signed_in_user(email, expected):
    """The sidebar says who is signed in and with which role."""
    at = _app({"is_logged_in": True, "email": email}, {"auth": AUTH, "roles": ROLES})
    shown = " ".join(c.value for c in at.sidebar.caption)
    assert email in shown and ("editor" in shown) == expected


# --- the real app ----------------------------------------------------------------------------------------------

WRITE_BUTTONS = ("Save stages", "Save settings")


@pytest.fixture()
def empty_db(tmp_path, monkeypatch):
    """An empty workspace with one earlier upload, so the upload log has an Undo button."""
    from revops import store
    from revops.ingest import ingest_file

    db = tmp_path / "access.duckdb"
    src = tmp_path / "deals.csv"
    src.write_text("opportunity_id,stage,amount\nD1,Prospecting,100\nD2,Closed Won,50\n")
    ingest_file(db, src, "opportunities", user="setup")
    with store.connect(db):
        pass
    monkeypatch.setenv("REVOPS_DB", str(db))
    return db


def _data_page(user: dict | None, secrets: dict | None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    if secrets:
        at.secrets.update(secrets)
    if user is not None:
        at.user = user
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _write_controls(at: AppTest) -> dict[str, bool]:
    """Label -> disabled, for the Data page's write buttons (Undo, Save stages, Save settings)."""
    out = {b.label: b.disabled for b in at.button if b.label in (*WRITE_BUTTONS, "Undo")}
    out.update({b.label: b.disabled for b in at.get("form_submit_button") if b.label in WRITE_BUTTONS})
    return out


def test_signed_out_visitor_of_the_app_sees_no_numbers(empty_db):
    """With sign-in configured, the app shows only the sign-in screen: no metrics, no filters, no data page."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.secrets.update({"auth": AUTH, "roles": ROLES})
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.sidebar.multiselect and not at.file_uploader


def test_open_app_lets_everyone_write_and_says_so(empty_db):
    """Without [auth] the Data page's write buttons are enabled and the page says it runs open."""
    at = _data_page(None, None)
    controls = _write_controls(at)
    assert set(controls) == {"Undo", *WRITE_BUTTONS} and not any(controls.values()), controls
    assert any("local tool" in c.value for c in at.caption)


def test_viewer_sees_the_data_page_with_every_write_disabled(empty_db):
    """A viewer reads the upload log and settings, but Undo and both Save buttons are disabled with the reason."""
    at = _data_page({"is_logged_in": True, "email": "bob@acme.com"}, {"auth": AUTH, "roles": ROLES})
    controls = _write_controls(at)
    assert set(controls) == {"Undo", *WRITE_BUTTONS} and all(controls.values()), controls
    undo = next(b for b in at.button if b.label == "Undo")
    assert "view-only" in (undo.help or "")
    assert any("view-only" in c.value for c in at.caption)


def test_viewer_cannot_load_a_file(empty_db):
    """A viewer may preview a file, but its Load button is disabled and nothing is written."""
    from revops import store

    at = _data_page({"is_logged_in": True, "email": "bob@acme.com"}, {"auth": AUTH, "roles": ROLES})
    at.file_uploader[0].set_value(("more.csv", b"opportunity_id,stage\nD9,Prospecting\n", "text/csv"))
    at.run()
    load = next(b for b in at.button if b.label.startswith("Load "))
    assert load.disabled
    with store.connect(empty_db) as con:
        assert con.execute("SELECT count(*) FROM _uploads").fetchall()[0][0] == 1


def test_editor_loads_and_is_named_in_the_log(empty_db):
    """An editor's upload goes in, logged under the signed-in address."""
    from revops import store

    at = _data_page({"is_logged_in": True, "email": "ana@acme.com"}, {"auth": AUTH, "roles": ROLES})
    assert not any(_write_controls(at).values())
    at.file_uploader[0].set_value(("more.csv", b"opportunity_id,stage\nD9,Prospecting\n", "text/csv"))
    at.run()
    next(b for b in at.button if b.label.startswith("Load ")).click()
    at.run()
    with store.connect(empty_db) as con:
        users = [r[0] for r in con.execute("SELECT user_name FROM _uploads ORDER BY upload_id").fetchall()]
    assert users == ["setup", "ana@acme.com"]


def test_named_providers_get_one_sign_in_button_each():
    """With [auth.google] and [auth.okta] the signed-out screen offers a button per provider."""
    auth = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": AUTH["cookie_secret"],
            "google": {"client_id": "g", "client_secret": "s", "server_metadata_url": "https://g/.well-known/x"},
            "okta": {"client_id": "o", "client_secret": "s", "server_metadata_url": "https://o/.well-known/x"}}
    at = _app({"is_logged_in": False}, {"auth": auth, "roles": ROLES})
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in with Google", "Sign in with Okta"]
