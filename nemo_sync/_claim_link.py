"""Browser links to a project [V 1.9]: a claim token, never the bearer, in the URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from yarl import URL

from nemo_sync._contract import (
    ANONYMOUS_USER_PREFIX,
    CLAIM_LINK_PATH,
    CLAIM_LINK_QUERY,
    CLAIM_TOKEN_KEYS,
    CLAIM_TOKEN_PATH,
    CLAIM_TOKEN_TTL,
    REGISTER_LINK_PATH,
    REGISTER_LINK_QUERY,
    claim_token_body,
)
from nemo_sync._envelope import pick, require_object

if TYPE_CHECKING:
    from nemo_sync._api import Api


def register_link(web_url: URL, user_id: str | None) -> str | None:
    """``<web_url>/register?bind=<user_id>`` for an anonymous user (``anon_...``), else None.

    The link keeps an anonymous user's projects when they register [V 1.9][R]; a registered
    user has nothing to bind (they top up instead).
    """
    if not user_id or not user_id.startswith(ANONYMOUS_USER_PREFIX):
        return None
    path = web_url.path.rstrip("/") + REGISTER_LINK_PATH
    return str(web_url.with_path(path).with_query({REGISTER_LINK_QUERY: user_id}))


async def claim_link(api: Api, task_id: str, session_id: str) -> tuple[str, float]:
    """``(<web_url>/workspace/claim?ct=<claim token>, seconds it stays valid)``.

    Raises:
        APIResponseError: when the reply holds no claim token.
    """
    endpoint = f"POST {CLAIM_TOKEN_PATH}"
    data = await api.request("POST", CLAIM_TOKEN_PATH, json=claim_token_body(task_id, session_id))
    obj = require_object(data, endpoint)
    token = pick(obj, *CLAIM_TOKEN_KEYS, endpoint=endpoint)
    expires_in = obj.get("expires_in", obj.get("expiresIn"))
    ttl = (
        float(expires_in)
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
        else CLAIM_TOKEN_TTL
    )
    web: URL = api.web_url
    link = web.with_path(web.path.rstrip("/") + CLAIM_LINK_PATH).with_query(
        {CLAIM_LINK_QUERY: token}
    )
    return str(link), ttl
