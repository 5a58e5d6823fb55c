"""The shelter's own intake, day by day, for /report: how many photos staff had to answer, how often
the model agreed with the people who labelled, and the days photos changed or a new model started.

Read from the catalog itself (never from a simulation: `dogbot simulate --report DIR` writes only
to DIR). Words and the chart in the language in force (dogbot.i18n), like the rest of what admins read.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from dogbot.core.accuracy import AccuracyEstimate
from dogbot.i18n import _, ngettext
from storage.vocabulary import PEOPLE, LabelSource


@dataclass(frozen=True)
class IntakeDay:
    day: date
    photos: int  # that arrived this day (imported history left out)
    asked: int  # staff answered them, or they still wait for an answer
    checked: int  # people labelled them (a breed, mixed breed or not a dog)
    model_right: int  # ...and the model had said the same
    alarms: int  # drift checks that found the photos changed
    promoted: int  # models put to work


def intake_days(
    rows: Iterable[Mapping[str, object]],
    alarms: Sequence[datetime],
    promotions: Sequence[datetime],
    *,
    today: date,
    tz: tzinfo = UTC,
    days: int = 30,
) -> list[IntakeDay]:
    """The last ``days`` days up to ``today`` (the shelter's clock) from the catalog's export rows
    (dogbot.core.reporting), drift alarms and promotions; days before the first photo are left out."""
    first = today - timedelta(days=days - 1)
    counts: dict[date, list[int]] = {}
    for row in rows:
        if row["label_source"] == LabelSource.IMPORT:
            continue  # a shelter's history loaded in bulk, not intake
        day = _local_day(datetime.fromisoformat(str(row["received_at"])), tz)
        if not first <= day <= today:
            continue
        photos, asked, checked, right = counts.setdefault(day, [0, 0, 0, 0])
        people = row["label_source"] in PEOPLE
        labelled = people and row["label"] not in ("", None)
        counts[day] = [
            photos + 1,
            asked + (people or not row["label"]),
            checked + labelled,
            right + (labelled and row["predicted_breed"] == row["label"]),
        ]
    if not counts:
        return []
    alarm_days = [_local_day(moment, tz) for moment in alarms]
    promoted_days = [_local_day(moment, tz) for moment in promotions]
    start = min(counts)
    return [
        IntakeDay(day, *counts.get(day, [0, 0, 0, 0]), alarm_days.count(day), promoted_days.count(day))
        for day in (start + timedelta(days=i) for i in range((today - start).days + 1))
    ]


def _local_day(moment: datetime, tz: tzinfo) -> date:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz).date()


def intake_summary(days: Sequence[IntakeDay]) -> str:
    """The report's words: the totals the chart draws day by day."""
    if not days:
        return _("No photos have come in yet: /report shows the shelter's intake day by day once they do.")
    photos = sum(d.photos for d in days)
    asked = sum(d.asked for d in days)
    checked = sum(d.checked for d in days)
    right = sum(d.model_right for d in days)
    lines = [
        ngettext(
            "The last {days} day: {photos} photos came in; staff answered {asked} of them.",
            "The last {days} days: {photos} photos came in; staff answered {asked} of them.",
            len(days),
        ).format(days=len(days), photos=photos, asked=asked)
    ]
    if checked:
        lines.append(
            _("On the {n} photos people labelled, the model had said the same for {right}.").format(
                n=checked, right=right
            )
        )
    alarms, promoted = sum(d.alarms for d in days), sum(d.promoted for d in days)
    lines.append(
        _("Checks that found the photos changed: {alarms}; new models put to work: {promoted}.").format(
            alarms=alarms, promoted=promoted
        )
    )
    return "\n".join(lines)


def accuracy_in_words(estimate: AccuracyEstimate) -> str:
    """ "about 95 % right (92–97 %), from 60 spot checks" (/status says it too)."""
    return ngettext(
        "about {value} right ({low}–{high}), from {n} spot check",
        "about {value} right ({low}–{high}), from {n} spot checks",
        estimate.spot_checks,
    ).format(
        # The sign goes in the values: gettext would read "% r" in the message as a format.
        value=f"{100 * estimate.value:.0f} %",
        low=f"{100 * estimate.low:.0f}",
        high=f"{100 * estimate.high:.0f} %",
        n=estimate.spot_checks,
    )


def accuracy_weeks(weeks: Sequence[tuple[date, AccuracyEstimate | None]]) -> str:
    """The report's lines on how right the catalog was, week by week (dogbot.core.accuracy)."""
    if all(estimate is None for _start, estimate in weeks):
        return ngettext(
            "How right the catalog is: no spot check was answered in the last {n} week.",
            "How right the catalog is: no spot check was answered in the last {n} weeks.",
            len(weeks),
        ).format(n=len(weeks))
    lines = [_("How right the catalog is, week by week (from the spot checks staff answered):")]
    for start, estimate in weeks:
        said = accuracy_in_words(estimate) if estimate is not None else _("no spot check answered")
        lines.append(_("Week of {day}: {estimate}.").format(day=f"{start.day}/{start.month}", estimate=said))
    return "\n".join(lines)


def intake_png(days: Sequence[IntakeDay], title: str = "") -> bytes:
    """Two panels in one column (a phone shows it whole): the share of each day's photos staff had to
    answer, and how often the model agreed with people; the days photos changed and the days a new
    model started are marked, with legend entries only for what happened."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    x = list(range(len(days)))
    fig, (effort, agree) = plt.subplots(2, 1, figsize=(7, 10), sharex=True, constrained_layout=True)
    effort.bar(x, [100 * d.asked / d.photos if d.photos else 0 for d in days], color="#4c72b0")
    effort.set_ylim(0, 100)
    effort.set_title(_("How many of the day's photos did staff have to answer?"))
    right = [100 * d.model_right / d.checked if d.checked else float("nan") for d in days]
    agree.plot(x, right, "-o", color="#2ca02c")
    agree.set_ylim(0, 102)
    agree.set_title(_("How often had the model said what people said?"))
    for axis in (effort, agree):
        axis.yaxis.set_major_formatter(PercentFormatter())
        axis.set_ylabel(_("photos (%)"))
    step = max(1, -(-len(days) // 10))
    agree.set_xticks(x[::step], [f"{d.day.day}/{d.day.month}" for d in days][::step])
    for hit, color, style, label in (
        ([i for i, d in enumerate(days) if d.promoted], "#2ca02c", "--", _("a new model started work")),
        ([i for i, d in enumerate(days) if d.alarms], "#d62728", ":", _("the photos changed")),
    ):
        for i in hit:
            for axis in (effort, agree):
                axis.axvline(i, color=color, linestyle=style, linewidth=1.6)
        if hit:
            agree.plot([], [], color=color, linestyle=style, label=label)
    if any(d.promoted or d.alarms for d in days):
        agree.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    if title:
        fig.suptitle(title, fontsize=13, weight="bold")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
