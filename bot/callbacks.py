"""Inline-button data: short, signed, keyed to the database, and parsed in this one place.

Format: ``v1:<prediction id>:<action>[:<arg>]:<tag>``, at most 64 bytes (Telegram's limit). The tag
is an HMAC-SHA256 of everything before it, truncated to 48 bits and base64url-encoded, so a client
that edits the data (another prediction id, a breed the bot never offered) is refused. The data
carries everything needed to act on a press, so buttons keep working after restarts and days later.

Actions: ``l`` label the photo with ``arg`` (a breed key or a special label), ``w`` "Wrong?" (show
the choices again), ``o`` "Other…" (ask for a typed breed name), ``d`` "It is a dog" (show breed
choices), ``g`` choose the language ``arg`` (/language; prediction id 0); on a dog card ``s``/``a``
its sex and age group, ``m``/``n`` same dog as an earlier one or not, ``p``/``q`` a mixed breed's
first and second breed. An upper-case action is the same action pressed on a /review message: after
it the next photo waiting for review is shown. Under a drift incident's message (admins only) the id
is the incident's: ``r`` "Retrain now", ``e`` "Expected, use these photos as the new normal". Under
/asm (admins, id 0): ``x`` "Send now" to Animal Shelter Manager. Under /dogs (id 0): ``k`` "More",
the next page (arg: how many dogs were shown before it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

VERSION = "v1"
MAX_BYTES = 64
_TAG_BYTES = 6  # 48 bits: forging one takes ~2^47 tries, each a Telegram round trip
_HASHED = "#"  # prefix of an ``arg`` that is a hash of a breed key too long to fit


class Action(StrEnum):
    LABEL = "l"
    WRONG = "w"
    OTHER = "o"
    IS_DOG = "d"
    LANGUAGE = "g"  # arg: the language code (/language; prediction id 0)
    # On a dog card (the prediction is one of the dog's photos'): details, merging, mixed breeds.
    SEX = "s"  # arg: male | female
    AGE = "a"  # arg: puppy | adult | senior
    SAME_DOG = "m"  # arg: the earlier dog's id: this dog is that one
    NEW_DOG = "n"  # not the earlier dog
    MIX_PRIMARY = "p"  # arg: the breed a mix looks most like, or "?" (unknown mix)
    MIX_SECOND = "q"  # arg: the cross's other breed, or "-" (only the first one known)
    # Under a drift incident's message (the id is the incident's).
    RETRAIN_NOW = "r"
    NEW_NORMAL = "e"
    # Under /asm (admins; id 0): send every waiting dog to Animal Shelter Manager now.
    ASM_SEND_NOW = "x"
    # Under /dogs (id 0): the next page; arg: how many dogs the pages before it showed.
    MORE_DOGS = "k"


INCIDENT_ACTIONS = (Action.RETRAIN_NOW, Action.NEW_NORMAL)


@dataclass(frozen=True)
class Press:
    """A decoded button press."""

    prediction_id: int  # a drift incident's id for INCIDENT_ACTIONS
    action: Action
    arg: str = ""
    review: bool = False  # pressed on a /review message: show the next photo afterwards

    @property
    def incident_id(self) -> int:
        return self.prediction_id


class CallbackCodec:
    """Encodes and checks button data with a secret only this bot knows."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("callback secret must not be empty")
        self._secret = secret

    def encode(self, press: Press) -> str:
        action = press.action.value.upper() if press.review else press.action.value
        parts = [VERSION, str(press.prediction_id), action]
        if press.arg:
            parts.append(_fit(press.arg, len(":".join(parts)) + 1))
        body = ":".join(parts)
        data = f"{body}:{self._tag(body)}"
        if len(data.encode()) > MAX_BYTES:  # only a huge prediction id gets here
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    def decode(self, data: str | None) -> Press | None:
        """The press, or None when the data is malformed, from another version, or forged."""
        if not data or len(data.encode()) > MAX_BYTES:
            return None
        body, _, tag = data.rpartition(":")
        if not hmac.compare_digest(tag.encode(), self._tag(body).encode()):
            return None
        parts = body.split(":", 3)
        if len(parts) < 3 or parts[0] != VERSION or not parts[1].isdigit():
            return None
        try:
            action = Action(parts[2].lower())
        except ValueError:
            return None
        arg = parts[3] if len(parts) == 4 else ""
        if (
            action
            in (Action.LABEL, Action.SEX, Action.AGE, Action.SAME_DOG, Action.MIX_PRIMARY, Action.MIX_SECOND)
            and not arg
        ):
            return None
        return Press(int(parts[1]), action, arg, review=parts[2].isupper())

    def _tag(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:_TAG_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def is_incident_press(data: object) -> bool:
    """Whether button data is a drift incident's (routing only: the gate has checked its tag)."""
    parts = data.split(":") if isinstance(data, str) else []
    return len(parts) >= 4 and parts[0] == VERSION and parts[2] in INCIDENT_ACTIONS


def derive_secret(token: str, configured: str = "") -> bytes:
    """The signing key: the configured secret, else one derived from the bot token (never the token)."""
    if configured:
        return configured.encode()
    if not token:
        raise ValueError("need a bot token or a callback secret")
    return hmac.new(token.encode(), b"dogbot callback data v1", hashlib.sha256).digest()


def breed_matches(arg: str, key: str) -> bool:
    """Whether a button ``arg`` names breed ``key`` (directly, or by hash when the key was too long)."""
    return arg == key or (arg.startswith(_HASHED) and arg == _hash(key))


def _fit(arg: str, used: int) -> str:
    room = MAX_BYTES - used - 1 - 8  # ':' + tag
    return arg if len(arg.encode()) <= room else _hash(arg)


def _hash(key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()[:6]
    return _HASHED + base64.urlsafe_b64encode(digest).decode()
