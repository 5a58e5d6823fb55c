"""The project's words, once: label sources, special labels, outcomes, splits, model statuses, drift tests.

They live in ``storage`` because most of them are values of database columns, and ``storage`` is
the lowest layer that needs them: the domain, the jobs and the bot import them from here, so
nothing above restates a literal. ``StrEnum`` members are ``str``: they compare equal to what the
database returns and serialise to JSON as their value.
"""

from __future__ import annotations

from enum import StrEnum


class LabelSource(StrEnum):
    """Where a label came from. An admin's word beats staff's (see ``dogbot.core.labels``)."""

    STAFF = "staff"
    ADMIN = "admin"
    AUTO = "auto_accepted"
    IMPORT = "import"
    API = "api"  # an app or website through the web API, with its token's name (an admin made the token)


# The labels a person gave (in the chat, or through an API token, which acts as one person): they
# vote, they can disagree, they correct the model.
PEOPLE = (LabelSource.STAFF, LabelSource.ADMIN, LabelSource.API)
# Labels a retrain counts as "new answers from people": the chat's, plus a shelter's own import.
HUMAN_SOURCES = (*PEOPLE, LabelSource.IMPORT)


class SpecialLabel(StrEnum):
    """Labels that are not breeds."""

    MIXED_BREED = "mixed_breed"
    NOT_A_DOG = "not_a_dog"
    SKIP = "skip"  # "I don't know": recorded for the audit trail, never a catalog label


SPECIAL_LABELS = tuple(SpecialLabel)


class Outcome(StrEnum):
    """What the intake did with a photo."""

    AUTO_ACCEPTED = "auto_accepted"  # confident: labelled without asking, staff may still say "Wrong?"
    ASK = "ask"  # unsure: staff choose among the likely breeds
    NOT_A_DOG = "not_a_dog"


class Sex(StrEnum):
    UNKNOWN = "unknown"
    MALE = "male"
    FEMALE = "female"


class AgeGroup(StrEnum):
    UNKNOWN = "unknown"
    PUPPY = "puppy"
    ADULT = "adult"
    SENIOR = "senior"


class Split(StrEnum):
    """Which side of a dataset version a photo is on (fixed per photo, by its hash)."""

    TRAIN = "train"
    VALIDATION = "val"


class ModelStatus(StrEnum):
    CANDIDATE = "candidate"  # trained and stored, not yet judged (or interrupted before it was)
    PROMOTED = "promoted"  # passed the promotion gates and became champion (the alias says if it still is)
    REJECTED = "rejected"  # failed a gate or was interrupted: never served


class RunStatus(StrEnum):
    """Where a scheduled job's run (``JobRun``) stands."""

    RUNNING = "running"
    OK = "ok"
    SKIPPED = "skipped"  # nothing to do, or another process held the training lease
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its process was killed or crashed (jobs.service.mark_interrupted_runs)


FINISHED = (RunStatus.OK, RunStatus.SKIPPED, RunStatus.FAILED)


class DriftTest(StrEnum):
    """The tests ``jobs.drift.compare`` runs, in this order (tests/unit/test_jobs_drift.py checks it)."""

    EMBEDDING_AUC = "embedding_auc"
    BREED_DISTRIBUTION = "breed_distribution"
    CONFIDENCE = "confidence"
    BRIGHTNESS = "brightness"
    SIZE = "size"
    CORRECTION_RATE = "correction_rate"


DRIFT_TESTS = tuple(DriftTest)


# Short names for the special labels, as the code reads them.
MIXED_BREED, NOT_A_DOG, SKIP = SpecialLabel.MIXED_BREED, SpecialLabel.NOT_A_DOG, SpecialLabel.SKIP

# The registry alias that names the serving model (AliasMove.alias).
CHAMPION = "champion"


class IncidentKind(StrEnum):
    """What a drift incident is about, as admins are told it."""

    NEW_BREEDS = "new_breeds"  # breeds the serving model has no row for arrived, and nothing else moved
    SHIFT = "shift"  # the photos changed (darker, other sizes, unlike the reference)


class IncidentClose(StrEnum):
    """How a drift incident ended."""

    PROMOTED = "promoted"  # a model trained on photos from after the shift was promoted
    EXPECTED = "expected"  # an admin accepted the recent photos as the new normal


class AsmSendKind(StrEnum):
    """What a send to Animal Shelter Manager does (``jobs.asm_sync``)."""

    NEW = "new"  # the animal's first import: every field and its photo
    UPDATE = "update"  # a later change: the same code again, without the photo


class AsmState(StrEnum):
    """Where a send to Animal Shelter Manager stands."""

    WAITING = "waiting"  # due now or at next_try_at (ASM was unreachable: tried again with back-off)
    SENDING = "sending"  # the request is out; left so by a kill, the next sync checks ASM
    SENT = "sent"  # ASM imported the row
    FAILED = "failed"  # ASM refused it (its reason in answer): tried again only when asked or changed
    REPLACED = "replaced"  # a newer row of the same dog took its place before it was sent


ASM_OPEN_STATES = (AsmState.WAITING, AsmState.SENDING, AsmState.FAILED)


class DogAuditAction(StrEnum):
    """What a ``DogAudit`` row records."""

    REMOVED_EMPTY = "removed_empty"  # its last photo moved to another dog (or a migration found it empty)
    MERGED = "merged"  # its photos joined another dog (undone: UNMERGED)
    UNMERGED = "unmerged"
    DELETED = "deleted"  # removed on purpose (a wrong registration)
    ABANDONED = "abandoned"  # a registration that failed midway: removed with the photos it stored
