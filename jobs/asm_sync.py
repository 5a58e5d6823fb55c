"""Registering dogs in the shelter's Animal Shelter Manager (ASM3), through an outbox that loses nothing.

A sync reconciles: it builds every settled dog's ASM row (``dogbot.core.shelter_export``) and
compares it with the last row ASM imported for that code. A dog ASM has never had is a ``new`` send
(its row and its photo); a dog whose row changed is an ``update`` (the row again, no photo: ASM
attaches a photo on every import). Each send is an ``AsmSend`` row written before the request and
finished with ASM's answer, so a kill, a restart or an ASM outage loses nothing:

* ASM unreachable: the send waits and is tried again with back-off (the worker's next syncs).
* ASM refused the row (its reason is kept): tried again when the dog changes, or when someone asks
  (``dogbot asm sync``, *Send now*).
* Killed mid-send: the send stays ``sending``. ASM finishes a request it received, so the next sync
  asks ASM whether the code is there before sending again (no second photo).

What ASM's import cannot do, read in its code (``csvimport.py``, ``animal.merge_animal_details``):
on an animal that exists it updates the comments and the date of birth, never the name, sex, breeds
or type. So a dog is first sent once its breed is settled and it has been quiet for a while (staff
often tap sex and age right after), and the sync lists any animal whose name, sex, breed or type in
ASM differs from dogbot's, for someone to change by hand in ASM; dogbot's comments there always
carry its current answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from dogbot.core.shelter_export import AsmDog, ShelterRecords, asm3_csv, estimated_birth_date
from jobs import lock
from jobs.asm_client import AsmAnswer, AsmClient, AsmRefused, AsmUnreachable, Verdict
from storage import asm_repository as repo
from storage.db import session as open_session
from storage.tables import AsmSend, utcnow
from storage.vocabulary import AsmSendKind, AsmState

log = logging.getLogger(__name__)

ASM_LOCK = "asm_sync"
# ASM fields its import sets on a new animal only (merge_animal_details leaves them).
FIXED_AFTER_IMPORT = {
    "ANIMALNAME": ("ANIMALNAME", "name"),
    "ANIMALSEX": ("SEXNAME", "sex"),
    "ANIMALBREED1": ("BREEDNAME1", "breed"),
    "ANIMALBREED2": ("BREEDNAME2", "second breed"),
    "ANIMALTYPE": ("ANIMALTYPENAME", "type"),
}


@dataclass(frozen=True)
class SyncRules:
    quiet: timedelta  # a settled dog's first send waits this long, so quick taps (sex, age) go with it
    first_retry: timedelta  # back-off after an outage: doubles each try, up to max_retry
    max_retry: timedelta
    lease_ttl: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class HandFix:
    """An animal in ASM that differs from dogbot where ASM's import cannot change it."""

    code: str
    # (what, in ASM, in dogbot); what: a FIXED_AFTER_IMPORT word
    differences: tuple[tuple[str, str, str], ...]
    merged_into: str | None = None  # ASM should not hold it: it is this other dog
    not_a_dog: bool = False  # ASM should not hold it: not a dog after all
    removed: bool = False  # ASM should not hold it: deleted from dogbot (registered by mistake)


@dataclass
class SyncReport:
    sent: list[str] = field(default_factory=list)  # codes imported as new animals
    updated: list[str] = field(default_factory=list)  # codes whose row ASM took again
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (code, why): tried again later
    failed: list[tuple[str, str]] = field(default_factory=list)  # (code, ASM's reason)
    not_settled: int = 0  # dogs whose breed nobody has settled yet: not sent
    later: list[tuple[str, datetime]] = field(default_factory=list)  # (code, when): quiet time or back-off
    already_there: list[str] = field(default_factory=list)  # an interrupted send that had arrived
    hand_fixes: list[HandFix] = field(default_factory=list)
    checked_asm: bool = False  # ASM's animals were read (hand_fixes is complete)

    @property
    def ok(self) -> bool:
        return not self.waiting and not self.failed


@dataclass(frozen=True)
class AsmOverview:
    """What an admin needs: how many dogs are in ASM, and what is waiting or failed and why."""

    in_asm: int
    waiting: list[tuple[str, str]]  # (code, why: ASM's last answer, "" when not tried yet)
    failed: list[tuple[str, str]]  # (code, ASM's reason)
    not_settled: int  # dogs whose breed nobody has settled yet: sent once settled


class AsmSync:
    def __init__(
        self,
        engine: Engine,
        records: ShelterRecords,
        client: AsmClient,
        rules: SyncRules,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.records = records
        self.client = client
        self.rules = rules
        self.clock = clock

    # --- the sync -------------------------------------------------------------------------------
    def sync(
        self, *, now: datetime | None = None, send_all: bool = False, check_asm: bool = True
    ) -> SyncReport:
        """Queue what changed, send what is due, and check what ASM holds.

        ``send_all`` (``asm sync --now``, *Send now*): ignore the quiet time and the back-off, and try
        refused sends again. ``check_asm`` False (the worker's runs): read ASM's animals only after
        sending something, not every few minutes. Raises ``lock.LockBusy`` while another process syncs.
        """
        now = now or self.clock()
        report = SyncReport()
        with lock.held(self.engine, ASM_LOCK, ttl=self.rules.lease_ttl, clock=self.clock):
            current = self._queue(now, report)
            self._deliver(now, report, current, send_all=send_all)
            if check_asm or report.sent or report.updated:
                self._check(current, report)
            with open_session(self.engine) as session:
                report.later = [(s.code, s.next_try_at) for s in repo.scheduled(now, session=session)]
        return report

    def _queue(self, now: datetime, report: SyncReport) -> dict[str, AsmDog]:
        """Write an outbox row for every settled dog whose row ASM does not have yet."""
        current: dict[str, AsmDog] = {}
        with open_session(self.engine) as session:
            delivered = repo.delivered(session=session)
            pending = repo.open_sends(session=session)
            for asm in self.records.asm_dogs():
                current[asm.code] = asm
                if not asm.settled:
                    report.not_settled += 1
                    continue
                last = delivered.get(asm.code)
                waiting = pending.get(asm.code)
                if _has_row(last, asm):
                    if waiting is not None and waiting.state != AsmState.SENDING:
                        waiting.state = AsmState.REPLACED  # changed back before it went: nothing to send
                        session.add(waiting)
                    continue
                if waiting is not None:
                    if waiting.state != AsmState.SENDING and not _same(waiting.row, asm.row):
                        waiting.row = asm.row  # one send carries the newest row
                        if waiting.state == AsmState.FAILED:  # a changed row deserves another try
                            waiting.state, waiting.next_try_at = AsmState.WAITING, None
                        session.add(waiting)
                    continue
                kind = AsmSendKind.NEW if last is None else AsmSendKind.UPDATE
                first_due = now + self.rules.quiet if kind == AsmSendKind.NEW else None
                session.add(
                    AsmSend(
                        code=asm.code,
                        dog_id=asm.dog_id,
                        kind=kind,
                        row=asm.row,
                        state=AsmState.WAITING,
                        created_at=now,
                        next_try_at=first_due,
                    )
                )
            for code, waiting in pending.items():
                if code not in current and waiting.state != AsmState.SENDING:
                    waiting.state = AsmState.REPLACED  # merged into another dog, or not a dog after all
                    session.add(waiting)
            session.commit()
        return current

    def _deliver(
        self, now: datetime, report: SyncReport, current: dict[str, AsmDog], *, send_all: bool
    ) -> None:
        with open_session(self.engine) as session:
            due = repo.due(None if send_all else now, include_failed=send_all, session=session)
        if not due:
            return
        # ASM's animals, read once when a new animal is to be sent: a code ASM already has (an
        # interrupted send that arrived, a restored dogbot) must not get a second photo.
        in_asm: dict[str, dict] | None = None
        if any(send.kind == AsmSendKind.NEW for send in due):
            try:
                in_asm = self.client.shelter_animals()
            except AsmUnreachable as error:
                for send in due:
                    self._finish(send.id, AsmAnswer(Verdict.UNREACHABLE, None, str(error)), now, report)
                return
            except AsmRefused as error:  # a wrong login or a disabled service: a person must act
                for send in due:
                    self._finish(send.id, AsmAnswer(Verdict.REFUSED, 200, str(error)), now, report)
                return
        for send in due:
            if send.kind == AsmSendKind.NEW and in_asm is not None and send.code in in_asm:
                if send.state == AsmState.SENDING:
                    # ASM imports a row it received whole, photo included, even when the caller is gone.
                    report.already_there.append(send.code)
                    self._finish(
                        send.id, AsmAnswer(Verdict.IMPORTED, None, "the interrupted send had arrived"), now
                    )
                    continue
                # ASM has the code from elsewhere (a file import, a restored dogbot): no second photo.
                self._as_update(send.id)
                send.kind = AsmSendKind.UPDATE
            row = dict(send.row)
            if send.kind == AsmSendKind.NEW:
                asm = current.get(send.code)
                if asm is None:  # an interrupted send of a dog deleted or merged since: nothing to send
                    self._replace(send.id)
                    continue
                row["ANIMALIMAGE"] = self.records.photo_uri(asm)
            else:
                # ASM takes a date of birth on an animal it has (not an age): the age group may have changed.
                row["ANIMALDOB"] = estimated_birth_date(row)
            self._mark_sending(send.id, now)
            answer = self.client.import_csv(asm3_csv([row]))
            self._finish(send.id, answer, now, report)
            if answer.verdict == Verdict.REFUSED and answer.http_status == 200:
                break  # "ERROR: Invalid username and password": every other send would get the same

    def _replace(self, send_id: int) -> None:
        with open_session(self.engine) as session:
            send = session.get(AsmSend, send_id)
            send.state, send.sending_since = AsmState.REPLACED, None
            session.add(send)
            session.commit()

    def _as_update(self, send_id: int) -> None:
        with open_session(self.engine) as session:
            send = session.get(AsmSend, send_id)
            send.kind = AsmSendKind.UPDATE
            session.add(send)
            session.commit()

    def _mark_sending(self, send_id: int, now: datetime) -> None:
        with open_session(self.engine) as session:
            send = session.get(AsmSend, send_id)
            send.state, send.sending_since = AsmState.SENDING, now
            session.add(send)
            session.commit()

    def _finish(
        self, send_id: int, answer: AsmAnswer, now: datetime, report: SyncReport | None = None
    ) -> None:
        with open_session(self.engine) as session:
            send = session.get(AsmSend, send_id)
            send.http_status, send.sending_since = answer.http_status, None
            send.attempts += 1  # tries that got an answer, or found ASM unreachable: the back-off counts them
            send.answer = "; ".join([answer.message, *answer.warnings])[:2000]
            if answer.verdict == Verdict.IMPORTED:
                send.state, send.sent_at, send.next_try_at = AsmState.SENT, now, None
                listed = (
                    None
                    if report is None
                    else report.sent
                    if send.kind == AsmSendKind.NEW
                    else report.updated
                )
            elif answer.verdict == Verdict.REFUSED:
                send.state = AsmState.FAILED
                listed = None if report is None else report.failed
            else:
                delay = min(self.rules.first_retry * 2 ** (send.attempts - 1), self.rules.max_retry)
                send.state, send.next_try_at = AsmState.WAITING, now + delay
                listed = None if report is None else report.waiting
            if listed is not None:
                listed.append(
                    send.code if answer.verdict == Verdict.IMPORTED else (send.code, answer.message)
                )
            session.add(send)
            session.commit()
        log.info("asm %s %s: %s", send.kind, send.code, answer.message)

    def _check(self, current: dict[str, AsmDog], report: SyncReport) -> None:
        """Compare what ASM holds with dogbot, where only a person in ASM can change it."""
        with open_session(self.engine) as session:
            delivered = repo.delivered(session=session)
        if not delivered:
            report.checked_asm = True
            return
        try:
            animals = self.client.shelter_animals()
        except (AsmUnreachable, AsmRefused) as error:
            log.info("asm check skipped: %s", error)
            return
        report.checked_asm = True
        for code, send in sorted(delivered.items()):
            animal = animals.get(code)
            if animal is None:
                continue  # not on the shelter any more (adopted, moved): ASM's business now
            asm = current.get(code)
            if asm is not None and not asm.settled:
                continue  # its breed is open again (a merge, a new answer): compared once settled
            if asm is None:
                fate, other = self.records.fate(send.dog_id)
                gone = HandFix(
                    code, (), merged_into=other, not_a_dog=fate == "not_a_dog", removed=fate == "removed"
                )
                report.hand_fixes.append(gone)
                continue
            differences = tuple(
                (what, str(animal.get(asm_key) or ""), asm.row[ours])
                for ours, (asm_key, what) in FIXED_AFTER_IMPORT.items()
                if str(animal.get(asm_key) or "").strip().lower() != asm.row[ours].strip().lower()
            )
            if differences:
                report.hand_fixes.append(HandFix(code, differences))

    # --- what admins see ------------------------------------------------------------------------
    def overview(self) -> AsmOverview:
        """As things stand now: every settled dog whose row ASM lacks is waiting, queued or not yet."""
        with open_session(self.engine) as session:
            delivered = repo.delivered(session=session)
            pending = repo.open_sends(session=session)
        waiting, failed, not_settled = [], [], 0
        for asm in self.records.asm_dogs():
            if not asm.settled:
                not_settled += 1
                continue
            send = pending.get(asm.code)
            if _has_row(delivered.get(asm.code), asm):
                continue
            if send is not None and send.state == AsmState.FAILED:
                failed.append((asm.code, send.answer))
            else:
                waiting.append((asm.code, send.answer if send is not None else ""))
        return AsmOverview(in_asm=len(delivered), waiting=waiting, failed=failed, not_settled=not_settled)

    def sent_at(self, code: str) -> datetime | None:
        """When the dog was first imported into ASM, or None."""
        with open_session(self.engine) as session:
            for send in repo.sends_of(code, session=session):
                if send.state == AsmState.SENT:
                    return send.sent_at
        return None

    def check(self) -> int:
        """Log in and read ASM's animals on the shelter; how many there are. Raises on failure."""
        return len(self.client.shelter_animals())


def _has_row(delivered: AsmSend | None, asm: AsmDog) -> bool:
    """ASM already holds this dog as dogbot has it now (its last imported row is the current one)."""
    return delivered is not None and _same(delivered.row, asm.row)


def _same(sent_row: dict, row: dict) -> bool:
    """The same row, whatever the sync filled in at send time (date of birth, photo)."""
    skip = {"ANIMALDOB", "ANIMALIMAGE"}
    return {k: v for k, v in sent_row.items() if k not in skip} == {
        k: v for k, v in row.items() if k not in skip
    }
