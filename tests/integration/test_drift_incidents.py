"""Drift incidents in the database: admins hear of a shift once; it stays open until a model trained
on photos from after it is promoted, or an admin accepts the photos as the new normal."""

from datetime import UTC, datetime, timedelta

import pytest

from jobs import incidents
from jobs.incidents import IncidentClosed, IncidentFacts
from storage import lifecycle_repository as repo
from storage.db import make_engine
from storage.db import session as open_session
from storage.lifecycle_tables import AliasMove, DatasetVersion, DriftReport, ModelVersion
from storage.vocabulary import DriftTest, IncidentClose, IncidentKind

DAY1 = datetime(2026, 1, 5, 20, 0, tzinfo=UTC)
FACTS = IncidentFacts(kind=IncidentKind.SHIFT, changed=[DriftTest.BRIGHTNESS], since=DAY1, photos=40)


def _check(engine, day: int, drift: bool = True, trigger: str = "schedule") -> int:
    with open_session(engine) as session:
        report = DriftReport(
            created_at=DAY1 + timedelta(days=day - 1),
            drift=drift,
            model_version="lite0-v0",
            reference="training",
            trigger=trigger,
        )
        session.add(report)
        session.commit()
        return report.id


def _alarm(engine, day: int, after_alarms: int = 1) -> tuple[int | None, bool]:
    report_id = _check(engine, day)
    incident, opened = incidents.record_alarm(
        engine,
        report_id=report_id,
        now=DAY1 + timedelta(days=day - 1),
        model_version="lite0-v0",
        facts=FACTS,
        after_alarms=after_alarms,
    )
    return incident.id if incident else None, opened


def _model(engine, version: str, folded_at: datetime) -> None:
    with open_session(engine) as session:
        dataset = DatasetVersion(created_at=folded_at)
        session.add(dataset)
        session.commit()
        session.add(ModelVersion(version=version, backbone="lite0", dataset_version=dataset.id))
        session.commit()


def test_an_open_incident_sends_no_second_alert_and_a_promotion_after_it_closes_it(database_url):
    engine = make_engine(database_url)
    first, opened = _alarm(engine, 2)
    assert opened
    assert _alarm(engine, 3) == (first, False) and _alarm(engine, 4) == (first, False)  # folded in
    with open_session(engine) as session:
        row = repo.incident(first, session=session)
        assert row.alarms == 3 and IncidentFacts.from_json(row.facts) == FACTS
    # A model trained on a dataset folded before the shift does not close it; one folded after does.
    _model(engine, "lite0-v1", DAY1)
    later = DAY1 + timedelta(days=4)
    assert incidents.close_after_promotion(engine, version="lite0-v1", now=later, photo_ids=[1]) == []
    with open_session(engine) as session:
        assert incidents.new_normal(session=session) is None  # nothing closed yet
    _model(engine, "lite0-v2", DAY1 + timedelta(days=3))
    assert incidents.close_after_promotion(engine, version="lite0-v2", now=later, photo_ids=[9, 8]) == [first]
    with open_session(engine) as session:
        row = repo.incident(first, session=session)
        assert row.closed_how == IncidentClose.PROMOTED and row.closed_by == "lite0-v2"
        # The model learned the shift: the photos then recent are the new normal drift compares with.
        assert incidents.new_normal(session=session).photo_ids == [8, 9]
    second, opened = _alarm(engine, 6)
    assert opened and second != first  # after it closed, an alarm is news again
    engine.dispose()


def test_expected_makes_the_recent_photos_the_reference_until_the_next_incident_closes(database_url):
    engine = make_engine(database_url)
    with open_session(engine) as session:
        session.add(AliasMove(to_version="lite0-v0", kind="init", moved_at=DAY1 - timedelta(days=1)))
        session.commit()
    opened, _ = _alarm(engine, 2)
    accepted = incidents.accept_new_normal(
        engine, opened, actor="1001", now=DAY1 + timedelta(days=2), photo_ids=[7, 5, 6]
    )
    assert accepted.closed_how == IncidentClose.EXPECTED and accepted.closed_by == "1001"
    with open_session(engine) as session:
        assert incidents.new_normal(session=session).photo_ids == [5, 6, 7]
    with pytest.raises(IncidentClosed):  # a second admin pressing the same button
        incidents.accept_new_normal(engine, opened, actor="1002", now=DAY1 + timedelta(days=2), photo_ids=[1])
    with pytest.raises(LookupError):
        incidents.accept_new_normal(engine, 999, actor="1002", now=DAY1, photo_ids=[1])
    with open_session(engine) as session:
        session.add(
            AliasMove(
                from_version="lite0-v0",
                to_version="lite0-v1",
                kind="promote",
                moved_at=DAY1 + timedelta(days=3),
            )
        )
        session.commit()
        # A new champion does not bring the old shift back: its training photos are mostly from before.
        assert incidents.new_normal(session=session).photo_ids == [5, 6, 7]
    later, _ = _alarm(engine, 5)
    incidents.accept_new_normal(engine, later, actor="1001", now=DAY1 + timedelta(days=5), photo_ids=[11])
    with open_session(engine) as session:
        assert incidents.new_normal(session=session).photo_ids == [11]  # the newest closed incident's
    engine.dispose()


def test_an_incident_opens_only_when_the_alarm_held_on_consecutive_checks(database_url):
    engine = make_engine(database_url)
    assert _alarm(engine, 1, after_alarms=2) == (None, False)  # a lone alarm: not told yet
    _check(engine, 2, drift=False)  # the next check was quiet: it was chance
    assert _alarm(engine, 3, after_alarms=2) == (None, False)
    _check(engine, 3, trigger="telegram")  # a manual check in between does not break the run
    incident_id, opened = _alarm(engine, 4, after_alarms=2)
    assert opened and incident_id is not None
    with open_session(engine) as session:
        assert repo.incident(incident_id, session=session).alarms == 2
    engine.dispose()
