"""Pictures of a simulation a person reads at a glance: staff effort and accuracy, day by day."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def write_report(result: dict, folder: Path, title: str = "") -> list[Path]:
    """Write ``simulation.json`` and ``simulation.png`` into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "simulation.json"
    json_path.write_text(json.dumps(result, indent=2))
    png_path = folder / "simulation.png"
    png_path.write_bytes(render_chart(result, title))
    return [json_path, png_path]


# What a shift does to the photos, for the chart's shading.
_SHIFT_WORDS = {"new_breeds": "new breeds arrive", "dark": "photos turn dark", "mix": "the breed mix changes"}


def day_ticks(days: list[int], most: int = 15) -> list[int]:
    """Whole days only: every day while they fit, else every 2nd, 3rd… (never "2.5")."""
    return days[:: max(1, -(-len(days) // most))]


def events_that_happened(days: list[dict]) -> list[tuple[list[dict], str, str, str]]:
    """(days it happened on, colour, line style, legend words) for each kind of event that happened."""
    kinds = (
        ([d for d in days if d["promoted"]], "#2ca02c", "--", "new model put to work (end of day)"),
        (
            [d for d in days if d["retrained"] and not d["promoted"]],
            "#999999",
            "--",
            "new model trained, not used",
        ),
        ([d for d in days if d["drift_alarm"]], "#d62728", ":", "alarm: photos changed (end of day)"),
    )
    return [kind for kind in kinds if kind[0]]


def render_chart(result: dict, title: str = "") -> bytes:
    """Does the bot ask staff less, and get more right, as the weeks go by? Two panels in one column
    (a phone shows it whole), in % throughout, whole-day ticks, the days a shift began shaded and
    labelled, and legend entries only for events that happened."""
    import io

    from matplotlib.ticker import PercentFormatter

    from dogbot.simulation import parse_shifts

    days = result["days"]
    total = result["total"]
    x = [d["day"] for d in days]
    plt.rcParams.update({"font.size": 12, "axes.titlesize": 13, "legend.fontsize": 11})
    fig, (effort, accuracy) = plt.subplots(
        2, 1, figsize=(7, 12), sharex=True, constrained_layout=True, height_ratios=[1, 1.15]
    )

    def share(d, key):
        return 100 * d[key] / d["photos"] if d["photos"] else 0

    asked = [share(d, "asked") for d in days]
    audited = [share(d, "audited") for d in days]
    effort.bar(x, asked, color="#4c72b0", label="the bot was unsure and asked")
    if any(audited):
        effort.bar(x, audited, bottom=asked, color="#a1c9f4", label="spot check of a sure answer")
    effort.set_ylabel("% of the day's photos")
    effort.set_ylim(0, 100)
    effort.set_title("How many photos did staff have to answer?", pad=34)

    def series(key):
        return [100 * d[key] if d[key] is not None else float("nan") for d in days]

    accuracy.plot(x, series("catalog_accuracy"), "-o", color="#2ca02c", label="catalog right (all so far)")
    accuracy.plot(x, series("model_top1"), "-s", color="#4c72b0", label="model right, the day's dog photos")
    if any(d["new_breed_top1"] is not None for d in days):
        accuracy.plot(x, series("new_breed_top1"), "-^", color="#dd8452", label="model right, new breeds")
    accuracy.set_ylim(0, 102)
    accuracy.set_ylabel("% of photos")
    accuracy.set_xlabel("day")
    accuracy.set_title("How often is the catalog right?")
    for axis in (effort, accuracy):
        axis.yaxis.set_major_formatter(PercentFormatter())
        axis.set_xticks(day_ticks(x))
        axis.set_xlim(min(x, default=1) - 0.6, max(x, default=1) + 0.6)

    spec = (total.get("settings") or {}).get("shift") or ""
    for shift in parse_shifts(spec) if spec else []:
        if shift.day > max(x, default=0):
            continue
        for axis in (effort, accuracy):
            axis.axvspan(shift.day - 0.5, max(x) + 0.6, color="#f1c40f", alpha=0.12, zorder=0)
            axis.axvline(shift.day - 0.5, color="#b7950b", linewidth=1.2)
        words = _SHIFT_WORDS.get(shift.kind, shift.kind)
        # Above the panel, where no bar or legend hides it.
        effort.annotate(
            f"day {shift.day}:\n{words}",
            (shift.day - 0.5, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, 4),
            textcoords="offset points",
            va="bottom",
            fontsize=10,
            color="#7d6608",
        )

    for hit, color, style, label in events_that_happened(days):
        for d in hit:
            for axis in (effort, accuracy):
                axis.axvline(d["day"] + 0.5, color=color, linestyle=style, linewidth=1.6)
        accuracy.plot([], [], color=color, linestyle=style, label=label)  # only events that happened
    # Below the panels: a legend inside one hides bars or lines on a phone-sized picture.
    effort.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    accuracy.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    headline = (
        f"Staff answered {100 * total['asked_share']:.0f}% of {total['photos']} photos; "
        f"the catalog is {100 * total['catalog_accuracy']:.1f}% right"
    )
    fig.suptitle(f"{title + ': ' if title else ''}{headline}", fontsize=13, weight="bold")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()
