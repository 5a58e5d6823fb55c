"""Pictures of a simulation a person reads at a glance: staff effort and accuracy, day by day."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def write_report(result: dict, folder: Path, title: str = "dogbot simulation") -> list[Path]:
    """Write ``simulation.json`` and ``simulation.png`` into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "simulation.json"
    json_path.write_text(json.dumps(result, indent=2))
    png_path = folder / "simulation.png"
    png_path.write_bytes(render_chart(result, title))
    return [json_path, png_path]


def remember_report(data_dir: Path, files: list[Path]) -> None:
    """Copy the report where the bot's /report finds it (the latest run wins)."""
    target = data_dir / "reports"
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        (target / path.name).write_bytes(path.read_bytes())


def last_report(data_dir: Path) -> tuple[str, Path] | None:
    """``(summary, chart path)`` of the last remembered simulation, if any."""
    chart, data = data_dir / "reports" / "simulation.png", data_dir / "reports" / "simulation.json"
    if not (chart.is_file() and data.is_file()):
        return None
    total = json.loads(data.read_text())["total"]
    summary = (
        f"Simulation of {total['photos']} photos: staff answered {total['asked_share']:.0%}, "
        f"catalog accuracy {total['catalog_accuracy']:.1%}, {total['retrains']} retrains, "
        f"{total['drift_alarms']} drift alarms."
    )
    return summary, chart


def render_chart(result: dict, title: str) -> bytes:
    import io

    days = result["days"]
    x = [d["day"] for d in days]
    fig, (effort, accuracy) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, constrained_layout=True)

    asked = [d["asked"] / d["photos"] if d["photos"] else 0 for d in days]
    audited = [d["audited"] / d["photos"] if d["photos"] else 0 for d in days]
    effort.bar(x, asked, color="#4c72b0", label="asked (bot unsure)")
    effort.bar(x, audited, bottom=asked, color="#a1c9f4", label="audit sample")
    effort.set_ylabel("share of photos staff answered")
    effort.set_ylim(0, 1)
    effort.set_title(
        f"{title}: staff answered {result['total']['asked_share']:.0%} of "
        f"{result['total']['photos']} photos; catalog accuracy {result['total']['catalog_accuracy']:.1%}"
    )

    def series(key):
        return [d[key] if d[key] is not None else float("nan") for d in days]

    accuracy.plot(x, series("catalog_accuracy"), "-o", color="#2ca02c", label="catalog accuracy (all so far)")
    accuracy.plot(x, series("model_top1"), "-s", color="#4c72b0", label="model top-1, new photos of the day")
    accuracy.plot(x, series("new_breed_top1"), "-^", color="#dd8452", label="model top-1, new breeds")
    accuracy.set_ylim(0, 1.02)
    accuracy.set_ylabel("accuracy")
    accuracy.set_xlabel("simulated day")

    for axis in (effort, accuracy):
        for d in days:
            if d["promoted"]:
                axis.axvline(d["day"] + 0.5, color="#2ca02c", linestyle="--", linewidth=1.5)
            elif d["retrained"]:
                axis.axvline(d["day"] + 0.5, color="#999999", linestyle="--", linewidth=0.8)
            if d["drift_alarm"]:
                axis.axvline(d["day"] + 0.5, color="#d62728", linestyle=":", linewidth=1.5)
    # Legend entries for the markers, once.
    accuracy.plot([], [], color="#2ca02c", linestyle="--", label="retrain, promoted (end of day)")
    accuracy.plot([], [], color="#999999", linestyle="--", label="retrain, candidate rejected")
    accuracy.plot([], [], color="#d62728", linestyle=":", label="drift alarm (end of day)")
    effort.legend(loc="upper right", fontsize=8)
    accuracy.legend(loc="lower left", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
