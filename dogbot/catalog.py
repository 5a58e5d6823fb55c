"""The catalog service: what the bot, the CLI, the jobs and the simulation call to handle photos and labels.

Order of work for every incoming photo, so that nothing received is ever lost:
validate (decode) -> store bytes and row -> classify -> store prediction (and an auto label) -> answer.
A photo that cannot be decoded is not stored: it is not a photo, and the sender gets a clear reason.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from PIL import Image
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from dogbot.labels import NOT_A_DOG, SKIP, SPECIAL_LABELS, ResolvedLabel, resolve_label
from dogbot.lookalikes import Lookalikes
from dogbot.taxonomy import Breed, Taxonomy
from ml.images import ImageRejected, image_statistics, load_image, sniff_format
from ml.predictor import ModelOutput, Predictor
from storage import repository
from storage.blobs import PhotoStore
from storage.db import session as open_session
from storage.tables import CustomBreed, Label, LabelSource, Photo, Prediction, utcnow


class Outcome:
    AUTO_ACCEPTED = "auto_accepted"  # confident: labelled without asking, staff may still say "Wrong?"
    ASK = "ask"  # unsure: staff choose among the likely breeds
    NOT_A_DOG = "not_a_dog"


@dataclass(frozen=True)
class Classification:
    photo: Photo
    prediction: Prediction
    outcome: str
    top: list[tuple[Breed, float]]
    duplicate: bool  # this exact photo was already in the catalog
    label: ResolvedLabel | None  # the catalog label after this photo was handled
    # Asked although confident: staff lately corrected this answer to these breeds the model does
    # not know yet (dogbot/lookalikes.py), most frequent first.
    lookalikes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelResult:
    label: Label
    created: bool  # False: this person had already given this exact answer (a repeated press)
    resolved: ResolvedLabel | None


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
)


class UnknownBreed(ValueError):
    """A label named a breed the taxonomy does not know."""


def load_taxonomy(engine: Engine) -> Taxonomy:
    """The built-in breed table plus the breeds staff added (kept in the database)."""
    with open_session(engine) as session:
        rows = repository.custom_breeds(session=session)
    return Taxonomy(
        extra=[
            Breed(key=r.key, display_name=r.display_name, imagenet_index=None, aliases=tuple(r.aliases))
            for r in rows
        ]
    )


class Catalog:
    def __init__(
        self,
        engine: Engine,
        photos: PhotoStore,
        predictor: Predictor,
        taxonomy: Taxonomy,
        *,
        dog_threshold: float = 0.5,
        auto_accept_threshold: float = 0.8,
        max_bytes: int = 20 * 1024 * 1024,
        max_pixels: int = 40_000_000,
        clock: Callable[[], datetime] = utcnow,
        lookalike_min_corrections: int = 2,
        lookalike_days: int = 30,
    ) -> None:
        self.engine = engine
        self.photos = photos
        self.predictor = predictor
        self.taxonomy = taxonomy
        self.dog_threshold = dog_threshold
        self.auto_accept_threshold = auto_accept_threshold
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.clock = clock
        self._taxonomy_lock = threading.Lock()
        # Confident answers that staff have shown to hide a breed the model does not know yet are
        # asked about, not auto-accepted (see dogbot/lookalikes.py).
        self.lookalikes = Lookalikes(
            engine,
            known=lambda: self.predictor.head.breed_keys,
            clock=lambda: self.clock(),
            min_corrections=lookalike_min_corrections,
            days=lookalike_days,
        )

    # --- photos -----------------------------------------------------------------------------------
    def decode(self, data: bytes) -> Image.Image:
        """Decode or raise :class:`ImageRejected` with a reason a person can act on."""
        return load_image(data, max_bytes=self.max_bytes, max_pixels=self.max_pixels)

    def store_photo(
        self,
        data: bytes,
        image: Image.Image,
        *,
        source: str,
        sender_id: int | None = None,
        chat_id: int | None = None,
        file_name: str | None = None,
    ) -> tuple[Photo, bool]:
        """Persist the bytes and the row; return ``(photo, already_known)``. Safe to call twice."""
        sha256 = self.photos.put(data)
        with open_session(self.engine) as session:
            existing = repository.photo_by_sha(sha256, session=session)
            if existing is not None:
                return existing, True
            stats = image_statistics(image)
            photo = Photo(
                sha256=sha256,
                received_at=self.clock(),
                source=source,
                sender_id=sender_id,
                chat_id=chat_id,
                file_name=(file_name or None) and file_name[:255],
                format=sniff_format(data),
                size_bytes=len(data),
                width=stats.width,
                height=stats.height,
                brightness=stats.brightness,
                contrast=stats.contrast,
                saturation=stats.saturation,
            )
            session.add(photo)
            try:
                session.commit()
            except IntegrityError:  # the same photo arrived at the same moment from someone else
                session.rollback()
                return repository.photo_by_sha(sha256, session=session), True
            session.refresh(photo)
            return photo, False

    def submit(self, data: bytes, *, source: str, **sender) -> Classification:
        """Validate, store, classify and auto-label one photo (the whole intake path, synchronously).

        The bot and bulk commands batch many photos through :func:`dogbot.intake.receive` instead.
        """
        image = self.decode(data)
        stored = self.store_photo(data, image, source=source, **sender)
        return self.classify_stored([stored], [image])[0]

    def classify_stored(self, stored: Sequence[tuple[Photo, bool]], images: Sequence) -> list[Classification]:
        """Classify stored photos in one batch; a photo already scored by this model is not re-run.

        ``images``: decoded photos, or the model inputs ``predictor.prepare`` made of them.

        A photo twice in the batch (sent twice at once) is classified once; both get its prediction.
        """
        version = self.predictor.model_version
        with open_session(self.engine) as session:
            known = repository.latest_predictions([photo.id for photo, _ in stored], session=session)
        todo: dict[int, int] = {}  # photo id -> where its image is, for photos this model has not scored
        for i, (photo, _) in enumerate(stored):
            if photo.id not in todo and (
                known.get(photo.id) is None or known[photo.id].model_version != version
            ):
                todo[photo.id] = i
        outputs = self.predictor.predict([images[i] for i in todo.values()])
        for photo_id, i, output in zip(todo, todo.values(), outputs, strict=True):
            known[photo_id] = self._record_prediction(stored[i][0], output)
        return [self._classification(photo, known[photo.id], duplicate) for photo, duplicate in stored]

    def _record_prediction(self, photo: Photo, output: ModelOutput) -> Prediction:
        is_dog = output.dog_probability >= self.dog_threshold
        top = output.top(3)
        breed, confidence = top[0] if is_dog else (None, 1.0 - output.dog_probability)
        auto_label = None
        if not is_dog:
            auto_label = NOT_A_DOG
        elif confidence >= self.auto_accept_threshold and not self.lookalikes.is_shadowed(breed):
            auto_label = breed
        prediction = Prediction(
            photo_id=photo.id,
            model_version=output.model_version,
            created_at=self.clock(),
            is_dog=is_dog,
            dog_probability=output.dog_probability,
            breed=breed,
            confidence=confidence,
            top=[{"breed": key, "p": round(p, 6)} for key, p in top],
            embedding=repository.embedding_to_bytes(output.embedding),
            auto_accepted=auto_label is not None,
        )
        with open_session(self.engine) as session:
            session.add(prediction)
            try:
                session.flush()
            except IntegrityError:
                # This model scored the photo in another request meanwhile (the same photo sent twice
                # at once, perhaps to two replicas), or before a rollback made it the model again: its
                # prediction stands, so every sender gets the same answer and the same buttons.
                session.rollback()
                existing = repository.prediction_by_model(photo.id, output.model_version, session=session)
                if existing is None:  # not a duplicate after all (the photo row is gone?)
                    raise
                return existing
            already_labelled = bool(repository.labels_of(photo.id, session=session))
            if auto_label is not None and not already_labelled:
                session.add(
                    Label(
                        photo_id=photo.id,
                        prediction_id=prediction.id,
                        breed=auto_label,
                        source=LabelSource.AUTO,
                        created_at=self.clock(),
                    )
                )
            session.commit()
            session.refresh(prediction)
        return prediction

    def _classification(self, photo: Photo, prediction: Prediction, duplicate: bool) -> Classification:
        if not prediction.is_dog:
            outcome = Outcome.NOT_A_DOG
        elif prediction.auto_accepted:
            outcome = Outcome.AUTO_ACCEPTED
        else:
            outcome = Outcome.ASK
        lookalikes: tuple[str, ...] = ()
        if outcome == Outcome.ASK and prediction.confidence >= self.auto_accept_threshold:
            named = self.lookalikes.shadowed().get(prediction.breed)
            lookalikes = tuple(key for key, _ in named.most_common(2)) if named else ()
        return Classification(
            photo=photo,
            prediction=prediction,
            outcome=outcome,
            top=self.top_breeds(prediction),
            duplicate=duplicate,
            label=self.catalog_label(photo.id),
            lookalikes=lookalikes,
        )

    def top_breeds(self, prediction: Prediction) -> list[tuple[Breed, float]]:
        return [(self.taxonomy.get(entry["breed"]), float(entry["p"])) for entry in prediction.top]

    # --- labels -----------------------------------------------------------------------------------
    def record_label(
        self,
        photo_id: int,
        breed: str,
        *,
        source: str,
        user_id: int | None,
        prediction_id: int | None = None,
    ) -> LabelResult:
        """Append a label. The same person repeating their latest answer adds nothing (double taps)."""
        if source not in LabelSource.ALL:
            raise ValueError(f"unknown label source {source!r}")
        if breed not in SPECIAL_LABELS:
            try:
                self.taxonomy.get(breed)
            except KeyError:
                raise UnknownBreed(f"unknown breed {breed!r}: an admin can add it with /addbreed") from None
        with open_session(self.engine) as session:
            # On PostgreSQL the photo's row stays locked until the commit, so a double tap that two bot
            # replicas answer at the same moment records one label, not two (SQLite ignores the lock).
            if session.get(Photo, photo_id, with_for_update={"key_share": True}) is None:
                raise KeyError(f"no photo #{photo_id}")
            labels = repository.labels_of(photo_id, session=session)
            mine = [label for label in labels if label.user_id == user_id and user_id is not None]
            if mine and mine[-1].breed == breed:
                return LabelResult(mine[-1], False, resolve_label(labels))
            label = Label(
                photo_id=photo_id,
                prediction_id=prediction_id,
                breed=breed,
                source=source,
                user_id=user_id,
                created_at=self.clock(),
            )
            session.add(label)
            session.commit()
            session.refresh(label)
        if source in (LabelSource.STAFF, LabelSource.ADMIN):
            self.lookalikes.label_recorded(breed)
        return LabelResult(label, True, resolve_label([*labels, label]))

    def answers_now(self, photo_id: int, user_id: int | None) -> tuple[str | None, ResolvedLabel | None]:
        """``user_id``'s answer that stands for the photo (their latest) and its catalog label, read now."""
        with open_session(self.engine) as session:
            labels = repository.labels_of(photo_id, session=session)
        mine = [label.breed for label in labels if user_id is not None and label.user_id == user_id]
        return (mine[-1] if mine else None), resolve_label(labels)

    def catalog_label(self, photo_id: int) -> ResolvedLabel | None:
        with open_session(self.engine) as session:
            return resolve_label(repository.labels_of(photo_id, session=session))

    def photo(self, photo_id: int) -> Photo | None:
        with open_session(self.engine) as session:
            return session.get(Photo, photo_id)

    def prediction(self, prediction_id: int) -> Prediction | None:
        with open_session(self.engine) as session:
            return session.get(Prediction, prediction_id)

    def latest_prediction(self, photo_id: int) -> Prediction | None:
        with open_session(self.engine) as session:
            return repository.latest_prediction(photo_id, session=session)

    def next_for_review(self, after_photo_id: int = 0) -> tuple[Photo, Prediction | None] | None:
        """The oldest photo still waiting for a person's answer, after ``after_photo_id``."""
        with open_session(self.engine) as session:
            found = repository.photos_awaiting_label(session=session, after_id=after_photo_id)
            if not found:
                return None
            return found[0], repository.latest_prediction(found[0].id, session=session)

    def photo_bytes(self, photo: Photo) -> bytes:
        return self.photos.get(photo.sha256)

    # --- breeds -----------------------------------------------------------------------------------
    def add_breed(self, display_name: str, *, by: int | None) -> Breed:
        """Add a breed the base model does not know; it becomes learnable at the next retrain."""
        with self._taxonomy_lock:
            breed = self.taxonomy.make_breed(display_name)
            taxonomy = self.taxonomy.with_breed(breed)  # ValueError on a clash
            with open_session(self.engine) as session:
                session.add(
                    CustomBreed(
                        key=breed.key,
                        display_name=breed.display_name,
                        aliases=list(breed.aliases),
                        added_by=by,
                        created_at=self.clock(),
                    )
                )
                session.commit()
            self.taxonomy = taxonomy
        return breed

    def reload_taxonomy(self) -> None:
        """Pick up breeds another process added."""
        with self._taxonomy_lock:
            self.taxonomy = load_taxonomy(self.engine)

    def resolve_breed(self, text: str) -> Breed | None:
        return self.taxonomy.lookup(text)

    # --- reporting --------------------------------------------------------------------------------
    def status(self) -> CatalogStatus:
        today = self.clock().replace(hour=0, minute=0, second=0, microsecond=0)
        with open_session(self.engine) as session:
            labels_total = session.exec(select(Label.id).where(Label.breed != SKIP)).all()
            return CatalogStatus(
                model_version=self.predictor.model_version,
                photos_total=repository.count_photos(session=session),
                photos_today=repository.count_photos(session=session, since=today),
                awaiting_label=repository.count_awaiting_label(session=session),
                labels_total=len(labels_total),
                conflicts=len(self.conflicts()),
            )

    def conflicts(self, since: timedelta | None = None) -> list[tuple[Photo, list[Label]]]:
        """Photos where people disagree: shown to admins."""
        found = []
        with open_session(self.engine) as session:
            statement = select(Label).where(Label.source.in_([LabelSource.STAFF, LabelSource.ADMIN]))
            if since is not None:
                statement = statement.where(Label.created_at >= self.clock() - since)
            photo_ids = {label.photo_id for label in session.exec(statement)}
            grouped = repository.labels_by_photo(sorted(photo_ids), session=session)
            for photo_id, labels in grouped.items():
                resolved = resolve_label(labels)
                if resolved is not None and resolved.conflict:
                    found.append((session.get(Photo, photo_id), labels))
        return found

    def catalog_labels(self) -> dict[int, str | None]:
        """Every photo's catalog label (breed key or special label; None while unlabelled)."""
        with open_session(self.engine) as session:
            photo_ids = list(session.exec(select(Photo.id)))
            labels = repository.labels_by_photo(photo_ids, session=session)
        resolved = {photo_id: resolve_label(labels.get(photo_id, [])) for photo_id in photo_ids}
        return {photo_id: (r.breed if r else None) for photo_id, r in resolved.items()}

    def export_rows(self) -> Iterable[dict]:
        """One row per photo: what the model said and what the catalog holds."""
        with open_session(self.engine) as session:
            photos = list(session.exec(select(Photo).order_by(Photo.id)))
            predictions = repository.latest_predictions(session=session)
            labels = repository.labels_by_photo([p.id for p in photos], session=session)
        for photo in photos:
            prediction = predictions.get(photo.id)
            resolved = resolve_label(labels.get(photo.id, []))
            yield {
                "photo_id": photo.id,
                "sha256": photo.sha256,
                "received_at": photo.received_at.isoformat(timespec="seconds"),
                "predicted_breed": self._display(prediction.breed if prediction else None, prediction),
                "confidence": f"{prediction.confidence:.4f}" if prediction else "",
                "model_version": prediction.model_version if prediction else "",
                "label": self._display(resolved.breed, prediction) if resolved else "",
                "label_source": resolved.label.source if resolved else "",
                "labeled_by": (resolved.label.user_id or "") if resolved else "",
                "labeled_at": resolved.label.created_at.isoformat(timespec="seconds") if resolved else "",
            }

    def export_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.export_rows())
        return buffer.getvalue()

    def _display(self, key: str | None, prediction: Prediction | None) -> str:
        if key is None:
            return "Not a dog" if prediction is not None else ""
        try:
            return self.taxonomy.get(key).display_name
        except KeyError:
            return key


__all__ = ["Catalog", "Classification", "ImageRejected", "LabelResult", "Outcome", "UnknownBreed"]
