"""One HTTP POST for every HTTP channel, with one rule for what is worth retrying.

Timeouts, refused connections, 408, 425, 429 and 5xx are "retry" (the server may recover); other
4xx are "failed" (the same request will be refused again: a bad token, a bad number).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import orjson

from .base import DeliveryResult, DeliveryStatus

RETRYABLE_STATUS = frozenset({408, 425, 429})


class HttpChannel:
    """The HTTP client every HTTP channel holds; tests pass a transport or point it at a local server."""

    def __init__(self, timeout_s: float, transport: httpx.BaseTransport | None) -> None:
        self._client = httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> DeliveryResult:
        """POST and classify; a 2xx answer's JSON ``id`` (carriers, ntfy, Gotify all give one) is the provider id."""
        try:
            response = self._client.post(url, content=content, headers=dict(headers))
        except httpx.TimeoutException as exc:
            return DeliveryResult(status="retry", detail=f"timed out: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return DeliveryResult(status="retry", detail=f"transport error: {type(exc).__name__}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return DeliveryResult(status="sent", provider_id=_answer_id(response.content), detail=f"HTTP {code}")
        status: DeliveryStatus = "retry" if code in RETRYABLE_STATUS or code >= 500 else "failed"
        snippet = response.text[:200].replace("\n", " ")
        return DeliveryResult(status=status, detail=f"HTTP {code}: {snippet}")


def _answer_id(content: bytes) -> str:
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ""
    value = answer.get("id") if isinstance(answer, dict) else None
    return "" if value is None else str(value)
