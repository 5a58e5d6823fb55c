"""Bulk intake for `dogbot import` and `dogbot ingest`: many files, batched through the model.

One bad file never stops the rest: it is reported with its reason and the others go on. The work
per batch is the bot's own intake path (:func:`dogbot.core.intake.receive`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dogbot.core.catalog import Catalog
from dogbot.core.dogs import NewDog
from dogbot.core.intake import Classification, Incoming, receive
from dogbot.core.taxonomy import LOOKUP_MIN_SCORE, Breed, Taxonomy
from storage.vocabulary import LabelSource


@dataclass(frozen=True)
class BulkItem:
    path: Path
    label: str | None = None  # a breed key or special label, for imports
    dog_id: int | None = None  # the dog it shows; None: new_dog's group, else a dog of its own
    new_dog: NewDog | None = None


@dataclass(frozen=True)
class BulkResult:
    path: Path
    classification: Classification | None = None
    error: str | None = None


@dataclass(frozen=True)
class NameMatch:
    """What an import does with one breed name from a folder or a manifest."""

    breed: Breed | None  # the known breed it means (exactly, or a clear near miss)
    exact: bool = True  # False: a near miss ("german shepard"), which the import reports
    # None found: close names it might mean (then it is never added as a new breed), else empty.
    maybe: tuple[Breed, ...] = ()


def match_breed_name(taxonomy: Taxonomy, name: str) -> NameMatch:
    """The known breed an imported name means, forgiving typos as the chat does.

    A name close to several breeds ("shepherd") is never guessed, and never becomes a new breed
    either: a typo must not add a breed nobody meant; the person picks one and imports again.
    """
    exact = taxonomy.resolve(name)
    if exact is not None:
        return NameMatch(exact)
    near = taxonomy.lookup(name)
    if near is not None:
        return NameMatch(near, exact=False)
    close = tuple(breed for breed, score in taxonomy.suggest(name, 3) if score >= LOOKUP_MIN_SCORE)
    return NameMatch(None, maybe=close)


def submit_files(
    catalog: Catalog,
    items: Sequence[BulkItem],
    *,
    source: str,
    user_id: int | None = None,
    batch_size: int = 16,
    progress: Callable = lambda iterable, **_: iterable,
) -> list[BulkResult]:
    """Store, classify and (for imports) label each file; return one result per item, in order."""
    results: list[BulkResult] = []
    batches = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
    for batch in progress(batches, desc=source, unit="batch"):
        outcome: dict[int, BulkResult] = {}
        readable, incoming = [], []
        for position, item in enumerate(batch):
            try:
                incoming.append(
                    Incoming(
                        item.path.read_bytes(),
                        file_name=item.path.name,
                        dog_id=item.dog_id,
                        new_dog=item.new_dog,
                    )
                )
                readable.append(position)
            except OSError as error:
                outcome[position] = BulkResult(
                    item.path, error=f"cannot read file: {error.strerror or error}"
                )
        for position, received in zip(
            readable, receive(catalog.intake, incoming, source=source), strict=True
        ):
            outcome[position] = _record(catalog, batch[position], received, user_id)
        results.extend(outcome[position] for position in range(len(batch)))
    return results


def _record(catalog: Catalog, item: BulkItem, received, user_id: int | None) -> BulkResult:
    if received.rejected is not None:
        return BulkResult(item.path, error=received.rejected.message)
    if received.classification is None:
        return BulkResult(item.path, error="stored, but classification failed: it waits in /review")
    classification = received.classification
    if item.label is not None:
        labelled = catalog.labelling.record_label(
            classification.photo.id,
            item.label,
            source=LabelSource.IMPORT,
            user_id=user_id,
            prediction_id=classification.prediction.id,
        )
        # Report the photo as labelled: it does not wait for staff review.
        classification = replace(classification, label=labelled.resolved)
    return BulkResult(item.path, classification)
