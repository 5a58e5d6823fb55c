"""A retrain's result and the model list as plain text: the same words in the chat and the terminal.

The bot's texts (bot/texts.py) and the lifecycle CLI (dogbot/lifecycle_cli.py) both read them from
here, so an admin sees one report wherever they ask; each keeps its own words for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from storage.vocabulary import ModelStatus

if TYPE_CHECKING:  # annotations only: `dogbot predict` imports this module and needs no job
    from jobs.registry import ModelInfo
    from jobs.retrain import RetrainResult


def percent_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _percent(value: float) -> str:
    return f"{value:.0%}"


def retrain_report(result: RetrainResult, name: Callable[[str], str] = str) -> str:
    """What a retrain did, for a shelter manager: which model answers now, why, and how well.

    Percentages only (the metrics themselves are in ``dogbot retrain --json``); no file paths: the
    chart travels beside the text (the CLI prints its path on a line of its own)."""
    if result.version is None or result.metrics is None:
        return f"Nothing was trained: {result.reason}"
    m = result.metrics
    cand, champ = m.candidate, m.champion
    before = result.previous_champion or "the model before"
    if result.promoted:
        lines = [f"✅ The new model {result.version} answers from now on (it replaces {before})."]
    else:
        lines = [f"The new model {result.version} was not put to work; {result.champion} keeps answering."]
    lines.append(f"Why: {result.reason}")
    added = list(m.train.breeds_added)
    learned = f"It learned from {m.train.n_train} labelled photos"
    if added:
        shown = ", ".join(name(key) for key in added[:5]) + (
            f" and {len(added) - 5} more" if len(added) > 5 else ""
        )
        learned += f", including {len(added)} new breed{'s' if len(added) != 1 else ''}: {shown}"
    lines.append(learned + ".")
    if cand.validation.top1 is not None:
        right = _percent(cand.validation.top1)
        line = f"On {cand.validation.n} photos it had not learned from it was right on {right}"
        if champ.validation.top1 is not None:
            line += f" ({before}: {_percent(champ.validation.top1)})"
        lines.append(line + ".")
    if cand.validation.top1_new_breeds is not None:
        old = champ.validation.top1_new_breeds
        lines.append(
            f"On the new breeds: {_percent(cand.validation.top1_new_breeds)}"
            + (f" ({before}: {_percent(old)})" if old is not None else "")
            + "."
        )
    return "\n".join(lines)


def model_list(rows: Sequence[ModelInfo], tz: tzinfo = UTC, limit: int = 10) -> str:
    """The model versions, the serving one first, then newest first, two short lines each: for a phone."""
    if not rows:
        return "No models yet."
    lines = []
    newest_first = sorted(rows, key=lambda row: row.created_at, reverse=True)
    for m in sorted(newest_first, key=lambda row: not row.champion)[:limit]:
        if m.champion:
            state = "answering now"
        elif m.status == ModelStatus.PROMOTED:
            state = "used before"
        elif m.status == ModelStatus.REJECTED:
            state = "not used"
        else:
            state = "not judged yet"
        val = m.metrics.candidate.validation.top1 if m.metrics else None
        right = f", right on {_percent(val)}" if val is not None else ", the starting model"
        when = _local(m.created_at, tz)
        lines.append(f"{'▶' if m.champion else '•'} {m.version}: {state}")
        lines.append(f"   {when}, {m.n_breeds} breeds{right}")
        if m.status == ModelStatus.REJECTED and m.reason:
            lines.append(f"   {m.reason[:120]}")
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - limit} older ones (`dogbot models` on the server lists them all).")
    return "\n".join(lines)


def _local(moment: datetime, tz: tzinfo) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"
