"""Set up and run a simulation: a scratch deployment built by the real composition root."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from dogbot.app import Container
from dogbot.core.manifest import read_manifest
from dogbot.settings import Settings
from dogbot.simulation import (
    SIMULATION_START,
    ScheduledJobs,
    SimulationResult,
    build_stream,
    parse_shifts,
    simulate,
    split_pools,
)


class SimulatedClock:
    def __init__(self) -> None:
        self.now = SIMULATION_START

    def __call__(self):
        return self.now

    def set(self, now) -> None:
        self.now = now


def run_simulation(
    settings: Settings,
    manifests: Sequence[Path],
    *,
    data_dir: Path,
    days: int,
    photos_per_day: int,
    staff_error_rate: float,
    audit_share: float | None,
    seed: int,
    shifts: str,
    target_accuracy: float | None = None,
    new_breed_min_photos: int = 1,
    report_dir: Path | None = None,
    progress: Callable = lambda iterable, **_: iterable,
) -> SimulationResult:
    """Same settings as the real deployment (thresholds, schedules), but a fresh database and photo
    folder under ``data_dir``, and the clock the simulation moves."""
    update = {"data_dir": data_dir, "database_url": "", "photo_store": ""}
    if audit_share is not None:  # the spot checks (else the settings' share)
        update["spot_check_share"] = audit_share
    if target_accuracy is not None:
        update["target_accuracy"] = target_accuracy
    scratch = settings.model_copy(update=update)
    clock = SimulatedClock()
    container = Container(scratch, clock=clock)
    catalog = container.catalog
    jobs = container.lifecycle

    rows = [row for manifest in manifests for row in read_manifest(manifest)]
    known, new = split_pools(rows, catalog.breeds.taxonomy)
    photos_of = Counter(truth for _, truth in new)
    new = [(row, truth) for row, truth in new if photos_of[truth] >= new_breed_min_photos]
    stream = build_stream(
        known, new, days=days, photos_per_day=photos_per_day, shifts=parse_shifts(shifts), seed=seed
    )
    result = simulate(
        catalog,
        ScheduledJobs(jobs),
        stream,
        staff_error_rate=staff_error_rate,
        seed=seed,
        clock=clock.set,
        progress=progress,
    )
    result.total["settings"] = {
        "days": days,
        "photos_per_day": photos_per_day,
        "staff_error_rate": staff_error_rate,
        "audit_share": scratch.spot_check_share,
        "target_accuracy": scratch.target_accuracy,
        "seed": seed,
        "shift": shifts,
        "new_breed_min_photos": new_breed_min_photos,
        "new_breed_pool": {"photos": len(new), "breeds": len({truth for _, truth in new})},
        "auto_accept_threshold": scratch.auto_accept_threshold,
        "model": scratch.model,
    }
    if report_dir is not None:  # there only: a simulation never writes into the shelter's catalog folder
        from dogbot.simulation_report import write_report

        write_report(result.to_json(), report_dir)
    return result


def _on_days(days: list[int]) -> str:
    """ " on days 3, 10" (nothing when there were none: "0 retrains on days []" said nothing)."""
    return f" on day{'s' if len(days) > 1 else ''} {', '.join(map(str, days))}" if days else ""


def format_summary(result: SimulationResult) -> str:
    """The run in a manager's words; the statistics themselves are in ``--json``."""
    t = result.total
    lines = [
        f"{_count(t['photos'], 'photo')} over {_count(len(result.days), 'day')}: staff answered "
        f"{_pct(t['asked_share'])} of them (and spot-checked {_pct(t['audited_share'])}); the catalog is "
        f"right on {_pct(t['catalog_accuracy'])} of its photos",
        f"wrong in the catalog: {_count(t['catalog_errors'], 'photo')} ({t['catalog_errors_from_staff']} "
        f"from staff mistakes, {t['catalog_errors_from_model']} from the model)",
    ]
    if t["new_breed_top1"] is not None or t["new_breed_top1_before_retrain"] is not None:
        lines.append(
            f"photos of new breeds the model named right: {_pct(t['new_breed_top1_before_retrain'])} before "
            f"its first retrain, {_pct(t['new_breed_top1'])} after"
        )
    lines.append(
        f"{_count(t['retrains'], 'retrain')}, {t['promotions']} put to work{_on_days(t['retrain_days'])}; "
        f"{_count(t['drift_alarms'], 'alarm')} that the photos changed{_on_days(t['drift_alarm_days'])}"
    )
    learned = t["new_breed_learned_day"]
    lines.append(
        f"a model first knew a new breed on day {learned}" if learned else "no model learned a new breed"
    )
    if t["new_breed_in_buttons"] is not None:
        lines.append(
            f"new breeds were among the buttons for {_pct(t['new_breed_in_buttons'])} of their photos"
        )
    below_target = t.get("accuracy_alerts", 0)
    told = f"admins got {_count(t['admin_alerts'] - below_target, 'message')} about changed photos"
    if below_target:
        told += f" and {_count(below_target, 'message')} that the catalog fell below its target"
    lines.append(told)
    if t["dark_gap"] is not None:
        lines.append(
            f"darker photos cost the model {_pct(t['dark_gap'])} of its right answers over the last 5 days"
        )
    for day in result.days:
        for event in day.events:
            lines.append(f"  day {day.day}: {event}")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _pct(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.1%}"
