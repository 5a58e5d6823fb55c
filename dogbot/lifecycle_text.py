"""A retrain's result and the model list as plain text: the same words in the chat and the terminal.

The bot's texts (bot/texts.py) and the lifecycle CLI (dogbot/lifecycle_cli.py) both read them from
here, so an admin sees one report wherever they ask; each keeps its own words for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `dogbot predict` imports this module and needs no job
    from jobs.registry import ModelInfo
    from jobs.retrain import RetrainResult


def percent_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def retrain_report(result: RetrainResult) -> str:
    if result.version is None or result.metrics is None:
        return f"nothing trained: {result.reason}"
    m = result.metrics
    cand, champ = m.candidate, m.champion
    lines = [
        f"{result.version} {'PROMOTED' if result.promoted else 'rejected'}: {result.reason}",
        f"dataset v{result.dataset_version}, {m.train.n_train} training photos, "
        f"{len(m.train.breeds_added)} new breeds; now serving {result.champion}",
        f"validation ({cand.validation.n} photos): top-1 {percent_or_na(cand.validation.top1)} "
        f"(champion {percent_or_na(champ.validation.top1)}); "
        f"new breeds {percent_or_na(cand.validation.top1_new_breeds)} "
        f"(champion {percent_or_na(champ.validation.top1_new_breeds)})",
        f"golden ({cand.golden.n} photos): top-1 {percent_or_na(cand.golden.top1)} "
        f"(champion {percent_or_na(champ.golden.top1)})",
    ]
    ages = cand.validation.per_age_group
    if ages:
        lines.append(
            "validation by age group: "
            + ", ".join(f"{group} {percent_or_na(v['top1'])} ({v['n']} photos)" for group, v in ages.items())
        )
    if m.verdict is not None:
        v = m.verdict
        lines.append(
            f"judged on {v.n_compared} photos ({v.folds}-fold cross-validation), photos won-lost against "
            f"the champion: what changed {v.changed.wins}-{v.changed.losses}, the rest "
            f"{v.rest.wins}-{v.rest.losses}, checked at random {v.unbiased.wins}-{v.unbiased.losses}"
        )
    if result.report:
        lines.append(f"error analysis: {result.report}")
    return "\n".join(lines)


def model_list(rows: Sequence[ModelInfo]) -> str:
    lines = []
    for m in rows:
        val = m.metrics.candidate.validation.top1 if m.metrics else None
        mark = "*" if m.champion else " "
        lines.append(
            f"{mark} {m.version:<10} {m.status:<9} {m.created_at:%Y-%m-%d %H:%M}  breeds {m.n_breeds:<4} "
            f"val top-1 {percent_or_na(val):>6}  {m.trigger}/{m.actor or '-'}  {m.reason}"
        )
    return "\n".join(lines) or "no models yet"


def puppies_in_words(age_groups: dict | None) -> str | None:
    """The share of puppies among the dogs staff gave an age, recent photos against the reference.

    ``age_groups``: ``{"current": {group: dogs}, "reference": {...}}`` (``DriftResult.extra``). None
    when no recent dog has an age: there is nothing to say.
    """
    if not age_groups:
        return None

    def share(counts: dict) -> tuple[int, int]:
        aged = sum(n for group, n in counts.items() if group != "unknown")
        return counts.get("puppy", 0), aged

    puppies, aged = share(age_groups.get("current", {}))
    if aged == 0:
        return None
    line = f"Puppies: {puppies} of the {aged} recent dogs with an age ({puppies / aged:.0%})"
    ref_puppies, ref_aged = share(age_groups.get("reference", {}))
    if ref_aged == 0:
        return line + "; the reference photos' dogs have no age to compare with."
    ref_share, share_now = ref_puppies / ref_aged, puppies / aged
    if share_now >= 2 * ref_share and puppies >= 3:
        trend = "many more puppies than before"
    elif share_now <= ref_share / 2 and ref_puppies >= 3:
        trend = "far fewer puppies than before"
    else:
        trend = "about as many as before"
    return line + f", against {ref_puppies} of {ref_aged} ({ref_share:.0%}) in the reference: {trend}."
