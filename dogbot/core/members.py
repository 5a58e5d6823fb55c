"""Who may use the bot: admins and staff from settings, plus staff that admins add from the chat.

Ids from settings are always trusted (they are how a shelter bootstraps the bot); ids added with
/addstaff live in the ``Member`` table, so every bot process sharing the database agrees on them.
Lookups are cached for a few seconds because every update asks "who is this?".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from enum import StrEnum

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage import asm_repository, repository
from storage.db import session as open_session
from storage.tables import utcnow

# Telegram user ids are positive and have at most 52 significant bits (Bot API docs); group and
# channel chats have negative ids, and none of them is a person who could be staff.
MAX_USER_ID = 2**52 - 1


def parse_user_id(text: str) -> int | None:
    """The Telegram user id an admin typed ("123456789"), or None when ``text`` is not one."""
    # ASCII digits only: str.isdigit() also accepts "²" and other digits that int() refuses.
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_USER_ID)):
        return None
    user_id = int(text)
    return user_id if 0 < user_id <= MAX_USER_ID else None


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    STRANGER = "stranger"


class MembershipError(ValueError):
    """A change to the staff list that cannot be made: ``code`` (not_user, admin, from_settings) for
    the layer that words it in the admin's language; the message is the English for logs."""

    def __init__(self, message: str, code: str, user_id: int) -> None:
        super().__init__(message)
        self.code, self.user_id = code, user_id


class Members:
    """Roles of Telegram users. Thread-safe; call from worker threads (it reads the database)."""

    def __init__(
        self,
        engine: Engine,
        *,
        admin_ids: Iterable[int] = (),
        staff_ids: Iterable[int] = (),
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.admin_ids = frozenset(admin_ids)
        self.staff_ids = frozenset(staff_ids) - self.admin_ids
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._added: dict[int, Role] = {}
        self._languages: dict[int, str] = {}
        self._names_seen: dict[int, str] = {}
        self._loaded_at: float | None = None

    def role(self, user_id: int | None) -> Role:
        """The user's role now; strangers are everyone not listed."""
        if user_id is None or user_id in self.admin_ids:
            return self._role_of(user_id, {})
        return self._role_of(user_id, self._members())

    def known_role(self, user_id: int | None) -> Role | None:
        """The role when it is known without the database (the cache is fresh), else None. Never waits.

        The bot's gate asks this on its event loop for every update; only when it says None does it
        send :meth:`role` to a worker thread. A thread hop for every update queued each update behind
        whatever photos held the worker threads, staff's button presses included.
        """
        loaded_at, added = self._loaded_at, self._added  # _members() sets _added, then _loaded_at
        settled = user_id is None or user_id in self.admin_ids
        if not settled and (loaded_at is None or self.clock() - loaded_at >= self.cache_seconds):
            return None
        return self._role_of(user_id, added)

    def _role_of(self, user_id: int | None, added: dict[int, Role]) -> Role:
        if user_id is None:
            return Role.STRANGER
        if user_id in self.admin_ids:
            return Role.ADMIN
        found = added.get(user_id)
        if found is not None:
            return found
        return Role.STAFF if user_id in self.staff_ids else Role.STRANGER

    def add_staff(self, user_id: int, *, by: int | None) -> bool:
        """Make ``user_id`` staff; False when they already were."""
        if not 0 < user_id <= MAX_USER_ID:
            raise MembershipError(
                f"{user_id} is not a Telegram user id (a positive number).", "not_user", user_id
            )
        if self.role(user_id) in (Role.STAFF, Role.ADMIN):
            return False
        self._write(user_id, active=True, by=by)
        return True

    def remove_staff(self, user_id: int, *, by: int | None) -> bool:
        """Take staff rights away; False when ``user_id`` was not staff."""
        if user_id in self.admin_ids:
            raise MembershipError(
                f"{user_id} is an admin (from the settings) and cannot be removed here.", "admin", user_id
            )
        if user_id in self.staff_ids:
            raise MembershipError(
                f"{user_id} is staff through DOGBOT_STAFF_IDS; remove them there and restart the bot.",
                "from_settings",
                user_id,
            )
        if self.role(user_id) is not Role.STAFF:
            return False
        self._write(user_id, active=False, by=by)
        return True

    def staff(self) -> list[int]:
        """Everyone with staff rights (admins not included), sorted."""
        added = {uid for uid, role in self._members().items() if role is Role.STAFF}
        return sorted((self.staff_ids | added) - self.admin_ids)

    def language(self, user_id: int | None) -> str | None:
        """The language ``user_id`` chose with /language, if they did (cached like roles)."""
        if user_id is None:
            return None
        self._members()
        with self._lock:
            return self._languages.get(user_id)

    def choose_language(self, user_id: int, language: str) -> None:
        """Remember ``user_id``'s language (a code the caller checked), for every bot process."""
        with open_session(self.engine) as session:
            repository.set_language_choice(user_id, language, session=session)
            session.commit()
        with self._lock:
            self._languages[user_id] = language
            self._loaded_at = None

    def name_is_known(self, user_id: int, name: str) -> bool:
        """True when ``name`` is what this process last stored for ``user_id`` (no query)."""
        with self._lock:
            return self._names_seen.get(user_id) == name

    def remember_name(self, user_id: int, name: str) -> None:
        """Keep the name a staff member or admin goes by in Telegram, for records people read."""
        name = name.strip()[:128]
        if not name or self.name_is_known(user_id, name):
            return
        for _ in range(2):  # a second bot replica may store the same person's name at the same moment
            with open_session(self.engine) as session:
                asm_repository.remember_name(user_id, name, utcnow(), session=session)
                try:
                    session.commit()
                    break
                except IntegrityError:
                    session.rollback()  # the other one's row is there now: update it
        with self._lock:
            self._names_seen[user_id] = name

    def name_of(self, user_id: int) -> str | None:
        """The Telegram name ``user_id`` goes by, when the bot has seen it."""
        with open_session(self.engine) as session:
            return asm_repository.person_name(user_id, session=session)

    def names(self) -> dict[int, str]:
        """Every known person's Telegram name, by user id."""
        with open_session(self.engine) as session:
            return asm_repository.all_person_names(session=session)

    def _write(self, user_id: int, *, active: bool, by: int | None) -> None:
        with open_session(self.engine) as session:
            repository.set_member(user_id, Role.STAFF.value, active, by=by, session=session)
            session.commit()
        with self._lock:
            self._loaded_at = None  # re-read on the next lookup

    def _members(self) -> dict[int, Role]:
        with self._lock:
            now = self.clock()
            if self._loaded_at is None or now - self._loaded_at >= self.cache_seconds:
                with open_session(self.engine) as session:
                    rows = repository.members(session=session, active_only=True)
                    self._languages = repository.language_choices(session=session)
                self._added = {
                    row.user_id: Role(row.role) for row in rows if row.role in (Role.ADMIN, Role.STAFF)
                }
                self._loaded_at = now
            return self._added
