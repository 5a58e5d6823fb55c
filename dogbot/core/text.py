"""Text from people, made safe once at the edge: names, captions, typed breeds, API fields.

PostgreSQL refuses a NUL in text (a 500, and a SQLite catalog holding one cannot be restored into
it); control characters break CSV exports and log lines; zero-width and bidi-override characters
make two names that look alike differ, or a name display backwards ("Max" + U+202E). They are
removed here, whitespace runs become one space, and the length is capped.
"""

from __future__ import annotations

import unicodedata

# Zero-width and bidi formatting characters (Unicode category Cf would also take soft hyphens and
# emoji joiners, which people do type in names; these are the ones that hide or reorder text).
_INVISIBLE = frozenset(
    "\u200b\u200c\u200e\u200f\u2060\ufeff"  # zero-width space/non-joiner, LRM/RLM, word joiner, BOM
    "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # bidi isolates
    "\u061c"  # Arabic letter mark
)


def clean_text(text: str | None, limit: int, *, multiline: bool = False) -> str:
    """``text`` without NUL, control, zero-width and bidi characters, spaces folded, at most
    ``limit`` characters ('' for None). ``multiline`` keeps line breaks (notes)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    kept = []
    for char in text:
        if char in _INVISIBLE:
            continue
        if char in "\n\r" and multiline:
            kept.append("\n")
        elif char.isspace():
            kept.append(" ")  # a tab or line break between two words still separates them
        elif unicodedata.category(char) in ("Cc", "Cs", "Co"):
            continue  # NUL, escape, bell, lone surrogates, private use: nothing a name holds
        else:
            kept.append(char)
    cleaned = "".join(kept)
    if multiline:
        lines = [" ".join(line.split()) for line in cleaned.replace("\r", "").split("\n")]
        cleaned = "\n".join(lines).strip()
    else:
        cleaned = " ".join(cleaned.split())
    return cleaned[:limit].strip()
