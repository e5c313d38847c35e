"""Two-way alerting: acknowledge, silence or ask for status by SMS reply, email link or API call.

Replies come from outside, so each one is authenticated before it can act, and every one (taken
or refused) leaves an audit record. An SMS must come from an allow-listed number (normalised to
E.164, so "07700 900123" and "+44 7700 900123" are one sender) and carry that person's PIN; a
sender who gets the PIN wrong ``pin_attempts`` times is locked out for ``lockout``. An email link
carries an HMAC-signed token naming the alert, the action, the person and an expiry; a token
works once. The SMS grammar, case-insensitive, with the PIN always last::

    ACK <code> <pin>                  ACK 4821 1234
    SILENCE <code> <duration> <pin>   SILENCE 4821 2h 1234
    STATUS <pin>                      STATUS 1234

``<code>`` is the alert's short code from :class:`AlertCodebook` (SMS texts show it, not the
16-digit fingerprint).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import orjson

from .channels.base import Secret, secret
from .errors import AlertConfigError
from .fields import count, duration_ms, fail, items, table, text

Via = Literal["sms", "email", "api"]
Verb = Literal["ACK", "SILENCE", "STATUS"]
_VERBS: dict[str, Verb] = {"ACK": "ACK", "SILENCE": "SILENCE", "STATUS": "STATUS"}
TokenAction = Literal["ack", "silence"]
CODE_DIGITS = 4
PIN = re.compile(r"[0-9]{4,8}")
CODE = re.compile(r"[0-9]{3,8}")
_SEPARATORS = re.compile(r"[\s\-().]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MAX_TEXT_CHARS = 480  # three SMS parts; longer replies are not commands
_AUDIT_TEXT_CHARS = 160


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    alert_code: str
    by: str
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    alert_code: str
    duration_ms: int
    by: str
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRequest:
    by: str


Action = Ack | Silence | StatusRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyAudit:
    """What came in, from whom, and what was done with it; the PIN is never recorded."""

    at_ms: int
    via: Via
    sender: str
    text: str  # redacted: the PIN (the last word of an SMS) and token signatures are starred out
    accepted: bool
    reason: str  # "" when accepted
    action: Action | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyOutcome:
    action: Action | None  # None: refused, ``audit.reason`` says why
    audit: ReplyAudit

    @property
    def accepted(self) -> bool:
        return self.action is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """A parsed SMS command before authentication."""

    verb: Verb
    pin: str
    code: str = ""
    duration_ms: int = 0


class ReplyRefusedError(ValueError):
    """Why a reply was not acted on; the message is the audit reason."""


def normalise_phone(raw: str, default_country: str = "") -> str | None:
    """E.164 ("+447700900123") from a number as people write it; None when it cannot be one.

    "00" becomes "+"; a national number (leading 0) takes ``default_country`` ("44") when given.
    """
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0") and default_country:
        digits = f"+{default_country}{digits[1:]}"
    return digits if _E164.fullmatch(digits) else None


def parse_command(sms: str, max_silence_ms: int) -> Command:
    """The command in an SMS reply; raises ``ReplyRefusedError`` saying what is wrong with it."""
    if len(sms) > _MAX_TEXT_CHARS:
        raise ReplyRefusedError(f"malformed: longer than {_MAX_TEXT_CHARS} characters")
    words = sms.split()
    if not words:
        raise ReplyRefusedError("malformed: empty message")
    verb, args = words[0].upper(), words[1:]
    shapes = {"ACK": "ACK <code> <pin>", "SILENCE": "SILENCE <code> <duration> <pin>", "STATUS": "STATUS <pin>"}
    if verb not in shapes:
        raise ReplyRefusedError(f"malformed: unknown command {words[0][:20]!r} (expected ACK, SILENCE or STATUS)")
    if len(args) != shapes[verb].count("<"):
        raise ReplyRefusedError(f"malformed: expected {shapes[verb]!r}")
    pin = args[-1]
    if not PIN.fullmatch(pin):
        raise ReplyRefusedError("malformed: the PIN must be 4 to 8 digits, last")
    if verb == "STATUS":
        return Command(verb="STATUS", pin=pin)
    code = args[0]
    if not CODE.fullmatch(code):
        raise ReplyRefusedError(f"malformed: alert code {code[:20]!r} must be 3 to 8 digits")
    if verb == "ACK":
        return Command(verb="ACK", pin=pin, code=code)
    return Command(verb="SILENCE", pin=pin, code=code, duration_ms=silence_ms(args[1], max_silence_ms))


def silence_ms(raw: object, max_silence_ms: int) -> int:
    try:
        ms = duration_ms(raw.lower() if isinstance(raw, str) else raw, "duration")
    except AlertConfigError:
        raise ReplyRefusedError(f"malformed: duration {str(raw)[:20]!r} is not like 30m, 2h or 1d") from None
    if ms > max_silence_ms:
        raise ReplyRefusedError(
            f"silence of {ms // 60_000} min is longer than the {max_silence_ms // 60_000} min allowed"
        )
    return ms


class AlertCodebook:
    """Short numeric codes for alert fingerprints, stable while the alert lives, unique among live ones."""

    def __init__(self, digits: int = CODE_DIGITS) -> None:
        self._modulus = 10**digits
        self._digits = digits
        self._by_code: dict[str, str] = {}
        self._by_fingerprint: dict[str, str] = {}

    def code_for(self, fingerprint: str) -> str:
        known = self._by_fingerprint.get(fingerprint)
        if known is not None:
            return known
        if len(self._by_code) >= self._modulus:
            raise AlertConfigError(f"alert codes: all {self._modulus} codes in use; use more digits")
        start = int.from_bytes(hashlib.blake2b(fingerprint.encode(), digest_size=8).digest(), "big")
        number = start % self._modulus
        while f"{number:0{self._digits}d}" in self._by_code:  # linear probing past a collision
            number = (number + 1) % self._modulus
        code = f"{number:0{self._digits}d}"
        self._by_code[code] = fingerprint
        self._by_fingerprint[fingerprint] = code
        return code

    def fingerprint_of(self, code: str) -> str | None:
        return self._by_code.get(code)

    def forget(self, fingerprint: str) -> None:
        """The alert resolved: its code may be reused."""
        code = self._by_fingerprint.pop(fingerprint, None)
        if code is not None:
            del self._by_code[code]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenClaims:
    fingerprint: str
    code: str
    action: TokenAction
    by: str
    expires_ms: int
    duration_ms: int = 0


class ReplySigner:
    """Signs and checks email reply tokens: ``base64url(json claims) "." base64url(HMAC-SHA256)``."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key.reveal().encode(), payload.encode(), hashlib.sha256).digest())

    def sign(self, claims: TokenClaims) -> str:
        body = {"f": claims.fingerprint, "c": claims.code, "a": claims.action, "b": claims.by, "e": claims.expires_ms}
        if claims.action == "silence":
            body["d"] = claims.duration_ms
        payload = _b64(orjson.dumps(body))
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, now_ms: int) -> TokenClaims:
        """The claims of a genuine, unexpired token; raises ``ReplyRefusedError`` otherwise."""
        payload, dot, mac = token.strip().partition(".")
        if not dot or not payload or not mac or len(token) > 2048:
            raise ReplyRefusedError("malformed token")
        if not hmac.compare_digest(self._mac(payload).encode(), mac.encode()):
            raise ReplyRefusedError("bad token signature")
        try:
            raw = orjson.loads(_unb64(payload))
            claims = TokenClaims(
                fingerprint=str(raw["f"]),
                code=str(raw["c"]),
                action=raw["a"],
                by=str(raw["b"]),
                expires_ms=int(raw["e"]),
                duration_ms=int(raw.get("d", 0)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ReplyRefusedError("malformed token claims") from None  # signed by us yet unreadable: a key reuse bug
        if claims.action not in ("ack", "silence"):
            raise ReplyRefusedError(f"token action {claims.action!r} is not ack or silence")
        if now_ms >= claims.expires_ms:
            raise ReplyRefusedError("token expired")
        return claims


@dataclass(frozen=True, slots=True, kw_only=True)
class Responder:
    """Someone allowed to answer: their phone (E.164), PIN and, for the API, key."""

    name: str
    phone: str | None = None
    pin: Secret | None = None
    api_key: Secret | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RepliesConfig:
    signing_key: Secret
    responders: tuple[Responder, ...]
    token_ttl_ms: int = 86_400_000
    max_silence_ms: int = 7 * 86_400_000
    default_country: str = ""
    pin_attempts: int = 5
    lockout_ms: int = 900_000

    @classmethod
    def parse(cls, raw: object, where: str = "replies") -> RepliesConfig:
        keys = {"secret", "token_ttl", "max_silence", "default_country", "pin_attempts", "lockout"}
        cfg = table(raw, where, keys | {"responders"})
        country = cfg.get("default_country", "")
        if not isinstance(country, str) or not re.fullmatch(r"(?:[1-9]\d{0,2})?", country):
            raise fail(f"{where}.default_country", f'expected a calling code like "44", got {country!r}')
        responders: list[Responder] = []
        for i, item in enumerate(items(cfg.get("responders", []), f"{where}.responders")):
            responder = _responder(item, f"{where}.responders[{i}]", country)
            for other in responders:
                if other.name == responder.name or (responder.phone and other.phone == responder.phone):
                    raise fail(f"{where}.responders[{i}]", f"same name or phone as {other.name!r}")
            responders.append(responder)
        attempts = count(cfg.get("pin_attempts", 5), f"{where}.pin_attempts", maximum=100)
        return cls(
            signing_key=secret(cfg.get("secret"), f"{where}.secret"),
            responders=tuple(responders),
            token_ttl_ms=duration_ms(cfg.get("token_ttl", "24h"), f"{where}.token_ttl"),
            max_silence_ms=duration_ms(cfg.get("max_silence", "7d"), f"{where}.max_silence"),
            default_country=country,
            pin_attempts=max(attempts, 1),
            lockout_ms=duration_ms(cfg.get("lockout", "15m"), f"{where}.lockout"),
        )


def _responder(raw: object, where: str, country: str) -> Responder:
    cfg = table(raw, where, {"name", "phone", "pin", "api_key"})
    phone: str | None = None
    if "phone" in cfg:
        phone = normalise_phone(text(cfg["phone"], f"{where}.phone"), country)
        if phone is None:
            raise fail(f"{where}.phone", f"expected a phone number like +447700900123, got {cfg['phone']!r}")
    pin: Secret | None = None
    if "pin" in cfg:
        pin = secret(cfg["pin"], f"{where}.pin")
        if not PIN.fullmatch(pin.reveal()):
            raise fail(f"{where}.pin", "expected 4 to 8 digits")
    if phone is not None and pin is None:
        raise fail(f"{where}.pin", "a responder with a phone needs a PIN (a sender number alone can be spoofed)")
    api_key = secret(cfg["api_key"], f"{where}.api_key") if "api_key" in cfg else None
    return Responder(name=text(cfg.get("name"), f"{where}.name"), phone=phone, pin=pin, api_key=api_key)


@dataclass(slots=True)
class _Strikes:
    failures: int = 0
    locked_until_ms: int = 0


class ReplyHandler:
    """Turns replies into actions or refusals, each with its audit record. Pure: time is passed in."""

    def __init__(self, *, config: RepliesConfig, codebook: AlertCodebook) -> None:
        self.config = config
        self.codebook = codebook
        self.refused: Counter[str] = Counter()  # by reason, for metrics
        self._strikes: dict[str, _Strikes] = {}
        self._used_tokens: dict[str, int] = {}  # signature -> expiry, to refuse a replay
        self._by_phone = {r.phone: r for r in self.config.responders if r.phone is not None}
        self._by_name = {r.name: r for r in self.config.responders}
        self._signer = ReplySigner(self.config.signing_key)

    def handle_sms(self, sender: str, sms: str, now_ms: int) -> ReplyOutcome:
        """An SMS from ``sender``: allow-listed number, right PIN, well-formed command, known alert code."""
        phone = normalise_phone(sender, self.config.default_country) or sender[:32]
        shown = _redact_sms(sms)
        try:
            responder = self._by_phone.get(phone)
            if responder is None:
                raise ReplyRefusedError("unknown sender")
            strikes = self._strikes.setdefault(phone, _Strikes())
            if now_ms < strikes.locked_until_ms:
                raise ReplyRefusedError("sender locked out after too many wrong PINs")
            command = parse_command(sms, self.config.max_silence_ms)
            if responder.pin is None or not hmac.compare_digest(responder.pin.reveal().encode(), command.pin.encode()):
                strikes.failures += 1
                if strikes.failures >= self.config.pin_attempts:
                    strikes.failures, strikes.locked_until_ms = 0, now_ms + self.config.lockout_ms
                raise ReplyRefusedError("wrong PIN")
            strikes.failures = 0
            action = self._command_action(command, responder.name)
        except ReplyRefusedError as refusal:
            return self._refuse("sms", phone, shown, str(refusal), now_ms)
        return self._accept("sms", phone, shown, action, now_ms)

    def _command_action(self, command: Command, by: str) -> Action:
        if command.verb == "STATUS":
            return StatusRequest(by=by)
        fingerprint = self.codebook.fingerprint_of(command.code)
        if fingerprint is None:
            raise ReplyRefusedError(f"unknown alert code {command.code}")
        if command.verb == "ACK":
            return Ack(alert_code=command.code, by=by, fingerprint=fingerprint)
        return Silence(alert_code=command.code, duration_ms=command.duration_ms, by=by, fingerprint=fingerprint)

    def link_token(
        self, fingerprint: str, by: str, now_ms: int, action: TokenAction = "ack", duration_ms: int = 0
    ) -> str:
        """A signed token for an email link that acts on ``fingerprint`` for ``by`` until the TTL runs out."""
        claims = TokenClaims(
            fingerprint=fingerprint,
            code=self.codebook.code_for(fingerprint),
            action=action,
            by=by,
            expires_ms=now_ms + self.config.token_ttl_ms,
            duration_ms=duration_ms,
        )
        return self._signer.sign(claims)

    def handle_token(self, token: str, now_ms: int) -> ReplyOutcome:
        """An email link was followed: a genuine, unexpired, unused token acts once."""
        shown = _redact_token(token)
        try:
            claims = self._signer.verify(token, now_ms)
            self._used_tokens = {mac: exp for mac, exp in self._used_tokens.items() if exp > now_ms}
            mac = token.strip().rpartition(".")[2]
            if mac in self._used_tokens:
                raise ReplyRefusedError("token already used")
            self._used_tokens[mac] = claims.expires_ms
        except ReplyRefusedError as refusal:
            return self._refuse("email", "token", shown, str(refusal), now_ms)
        action: Action
        if claims.action == "ack":
            action = Ack(alert_code=claims.code, by=claims.by, fingerprint=claims.fingerprint)
        else:
            action = Silence(
                alert_code=claims.code, duration_ms=claims.duration_ms, by=claims.by, fingerprint=claims.fingerprint
            )
        return self._accept("email", claims.by, shown, action, now_ms)

    def handle_api(self, user: str, api_key: str, request: Mapping[str, object], now_ms: int) -> ReplyOutcome:
        """An API call ``{"action": "ack"|"silence"|"status", "alert": "4821", "duration": "2h"}`` by a keyed user."""
        shown = orjson.dumps({k: str(v)[:40] for k, v in request.items() if isinstance(k, str)}).decode()
        who = user[:64]
        try:
            responder = self._by_name.get(user)
            if responder is None or responder.api_key is None:
                raise ReplyRefusedError("unknown API user")
            if not hmac.compare_digest(responder.api_key.reveal().encode(), api_key.encode()):
                raise ReplyRefusedError("bad API key")
            verb = _VERBS.get(str(request.get("action", "")).upper())
            if verb is None:
                shown_action = str(request.get("action", ""))[:20].upper()
                raise ReplyRefusedError(f"malformed: action {shown_action!r} is not ack, silence or status")
            code = str(request.get("alert", ""))
            if verb != "STATUS" and not CODE.fullmatch(code):
                raise ReplyRefusedError(f"malformed: alert code {code[:20]!r} must be 3 to 8 digits")
            duration = silence_ms(request.get("duration"), self.config.max_silence_ms) if verb == "SILENCE" else 0
            command = Command(verb=verb, pin="", code=code, duration_ms=duration)
            action = self._command_action(command, responder.name)
        except ReplyRefusedError as refusal:
            return self._refuse("api", who, shown, str(refusal), now_ms)
        return self._accept("api", who, shown, action, now_ms)

    def _accept(self, via: Via, sender: str, shown: str, action: Action, now_ms: int) -> ReplyOutcome:
        audit = ReplyAudit(at_ms=now_ms, via=via, sender=sender, text=shown, accepted=True, reason="", action=action)
        return ReplyOutcome(action=action, audit=audit)

    def _refuse(self, via: Via, sender: str, shown: str, reason: str, now_ms: int) -> ReplyOutcome:
        self.refused[reason.partition(":")[0]] += 1
        audit = ReplyAudit(at_ms=now_ms, via=via, sender=sender, text=shown, accepted=False, reason=reason, action=None)
        return ReplyOutcome(action=None, audit=audit)


def _redact_sms(sms: str) -> str:
    """The reply with its last word (where the PIN goes) starred out, cut to one SMS."""
    words = sms[:_MAX_TEXT_CHARS].split()
    if len(words) >= 2:
        words[-1] = "****"
    return " ".join(words)[:_AUDIT_TEXT_CHARS]


def _redact_token(token: str) -> str:
    payload = token.strip().partition(".")[0]
    return f"{payload[:120]}.***"
