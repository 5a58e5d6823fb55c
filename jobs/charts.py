"""Pictures for admins: the retrain error analysis and the drift report (matplotlib, PNG files).

The Agg backend draws without a display, in whatever thread the job runs in; every figure is
closed after saving so a long-running worker does not accumulate them.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from jobs.lock import process_is_gone

ALARM, OK, NEUTRAL = "#c0392b", "#27ae60", "#7f8c8d"


def _pyplot():
    """matplotlib on first use (half a second to import; `dogbot predict` and the bot at rest never draw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def error_analysis_png(
    path: Path,
    *,
    title: str,
    per_breed: dict[str, dict],
    confusions: Sequence[dict],
    champion_per_breed: dict[str, dict] | None = None,
    name: Callable[[str], str] = str,
    new_breeds: Sequence[str] = (),
    max_breeds: int = 25,
) -> Path:
    """Per-breed accuracy (worst first, new breeds marked) and the most confused pairs."""
    rows = sorted(per_breed.items(), key=lambda kv: (kv[1]["top1"], -kv[1]["n"]))[:max_breeds]
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, max(4.0, 0.32 * len(rows) + 1.5)))
    labels = [f"{name(key)} ({entry['n']})" for key, entry in rows]
    values = [entry["top1"] for _, entry in rows]
    colors = ["#2980b9" if key in new_breeds else NEUTRAL for key, _ in rows]
    y = np.arange(len(rows))
    left.barh(y, values, color=colors, label="candidate")
    if champion_per_breed:
        old = [champion_per_breed.get(key, {}).get("top1", np.nan) for key, _ in rows]
        left.scatter(old, y, color="black", marker="|", s=120, label="champion", zorder=3)
        left.legend(loc="lower right", fontsize=8)
    left.set_yticks(y, labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel("top-1 on validation + golden photos (blue: new breed)")
    left.set_title("Worst breeds")
    right.axis("off")
    right.set_title("Most confused (truth -> predicted)")
    lines = [f"{c['n']:>3}  {name(c['truth'])} -> {name(c['predicted'])}" for c in confusions[:15]] or [
        "none"
    ]
    right.text(
        0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=9, transform=right.transAxes
    )
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def drift_png(
    path: Path,
    *,
    title: str,
    tests: Sequence[dict],
    brightness: tuple[np.ndarray, np.ndarray],
    confidence: tuple[np.ndarray, np.ndarray],
    breeds: tuple[dict[str, float], dict[str, float]],
) -> Path:
    """Reference vs recent: brightness and confidence histograms, breed shares, and each test's verdict."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, (ref, cur), what in (
        (axes[0, 0], brightness, "brightness (mean luma, 0-1)"),
        (axes[0, 1], confidence, "breed confidence"),
    ):
        bins = np.linspace(0, 1, 26)
        ax.hist(ref, bins=bins, alpha=0.55, density=True, label=f"reference ({len(ref)})", color=NEUTRAL)
        ax.hist(cur, bins=bins, alpha=0.55, density=True, label=f"recent ({len(cur)})", color="#e67e22")
        ax.set_title(what)
        ax.legend(fontsize=8)
    ref_share, cur_share = breeds
    top = sorted(set(ref_share) | set(cur_share), key=lambda k: -(ref_share.get(k, 0) + cur_share.get(k, 0)))[
        :12
    ]
    x = np.arange(len(top))
    ax = axes[1, 0]
    ax.bar(x - 0.2, [ref_share.get(k, 0) for k in top], 0.4, color=NEUTRAL, label="reference")
    ax.bar(x + 0.2, [cur_share.get(k, 0) for k in top], 0.4, color="#e67e22", label="recent")
    ax.set_xticks(x, top, rotation=60, ha="right", fontsize=7)
    ax.set_title("predicted breeds (share of photos)")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.axis("off")
    for i, test in enumerate(tests):
        color = ALARM if test["alarm"] else (NEUTRAL if test["statistic"] is None else OK)
        mark = "ALARM" if test["alarm"] else ("n/a" if test["statistic"] is None else "ok")
        ax.text(
            0, 1 - i * 0.15, f"{mark:>5}  {test['name']}", color=color, weight="bold", transform=ax.transAxes
        )
        ax.text(0.05, 1 - i * 0.15 - 0.06, test["detail"][:90], fontsize=7, transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
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
            fig.savefig(handle, format="png", dpi=90)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    finally:
        _pyplot().close(fig)
    return path
