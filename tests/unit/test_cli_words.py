"""The command line speaks to people (issue 27): words by default, statistics only in --json."""

from __future__ import annotations

import argparse
import json
import re
from types import SimpleNamespace

from dogbot.lifecycle_cli import cmd_drift
from dogbot.simulation_run import format_summary
from jobs.drift import DriftResult

# What the statistics looked like in the old default output: "AUC 0.53", "KS p=5.4e-26", "first_window (0)".
STATISTICS = re.compile(r"\bAUC\b|\bp=|\bKS\b|first_window|new_normal|embedding_auc|\d\.\d+e-\d+")


def _drift(result: DriftResult, *, as_json: bool, capsys) -> str:
    container = SimpleNamespace(
        lifecycle=SimpleNamespace(drift=lambda trigger: result), breeds=SimpleNamespace(breed_name=str.title)
    )
    assert cmd_drift(container, argparse.Namespace(json=as_json)) == 0
    return capsys.readouterr().out


def test_drift_speaks_words_and_keeps_the_statistics_for_json(capsys) -> None:
    darker = {
        "name": "brightness",
        "alarm": True,
        "statistic": 0.41,
        "p_value": 5.4e-26,
        "detail": "KS p=5.4e-26",
        "facts": {"lower": True, "beyond": 41, "n": 50},
    }
    look = {"name": "embedding_auc", "alarm": False, "statistic": 0.53, "p_value": 0.4, "detail": "AUC 0.53"}
    result = DriftResult(True, [darker, look], 50, 50, "first_window", "lite0-v0", chart="/tmp/drift.png")
    words = _drift(result, as_json=False, capsys=capsys)
    assert "41 of the last 50 photos are darker than usual" in words and "chart: /tmp/drift.png" in words
    assert not STATISTICS.search(words), words
    stats = json.loads(_drift(result, as_json=True, capsys=capsys))
    assert stats["tests"][0]["p_value"] == 5.4e-26  # tools still get every number


def test_drift_with_too_few_photos_says_how_many_it_needs(capsys) -> None:
    result = DriftResult(False, [], 0, 21, "first_window", "lite0-v0", extra={"min_photos": 50})
    words = _drift(result, as_json=False, capsys=capsys)
    assert "a check needs 50 earlier and 50 recent photos; there are 0 and 21" in words
    assert not STATISTICS.search(words), words


def test_the_simulation_summary_is_in_words() -> None:
    total = {
        "photos": 90, "asked_share": 0.4, "audited_share": 0.05, "catalog_accuracy": 0.97,
        "catalog_errors": 3, "catalog_errors_from_staff": 2, "catalog_errors_from_model": 1,
        "new_breed_top1_before_retrain": None, "new_breed_top1": None, "retrains": 1, "promotions": 0,
        "retrain_days": [4], "drift_alarms": 1, "drift_alarm_days": [20], "new_breed_learned_day": None,
        "new_breed_in_buttons": None, "admin_alerts": 1, "dark_gap": None,
    }  # fmt: skip
    day = SimpleNamespace(day=20, events=["the photos changed: brightness"])
    text = format_summary(SimpleNamespace(total=total, days=[day]))
    assert "90 photos over 1 day: staff answered 40.0% of them" in text
    assert "1 retrain, 0 put to work on day 4; 1 alarm that the photos changed on day 20" in text
    assert "no model learned a new breed" in text and "admins got 1 message about changed photos" in text
    for old in ("top-1", "on day never", "1 drift messages", "n/a"):
        assert old not in text, old
