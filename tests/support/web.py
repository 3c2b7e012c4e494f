"""Helpers for web UI tests: users with passwords, signing in through the real form, CSRF tokens."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response

from letterhead.context import Context
from letterhead.users import create_user, set_password

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_user(ctx: Context, email: str, *, tenant: str | None, role: str = "owner", password: str = PASSWORD) -> str:
    """A user who has already set ``password`` through the one-time link; returns the email."""
    created = create_user(ctx, email=email, tenant_id=tenant, role=role, platform_admin=tenant is None)
    set_password(ctx, token=created.link.rsplit("/", 1)[1], password=password)
    return created.email


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, *, next: str = "") -> Response:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "email": email, "password": password, "next": next},
        follow_redirects=False,
    )


def post_form(client: TestClient, page_path: str, action: str, data: dict[str, str], **kwargs: object) -> Response:
    """Open ``page_path`` for its CSRF token, then post ``data`` to ``action`` (no redirects followed)."""
    token = csrf_of(client.get(page_path).text)
    return client.post(action, data={"csrf": token, **data}, follow_redirects=False, **kwargs)  # type: ignore[arg-type]
