"""Photo intake: decode, store, classify, auto-label; for one photo or many senders at once.

Order of work for every incoming photo, so that nothing received is ever lost:
validate (decode) -> store bytes and row -> classify -> store prediction (and an auto label) -> answer.
A photo that cannot be decoded is not stored: it is not a photo, and the sender gets a clear reason.
In :func:`receive` one bad file does not fail its neighbours: every item gets its own outcome. A
photo that decoded is stored before the model sees it, so a classification failure leaves it in
the catalog, waiting for review, and the sender can be told so.

Memory: a photo is decoded, its statistics taken, and it is shrunk to the model's input before the
next one is decoded. A 100 KB PNG can hold 40 megapixels (119 MB decoded); holding every decoded
photo of a batch until classification took a process from 1 to 2.5 GB (bench/README.md, "Memory").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from PIL import Image
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from dogbot.core.asking import AskPolicy
from dogbot.core.breeds import Breeds
from dogbot.core.dogs import Dogs, NewDog
from dogbot.core.intake_rules import IntakeRules
from dogbot.core.labels import ResolvedLabel, resolve_label
from dogbot.core.limits import DecodeSlots
from dogbot.core.lookalikes import Lookalikes
from dogbot.core.taxonomy import Breed
from ml.images import ImageRejected, crop_image, image_statistics, load_image, sniff_format
from ml.predictor import ModelOutput, Predictor
from storage import repository
from storage.blobs import PhotoStore
from storage.db import session as open_session
from storage.tables import Label, Photo, Prediction, utcnow
from storage.vocabulary import NOT_A_DOG, LabelSource, Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classification:
    photo: Photo
    prediction: Prediction
    outcome: Outcome
    top: list[tuple[Breed, float]]
    duplicate: bool  # this exact photo was already in the catalog
    label: ResolvedLabel | None  # the catalog label after this photo was handled
    # Asked although confident: staff lately corrected this answer to these breeds the model does
    # not know yet (dogbot/core/lookalikes.py), most frequent first.
    lookalikes: tuple[str, ...] = ()
    # Breeds the model cannot name yet whose labelled photos look most like this one (nearest
    # first): offered as buttons too; when the photo was confident, they are why it is asked.
    learning: tuple[str, ...] = ()
    held_back: bool = False  # confident enough to file alone, asked because of the above

    @property
    def spot_check(self) -> bool:
        """Accepted without asking, and one of the random few staff are asked to check."""
        return bool(self.prediction.spot_check) and self.outcome != Outcome.ASK

    @property
    def button_breeds(self) -> list[str]:
        """The breeds offered as buttons: the model's top three, then the ones it is learning."""
        keys = [breed.key for breed, _ in self.top]
        return keys + [key for key in dict.fromkeys(self.lookalikes + self.learning) if key not in keys]


class PhotoIntake:
    def __init__(
        self,
        engine: Engine,
        photos: PhotoStore,
        predictor: Predictor,
        breeds: Breeds,
        lookalikes: Lookalikes,
        rules: IntakeRules,
        *,
        dogs: Dogs,
        asking: AskPolicy,
        clock: Callable[[], datetime] = utcnow,
        decode_slots: DecodeSlots | None = None,
    ) -> None:
        self.engine = engine
        # Which answers are accepted without asking (the shelter's target accuracy), and which of
        # those staff are asked to check at random (dogbot/core/asking.py).
        self.asking = asking
        # Shared by everything in this process that decodes a full-size photo (bot, API routes).
        self.decode_slots = decode_slots or DecodeSlots(1)
        # Every photo belongs to a dog: one sent without saying which starts its own.
        self.dogs = dogs
        self.photos = photos
        self.predictor = predictor
        self.breeds = breeds
        # Confident answers that staff have shown to hide a breed the model does not know yet are
        # asked about, not auto-accepted (see dogbot/core/lookalikes.py).
        self.lookalikes = lookalikes
        self.rules = rules
        self.clock = clock

    def decode(self, data: bytes) -> Image.Image:
        """Decode or raise :class:`ImageRejected` with a reason a person can act on."""
        return load_image(data, max_bytes=self.rules.max_bytes, max_pixels=self.rules.max_pixels)

    def store_photo(
        self,
        data: bytes,
        image: Image.Image,
        *,
        source: str,
        sender_id: int | None = None,
        chat_id: int | None = None,
        file_name: str | None = None,
        dog_id: int | None = None,
        new_dog: NewDog | None = None,
        defer_dog: bool = False,
    ) -> tuple[Photo, bool]:
        """Persist the bytes and the row; return ``(photo, already_known)``. Safe to call twice.

        The photo joins dog ``dog_id``; else ``new_dog``'s (its group's dog, or one made in the same
        transaction as the photo, so a dog never exists without one); else a new dog of its own. A
        photo already known stays with its dog (see :meth:`Dogs.place_known`).

        ``defer_dog``: a photo that starts a dog of its own is stored in no dog; :func:`receive`
        gives it its dog once the model has seen it, unless the model is sure it is not a dog.
        """
        if defer_dog:
            new_dog = None
        elif dog_id is None and new_dog is None:
            new_dog = NewDog(source=source, sender_id=sender_id, chat_id=chat_id)
        sha256 = self.photos.put(data)
        with open_session(self.engine) as session:
            existing = repository.photo_by_sha(sha256, session=session)
        if existing is not None:
            if defer_dog:
                return existing, True
            return self.dogs.place_known(existing.id, dog_id=dog_id, spec=new_dog), True
        stats = image_statistics(image)

        def work(session) -> Photo | int:
            known = repository.photo_by_sha(sha256, session=session)
            if known is not None:  # the same photo arrived at the same moment from someone else
                return known.id
            if dog_id is not None:
                dog = self.dogs.live(session, dog_id)
            elif new_dog is not None:
                dog = self.dogs.dog_for(session, new_dog)
            else:
                dog = None  # deferred: receive() gives it a dog once classified
            photo = Photo(
                dog_id=dog.id if dog is not None else None,
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
            return photo

        stored = self.dogs.retrying(work)
        if isinstance(stored, int):
            if defer_dog:
                return self.dogs.place_known(stored), True
            return self.dogs.place_known(stored, dog_id=dog_id, spec=new_dog), True
        return stored, False

    def submit(self, data: bytes, *, source: str, **sender) -> Classification:
        """Validate, store, classify and auto-label one photo (the whole intake path, synchronously).

        The bot and bulk commands batch many photos through :func:`receive` instead.
        """
        (received,) = receive(self, [Incoming(data, **sender)], source=source)
        if received.rejected is not None:
            raise received.rejected
        if received.classification is None:
            raise RuntimeError(f"photo #{received.stored.id} stored, but classification failed")
        return received.classification

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
        is_dog = output.is_dog(self.rules.dog_threshold)
        top = output.top(3)
        breed, confidence = top[0] if is_dog else (None, 1.0 - output.dog_probability)
        second = top[1][0] if len(top) > 1 else None
        auto_label = None
        if not is_dog:
            # Filed as not a dog only when the model is sure (IntakeRules) and no labelled photo of a
            # breed it is learning looks alike: a greyhound stays "not a dog" to the ImageNet classes
            # whatever the breed head learns, but looks like the greyhounds staff labelled.
            sure = output.surely_not_a_dog(self.rules.dog_threshold, self.rules.not_a_dog_below)
            auto_label = NOT_A_DOG if sure and not self.lookalikes.advise(output.embedding).veto else None
        held_back = False
        if is_dog and self.asking.accepts(
            breed, confidence, second, fallback=self.rules.auto_accept_threshold
        ):
            # Sure enough for the rule, unless staff have shown that such answers hide a breed the
            # model cannot name yet: then asked, and left out of what the rule learns from (asked for
            # a reason that is not its confidence or breed, see dogbot/core/asking.py).
            held_back = (
                self.lookalikes.is_shadowed(breed)
                or self.lookalikes.advise(output.embedding, predicted=breed).veto
            )
            auto_label = None if held_back else breed
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
            spot_check=auto_label is not None and self.asking.spot_check(photo.sha256, output.model_version),
            held_back=held_back,
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
        if prediction.auto_accepted:
            outcome = Outcome.AUTO_ACCEPTED if prediction.is_dog else Outcome.NOT_A_DOG
        else:  # unsure of the breed, or of whether it is a dog at all
            outcome = Outcome.ASK
        lookalikes: tuple[str, ...] = ()
        learning: tuple[str, ...] = ()
        if outcome == Outcome.ASK:
            learning = self.lookalikes.advise(
                prediction.embedding,
                predicted=prediction.breed,
                shown=[entry["breed"] for entry in prediction.top],
            ).extra_buttons
        held_back = outcome == Outcome.ASK and bool(prediction.held_back)
        if held_back:
            named = self.lookalikes.shadowed().get(prediction.breed)
            lookalikes = tuple(key for key, _ in named.most_common(2)) if named else ()
        return Classification(
            photo=photo,
            prediction=prediction,
            outcome=outcome,
            top=self.top_breeds(prediction),
            duplicate=duplicate,
            label=self._catalog_label(photo.id),
            lookalikes=lookalikes,
            learning=tuple(key for key in learning if key in self.breeds.taxonomy),
            held_back=held_back,
        )

    def top_breeds(self, prediction: Prediction) -> list[tuple[Breed, float]]:
        return [(self.breeds.taxonomy.get(entry["breed"]), float(entry["p"])) for entry in prediction.top]

    def _catalog_label(self, photo_id: int) -> ResolvedLabel | None:
        with open_session(self.engine) as session:
            return resolve_label(repository.labels_of(photo_id, session=session))


@dataclass(frozen=True)
class Incoming:
    data: bytes
    sender_id: int | None = None
    chat_id: int | None = None
    file_name: str | None = None
    dog_id: int | None = None  # None: the photo joins new_dog's group, or starts a dog of its own
    new_dog: NewDog | None = None
    # (x, y, width, height) in the photo's pixels: only this part is classified (a web API client's
    # frame around the dog); the whole file is stored.
    crop: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Received:
    """What became of one incoming file; exactly one of the three outcomes is set."""

    classification: Classification | None = None
    stored: Photo | None = None  # stored, but classification failed: it waits for review
    rejected: ImageRejected | None = None


def receive(intake: PhotoIntake, items: Sequence[Incoming], *, source: str = "telegram") -> list[Received]:
    """Decode, store and classify ``items``; never raises for one bad item (storage errors do raise)."""
    results: list[Received | None] = [None] * len(items)
    stored: list[tuple[int, tuple[Photo, bool], object]] = []  # (position, stored photo, model input)
    for i, item in enumerate(items):
        with intake.decode_slots.hold():
            try:
                image = intake.decode(item.data)
                if item.crop is not None:
                    image = crop_image(image, item.crop)
            except ImageRejected as rejected:
                results[i] = Received(rejected=rejected)
                continue
            photo = intake.store_photo(
                item.data,
                image,
                source=source,
                sender_id=item.sender_id,
                chat_id=item.chat_id,
                file_name=item.file_name,
                dog_id=item.dog_id,
                new_dog=item.new_dog,
                defer_dog=_starts_own_dog(item),
            )
            stored.append((i, photo, intake.predictor.prepare(image)))
            del image  # before the next decode: one full-size photo in memory at a time
    if stored:
        try:
            classified = intake.classify_stored([p for _, p, _ in stored], [x for _, _, x in stored])
        except Exception:
            # The photos are safe in the catalog; a person will label them from /review.
            log.exception("classification failed for %d stored photo(s)", len(stored))
            for i, (photo, _), _ in stored:
                results[i] = Received(stored=_with_dog(intake, items[i], photo, source))
        else:
            for (i, _, _), classification in zip(stored, classified, strict=True):
                # A photo the model is sure shows no dog gets no dog code until someone says it is one.
                if classification.outcome != Outcome.NOT_A_DOG:
                    photo = _with_dog(intake, items[i], classification.photo, source)
                    classification = replace(classification, photo=photo)
                results[i] = Received(classification=classification)
    return [result for result in results if result is not None]


def _starts_own_dog(item: Incoming) -> bool:
    return item.dog_id is None and (item.new_dog is None or item.new_dog.group is None)


def _with_dog(intake: PhotoIntake, item: Incoming, photo: Photo, source: str) -> Photo:
    """The photo, in a dog: its own new one when it was stored in none (see ``defer_dog``)."""
    if photo.dog_id is not None or not _starts_own_dog(item):
        return photo
    spec = item.new_dog or NewDog(source=source, sender_id=item.sender_id, chat_id=item.chat_id)
    return intake.dogs.give_dog(photo.id, spec)
