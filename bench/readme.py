"""Replace one ``## `` section of bench/README.md, leaving the other benchmarks' tables alone."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(heading: str, body: str, readme: Path = README) -> None:
    """Put ``heading`` + ``body`` where the section with that heading is (or append it)."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    section = f"{heading}\n{body.rstrip()}\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end:] if end >= 0 else "")
    readme.write_text(text, encoding="utf-8")
