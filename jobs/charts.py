"""Pictures for admins: the retrain error analysis and the drift report (matplotlib, PNG files).

The Agg backend draws without a display, in whatever thread the job runs in; every figure is
closed after saving so a long-running worker does not accumulate them.
"""

from __future__ import annotations

import os
import re
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobs.lock import process_is_gone

ALARM, OK, NEUTRAL = "#c0392b", "#27ae60", "#7f8c8d"


@dataclass(frozen=True)
class ChartWords:
    """Every word the charts draw, in English; the layer that speaks hands in its own language's
    (dogbot.lifecycle_text.chart_words), so a chart reads like the message it comes with."""

    # error analysis (retrain)
    retrain_title: str = "Is the new model better than the one answering? {answer}"
    retrain_yes: str = "Yes: it answers now"
    retrain_no: str = "No: the one answering stays"
    breed_change: str = "{breed}: {change} of {n} photos"
    new_breed: str = "{breed} (new breed)"
    same_right: str = "Both name the same photos right"
    change_axis: str = "photos named right: new model minus the old one"
    change_title: str = "Where is it better (green) or worse (red) than the old one, breed by breed?"
    taken_for: str = "{truth} taken for {predicted}"
    photos: str = "photos"
    mixups_title: str = "Which breeds does the new model mix up most?"
    # people's answers (/errors)
    errors_title: str = "What does the model get wrong most? (last {days} days)"
    errors_pair: str = "model said {predicted}, people said {said}"
    errors_axis: str = "photos people answered otherwise"
    # drift
    drift_title: str = "Do the last {n} photos look like the {before}? {verdict}"
    drift_yes: str = "Yes."
    drift_no: str = "No, they changed."
    before_training: str = "photos the model learned from"
    before_first: str = "first photos"
    recent: str = "recent photos"
    counted: str = "{label} ({n})"
    bright_title: str = "How bright are the photos?"
    bright_axis: str = "brightness (dark ← → bright)"
    sure_title: str = "How sure is the model of its answers?"
    sure_axis: str = "the model's confidence in its answer"
    share_axis: str = "photos (%)"
    not_a_dog: str = "Not a dog"
    answers_axis: str = "photos the model gave this answer (%)"
    answers_title: str = "Which breeds does the model name most?"
    changed_title: str = "What changed"
    test_embedding_auc: str = "Overall look of the photos"
    test_breed_distribution: str = "Breeds the model names"
    test_confidence: str = "How sure the model is"
    test_brightness: str = "Brightness"
    test_size: str = "Picture size"
    test_correction_rate: str = "Staff corrections"
    changed: str = "changed"
    too_few: str = "too few photos to tell"
    as_before: str = "as before"
    advice: str = (
        "If the photos really changed (camera, room, light, new kinds of dogs), retrain: /retrain. "
        "If nothing changed at the shelter, ignore this."
    )

    def test_name(self, test: str) -> str | None:
        return getattr(self, f"test_{test}", None)


def _pyplot():
    """matplotlib on first use (half a second to import; `dogbot predict` and the bot at rest never draw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Sized for a phone: Telegram shows a photo as wide as the screen, so one tall column of panels with
# large type stays readable where a wide grid of small ones does not.
PHONE_WIDTH_IN = 7.0
BETTER, WORSE, BEFORE, RECENT = "#27ae60", "#c0392b", "#95a5a6", "#e67e22"


def _phone_style(plt) -> None:
    plt.rcParams.update(
        {
            "font.size": 12,
            "axes.titlesize": 13,
            "axes.titleweight": "bold",
            "axes.labelsize": 12,
            "xtick.labelsize": 11,
            "ytick.labelsize": 11,
            "legend.fontsize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )


def breeds_that_changed(new: dict[str, dict], old: dict[str, dict], most: int) -> dict[str, int]:
    """Breed -> photos the new model names right minus the old one's, for breeds where they differ:
    the biggest gains first, then the biggest losses last (at most ``most`` of each)."""

    def right(entry: dict | None) -> int:
        return round(entry["top1"] * entry["n"]) if entry else 0

    change = {key: right(entry) - right(old.get(key)) for key, entry in new.items()}
    better = sorted((k for k, d in change.items() if d > 0), key=lambda k: (-change[k], k))[:most]
    worse = sorted((k for k, d in change.items() if d < 0), key=lambda k: (change[k], k))[:most]
    return {key: change[key] for key in better + worse[::-1]}


def _wrap(text: str, width: int = 44) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _bars_with_labels_above(
    ax, labels: Sequence[str], series: Sequence[tuple[Sequence[float], object, str | None]]
):
    """Horizontal bars, each row's words on a line of their own above its bars: on a phone screen a
    long breed name beside the bar would leave the bar no room."""
    n, k = len(labels), len(series)
    height = 0.5 / k
    for j, (values, color, label) in enumerate(series):
        y = np.arange(n) + 0.38 + (j + 0.5) * height
        ax.barh(y, values, height * 0.95, color=color, label=label)
    lo = min([0.0, *(v for values, _, _ in series for v in values)])
    for i, text in enumerate(labels):
        ax.text(lo, i + 0.33, text, va="bottom", ha="left", fontsize=12)
    ax.set_yticks([])
    ax.set_ylim(n, -0.1)
    ax.spines["left"].set_visible(False)


def error_analysis_png(
    path: Path,
    *,
    title: str,
    per_breed: dict[str, dict],
    confusions: Sequence[dict],
    champion_per_breed: dict[str, dict] | None = None,
    name: Callable[[str], str] = str,
    new_breeds: Sequence[str] = (),
    max_breeds: int = 8,
    words: ChartWords = ChartWords(),  # noqa: B008 (frozen dataclass: a safe default)
) -> Path:
    """Where the new model names more (or fewer) photos right than the old one, breed by breed, and
    which breeds it mixes up most. Only panels that say something are drawn: a breed row only where
    the two differ, the mix-ups only when some happen more often than others (or just one does)."""
    change = breeds_that_changed(per_breed, champion_per_breed or {}, max_breeds)
    rows = list(change)
    pairs = [c for c in confusions if c["n"] > 0][:8]
    if len(pairs) > 1 and len({c["n"] for c in pairs}) == 1:
        pairs = []  # every mix-up as often as the others: no "most" to show
    plt = _pyplot()
    _phone_style(plt)
    heights = ([0.75 * len(rows) + 1.8] if rows else []) + ([0.75 * len(pairs) + 1.8] if pairs else [])
    if not heights:  # nothing differs and nothing is mixed up: one line says so
        fig, note = plt.subplots(1, 1, figsize=(PHONE_WIDTH_IN, 3.0), layout="constrained")
        note.axis("off")
        note.text(0.5, 0.5, _wrap(words.same_right, 44), ha="center", va="center", transform=note.transAxes)
        fig.suptitle(_wrap(title, 40), fontsize=14, weight="bold")
        return _save(fig, path)
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(PHONE_WIDTH_IN, sum(heights) + 1.4),
        height_ratios=heights,
        layout="constrained",
        squeeze=False,
    )
    panels = iter(axes[:, 0])
    if rows:
        left = next(panels)
        values = [change[key] for key in rows]
        labels = [
            words.breed_change.format(
                breed=words.new_breed.format(breed=name(key)) if key in new_breeds else name(key),
                change=f"{values[i]:+d}",
                n=per_breed[key]["n"],
            )
            for i, key in enumerate(rows)
        ]
        _bars_with_labels_above(left, labels, [(values, [BETTER if v > 0 else WORSE for v in values], None)])
        span = max(abs(v) for v in values)
        left.set_xlim(-span * 1.1 if min(values) < 0 else 0, span * 1.1 if max(values) > 0 else 0.5)
        left.axvline(0, color="black", linewidth=0.8)
        left.xaxis.get_major_locator().set_params(integer=True)
        left.set_xlabel(_wrap(words.change_axis, 52))
        left.set_title(_wrap(words.change_title))
    if pairs:
        right_ax = next(panels)
        labels = [
            words.taken_for.format(truth=name(c["truth"]), predicted=name(c["predicted"])) for c in pairs
        ]
        _bars_with_labels_above(right_ax, labels, [([c["n"] for c in pairs], BEFORE, None)])
        right_ax.xaxis.get_major_locator().set_params(integer=True)
        right_ax.set_xlabel(words.photos)
        right_ax.set_title(_wrap(words.mixups_title))
    fig.suptitle(_wrap(title, 40), fontsize=14, weight="bold")
    return _save(fig, path)


def errors_png(
    pairs: Sequence[tuple[str, str, int]],
    *,
    days: int,
    name: Callable[[str], str] = str,
    words: ChartWords = ChartWords(),  # noqa: B008 (frozen dataclass: a safe default)
) -> bytes:
    """/errors: the pairs the model gets wrong most, ``(its breed, people's breed, photos)``, as
    horizontal bars, the most frequent on top."""
    import io

    plt = _pyplot()
    _phone_style(plt)
    fig, ax = plt.subplots(1, 1, figsize=(PHONE_WIDTH_IN, 0.75 * len(pairs) + 2.4), layout="constrained")
    labels = [words.errors_pair.format(predicted=name(p), said=name(s)) for p, s, _ in pairs]
    _bars_with_labels_above(ax, labels, [([n for _, _, n in pairs], WORSE, None)])
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel(words.errors_axis)
    ax.set_title(_wrap(words.errors_title.format(days=days)))
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=120)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def drift_png(
    path: Path,
    *,
    title: str,
    tests: Sequence[dict],
    brightness: tuple[np.ndarray, np.ndarray],
    confidence: tuple[np.ndarray, np.ndarray],
    breeds: tuple[dict[str, float], dict[str, float]],
    name: Callable[[str], str] = str,
    before_label: str = "photos the model learned from",
    words: ChartWords = ChartWords(),  # noqa: B008 (frozen dataclass: a safe default)
) -> Path:
    """Do recent photos look like the ones before? Brightness, the model's sureness and the breeds it
    names, each as shares of photos before and now, then what changed in words and what to do."""
    plt = _pyplot()
    _phone_style(plt)
    fig, axes = plt.subplots(
        4, 1, figsize=(PHONE_WIDTH_IN, 17.5), height_ratios=[3, 3, 5, 3], layout="constrained"
    )
    for ax, (ref, cur), question, axis_words in (
        (axes[0], brightness, words.bright_title, words.bright_axis),
        (axes[1], confidence, words.sure_title, words.sure_axis),
    ):
        bins = np.linspace(0, 1, 21)
        for values, color, label in (
            (ref, BEFORE, words.counted.format(label=before_label, n=len(ref))),
            (cur, RECENT, words.counted.format(label=words.recent, n=len(cur))),
        ):
            values = np.asarray(values, float)
            weights = np.full(len(values), 100.0 / max(len(values), 1))
            ax.hist(values, bins=bins, weights=weights, alpha=0.6, color=color, label=label)
        ax.set_title(question)
        ax.set_xlabel(axis_words)
        ax.set_ylabel(words.share_axis)
        ax.legend(loc="upper left")
    axes[1].xaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    ref_share, cur_share = breeds

    def label(key: str) -> str:
        if key == "not a dog":
            return words.not_a_dog
        try:
            return name(key)
        except KeyError:  # a breed removed since: its key is still better than nothing
            return key

    top = sorted(
        set(ref_share) | set(cur_share), key=lambda k: -max(ref_share.get(k, 0), cur_share.get(k, 0))
    )[:6]
    ax = axes[2]
    _bars_with_labels_above(
        ax,
        [label(k) for k in top],
        [
            ([100 * ref_share.get(k, 0) for k in top], BEFORE, before_label),
            ([100 * cur_share.get(k, 0) for k in top], RECENT, words.recent),
        ],
    )
    ax.set_xlabel(words.answers_axis)
    ax.set_title(words.answers_title)
    ax.legend(loc="lower right")
    ax = axes[3]
    ax.axis("off")
    ax.set_title(words.changed_title)
    shown = [t for t in tests if words.test_name(t["name"])]
    step = 0.8 / max(len(shown), 1)
    for i, test in enumerate(shown):
        if test["alarm"]:
            mark, color = words.changed, WORSE
        elif test["statistic"] is None:
            mark, color = words.too_few, BEFORE
        else:
            mark, color = words.as_before, BETTER
        ax.text(0.0, 1 - i * step, f"{words.test_name(test['name'])}: ", transform=ax.transAxes, va="top")
        ax.text(0.58, 1 - i * step, mark, color=color, weight="bold", transform=ax.transAxes, va="top")
    if any(t["alarm"] for t in tests):
        ax.text(
            0.0, 0.0, _wrap(words.advice, 60), transform=ax.transAxes, va="top", fontsize=11, style="italic"
        )
    fig.suptitle(_wrap(title, 40), fontsize=14, weight="bold")
    return _save(fig, path)


# A chart is drawn into ".<name>.<pid>-<random>.png" and renamed into place; a process killed while
# drawing leaves that file behind, which remove_leftovers clears once the process is gone.
_PARTIAL = re.compile(r"^\..+\.(\d+)-[^.]+\.png$")
_LEFTOVER_AGE_S = 3600  # partial files in another form (older releases): gone after an hour


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete partial chart files in ``folder`` left by processes that were killed while drawing."""
    removed = []
    for path in Path(folder).glob(".*.png"):
        match = _PARTIAL.match(path.name)
        try:
            if match:
                abandoned = process_is_gone(int(match.group(1)))
            else:
                abandoned = time.time() - path.stat().st_mtime > _LEFTOVER_AGE_S
            if abandoned:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # renamed into place or removed meanwhile
            continue
    return removed


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, then renamed into place)
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".png", delete=False
    )
    try:
        with handle:
            fig.savefig(handle, format="png", dpi=120)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    finally:
        _pyplot().close(fig)
    return path
