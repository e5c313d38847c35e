"""The one exception of the messages package."""


class MessageError(ValueError):
    """A frame or message that cannot be encoded or decoded.

    ``tag`` is the message tag when known and ``path`` the JSON-path-like place
    (``$.readings[3].ts``) where decoding failed, so a receiver can say exactly what was wrong.
    """

    def __init__(self, reason: str, *, tag: str | None = None, path: str = "$") -> None:
        self.reason = reason
        self.tag = tag
        self.path = path
        where = f"{tag} at {path}" if tag else f"at {path}"
        super().__init__(f"{where}: {reason}")
