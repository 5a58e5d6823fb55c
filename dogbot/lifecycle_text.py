"""A retrain's result and the model list as plain text: the same words in the chat and the terminal.

The bot's texts (bot/texts.py) and the lifecycle CLI (dogbot/lifecycle_cli.py) both read them from
here, so an admin sees one report wherever they ask; each keeps its own words for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from dogbot.i18n import N_, _, ngettext
from storage.vocabulary import DriftTest, ModelStatus

if TYPE_CHECKING:  # annotations only: `dogbot predict` imports this module and needs no job
    from jobs.charts import ChartWords
    from jobs.drift import DriftResult
    from jobs.registry import ModelInfo
    from jobs.retrain import RetrainResult, RetrainStep
    from ml.judging import Verdict


def percent_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _percent(value: float) -> str:
    return f"{value:.0%}"


# The months as bot/texts.py abbreviates them (the same catalog entries).
_MONTHS = (
    N_("Jan"), N_("Feb"), N_("Mar"), N_("Apr"), N_("May"), N_("Jun"),
    N_("Jul"), N_("Aug"), N_("Sep"), N_("Oct"), N_("Nov"), N_("Dec"),
)  # fmt: skip


def day_month(moment: datetime, tz: tzinfo = UTC) -> str:
    """ "3 Dec" in the language in force, on the shelter's clock."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(tz)
    return _("{day} {month}").format(day=local.day, month=_(_MONTHS[local.month - 1]))


def model_name(version: str, created_at: datetime | None, tz: tzinfo = UTC) -> str:
    """A model as a manager names it: by when it was made ("the model of 3 December, 14:05"); the
    first one is "the starting model". Version strings stay in ``--json`` and the log."""
    if version.endswith("-v0"):
        return _("the starting model")
    if created_at is None:  # not in the registry (it cannot be told apart from others otherwise)
        return version
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return _("the model of {day}, {time}").format(
        day=day_month(created_at, tz), time=f"{created_at.astimezone(tz):%H:%M}"
    )


def model_namer(rows: Sequence[ModelInfo], tz: tzinfo = UTC) -> Callable[[str], str]:
    """version -> :func:`model_name`, from the registry's rows (an unknown version: as it is)."""
    made = {row.version: row.created_at for row in rows}

    def name(version: str) -> str:
        if version.endswith("-v0"):
            return model_name(version, None, tz)
        return model_name(version, made[version], tz) if version in made else version

    return name


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def retrain_step(step: RetrainStep | str) -> str:
    """A retrain's progress line ("starting" before the job has said anything)."""
    if isinstance(step, str) or step.step == "start":
        return _("Retraining: starting…")
    if step.step == "fold":
        return _("Retraining: gathering the labels staff gave…")
    if step.step == "judge":
        return ngettext(
            "Retraining: trying the new model on {n} labelled photo it has not seen…",
            "Retraining: trying the new model on {n} labelled photos it has not seen…",
            step.photos + step.golden,
        ).format(n=step.photos + step.golden)
    if step.step == "train":
        return ngettext(
            "Retraining: learning from {n} labelled photo…",
            "Retraining: learning from {n} labelled photos…",
            step.photos,
        ).format(n=step.photos)
    return _("Retraining: saving the new model…")


def nothing_trained(reason: str) -> str:
    """Why a retrain trained nothing (jobs.retrain's reasons), in the language in force."""
    from jobs import retrain as job  # the reasons' names; imported here: `dogbot predict` needs no job

    words = {
        job.NO_LABELS: N_("nobody has labelled a photo yet."),
        job.NO_BREED_PHOTOS: N_("no photo is labelled with a breed yet."),
        job.NOTHING_NEW: N_(
            "no new labels since the last retrain, so a new model would be the same one. "
            "Label more photos (/review), then retrain."
        ),
    }
    return _("Nothing was trained: {why}").format(why=_(words[reason]) if reason in words else reason)


_SLICE_WORDS = {
    "rest": N_("the breeds it already knew"),
    "unbiased": N_("the photos checked at random"),
    "golden": N_("the fixed test photos"),
    "changed": N_("what changed (new breeds, new kinds of photos)"),
    "everything": N_("the labelled photos"),
}


def verdict_words(verdict: Verdict) -> str:
    """The judge's decision in a manager's words, from its numbers (the English ``reason`` is for logs)."""
    if not verdict.outcome:  # judged before verdicts carried their numbers
        return verdict.reason
    wins, losses = verdict.tally
    on = _(_SLICE_WORDS.get(verdict.on, _SLICE_WORDS["everything"]))
    if verdict.outcome == "too_few":
        return ngettext(
            "only {n} labelled photo it has not learned from to compare the new one on (it needs {need}).",
            "only {n} labelled photos it has not learned from to compare the new one on (it needs {need}).",
            verdict.n_compared,
        ).format(n=verdict.n_compared, need=verdict.needed)
    if verdict.outcome == "worse":
        return ngettext(
            "the new one is worse on {what}. It got {losses} photo wrong "
            "that the one answering got right, and {wins} the other way.",
            "the new one is worse on {what}. It got {losses} photos wrong "
            "that the one answering got right, and {wins} the other way.",
            losses,
        ).format(what=on, losses=losses, wins=wins)
    named = ""
    if verdict.new_breeds_slice.n:
        named = " " + _("It named {k} of {n} photos of breeds the one answering cannot name.").format(
            k=verdict.new_breeds_slice.candidate_right, n=verdict.new_breeds_slice.n
        )
    if verdict.outcome == "not_better":
        if wins == 0:
            text = ngettext(
                "on {what} the new one got no photo right that it got "
                "wrong, and {losses} photo the other way.",
                "on {what} the new one got no photo right that it got "
                "wrong, and {losses} photos the other way.",
                losses,
            ).format(what=on, losses=losses)
        else:
            text = ngettext(
                "on {what} the new one got {wins} photo right that it got "
                "wrong and {losses} the other way; too few to be sure it is better.",
                "on {what} the new one got {wins} photos right that it got "
                "wrong and {losses} the other way; too few to be sure it is better.",
                wins,
            ).format(what=on, wins=wins, losses=losses)
        return text + named
    if verdict.outcome == "loses_overall":
        return _("what the new one gains on what changed, it loses on the rest.")
    rest = verdict.rest
    return (
        ngettext(
            "on {what} it got {wins} photo right that the one before got wrong, and {losses} the other way.",
            "on {what} it got {wins} photos right that the one before got wrong, and {losses} the other way.",
            wins,
        ).format(what=on, wins=wins, losses=losses)
        + named
        + " "
        + _("On the rest it is as good: {right} of {n} right, against {before}.").format(
            right=rest.candidate_right, n=rest.n, before=rest.champion_right
        )
    )


def chart_words() -> ChartWords:
    """The charts' words in the language in force (jobs.charts holds the English)."""
    from jobs.charts import ChartWords

    return ChartWords(
        retrain_title=_("Is the new model better than the one answering? {answer}"),
        retrain_yes=_("Yes: it answers now"),
        retrain_no=_("No: the one answering stays"),
        breed_change=_("{breed}: {change} of {n} photos"),
        new_breed=_("{breed} (new breed)"),
        same_right=_("Both name the same photos right"),
        change_axis=_("photos named right: new model minus the old one"),
        change_title=_("Where is it better (green) or worse (red) than the old one, breed by breed?"),
        taken_for=_("{truth} taken for {predicted}"),
        photos=_("photos"),
        mixups_title=_("Which breeds does the new model mix up most?"),
        errors_title=_("What does the model get wrong most? (last {days} days)"),
        errors_pair=_("model said {predicted}, people said {said}"),
        errors_axis=_("photos people answered otherwise"),
        drift_title=_("Do the last {n} photos look like the {before}? {verdict}"),
        drift_yes=_("Yes."),
        drift_no=_("No, they changed."),
        before_training=_("photos the model learned from"),
        before_first=_("first photos"),
        recent=_("recent photos"),
        counted=_("{label} ({n})"),
        bright_title=_("How bright are the photos?"),
        bright_axis=_("brightness (dark ← → bright)"),
        sure_title=_("How sure is the model of its answers?"),
        sure_axis=_("the model's confidence in its answer"),
        share_axis=_("photos (%)"),
        not_a_dog=_("Not a dog"),
        answers_axis=_("photos the model gave this answer (%)"),
        answers_title=_("Which breeds does the model name most?"),
        changed_title=_("What changed"),
        test_embedding_auc=_("Overall look of the photos"),
        test_breed_distribution=_("Breeds the model names"),
        test_confidence=_("How sure the model is"),
        test_brightness=_("Brightness"),
        test_size=_("Picture size"),
        test_correction_rate=_("Staff corrections"),
        changed=_("changed"),
        too_few=_("too few photos to tell"),
        as_before=_("as before"),
        advice=_(
            "If the photos really changed (camera, room, light, new kinds of dogs), retrain: /retrain. "
            "If nothing changed at the shelter, ignore this."
        ),
    )


def retrain_report(
    result: RetrainResult, name: Callable[[str], str] = str, model: Callable[[str], str] = str
) -> str:
    """What a retrain did, for a shelter manager: which model answers now, why, and how well.

    Percentages only (the metrics themselves are in ``dogbot retrain --json``); no file paths: the
    chart travels beside the text (the CLI prints its path on a line of its own). In the language in
    force (dogbot.i18n), the judge's verdict included."""
    if result.version is None or result.metrics is None:
        return nothing_trained(result.reason)
    m = result.metrics
    cand, champ = m.candidate, m.champion
    before = model(result.previous_champion) if result.previous_champion else _("the model before")
    if result.promoted:
        head = _("✅ The new model ({model}) answers from now on; it replaces {before}.")
    else:
        head = _("The new model ({model}) was not put to work; {champion} keeps answering.")
    lines = [
        head.format(model=model(result.version), before=before, champion=model(result.champion)),
        _("Why: {why}").format(why=verdict_words(m.verdict) if m.verdict else result.reason),
    ]
    added = list(m.train.breeds_added)
    if added:
        shown = ", ".join(name(key) for key in added[:5])
        if len(added) > 5:
            shown += " " + _("and {n} more").format(n=len(added) - 5)
        learned = ngettext(
            "It learned from {n} labelled photos, including {k} new breed: {breeds}.",
            "It learned from {n} labelled photos, including {k} new breeds: {breeds}.",
            len(added),
        )
    else:
        shown, learned = "", _("It learned from {n} labelled photos.")
    lines.append(learned.format(n=m.train.n_train, k=len(added), breeds=shown))
    verdict = m.verdict
    if verdict is not None and verdict.outcome and verdict.changed.n + verdict.rest.n:
        # The judge's photos, the same ones its verdict counts: one set of numbers, not two.
        n = verdict.changed.n + verdict.rest.n
        lines.append(
            _(
                "On {n} labelled photos it had not learned from, it named {new} right; {before}, {old}."
            ).format(
                n=n,
                new=verdict.changed.candidate_right + verdict.rest.candidate_right,
                before=before,
                old=verdict.changed.champion_right + verdict.rest.champion_right,
            )
        )
    elif cand.validation.top1 is not None:
        line = _("On {n} photos it had not learned from it was right on {right}").format(
            n=cand.validation.n, right=_percent(cand.validation.top1)
        )
        if champ.validation.top1 is not None:
            line += f" ({before}: {_percent(champ.validation.top1)})"
        lines.append(line + ".")
    if cand.validation.top1_new_breeds is not None and (verdict is None or not verdict.outcome):
        old = champ.validation.top1_new_breeds
        lines.append(
            _("On the new breeds: {right}").format(right=_percent(cand.validation.top1_new_breeds))
            + (f" ({before}: {_percent(old)})" if old is not None else "")
            + "."
        )
    ages = {group: v for group, v in cand.validation.per_age_group.items() if v["top1"] is not None}
    if ages:
        by_age = ", ".join(
            _("{group} {right} ({n} photos)").format(
                group=age_group_name(group), right=_percent(v["top1"]), n=v["n"]
            )
            for group, v in ages.items()
        )
        lines.append(
            _("Right by age group on the photos it had not learned from: {groups}.").format(groups=by_age)
        )
    return "\n".join(lines)


def model_list(
    rows: Sequence[ModelInfo],
    tz: tzinfo = UTC,
    limit: int = 10,
    width: int = 60,
    name: Callable[[str], str] = str,
) -> str:
    """The models, the one answering first, then newest first: named by date, what they learned and
    how often they were right on the photos the judge checked, in lines that fit a phone."""
    if not rows:
        return _("No models yet.")
    lines = []
    newest_first = sorted(rows, key=lambda row: row.created_at, reverse=True)
    for m in sorted(newest_first, key=lambda row: not row.champion)[:limit]:
        if m.champion:
            state = _("answering now")
        elif m.status == ModelStatus.PROMOTED:
            state = _("used before")
        elif m.status == ModelStatus.REJECTED:
            state = _("not used")
        else:
            state = _("not judged yet")
        called = _capital(model_name(m.version, m.created_at, tz))
        lines.append(f"{'▶' if m.champion else '•'} {called}: {state}")
        about = [ngettext("knows {n} breed", "knows {n} breeds", m.n_breeds).format(n=m.n_breeds)]
        added = list(m.metrics.train.breeds_added) if m.metrics else []
        if added:
            about.append(
                _("learned {breeds}").format(
                    breeds=", ".join(name(key) for key in added[:3]) + ("…" if len(added) > 3 else "")
                )
            )
        verdict = m.metrics.verdict if m.metrics else None
        if verdict is not None and verdict.changed.n + verdict.rest.n:
            about.append(
                _(
                    "right on {k} of {n} labelled photos it had not learned from (the one before: {old})"
                ).format(
                    k=verdict.changed.candidate_right + verdict.rest.candidate_right,
                    n=verdict.changed.n + verdict.rest.n,
                    old=verdict.changed.champion_right + verdict.rest.champion_right,
                )
            )
        lines += _wrapped("; ".join(about), width)
        if m.status == ModelStatus.REJECTED and verdict is not None:
            lines += _wrapped(_capital(verdict_words(verdict)), width)
    if len(rows) > limit:
        lines.append(
            _("… and {n} older ones (`dogbot models` on the server lists them all).").format(
                n=len(rows) - limit
            )
        )
    return "\n".join(lines)


def _wrapped(text: str, width: int) -> list[str]:
    """Indented lines of at most ``width`` characters, broken between words (never mid-word)."""
    import textwrap

    return textwrap.wrap(text, width, initial_indent="   ", subsequent_indent="   ")


_AGE_GROUPS = {
    "puppy": N_("puppy"),
    "adult": N_("adult"),
    "senior": N_("senior"),
    "unknown": N_("age not known"),
}


def age_group_name(group: str) -> str:
    """An age group (storage's puppy | adult | senior) in the language in force."""
    return _(_AGE_GROUPS[group]) if group in _AGE_GROUPS else group


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
    line = _("Puppies: {k} of the {n} recent dogs with an age ({share})").format(
        k=puppies, n=aged, share=_percent(puppies / aged)
    )
    ref_puppies, ref_aged = share(age_groups.get("reference", {}))
    if ref_aged == 0:
        return line + "; " + _("the earlier dogs have no age to compare with.")
    ref_share, share_now = ref_puppies / ref_aged, puppies / aged
    if share_now >= 2 * ref_share and puppies >= 3:
        trend = _("many more puppies than before")
    elif share_now <= ref_share / 2 and ref_puppies >= 3:
        trend = _("far fewer puppies than before")
    else:
        trend = _("about as many as before")
    return (
        line
        + ", "
        + _("against {k} of {n} ({share}) before: {trend}.").format(
            k=ref_puppies, n=ref_aged, share=_percent(ref_share), trend=trend
        )
    )


def not_enough_for_drift(needs: int, before: int, recent: int) -> str:
    """Why a drift check gave no verdict: the photos it needs in each window against those it has."""
    return _(
        "Not enough photos yet to tell whether new photos look different: a check needs {needs} earlier "
        "and {needs} recent photos; there are {before} and {recent}."
    ).format(needs=needs, before=before, recent=recent)


def drift_report(result: DriftResult, name: Callable[[str], str] = str) -> str:
    """/drift in words: did the photos change, how (in shares of photos), and what to do about it.

    Test statistics stay in ``dogbot drift --json`` and the log: a shelter manager acts on "41 of
    the last 50 photos are darker", not on a p-value."""
    if result.reference == "training":
        learned = _("the ones the model learned from")
    else:
        learned = _("the first {n} photos the bot received").format(n=result.reference_n)
    if not result.tests:
        return not_enough_for_drift(result.extra.get("min_photos", 0), result.reference_n, result.current_n)
    if result.drift:
        lines = [
            _("⚠️ The last {n} photos differ from {learned}:").format(n=result.current_n, learned=learned)
        ]
    else:
        lines = [_("✓ The last {n} photos look like {learned}.").format(n=result.current_n, learned=learned)]
    changed = [test for test in result.tests if test["alarm"]]
    noticed = [t for t in result.tests if not t["alarm"] and "reported, not alarmed" in t.get("detail", "")]
    for test in changed + noticed:
        lines.append(f"• {_drift_change(test, name)}")
    puppies = puppies_in_words(result.extra.get("age_groups"))
    if puppies:
        lines.append(f"• {puppies}")
    if result.drift:
        lines += [
            "",
            _(
                "What to do: if photos really changed (a new camera, room or light, or new kinds of dogs), "
                "let the model learn from them with /retrain (it also retrains on its own once staff "
                "label enough of them). If nothing changed at the shelter, you can ignore this."
            ),
        ]
    return "\n".join(lines)


def _drift_change(test: Mapping, name: Callable[[str], str]) -> str:
    """One test's finding as a sentence about photos (older reports without facts: a plain fallback)."""
    facts, kind = test.get("facts") or {}, test["name"]
    if kind == DriftTest.BRIGHTNESS and facts:
        text = (
            _("{k} of the last {n} photos are darker than usual (about half would be).")
            if facts["lower"]
            else _("{k} of the last {n} photos are brighter than usual (about half would be).")
        )
        return text.format(k=facts["beyond"], n=facts["n"])
    if kind == DriftTest.SIZE and facts:
        text = (
            _("{k} of the last {n} pictures are smaller than usual (about half would be).")
            if facts["lower"]
            else _("{k} of the last {n} pictures are larger than usual (about half would be).")
        )
        return text.format(k=facts["beyond"], n=facts["n"])
    if kind == DriftTest.CONFIDENCE and facts:
        text = (
            _(
                "The model is less sure of itself: {k} of the last {n} dog photos got a less sure answer than usual."  # noqa: E501 (one string: translators see it whole)
            )
            if facts["lower"]
            else _(
                "The model is more sure of itself: {k} of the last {n} dog photos got a surer answer than usual."  # noqa: E501
            )
        )
        return text.format(k=facts["beyond"], n=facts["n"])
    if kind == DriftTest.BREED_DISTRIBUTION and facts.get("breed"):
        breed = _("Not a dog") if facts["breed"] == "not a dog" else name(facts["breed"])
        return _("The breeds it names changed: {breed} went from {before} to {now} of photos.").format(
            breed=breed, before=_share(facts["before"]), now=_share(facts["now"])
        )
    if kind == DriftTest.CORRECTION_RATE and facts:
        return _("Staff corrected {now} of its recent answers ({k} of {n}), up from {before}.").format(
            now=_share(facts["now"]), k=facts["hits"], n=facts["n"], before=_share(facts["before"])
        )
    fallback = {
        DriftTest.EMBEDDING_AUC: N_(
            "The photos look different to the model as a whole (their content, light or framing)."
        ),
        DriftTest.BRIGHTNESS: N_("The photos' brightness changed."),
        DriftTest.SIZE: N_("The pictures' size changed."),
        DriftTest.CONFIDENCE: N_("How sure the model is of its answers changed."),
        DriftTest.BREED_DISTRIBUTION: N_("The breeds it names changed."),
        DriftTest.CORRECTION_RATE: N_("Staff correct the model more often."),
    }
    something = N_("Something about the photos changed.")
    return _(fallback.get(kind, something))


def _share(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "<1%"
