"""The breeds this deployment knows: the built-in table plus the ones admins added (in the database).

One :class:`Breeds` is shared by intake, labelling, reporting and the lifecycle jobs, so a breed
an admin adds, or one another process added and a new champion knows, is seen by all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
        self._lock = threading.Lock()

    def add_breed(self, display_name: str, *, by: int | None) -> Breed:
        """Add a breed the base model does not know; it becomes learnable at the next retrain."""
        with self._lock:
            breed = self.taxonomy.make_breed(display_name)
            taxonomy = self.taxonomy.with_breed(breed)  # ValueError on a clash
            with open_session(self.engine) as session:
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
        return breed

    def reload_taxonomy(self) -> None:
        """Pick up breeds another process added."""
        with self._lock:
            self.taxonomy = load_taxonomy(self.engine)

    def breed_name(self, key: str) -> str:
        """A breed's display name (``KeyError`` for a key the taxonomy does not know)."""
        return self.taxonomy.get(key).display_name
