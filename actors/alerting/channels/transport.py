"""One HTTP POST for every HTTP channel, with one rule for what is worth retrying.

Timeouts, refused connections, 408, 425, 429 and 5xx are "retry" (the server may recover); other
4xx are "failed" (the same request will be refused again: a bad token, a bad number).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from .base import DeliveryResult, DeliveryStatus

RETRYABLE_STATUS = frozenset({408, 425, 429})


def make_client(timeout_s: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    """A client for one channel; tests pass a transport (or point the channel at a real local server)."""
    return httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False)


def post(
    client: httpx.Client,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
) -> tuple[DeliveryResult, httpx.Response | None]:
    """POST and classify; the response is returned for a 2xx only (to read an id from it)."""
    try:
        response = client.post(url, content=content, headers=dict(headers), params=params)
    except httpx.TimeoutException as exc:
        return DeliveryResult(status="retry", detail=f"timed out: {type(exc).__name__}"), None
    except httpx.HTTPError as exc:
        return DeliveryResult(status="retry", detail=f"transport error: {type(exc).__name__}: {exc}"), None
    code = response.status_code
    if 200 <= code < 300:
        return DeliveryResult(status="sent", detail=f"HTTP {code}"), response
    status: DeliveryStatus = "retry" if code in RETRYABLE_STATUS or code >= 500 else "failed"
    snippet = response.text[:200].replace("\n", " ")
    return DeliveryResult(status=status, detail=f"HTTP {code}: {snippet}"), None
