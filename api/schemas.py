"""What the API sends and accepts: pydantic models (they make /openapi.json), built from domain data.

Breeds are their display names ("Labrador Retriever"); a request may name a breed by any of its
names or its key, as staff can in the chat.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from dogbot.core.dogs import DogAnswer
from dogbot.core.taxonomy import Breed
from ml.predictor import ModelOutput
from storage.vocabulary import AgeGroup, LabelSource, Sex


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model_version: str


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    model_version: str
    checks: dict[str, str] = Field(description="database, photo_store, model: each 'ok' when it answered")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, snake_case: for programs")
    message: str = Field(description="what is wrong and what to change: for the developer")
    dog: str | None = Field(
        default=None, description="the code of the dog the error is about (409: the dog a photo is in)"
    )


class ErrorBody(BaseModel):
    """Every answer that is not a success."""

    error: ErrorDetail


class Likely(BaseModel):
    breed: str
    p: float


class Prediction(BaseModel):
    is_dog: bool
    breed: str | None = Field(description="the most likely breed; null when it is not a dog")
    confidence: float = Field(description="of the breed, or of 'not a dog' when is_dog is false")
    top: list[Likely]
    model_version: str


class DogBreed(BaseModel):
    primary: str | None = Field(description="null: not known yet, or a mix of breeds nobody named")
    secondary: str | None = None
    mix: bool = False
    confidence: float | None = Field(
        None, description="the model's, from all photos together; null when a person gave the breed"
    )


class LabelledBy(BaseModel):
    source: str = Field(description="staff, admin, api (a token), import")
    name: str | None = Field(None, description="the API token's name, or the Telegram user id")
    at: datetime


class DogPhoto(BaseModel):
    id: int
    sha256: str
    received_at: datetime
    width: int
    height: int


class Dog(BaseModel):
    code: str
    name: str | None
    sex: str
    age_group: str
    intake_at: datetime
    breed: DogBreed
    status: Literal["registered", "needs_review", "not_a_dog"] = Field(
        description="registered: the breed is known (a confident model or a person); needs_review: "
        "staff will be asked in the chat's /review; not_a_dog: the photos show no dog"
    )
    labelled_by: LabelledBy | None
    top: list[Likely]
    model_version: str | None
    photos: list[DogPhoto]


class DogList(BaseModel):
    dogs: list[Dog]
    next_offset: int | None = Field(
        None, description="pass as offset for the next page; null on the last page"
    )


class DogChanges(BaseModel):
    """What ``PATCH /v1/dogs/{code}`` changes; a field left out stays as it is."""

    name: str | None = Field(None, max_length=200, description="at most 64 characters are kept")
    sex: Sex | None = None
    age_group: AgeGroup | None = None
    notes: str | None = Field(None, max_length=4000, description="at most 2,000 characters are kept")


class Deleted(BaseModel):
    code: str
    deleted: Literal[True] = True
    photos_kept: int = Field(description="its photos stay in the catalog, in no dog")


class BreedAnswer(BaseModel):
    """A person's word on a dog's breed (the token's owner): a breed, a cross of two, or a mix."""

    primary: str | None = Field(None, description="a breed's name or key; null with mix: an unknown mix")
    secondary: str | None = Field(None, description="the other breed of a cross (implies mix)")
    mix: bool = False


def prediction_of(output: ModelOutput, *, dog_threshold: float, name_of: Callable[[str], str]) -> Prediction:
    """The same fields and rounding as ``dogbot predict --json``."""
    is_dog = output.is_dog(dog_threshold)
    top = [Likely(breed=name_of(key), p=round(p, 4)) for key, p in output.top(3)]
    return Prediction(
        is_dog=is_dog,
        breed=top[0].breed if is_dog else None,
        confidence=round(top[0].p if is_dog else 1 - output.dog_probability, 4),
        top=top,
        model_version=output.model_version,
    )


def dog_of(answer: DogAnswer, *, name_of: Callable[[str], str]) -> Dog:
    dog, breed, label = answer.dog, answer.breed, answer.label
    if answer.not_a_dog:
        status = "not_a_dog"
    elif breed is not None:
        status = "registered"
    else:
        status = "needs_review"
    by = None
    if label is not None and label.label.source != LabelSource.AUTO:
        row = label.label
        who = row.user_name or (str(row.user_id) if row.user_id is not None else None)
        by = LabelledBy(source=row.source, name=who, at=row.created_at)
    confidence = None
    if breed is not None and label is None and answer.top:
        confidence = round(answer.top[0][1], 4)
    return Dog(
        code=dog.code,
        name=dog.name,
        sex=dog.sex,
        age_group=dog.age_group,
        intake_at=dog.intake_at,
        breed=DogBreed(
            primary=name_of(breed.primary) if breed and breed.primary else None,
            secondary=name_of(breed.secondary) if breed and breed.secondary else None,
            mix=bool(breed and breed.mix),
            confidence=confidence,
        ),
        status=status,
        labelled_by=by,
        top=[Likely(breed=b.display_name, p=round(p, 4)) for b, p in _named(answer.top)],
        model_version=answer.output.model_version if answer.output is not None else None,
        photos=[
            DogPhoto(id=p.id, sha256=p.sha256, received_at=p.received_at, width=p.width, height=p.height)
            for p in answer.photos
        ],
    )


def _named(top: list[tuple[Breed, float]]) -> list[tuple[Breed, float]]:
    return [(breed, p) for breed, p in top if breed is not None]
