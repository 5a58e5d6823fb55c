"""jobs.incidents: the first alarm after the champion changed opens an incident; later ones fold in."""

from datetime import UTC, datetime, timedelta

from jobs.incidents import incident_openers
from storage.lifecycle_tables import DriftReport

DAY1 = datetime(2026, 1, 5, 20, 0)


def _reports(alarms: list[bool], trigger: str = "schedule") -> list[DriftReport]:
    return [
        DriftReport(
            id=i + 1, created_at=DAY1 + timedelta(days=i), drift=alarm, model_version="v0", trigger=trigger
        )
        for i, alarm in enumerate(alarms)
    ]


def test_an_open_incident_sends_no_second_alert():
    reports = _reports([False, True, True, False, True, True])  # days 1-6
    assert incident_openers(reports, [DAY1 - timedelta(days=1)]) == {2}


def test_a_new_champion_closes_the_incident_and_the_next_alarm_opens_another():
    reports = _reports([True, True, True, True])
    promoted = DAY1 + timedelta(days=1, hours=2)  # after day 2's check
    assert incident_openers(reports, [DAY1 - timedelta(days=1), promoted]) == {1, 3}
    # Aware and naive datetimes (PostgreSQL and SQLite) compare as UTC.
    aware = promoted.replace(tzinfo=UTC)
    assert incident_openers(reports, [aware]) == {1, 3}


def test_manual_checks_never_alert():
    assert incident_openers(_reports([True, True], trigger="manual"), []) == set()


def test_a_change_at_the_moment_of_an_alarm_came_after_it():
    reports = _reports([True, True, True])
    same_tick = DAY1 + timedelta(days=1)  # day 2's check, then a promotion on the same clock reading
    assert incident_openers(reports, [same_tick]) == {1, 3}
