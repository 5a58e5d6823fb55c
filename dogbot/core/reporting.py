"""Reporting: the catalog at a glance (/status), disagreements (/conflicts), the export (/export, CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo

from sqlalchemy.engine import Engine

from dogbot.core.breeds import Breeds
from dogbot.core.clock import local_iso, on_clock
from dogbot.core.labels import resolve_label
from ml.predictor import Predictor
from storage import dog_repository, repository
from storage.db import session as open_session
from storage.tables import Label, Photo, Prediction, utcnow
from storage.vocabulary import PEOPLE


@dataclass
class CatalogStatus:
    model_version: str
    photos_total: int
    photos_today: int
    awaiting_label: int
    labels_total: int
    conflicts: int
    extra: dict = field(default_factory=dict)


EXPORT_COLUMNS = (
    "photo_id",
    "sha256",
    "received_at",
    "predicted_breed",
    "confidence",
    "model_version",
    "label",
    "label_source",
    "labeled_by",
    "labeled_at",
    "dog_code",  # the animal the photo shows (added last: tools reading the columns by position keep working)
)


class Reporting:
    def __init__(
        self,
        engine: Engine,
        predictor: Predictor,
        breeds: Breeds,
        *,
        clock: Callable[[], datetime] = utcnow,
        tz: tzinfo = UTC,
    ) -> None:
        self.engine = engine
        self.predictor = predictor
        self.breeds = breeds
        self.clock = clock
        self.tz = tz  # the shelter's clock: its days and every time the export writes

    def status(self) -> CatalogStatus:
        # "Today" is the shelter's day: from its midnight, not UTC's.
        local_today = on_clock(self.clock(), self.tz).date()
        today = datetime.combine(local_today, time(), self.tz).astimezone(UTC)
        with open_session(self.engine) as session:
            return CatalogStatus(
                model_version=self.predictor.model_version,
                photos_total=repository.count_photos(session=session),
                photos_today=repository.count_photos(session=session, since=today),
                awaiting_label=repository.count_awaiting_label(session=session),
                labels_total=repository.count_answers(session=session),
                conflicts=len(self.conflicts()),
            )

    def conflicts(self, since: timedelta | None = None) -> list[tuple[Photo, list[Label]]]:
        """Photos where people disagree: shown to admins."""
        found = []
        with open_session(self.engine) as session:
            photo_ids = repository.photo_ids_labelled_by(
                PEOPLE, session=session, since=None if since is None else self.clock() - since
            )
            grouped = repository.labels_by_photo(photo_ids, session=session)
            for photo_id, labels in grouped.items():
                resolved = resolve_label(labels)
                if resolved is not None and resolved.conflict:
                    found.append((session.get(Photo, photo_id), labels))
        return found

    def catalog_labels(self) -> dict[int, str | None]:
        """Every photo's catalog label (breed key or special label; None while unlabelled)."""
        with open_session(self.engine) as session:
            photo_ids = repository.photo_ids(session=session)
            labels = repository.labels_by_photo(photo_ids, session=session)
        resolved = {photo_id: resolve_label(labels.get(photo_id, [])) for photo_id in photo_ids}
        return {photo_id: (r.breed if r else None) for photo_id, r in resolved.items()}

    def export_rows(self) -> Iterable[dict]:
        """One row per photo: what the model said and what the catalog holds."""
        with open_session(self.engine) as session:
            photos = repository.photos(session=session)
            predictions = repository.latest_predictions(session=session)
            labels = repository.labels_by_photo([p.id for p in photos], session=session)
            codes = dog_repository.dog_codes(session=session)
        for photo in photos:
            prediction = predictions.get(photo.id)
            resolved = resolve_label(labels.get(photo.id, []))
            yield {
                "photo_id": photo.id,
                "sha256": photo.sha256,
                "received_at": self._moment(photo.received_at),
                "predicted_breed": self._display(prediction.breed if prediction else None, prediction),
                "confidence": f"{prediction.confidence:.4f}" if prediction else "",
                "model_version": prediction.model_version if prediction else "",
                "label": self._display(resolved.breed, prediction) if resolved else "",
                "label_source": resolved.label.source if resolved else "",
                # A Telegram user's id, or an API token's name.
                "labeled_by": (resolved.label.user_name or resolved.label.user_id or "") if resolved else "",
                "labeled_at": self._moment(resolved.label.created_at) if resolved else "",
                "dog_code": codes.get(photo.dog_id, ""),
            }

    def export_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.export_rows())
        return buffer.getvalue()

    def _moment(self, moment: datetime) -> str:
        return local_iso(moment, self.tz)  # 2026-12-31T23:30:00-08:00: never ambiguous

    def _display(self, key: str | None, prediction: Prediction | None) -> str:
        if key is None:
            return "Not a dog" if prediction is not None else ""
        try:
            return self.breeds.taxonomy.get(key).display_name
        except KeyError:
            return key
