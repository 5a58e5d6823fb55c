"""A small closed-loop simulation through the real catalog and jobs (the full 30-day run is in bench/)."""

import json

from dogbot.settings import Settings
from dogbot.simulation import parse_shifts
from dogbot.simulation_run import run_simulation


def test_shift_spec_is_parsed_and_checked():
    shifts = parse_shifts("new_breeds@10,dark@20:0.3")
    assert [(s.kind, s.day, s.value) for s in shifts] == [("new_breeds", 10, 0.3), ("dark", 20, 0.3)]
    try:
        parse_shifts("sunny@3")
    except ValueError as error:
        assert "bad shift" in str(error)
    else:
        raise AssertionError("an unknown shift was accepted")


def test_a_small_simulation_reports_every_day(tmp_path, eval_data_dir):
    settings = Settings(_env_file=None, torch_threads=1, data_dir=tmp_path / "live")
    result = run_simulation(
        settings,
        [eval_data_dir / "manifest.csv", eval_data_dir / "other_breeds.csv"],
        data_dir=tmp_path / "data",
        days=4,
        photos_per_day=8,
        staff_error_rate=0.0,
        audit_share=0.5,
        seed=3,
        shifts="new_breeds@2:0.5,dark@3",
        report_dir=tmp_path / "report",
    )
    report = result.to_json()
    total = report["total"]
    assert [day["day"] for day in report["days"]] == [1, 2, 3, 4]
    assert total["photos"] == 32 == sum(day["photos"] for day in report["days"])
    assert set(total) >= {
        "photos",
        "asked_share",
        "catalog_accuracy",
        "new_breed_top1",
        "retrains",
        "drift_alarms",
    }
    assert 0 <= total["asked_share"] <= 1
    # Staff who never err answer everything they are asked correctly: the model is the only error source.
    assert total["catalog_errors_from_staff"] == 0
    assert total["catalog_accuracy"] >= 0.7
    # Issue 28: the estimate the bot can make without the true labels, from the random spot checks.
    assert total["spot_checks"] > 0
    low, high = total["estimated_accuracy_range"]
    assert 0 <= low <= total["estimated_accuracy"] <= high <= 1
    # New breeds arrive on day 2; the base model cannot name them.
    assert (
        report["days"][0]["new_breed_photos"] == 0 and sum(d["new_breed_photos"] for d in report["days"]) > 0
    )
    assert total["new_breed_top1_before_retrain"] == 0.0
    # Issue 11's pace keys: photos darkened from day 3 have a measured gap; 4 days learn no breed.
    assert total["admin_alerts"] == sum(d["admin_alerts"] for d in report["days"]) >= 0
    assert total["new_breed_learned_day"] is None
    assert total["dark_gap"] is not None and -1 <= total["dark_gap"] <= 1
    assert total["new_breed_in_buttons"] is None or 0 <= total["new_breed_in_buttons"] <= 1
    saved = json.loads((tmp_path / "report" / "simulation.json").read_text())
    assert saved["total"]["photos"] == 32
    assert (tmp_path / "report" / "simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Written where it was told and nowhere else: the shelter's /report is its own intake (issue 27).
    assert not (tmp_path / "live").exists()  # the simulation never touches the live catalog folder


def test_the_summary_names_days_only_when_something_happened() -> None:
    """Issue 14: "retrains 0 (promoted 0) on days []"."""
    from dogbot.simulation_run import _on_days

    assert _on_days([]) == "" and _on_days([4]) == " on day 4" and _on_days([3, 10]) == " on days 3, 10"
