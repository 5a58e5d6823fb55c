"""Animal Shelter Manager 3's service API (``URL/service``), as its own code answers it.

Read in ASM3's ``src/asm3/service.py`` and ``main.py`` (commit 625abaf), and seen on a real ASM3:

* Every call is a POST of form fields: ``method``, credentials (``username`` + ``password``, or
  ``key`` for an API key), ``account`` on a multi-database install.
* A refused login, a disabled service or an unknown database answers HTTP 200, ``text/plain``,
  ``ERROR: ...``.
* ``csv_import`` (``data`` = the CSV in base64) answers JSON ``{"rows", "success", "errors":
  [[row, row_repr, message], ...]}``, with HTTP 500 when a row failed; a message that starts with
  ``WARN:`` is a warning (the row was imported).
* ``json_shelter_animals`` lists the animals on the shelter (POST skips ASM's one-hour cache).

This module only speaks HTTP and reads answers; what to send and when is ``jobs.asm_sync``'s.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from enum import StrEnum

# What ASM's answer is kept of (the row it echoes back carries the photo as "data:,", but stays long).
_ANSWER_CHARS = 1500


class Verdict(StrEnum):
    IMPORTED = "imported"
    REFUSED = "refused"  # ASM answered and said no: sending the same again gets the same answer
    UNREACHABLE = "unreachable"  # no answer, or one ASM gives when it is down: worth trying again


@dataclass(frozen=True)
class AsmAnswer:
    verdict: Verdict
    http_status: int | None
    message: str  # in words: ASM's own reason, or why it could not be reached
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class AsmConnection:
    """Where the shelter's ASM is and how to log in (values from ``Settings``)."""

    url: str  # ASM's base URL; the service is URL/service
    account: str = ""  # empty on a single-database install
    username: str = ""
    password: str = ""
    key: str = ""  # an API key instead of a user name and password
    timeout_seconds: float = 60.0

    @property
    def configured(self) -> bool:
        return bool(self.url) and (bool(self.key) or bool(self.username and self.password))

    @property
    def service_url(self) -> str:
        return self.url.rstrip("/") + "/service"


class AsmUnreachable(RuntimeError):
    """ASM did not answer, or answered in a way that means it is not working now."""


class AsmRefused(RuntimeError):
    """ASM answered ``ERROR: ...`` (a wrong login, a disabled service): its words are the message."""


class AsmClient:
    def __init__(self, connection: AsmConnection) -> None:
        self.connection = connection

    def import_csv(self, csv_text: str) -> AsmAnswer:
        data = base64.b64encode(csv_text.encode("utf-8")).decode("ascii")
        try:
            status, content_type, body = self._post({"method": "csv_import", "data": data})
        except AsmUnreachable as error:
            return AsmAnswer(Verdict.UNREACHABLE, None, str(error))
        except AsmRefused as error:
            return AsmAnswer(Verdict.REFUSED, 200, str(error))
        try:
            result = json.loads(body)
            errors = [str(error[2]) for error in result["errors"]]
        except (ValueError, KeyError, TypeError, IndexError):
            # Not the importer's JSON: a proxy's error page or an ASM crash. Worth another try.
            return AsmAnswer(Verdict.UNREACHABLE, status, f"ASM answered HTTP {status} without a result")
        warnings = tuple(e for e in errors if e.startswith("WARN:"))
        refusals = [e for e in errors if not e.startswith("WARN:")]
        if refusals:
            return AsmAnswer(Verdict.REFUSED, status, "; ".join(refusals)[:_ANSWER_CHARS], warnings)
        return AsmAnswer(Verdict.IMPORTED, status, "imported", warnings)

    def shelter_animals(self) -> dict[str, dict]:
        """ASM's animals on the shelter, by shelter code. Raises AsmUnreachable or AsmRefused."""
        status, _, body = self._post({"method": "json_shelter_animals"})
        try:
            animals = json.loads(body)
            return {str(animal["SHELTERCODE"]): animal for animal in animals}
        except (ValueError, KeyError, TypeError) as error:
            raise AsmUnreachable(f"ASM answered HTTP {status} with no list of animals") from error

    def _post(self, fields: dict[str, str]) -> tuple[int, str, str]:
        c = self.connection
        form = dict(fields)
        if c.account:
            form["account"] = c.account
        if c.key:
            form["key"] = c.key
        else:
            form["username"], form["password"] = c.username, c.password
        request = urllib.request.Request(
            c.service_url,
            data=urllib.parse.urlencode(form).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=c.timeout_seconds) as response:
                status, content_type, body = (
                    response.status,
                    response.headers.get_content_type(),
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            # csv_import answers 500 with its JSON when a row failed: that is an answer, not an outage.
            status, content_type, body = error.code, error.headers.get_content_type(), error.read()
            if content_type != "application/json":
                raise AsmUnreachable(f"ASM answered HTTP {status}") from error
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise AsmUnreachable(f"ASM at {c.url} did not answer ({reason})") from error
        text = body.decode("utf-8", errors="replace")
        if content_type == "text/plain" and text.startswith("ERROR"):
            raise AsmRefused(text.strip()[:_ANSWER_CHARS])
        return status, content_type, text
