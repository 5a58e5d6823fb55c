"""The one rule that decides a photo's catalog label from its append-only labels."""

from datetime import UTC, datetime, timedelta

from dogbot.core.labels import resolve_label
from storage.tables import Label
from storage.vocabulary import LabelSource

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def label(breed: str, source: str, user: int | None, minutes: int) -> Label:
    return Label(
        photo_id=1, breed=breed, source=source, user_id=user, created_at=T0 + timedelta(minutes=minutes)
    )


def test_no_labels_means_no_catalog_label():
    assert resolve_label([]) is None
    assert resolve_label([label("skip", LabelSource.STAFF, 1, 0)]) is None


def test_staff_correction_beats_auto_acceptance():
    resolved = resolve_label(
        [label("pug", LabelSource.AUTO, None, 0), label("boxer", LabelSource.STAFF, 7, 1)]
    )
    assert resolved.breed == "boxer"
    assert resolved.label.user_id == 7
    assert not resolved.conflict


def test_admin_beats_a_staff_majority():
    labels = [
        label("pug", LabelSource.STAFF, 1, 0),
        label("pug", LabelSource.STAFF, 2, 1),
        label("boxer", LabelSource.ADMIN, 9, 2),
    ]
    resolved = resolve_label(labels)
    assert resolved.breed == "boxer"
    assert resolved.conflict


def test_majority_of_people_counts_each_person_once():
    labels = [
        label("pug", LabelSource.STAFF, 1, 0),
        label("pug", LabelSource.STAFF, 1, 1),  # a repeat by the same person is one vote
        label("boxer", LabelSource.STAFF, 2, 2),
        label("boxer", LabelSource.STAFF, 3, 3),
    ]
    resolved = resolve_label(labels)
    assert resolved.breed == "boxer"
    assert resolved.conflict


def test_a_person_changing_their_mind_uses_their_latest_answer():
    labels = [label("pug", LabelSource.STAFF, 1, 0), label("boxer", LabelSource.STAFF, 1, 5)]
    resolved = resolve_label(labels)
    assert resolved.breed == "boxer"
    assert not resolved.conflict


def test_tie_goes_to_the_most_recent_answer():
    labels = [label("pug", LabelSource.STAFF, 1, 0), label("boxer", LabelSource.STAFF, 2, 1)]
    assert resolve_label(labels).breed == "boxer"


def test_import_beats_auto_when_no_person_answered():
    labels = [label("pug", LabelSource.IMPORT, None, 0), label("boxer", LabelSource.AUTO, None, 1)]
    assert resolve_label(labels).breed == "pug"
