"""Who may see and change the data: open as a local tool, or OIDC sign-in (st.login) with roles from the secrets.

Without an ``[auth]`` section in .streamlit/secrets.toml the app runs open (role "open": anyone who reaches
it may read and change data, as a local tool). With one, only signed-in users listed in ``[roles]`` get in:

    [roles]
    editors = ["ana@acme.com"]        # may upload, undo and change settings
    viewers = ["@acme.com"]           # "@domain" matches every address of the domain, "*" anyone signed in
    default_role = "none"             # role of a signed-in user listed nowhere: "none" (no access, the
                                      # default), "viewer" or "editor"
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

OPEN, EDITOR, VIEWER, NONE = "open", "editor", "viewer", "none"
ROLE_NAMES = (EDITOR, VIEWER, NONE)
# Every provider needs these (st.login raises on a missing one); the rest depends on the provider.
REQUIRED_AUTH_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def _section(name: str) -> Mapping[str, Any] | None:
    """A top-level table of the secrets, or None (also when there is no secrets file at all)."""
    try:
        value = st.secrets.get(name) if name in st.secrets else None
    except Exception:  # a missing or unreadable secrets file means a local tool without sign-in
        return None
    return value if isinstance(value, Mapping) else None


def auth_configured() -> bool:
    """Whether .streamlit/secrets.toml has an [auth] section."""
    return _section("auth") is not None


def auth_problem(auth: Mapping[str, Any] | None = None) -> str | None:
    """A sentence naming what the [auth] section lacks for st.login to work, or None when it looks complete."""
    auth = _section("auth") if auth is None else auth
    if auth is None:
        return None
    missing = [k for k in REQUIRED_AUTH_KEYS if not auth.get(k)]
    # Either the provider keys sit in [auth] itself, or in named sub-tables ([auth.google], …).
    providers = [v for v in auth.values() if isinstance(v, Mapping)]
    if not providers:
        missing += [k for k in PROVIDER_KEYS if not auth.get(k)]
    if not missing:
        return None
    return ("Sign-in is switched on in .streamlit/secrets.toml, but its [auth] section lacks "
            + ", ".join(missing) + ". Add them (see README, \"Security and access\") and restart the app.")


def providers_configured() -> list[str]:
    """Names of the identity providers configured as [auth.NAME] tables ([] when [auth] holds one itself)."""
    auth = _section("auth") or {}
    return sorted(name for name, value in auth.items() if isinstance(value, Mapping))


def _entries(values: Any) -> list[str]:
    """A role list from the secrets as lower-case strings (a single string counts as a list of one)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Iterable):
        return []
    return [str(v).strip().lower() for v in values if str(v).strip()]


def _matches(email: str, entries: list[str], how: str) -> bool:
    """Whether an address matches a list by exact address, by "@domain", or by the "*" wildcard."""
    if how == "exact":
        return email in entries
    if how == "domain":
        return any(e.startswith("@") and email.endswith(e) for e in entries)
    return "*" in entries


def resolve_role(email: str | None, roles: Mapping[str, Any] | None) -> str:
    """The role of a signed-in address: the most specific match wins, and at equal specificity the smaller right."""
    roles = roles or {}
    default = str(roles.get("default_role", NONE)).strip().lower()
    default = default if default in ROLE_NAMES else NONE
    if not email:
        return default
    address = email.strip().lower()
    editors, viewers = _entries(roles.get("editors", [])), _entries(roles.get("viewers", []))
    for how in ("exact", "domain", "any"):
        # Viewer first: a person listed both ways gets the smaller right, never the larger by accident.
        if _matches(address, viewers, how):
            return VIEWER
        if _matches(address, editors, how):
            return EDITOR
    return default


def _user() -> Mapping[str, Any]:
    """st.user as a plain mapping ({} outside a script run)."""
    try:
        return st.user.to_dict()
    except Exception:  # no script run context (imported by a test or a tool)
        return {}


def signed_in() -> bool:
    """Whether the visitor signed in through the identity provider."""
    return bool(_user().get("is_logged_in", False))


def email() -> str | None:
    """The signed-in visitor's address, or None; an address the provider marks unverified does not count."""
    user = _user()
    if not user.get("is_logged_in", False) or user.get("email_verified") is False:
        return None
    value = user.get("email")
    return str(value).strip().lower() if value else None


def role() -> str:
    """"open" without sign-in configured; else "editor", "viewer", or "none" (signed out or not listed)."""
    if not auth_configured():
        return OPEN
    if not signed_in():
        return NONE
    return resolve_role(email(), _section("roles"))


def can_edit() -> bool:
    """Whether the visitor may upload, undo and change settings."""
    return role() in (OPEN, EDITOR)


def edit_blocked_reason() -> str | None:
    """Why write actions are disabled for this visitor, or None when they are allowed."""
    if can_edit():
        return None
    who = email() or "this account"
    return (f"You are signed in as {who} with view-only access: uploading, undoing and changing settings "
            "need the editor role. Ask an editor to add you to the editors list.")


def access_note() -> str:
    """One sentence for the Data page saying who may change the data here."""
    current = role()
    if current == OPEN:
        return ("Sign-in is not configured, so this cockpit runs open as a local tool: anyone who can reach it "
                "may upload, undo and change settings. Add an [auth] section to .streamlit/secrets.toml to "
                "require sign-in (see README, \"Security and access\").")
    if current == EDITOR:
        return f"Signed in as {email()} (editor): you may upload, undo and change settings."
    return edit_blocked_reason() or ""


def allow_edit() -> bool:
    """Check a write action on the server side (a disabled button is not a permission); warn when refused."""
    reason = edit_blocked_reason()
    if reason:
        st.warning(reason, icon=":material/lock:")
        return False
    return True


def _sidebar_identity() -> None:
    """Who is signed in, with a sign-out button."""
    st.sidebar.caption(f"Signed in as **{email() or 'unknown'}** ({role()})")
    st.sidebar.button("Sign out", on_click=st.logout, key="_auth_sign_out")


def gate() -> bool:
    """True when the visitor may see data; otherwise draws the sign-in (or no-access) screen."""
    if not auth_configured():
        return True
    problem = auth_problem()
    if problem:
        st.title("RevOps cockpit")
        st.error(problem, icon=":material/key_off:")
        return False
    if not signed_in():
        st.title("RevOps cockpit")
        st.write("Sign in to see your company's numbers.")
        providers = providers_configured()
        if not providers:
            st.button("Sign in", on_click=st.login, type="primary", key="_auth_sign_in")
        for name in providers:  # [auth.google], [auth.microsoft], …: st.login needs the provider's name
            st.button(f"Sign in with {name.title()}", on_click=st.login, args=(name,), type="primary",
                      key=f"_auth_sign_in_{name}")
        return False
    if role() == NONE:
        st.title("RevOps cockpit")
        st.error(f"The account {email() or '(no verified email address)'} has no access to this cockpit. "
                 "Ask an editor to add it to the [roles] lists in .streamlit/secrets.toml.",
                 icon=":material/block:")
        st.button("Sign out", on_click=st.logout, key="_auth_sign_out_denied")
        return False
    _sidebar_identity()
    return True
