"""The questions staff answer: "which breed is photo #12?", asked at intake or later from /review.

A question is keyed to one prediction. An answer to a prediction that is no longer its photo's
latest (the model was retrained and the photo re-scored) is refused as stale rather than recorded
against a question nobody asked any more; the person gets the current question instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dogbot.core.catalog import Catalog
from dogbot.core.dogs import NewDog
from dogbot.core.labelling import LabelResult, UnknownBreed
from dogbot.core.taxonomy import Breed
from ml.images import ImageRejected
from storage.tables import Label, Photo, Prediction
from storage.vocabulary import MIXED_BREED, NOT_A_DOG, PEOPLE, SKIP

log = logging.getLogger(__name__)


class StaleAnswer(LookupError):
    """The button refers to an unknown prediction, or one that is not its photo's latest."""


class OlderPress(RuntimeError):
    """The person pressed again since this press (a later Telegram update was applied first, e.g. by
    another bot replica): their newer answer stands, and this one changes nothing."""


@dataclass(frozen=True)
class Question:
    photo: Photo
    prediction: Prediction
    top: list[tuple[Breed, float]]
    # Breeds staff labelled look-alikes of, that the model is still learning (ml.exemplars): offered
    # as buttons after the top three, as when the photo first arrived.
    learning: tuple[Breed, ...] = ()

    @property
    def button_breeds(self) -> list[Breed]:
        shown = [breed for breed, _ in self.top]
        return shown + [breed for breed in self.learning if breed not in shown]


def _question(catalog: Catalog, photo: Photo, prediction: Prediction) -> Question:
    top = catalog.intake.top_breeds(prediction)
    advice = catalog.intake.lookalikes.advise(
        prediction.embedding, predicted=prediction.breed, shown=[breed.key for breed, _ in top]
    )
    taxonomy = catalog.breeds.taxonomy
    learning = tuple(taxonomy.get(key) for key in advice.extra_buttons if key in taxonomy)
    return Question(photo, prediction, top, learning)


def current_question(catalog: Catalog, prediction_id: int) -> Question:
    """The question a button belongs to, if it is still open to answers."""
    prediction = catalog.labelling.prediction(prediction_id)
    if prediction is None:
        raise StaleAnswer(f"no prediction #{prediction_id}")
    latest = catalog.labelling.latest_prediction(prediction.photo_id)
    if latest is None or latest.id != prediction.id:
        raise StaleAnswer(f"prediction #{prediction_id} was replaced")
    photo = catalog.labelling.photo(prediction.photo_id)
    if photo is None:  # deleted underneath us
        raise StaleAnswer(f"photo #{prediction.photo_id} is gone")
    return _question(catalog, photo, prediction)


def earlier_answer(catalog: Catalog, prediction_id: int, user_id: int) -> Label | None:
    """The answer a new one from ``user_id`` would replace for the question's photo: their own
    latest, else the latest answer another person gave (a Skip is no answer), or None."""
    prediction = catalog.labelling.prediction(prediction_id)
    if prediction is None:
        return None
    labels = catalog.labelling.labels(prediction.photo_id)
    mine = [label for label in labels if label.user_id == user_id]
    if mine:
        return mine[-1]
    others = [label for label in labels if label.source in PEOPLE and label.breed != SKIP]
    return others[-1] if others else None


def answer(
    catalog: Catalog,
    prediction_id: int,
    breed: str,
    *,
    source: str,
    user_id: int | None,
    primary: str | None = None,
    secondary: str | None = None,
    update_id: int | None = None,
) -> LabelResult:
    """Record ``breed`` as this person's answer to the question; a repeat adds nothing.

    The answer is about the animal: it is recorded on every photo of the photo's dog too.
    ``primary`` and ``secondary`` name a mixed breed's parts. ``update_id``: the Telegram update of
    the press; a press older than one of theirs already applied to this dog raises
    :class:`OlderPress` and records nothing.
    """
    question = current_question(catalog, prediction_id)
    if update_id is None or user_id is None:
        return _record_known(catalog, question, breed, source, user_id, primary, secondary)
    photo = question.photo
    subject = f"dog:{photo.dog_id}" if photo.dog_id is not None else f"photo:{photo.id}"
    with catalog.labelling.press_applying(user_id, subject, update_id) as newer:
        if newer is not None:
            # A resent tap (Telegram clients resend one) whose twin another replica applied first
            # is the same answer: already saved, not an older one.
            repeat = catalog.labelling.repeat_of(photo.id, user_id, breed, primary, secondary)
            if repeat is not None:
                return repeat
            raise OlderPress(f"update {update_id} of {user_id} on {subject}: {newer} was applied")
        return _record_known(catalog, question, breed, source, user_id, primary, secondary)


def _record_known(
    catalog: Catalog,
    question: Question,
    breed: str,
    source: str,
    user_id: int | None,
    primary: str | None,
    secondary: str | None,
) -> LabelResult:
    try:
        return _record(catalog, question, breed, source, user_id, primary, secondary)
    except UnknownBreed:
        # Another bot process may have added the breed since this one loaded its breed list.
        catalog.breeds.reload_taxonomy()
        return _record(catalog, question, breed, source, user_id, primary, secondary)


def _record(
    catalog: Catalog,
    question: Question,
    breed: str,
    source: str,
    user_id: int | None,
    primary: str | None,
    secondary: str | None,
) -> LabelResult:
    result = catalog.labelling.record_label(
        question.photo.id,
        breed,
        source=source,
        user_id=user_id,
        prediction_id=question.prediction.id,
        primary_breed=primary,
        secondary_breed=secondary,
    )
    if question.photo.dog_id is None and breed not in (NOT_A_DOG, SKIP):
        # A photo filed as not a dog is one after all: it gets its dog (and code) now.
        spec = NewDog(
            source=question.photo.source, sender_id=question.photo.sender_id, chat_id=question.photo.chat_id
        )
        catalog.dogs.give_dog(question.photo.id, spec)
        return result
    if question.photo.dog_id is not None and result.created:  # the same answer for the dog's other photos
        catalog.dogs.record_label(
            question.photo.dog_id,
            breed,
            source=source,
            user_id=user_id,
            primary=primary,
            secondary=secondary,
            except_photo=question.photo.id,
        )
    return result


def mix_primary_of(catalog: Catalog, prediction_id: int, user_id: int | None) -> str | None:
    """The breed this person said the photo's mix looks most like (their latest mixed-breed answer)."""
    question = current_question(catalog, prediction_id)
    mine = [
        label
        for label in catalog.labelling.labels(question.photo.id)
        if label.user_id == user_id and label.breed == MIXED_BREED
    ]
    return mine[-1].primary_breed if mine else None


def next_question(
    catalog: Catalog, after_photo_id: int = 0, *, attempts: int = 20
) -> tuple[Question, bytes] | None:
    """The oldest photo still waiting for a person after ``after_photo_id``, with its bytes.

    A waiting photo that was never classified (the model failed at intake) is classified now; one
    that still cannot be is passed over, and stays in the queue for the next /review.
    """
    failures = 0  # photos that cannot be shown; those of answered dogs are passed over freely
    while failures < attempts:
        found = catalog.labelling.next_for_review(after_photo_id)
        if found is None:
            return None
        photo, prediction = found
        after_photo_id = photo.id
        if photo.dog_id is not None and catalog.dogs.answer(photo.dog_id).label is not None:
            continue  # its dog is answered already (a person's word holds for all its photos)
        try:
            data = catalog.labelling.photo_bytes(photo)
            if prediction is None:
                result = catalog.intake.classify_stored([(photo, True)], [catalog.intake.decode(data)])[0]
                if result.label is not None:  # the model is sure now: nothing to ask
                    continue
                prediction = result.prediction
        except (OSError, ImageRejected):
            log.exception("photo #%s cannot be shown for review", photo.id)
            failures += 1
            continue
        return _question(catalog, photo, prediction), data
    return None


@dataclass(frozen=True)
class DogReview:
    """One dog for /review: its photos still waiting for an answer (with their bytes), asked about
    once on the dog's card. ``position`` is its oldest photo's id: /review goes on after it."""

    dog_id: int
    position: int
    photos: list[tuple[Photo, bytes]]


MAX_REVIEW_PHOTOS = 5  # a dog's waiting photos /review shows before asking about it


def next_to_review(
    catalog: Catalog, after: int = 0, *, attempts: int = 20
) -> DogReview | tuple[Question, bytes] | None:
    """The next dog waiting for a person, dog by dog in the order they came in (after the dog at
    ``after``: see :class:`DogReview`), or a waiting photo that is in no dog (the model said it is
    not one) as its own question.

    A dog someone answered already is passed over (a person's word holds for all its photos), and
    so is a dog whose oldest photo is at or before ``after`` (shown earlier in this /review).
    """
    while True:
        found = next_question(catalog, after, attempts=attempts)
        if found is None:
            return None
        question, data = found
        photo = question.photo
        if photo.dog_id is None:
            return question, data
        waiting = waiting_photos(catalog, photo.dog_id)
        position = waiting[0].id if waiting else photo.id
        if position <= after:  # the dog came up earlier in this /review
            after = photo.id
            continue
        shown = [(photo, data)]
        for other in waiting:
            if len(shown) >= MAX_REVIEW_PHOTOS:
                break
            if other.id == photo.id:
                continue
            try:
                shown.append((other, catalog.labelling.photo_bytes(other)))
            except OSError:
                log.exception("photo #%s cannot be shown for review", other.id)
        return DogReview(photo.dog_id, position, shown)


def waiting_photos(catalog: Catalog, dog_id: int) -> list[Photo]:
    """A dog's photos no one has answered for yet (a Skip is no answer), oldest first."""
    return [
        photo
        for photo in catalog.dogs.photos_of(dog_id)
        if not [label for label in catalog.labelling.labels(photo.id) if label.breed != SKIP]
    ]


def review_position(catalog: Catalog, prediction_id: int) -> int:
    """Where /review goes on after a press about this prediction's photo: after its dog (its oldest
    waiting photo, see :class:`DogReview`), or after the photo when it is in no dog."""
    prediction = catalog.labelling.prediction(prediction_id)
    photo = catalog.labelling.photo(prediction.photo_id) if prediction else None
    if photo is None:
        return 0
    if photo.dog_id is None:
        return photo.id
    waiting = waiting_photos(catalog, photo.dog_id) or catalog.dogs.photos_of(photo.dog_id)
    return waiting[0].id if waiting else photo.id


def breed_choices(
    catalog: Catalog, photo_id: int, typed: str, *, limit: int = 5
) -> tuple[Prediction | None, list[Breed]]:
    """The photo's open question and the breeds that match a typed name, best first (typos forgiven)."""
    taxonomy = catalog.breeds.taxonomy
    exact = taxonomy.lookup(typed)
    found = [exact] if exact is not None else []
    for breed, _score in taxonomy.suggest(typed, limit):
        if breed not in found:
            found.append(breed)
    return catalog.labelling.latest_prediction(photo_id), found[:limit]
