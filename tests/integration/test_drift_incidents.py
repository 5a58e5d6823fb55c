"""Drift incidents in the database: admins hear of a shift once, again only after the champion changed."""

from datetime import UTC, datetime, timedelta

from conftest import default_settings

from dogbot.app import lifecycle_config
from jobs.service import LifecycleJobs
from storage.db import make_engine
from storage.db import session as open_session
from storage.lifecycle_tables import AliasMove, DriftReport

DAY1 = datetime(2026, 1, 5, 20, 0, tzinfo=UTC)


def test_an_open_incident_sends_no_second_alert(database_url, predictor, tmp_path):
    engine = make_engine(database_url)
    jobs = LifecycleJobs(
        engine=engine,
        predictor=predictor,
        model_dir=tmp_path / "models",
        config=lifecycle_config(default_settings()),
        clock=lambda: DAY1,
    )

    def check(day: int, alarm: bool) -> list[int]:
        with open_session(engine) as session:
            session.add(
                DriftReport(
                    created_at=DAY1 + timedelta(days=day - 1),
                    drift=alarm,
                    model_version="lite0-v0",
                    reference="training",
                )
            )
            session.commit()
        reports, _ = jobs.recent_events()
        return sorted(r.id for r in reports)

    with open_session(engine) as session:
        session.add(AliasMove(to_version="lite0-v0", kind="init", moved_at=DAY1 - timedelta(days=1)))
        session.commit()
    assert check(1, False) == []
    assert check(2, True) == [2]  # the shift: one message
    assert check(3, True) == [2] and check(4, True) == [2]  # folded into the open incident
    with open_session(engine) as session:
        session.add(
            AliasMove(
                from_version="lite0-v0",
                to_version="lite0-v1",
                kind="promote",
                moved_at=DAY1 + timedelta(days=3, hours=2),
            )
        )
        session.commit()
    assert check(5, False) == [2]
    assert check(6, True) == [2, 6]  # after a new champion, an alarm is news again
    engine.dispose()
