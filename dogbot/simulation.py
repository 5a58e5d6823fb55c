"""`dogbot simulate`: replay a stream of labeled photos through the real services on a simulated clock.

Simulated staff answer every question the bot would ask (from the manifest's true labels, wrong
with probability ``staff_error_rate``), the bot's random spot checks of answers it accepted without
asking among them, from which the catalog's accuracy is estimated as the bot estimates it. At the end
of each simulated day the scheduled jobs run exactly as the worker would run them (fold, drift
check, retrain and promote), through the same functions, against the same database.

The stream is built from the manifests: dogs of the breeds the base model knows and non-dogs from
day 1; breeds it has never seen from ``new_breeds@D``; photos darkened like a night-time kennel shot
from ``dark@D`` (PIL brightness factor 0.4, as in the drift benchmark).
"""

from __future__ import annotations

import io
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from PIL import Image, ImageEnhance

from dogbot.core.accuracy import estimate_from_catalog
from dogbot.core.catalog import Catalog
from dogbot.core.manifest import ManifestRow
from dogbot.core.standing import newly_strict
from dogbot.simulation_pace import (
    DarkPhoto,
    NewBreedPhoto,
    dark_gap,
    new_breed_in_buttons,
    new_breed_learned_day,
)
from jobs.charts import ChartWords
from storage.vocabulary import NOT_A_DOG, LabelSource, Outcome

SIMULATION_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
STAFF_IDS = (1001, 1002, 1003)
ADMIN_ID = 9001


@dataclass(frozen=True)
class Shift:
    kind: str  # new_breeds | dark | mix
    day: int
    value: float = 0.0


def parse_shifts(spec: str) -> list[Shift]:
    """``"new_breeds@10,dark@20"``; ``dark@20:0.3`` sets the brightness factor, ``new_breeds@10:0.4``
    the share of new-breed photos, ``mix@15`` reverses which known breeds are common."""
    defaults = {"new_breeds": 0.3, "dark": 0.4, "mix": 0.0}
    shifts = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rest = part.partition("@")
        day, _, value = rest.partition(":")
        if name not in defaults or not day.isdigit():
            raise ValueError(f"bad shift {part!r}: use new_breeds@DAY, dark@DAY[:FACTOR] or mix@DAY")
        shifts.append(Shift(name, int(day), float(value) if value else defaults[name]))
    return shifts


@dataclass(frozen=True)
class StreamPhoto:
    day: int
    truth: str  # breed key or not_a_dog
    new_breed: bool  # a breed the base model does not know
    data: bytes
    darkened: bool
    original: bytes = b""  # the photo before darkening (only when darkened)


@dataclass
class DayReport:
    day: int
    photos: int = 0
    asked: int = 0
    audited: int = 0
    staff_errors: int = 0
    model_top1: float | None = None  # on this day's dog photos, before any label
    new_breed_top1: float | None = None
    new_breed_photos: int = 0
    new_breed_hits: list[bool] = field(default_factory=list)
    catalog_accuracy: float | None = None  # all photos so far, end of day
    model_version: str = ""
    retrained: bool = False
    promoted: bool = False
    drift_alarm: bool = False
    # Messages sent to admins: one per drift incident (jobs.incidents), and one when the spot checks
    # say the catalog fell below its target accuracy (accuracy_alerts, dogbot.core.standing).
    admin_alerts: int = 0
    accuracy_alerts: int = 0
    events: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class Lifecycle:
    """What runs at the end of each simulated day; the real jobs implement it (see jobs.simulation)."""

    def end_of_day(self, now: datetime, report: DayReport) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def build_stream(
    known: Sequence[tuple[ManifestRow, str]],
    new: Sequence[tuple[ManifestRow, str]],
    *,
    days: int,
    photos_per_day: int,
    shifts: Sequence[Shift],
    seed: int,
) -> list[StreamPhoto]:
    """Photos per day, each drawn once (no photo is sent twice) while the pools last."""
    rng = random.Random(seed)
    known_pool, new_pool = list(known), list(new)
    rng.shuffle(known_pool)
    rng.shuffle(new_pool)
    by_kind = {s.kind: s for s in shifts}
    stream = []
    for day in range(1, days + 1):
        new_share = (
            by_kind["new_breeds"].value if "new_breeds" in by_kind and day >= by_kind["new_breeds"].day else 0
        )
        dark = "dark" in by_kind and day >= by_kind["dark"].day
        for _ in range(photos_per_day):
            pool = new_pool if new_pool and rng.random() < new_share else known_pool
            if not pool:
                pool = new_pool or known_pool
            if not pool:
                return stream
            if "mix" in by_kind and day >= by_kind["mix"].day and pool is known_pool:
                row, truth = pool.pop()  # the other end of the shuffled pool: a different breed mix
            else:
                row, truth = pool.pop(0)
            data = original = row.path.read_bytes()
            if dark:
                data = darken(data, by_kind["dark"].value)
            stream.append(StreamPhoto(day, truth, pool is new_pool, data, dark, original if dark else b""))
    return stream


def darken(data: bytes, factor: float) -> bytes:
    image = Image.open(io.BytesIO(data))
    image = image.convert("RGB")
    out = io.BytesIO()
    ImageEnhance.Brightness(image).enhance(factor).save(out, format="JPEG", quality=92)
    return out.getvalue()


class Staff:
    """Simulated staff: right from the manifest, wrong with probability ``error_rate``."""

    def __init__(self, catalog: Catalog, error_rate: float, rng: random.Random) -> None:
        self.catalog, self.error_rate, self.rng = catalog, error_rate, rng

    def answer(self, truth: str, offered: Sequence[str]) -> tuple[str, bool]:
        """The label a staff member gives, and whether it is a mistake."""
        if self.rng.random() >= self.error_rate:
            return self._known(truth), False
        # Real mistakes are plausible breeds: one the bot offered, else any known breed.
        wrong = [key for key in offered if key != truth] or [
            b.key for b in self.catalog.breeds.taxonomy.all()
        ]
        return self.rng.choice(wrong), True

    def _known(self, truth: str) -> str:
        """Staff type a breed the bot does not list yet: an admin adds it (as /addbreed does)."""
        if truth == NOT_A_DOG or truth in self.catalog.breeds.taxonomy:
            return truth
        return self.catalog.breeds.add_breed(truth.replace("_", " "), by=ADMIN_ID).key


@dataclass
class SimulationResult:
    days: list[DayReport]
    total: dict

    def to_json(self) -> dict:
        return {"days": [asdict(day) for day in self.days], "total": self.total}


def simulate(
    catalog: Catalog,
    lifecycle: Lifecycle,
    stream: Sequence[StreamPhoto],
    *,
    staff_error_rate: float,
    seed: int,
    clock: Callable[[datetime], None],
    progress: Callable = lambda iterable, **_: iterable,
) -> SimulationResult:
    """Run the stream day by day; ``clock(now)`` moves the services' simulated clock."""
    rng = random.Random(seed + 1)
    staff = Staff(catalog, staff_error_rate, rng)
    truths: dict[int, str] = {}  # photo id -> true label
    staff_wrong: set[int] = set()
    new_breed_photos: set[int] = set()
    pace = _Pace()
    reports: list[DayReport] = []
    by_day: dict[int, list[StreamPhoto]] = defaultdict(list)
    for photo in stream:
        by_day[photo.day].append(photo)

    for day in progress(sorted(by_day), desc="simulate", unit="day"):
        report = DayReport(day=day, model_version=catalog.intake.predictor.model_version)
        hits, new_hits = [], []
        started = time.perf_counter()
        photos = by_day[day]
        for i, item in enumerate(photos):
            now = SIMULATION_START + timedelta(days=day - 1, minutes=8 * 60 * i / max(len(photos), 1))
            clock(now)
            sender = STAFF_IDS[i % len(STAFF_IDS)]
            result = catalog.intake.submit(item.data, source="simulate", sender_id=sender, chat_id=sender)
            photo_id = result.photo.id
            truths[photo_id] = item.truth
            report.photos += 1
            if item.truth != NOT_A_DOG:
                top1 = result.top[0][0].key if result.top else None
                hits.append(top1 == item.truth)
                if item.new_breed:
                    new_hits.append(top1 == item.truth)
                    new_breed_photos.add(photo_id)
                    pace.first_seen.setdefault(item.truth, day)
                    pace.new_breed.append(
                        NewBreedPhoto(
                            day,
                            item.truth,
                            auto_accepted_right=result.outcome == Outcome.AUTO_ACCEPTED
                            and top1 == item.truth,
                            offered=result.outcome == Outcome.ASK and item.truth in result.button_breeds,
                        )
                    )
                if item.darkened and item.original:
                    undarkened = catalog.intake.predictor.predict([catalog.intake.decode(item.original)])[0]
                    pace.dark.append(
                        DarkPhoto(day, top1 == item.truth, undarkened.top(1)[0][0] == item.truth)
                    )
            asked = result.outcome == Outcome.ASK
            audited = result.spot_check  # the bot's own random slice (dogbot/core/asking.py)
            if asked or audited:
                report.asked += asked
                report.audited += audited
                offered = result.button_breeds
                label, mistake = staff.answer(item.truth, offered)
                report.staff_errors += mistake
                if mistake:
                    staff_wrong.add(photo_id)
                catalog.labelling.record_label(
                    photo_id,
                    label,
                    source=LabelSource.STAFF,
                    user_id=sender,
                    prediction_id=result.prediction.id,
                )
        report.seconds["intake"] = round(time.perf_counter() - started, 2)
        report.model_top1 = _mean(hits)
        report.new_breed_top1 = _mean(new_hits)
        report.new_breed_photos = len(new_hits)
        report.new_breed_hits = new_hits

        started = time.perf_counter()
        evening = SIMULATION_START + timedelta(days=day - 1, hours=20)
        lifecycle.end_of_day(evening, report)
        # The bot's other message to admins: the spot checks say the catalog fell below its target.
        if newly_strict(
            catalog.intake.engine,
            catalog.intake.asking,
            fallback_threshold=catalog.intake.rules.auto_accept_threshold,
            now=evening,
        ):
            report.admin_alerts += 1
            report.accuracy_alerts += 1
            report.events.append("catalog below its target accuracy")
        report.seconds["jobs"] = round(time.perf_counter() - started, 2)
        report.catalog_accuracy = _catalog_accuracy(catalog, truths)
        pace.serving.append((day, tuple(catalog.intake.predictor.head.breed_keys)))
        reports.append(report)

    total = _totals(catalog, reports, truths, staff_wrong, new_breed_photos)
    total.update(pace.totals(reports))
    # Next to the true catalog_accuracy: what the bot can know without the manifest's answers (what
    # /status says).
    estimate = estimate_from_catalog(
        catalog.intake.engine, min_answers=catalog.intake.asking.rules.min_answers
    )
    total["estimated_accuracy"] = round(estimate.value, 4) if estimate else None
    total["estimated_accuracy_range"] = (
        [round(estimate.low, 4), round(estimate.high, 4)] if estimate else None
    )
    total["spot_checks"] = estimate.spot_checks if estimate else 0
    return SimulationResult(reports, total)


@dataclass
class _Pace:
    """What issue 11's pace keys are computed from (``dogbot.simulation_pace``)."""

    first_seen: dict[str, int] = field(default_factory=dict)  # new breed -> day of its first photo
    new_breed: list[NewBreedPhoto] = field(default_factory=list)
    dark: list[DarkPhoto] = field(default_factory=list)
    serving: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # day -> serving rows

    def totals(self, reports: Sequence[DayReport]) -> dict:
        return {
            "admin_alerts": sum(r.admin_alerts for r in reports),
            "accuracy_alerts": sum(r.accuracy_alerts for r in reports),
            "new_breed_learned_day": new_breed_learned_day(self.serving, self.first_seen),
            "new_breed_in_buttons": new_breed_in_buttons(self.new_breed),
            "dark_gap": dark_gap(self.dark, last_day=max((r.day for r in reports), default=0)),
        }


def _catalog_accuracy(catalog: Catalog, truths: dict[int, str], only: set[int] | None = None) -> float | None:
    labels = catalog.reporting.catalog_labels()
    counted = [photo_id for photo_id in truths if only is None or photo_id in only]
    right = sum(labels.get(photo_id) == truths[photo_id] for photo_id in counted)
    return round(right / len(counted), 4) if counted else None


def _totals(catalog, reports, truths, staff_wrong, new_breed_photos) -> dict:
    photos = sum(r.photos for r in reports)
    labels = catalog.reporting.catalog_labels()
    wrong = [pid for pid, truth in truths.items() if labels.get(pid) != truth]
    wrong_by_staff = [pid for pid in wrong if pid in staff_wrong]
    retrain_days = [r.day for r in reports if r.retrained]
    first = retrain_days[0] if retrain_days else None
    after_first_retrain = [
        hit for r in reports if first is not None and r.day > first for hit in r.new_breed_hits
    ]
    before_first_retrain = [
        hit for r in reports if first is None or r.day <= first for hit in r.new_breed_hits
    ]
    return {
        "photos": photos,
        "asked_share": round(sum(r.asked for r in reports) / max(photos, 1), 4),
        "audited_share": round(sum(r.audited for r in reports) / max(photos, 1), 4),
        "catalog_accuracy": _catalog_accuracy(catalog, truths),
        "catalog_errors": len(wrong),
        "catalog_errors_from_staff": len(wrong_by_staff),
        "catalog_errors_from_model": len(wrong) - len(wrong_by_staff),
        # The model's top-1 on new-breed photos it had not seen yet, once it could have learned them.
        "new_breed_top1": _mean(after_first_retrain),
        "new_breed_top1_before_retrain": _mean(before_first_retrain),
        "new_breed_catalog_accuracy": _catalog_accuracy(catalog, truths, new_breed_photos),
        "retrains": sum(r.retrained for r in reports),
        "promotions": sum(r.promoted for r in reports),
        "drift_alarms": sum(r.drift_alarm for r in reports),
        "drift_alarm_days": [r.day for r in reports if r.drift_alarm],
        "retrain_days": retrain_days,
        "staff_errors": sum(r.staff_errors for r in reports),
        "seconds": dict(sum((Counter(r.seconds) for r in reports), Counter())),
    }


def _mean(values: Sequence[bool | float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


class ScheduledJobs(Lifecycle):
    """The worker's jobs, run once at the end of each simulated day (fold, drift, retrain if due)."""

    def __init__(self, jobs) -> None:  # jobs.service.LifecycleJobs
        self.jobs = jobs

    def end_of_day(self, now: datetime, report: DayReport) -> None:
        outcome = self.jobs.tick(now)
        drift = outcome["drift"]
        if drift["drift"]:
            report.drift_alarm = True
            # What the bot tells admins: an alarm that opens an incident (jobs.incidents).
            report.admin_alerts += bool(drift["extra"].get("incident", {}).get("opened"))
            words = ChartWords()  # the tests as the drift chart names them, not their code names
            alarms = [
                (words.test_name(t["name"]) or t["name"]).lower() for t in drift["tests"] if t.get("alarm")
            ]
            report.events.append(f"the photos changed: {', '.join(alarms)}")
        retrain = outcome["retrain"]
        if retrain and retrain["version"]:
            report.retrained = True
            report.promoted = retrain["promoted"]
            verdict = "put to work" if retrain["promoted"] else "not used"
            report.events.append(f"a new model was trained and {verdict}: {retrain['reason']}")


def split_pools(rows: Sequence[ManifestRow], taxonomy) -> tuple[list, list]:
    """Rows of breeds the base model knows (and non-dogs) vs breeds it has never seen."""
    known, new = [], []
    for row in rows:
        breed = taxonomy.resolve(row.breed)
        if breed is None:
            continue  # e.g. "unlabelled_dog:…": no truth to simulate staff with
        if breed.key == NOT_A_DOG or breed.imagenet_index is not None:
            known.append((row, breed.key))
        elif not breed.is_special:
            new.append((row, breed.key))
    return known, new
