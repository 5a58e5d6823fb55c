"""The breeds this deployment knows: the built-in table plus the ones admins added (in the database).

One :class:`Breeds` is shared by intake, labelling, reporting and the lifecycle jobs, so a breed
an admin adds, or one another process added and a new champion knows, is seen by all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from sqlalchemy.engine import Engine

from dogbot.core.taxonomy import Breed, Taxonomy
from storage import repository
from storage.db import session as open_session
from storage.tables import CustomBreed, utcnow


def load_taxonomy(engine: Engine) -> Taxonomy:
    """The built-in breed table plus the breeds staff added (kept in the database)."""
    with open_session(engine) as session:
        rows = repository.custom_breeds(session=session)
    return Taxonomy.with_added(rows)


class Breeds:
    """The current :class:`Taxonomy` (immutable, replaced whole) and the ways it grows."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self.taxonomy = load_taxonomy(engine)
        self.reserved_words: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def reserve(self, words: Iterable[str]) -> None:
        """Words no breed may be named: every word on the bot's buttons, in every language it ships
        (the entry point passes them; the domain does not know the bot's words)."""
        self.reserved_words = frozenset(self.reserved_words | set(words))

    def add_breed(self, display_name: str, *, by: int | None) -> Breed:
        """Add a breed the base model does not know; it becomes learnable at the next retrain."""
        return self.add_breeds([display_name], by=by)[0]

    def add_breeds(self, display_names: Sequence[str], *, by: int | None) -> list[Breed]:
        """Add several breeds, all or none: every name is checked (ValueError, naming the first
        refused) before any is stored, in one transaction."""
        with self._lock:
            taxonomy, breeds = self.taxonomy, []
            for name in display_names:
                breed = taxonomy.make_breed(name)
                taxonomy = taxonomy.with_breed(breed, reserved=self.reserved_words)  # ValueError on a clash
                breeds.append(breed)
            with open_session(self.engine) as session:
                for breed in breeds:
                    session.add(
                        CustomBreed(
                            key=breed.key,
                            display_name=breed.display_name,
                            aliases=list(breed.aliases),
                            added_by=by,
                            created_at=self.clock(),
                        )
                    )
                session.commit()
            self.taxonomy = taxonomy
        return breeds

    def refusal(self, display_name: str) -> str | None:
        """Why ``display_name`` cannot be added as a breed now (a message for people), or None."""
        try:
            self.taxonomy.with_breed(self.taxonomy.make_breed(display_name), reserved=self.reserved_words)
        except ValueError as error:
            return str(error)
        return None

    def reload_taxonomy(self) -> None:
        """Pick up breeds another process added."""
        with self._lock:
            self.taxonomy = load_taxonomy(self.engine)

    def breed_name(self, key: str) -> str:
        """A breed's display name (``KeyError`` for a key the taxonomy does not know)."""
        return self.taxonomy.get(key).display_name
