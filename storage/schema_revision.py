"""The schema revision this code writes, read from the migration files without importing anything.

Both the migrations (``storage.migrations``, which decides whether a database needs upgrading) and
the ORM-free read of ``storage.serving_read`` (which must not trust a database at another revision)
ask it; loading the scripts through Alembic, or even importing SQLAlchemy, would cost more than
the rest of a `dogbot predict` start.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# `revision: str = "0004_x"` and `down_revision: ... = "0003_y"` (or None), as every migration writes them.
_REVISION_LINE = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION_LINE = re.compile(
    r"^down_revision(?:\s*:[^=]*)?\s*=\s*(None|[\"'][^\"']+[\"']|.+)$", re.MULTILINE
)


@cache
def newest_revision(location: Path = MIGRATIONS) -> str | None:
    """The head revision, read from the migration files' ``revision`` and ``down_revision`` lines.

    None when a file says something this reading does not follow (a merge of two branches): the
    caller then asks Alembic. A test checks it against ``storage.migrations.head``.
    """
    revisions, parents = set(), set()
    for script in (location / "versions").glob("[!_]*.py"):  # not __init__.py
        text = script.read_text(encoding="utf-8")
        revision = _REVISION_LINE.search(text)
        parent = _DOWN_REVISION_LINE.search(text)
        if revision is None or parent is None:
            return None
        revisions.add(revision.group(1))
        if parent.group(1) not in ("None", None):
            if not parent.group(1).startswith(("'", '"')):
                return None
            parents.add(parent.group(1).strip("'\""))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
