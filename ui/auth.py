"""Sign-in gate: open when no identity provider is configured, st.login (OIDC) when it is."""
from __future__ import annotations

import streamlit as st


def auth_configured() -> bool:
    """Whether .streamlit/secrets.toml has an [auth] section."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: a local tool
        return False


def gate() -> bool:
    """True when the visitor may see data; otherwise draws the sign-in screen."""
    if not auth_configured():
        return True
    if getattr(st.user, "is_logged_in", False):
        return True
    st.title("RevOps cockpit")
    st.write("Sign in to see your company's numbers.")
    st.button("Sign in", on_click=st.login, type="primary")
    return False
