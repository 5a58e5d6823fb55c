"""One truth per fact (issue 27): /status, /drift, /models and the retrain report and chart say the
same thing about the same records, in numbers a manager uses, and models go by their dates."""

from __future__ import annotations

from datetime import UTC, datetime

import matplotlib.figure
import pytest

from bot import texts
from dogbot.core.reporting import CatalogStatus
from dogbot.lifecycle_text import model_list, model_name, verdict_words
from jobs import charts
from jobs.drift import DriftResult
from jobs.registry import ModelInfo
from jobs.service import LifecycleStatus
from ml.judging import Outcome, SliceComparison, Verdict
from storage.lifecycle_tables import DriftReport

MADE = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)


def _verdict(outcome: Outcome, tally: tuple[int, int], on: str = "everything") -> Verdict:
    changed = SliceComparison(
        n=20, candidate_right=15, champion_right=12, wins=5, losses=2, p_better=0.2, p_worse=0.9
    )
    rest = SliceComparison(
        n=40, candidate_right=26, champion_right=26, wins=3, losses=3, p_better=0.6, p_worse=0.6
    )
    none = SliceComparison(0, 0, 0, 0, 0, 1.0, 1.0)
    return Verdict(
        promote=outcome == Outcome.BETTER,
        reason="log English",
        changed=changed,
        new_breeds_slice=none,
        rest=rest,
        unbiased=none,
        golden=none,
        n_labelled=60,
        n_compared=60,
        folds=5,
        outcome=outcome,
        on=on,
        tally=tally,
        needed=5,
    )


def test_status_and_drift_agree_when_there_are_too_few_photos() -> None:
    report = DriftReport(created_at=MADE, drift=False, model_version="lite0-v0", reference="first_window",
                         reference_n=30, current_n=21, tests=[])  # fmt: skip
    status = texts.status(
        CatalogStatus("lite0-v0", 0, 51, 0, 40, 0),
        LifecycleStatus("lite0-v0", None, report, None, drift_min_photos=50),
    )
    assert "too few photos to tell: needs 50 recent, has 21" in status
    assert "look as before" not in status  # what /status said while /drift said it could not tell
    drift = texts.drift_report(
        DriftResult(False, [], 30, 21, "first_window", "lite0-v0", extra={"min_photos": 50})
    )
    assert "needs 50 earlier and 50 recent photos; there are 30 and 21" in drift


def test_status_never_says_not_retrained_beside_a_last_retrain() -> None:
    from storage.lifecycle_tables import ModelVersion

    tried = ModelVersion(version="lite0-v1", backbone="lite0", status="rejected", created_at=MADE)
    status = texts.status(
        CatalogStatus("lite0-v0", 0, 1, 0, 1, 0), LifecycleStatus("lite0-v0", None, None, tried)
    )
    assert "not retrained here yet" not in status
    assert "Last retrain: the model of 3 Dec, 14:05 was not better, so it was not used" in status


def test_models_are_named_by_date_with_what_they_learned_and_the_judges_count() -> None:
    rows = [
        ModelInfo("lite0-v0", "promoted", False, MADE.replace(day=1), None, 121, "init", None, "", None),
        ModelInfo("lite0-v1", "promoted", True, MADE, 1, 122, "manual", "1", "log English", _metrics()),
    ]
    listed = model_list(rows, name=lambda key: key.title())
    lines = listed.splitlines()
    assert lines[0] == "▶ The model of 3 Dec, 14:05: answering now"
    assert "learned Kooikerhondje" in listed
    assert "right on 41 of 60 labelled photos it had not learned from (the one before: 38)" in " ".join(
        listed.split()
    )
    assert "lite0" not in listed and max(len(line) for line in lines) <= 60
    assert model_name("lite0-v0", MADE) == "the starting model"


def _metrics():
    from jobs.scores import ModelScores, RetrainMetrics, SplitScores
    from ml.training import TrainReport

    scores = ModelScores(validation=SplitScores(n=0, top1=None), golden=SplitScores(n=0, top1=None))
    return RetrainMetrics(
        train=TrainReport(
            breeds_added=["kooikerhondje"],
            breeds_too_few=[],
            n_train=60,
            n_val=0,
            new_bias_offset=0.0,
            temperature=1.0,
            final_loss=0.0,
        ),
        candidate=scores,
        champion=scores,
        champion_version="lite0-v0",
        verdict=_verdict(Outcome.BETTER, (5, 2), on="changed"),
    )


@pytest.mark.parametrize("tally", [(0, 3), (0, 0)])
def test_a_verdict_with_no_photo_won_does_not_call_it_luck(tally) -> None:
    words = verdict_words(_verdict(Outcome.NOT_BETTER, tally, on="changed"))
    assert "luck" not in words and "too few to be sure" not in words
    assert words.startswith(
        "on what changed (new breeds, new kinds of photos) the new one got no photo right"
    )


def test_the_retrain_chart_draws_only_panels_that_say_something(tmp_path, monkeypatch) -> None:
    drawn = []
    save = matplotlib.figure.Figure.savefig

    def savefig(figure, *args, **kwargs):
        drawn.append([" ".join(ax.get_title().split()) for ax in figure.axes if ax.axison])
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    same = {"pug": {"n": 4, "top1": 0.5}}
    tie = [{"truth": "pug", "predicted": "beagle", "n": 2}, {"truth": "boxer", "predicted": "pug", "n": 2}]
    charts.error_analysis_png(
        tmp_path / "a.png", title="t", per_breed=same, champion_per_breed=same, confusions=tie
    )
    better = {"pug": {"n": 4, "top1": 0.75}}
    charts.error_analysis_png(
        tmp_path / "b.png", title="t", per_breed=better, champion_per_breed=same, confusions=tie
    )
    charts.error_analysis_png(
        tmp_path / "c.png",
        title="t",
        per_breed=better,
        champion_per_breed=same,
        confusions=tie[:1] + [dict(tie[1], n=1)],
    )
    words = charts.ChartWords()
    assert drawn == [
        [],  # nothing differs, every mix-up as often as the other: one line says so, no empty axes
        [words.change_title],
        [words.change_title, words.mixups_title],
    ]


def test_the_report_is_the_shelters_own_intake_day_by_day() -> None:
    from datetime import date

    from dogbot.intake_report import intake_days, intake_summary

    def row(day: int, source: str, label: str, predicted: str) -> dict:
        received = datetime(2026, 12, day, 10, tzinfo=UTC).isoformat()
        return {"received_at": received, "label_source": source, "label": label, "predicted_breed": predicted}

    rows = [
        row(1, "auto", "Pug", "Pug"),  # sure: nobody was asked
        row(1, "staff", "Beagle", "Pug"),  # asked, and the model was wrong
        row(3, "staff", "Boxer", "Boxer"),  # asked, and the model was right
        row(3, "", "", "Pug"),  # still waiting for staff
        row(2, "import", "Pug", "Pug"),  # history loaded in bulk: not intake
    ]
    alarm, promotion = datetime(2026, 12, 2, 8, tzinfo=UTC), datetime(2026, 12, 3, 9, tzinfo=UTC)
    days = intake_days(rows, [alarm], [promotion], today=date(2026, 12, 3))
    assert [(d.day.day, d.photos, d.asked, d.checked, d.model_right, d.alarms, d.promoted) for d in days] == [
        (1, 2, 1, 1, 0, 0, 0),
        (2, 0, 0, 0, 0, 1, 0),
        (3, 2, 2, 1, 1, 0, 1),
    ]
    summary = intake_summary(days)
    assert "The last 3 days: 4 photos came in; staff answered 3 of them." in summary
    assert "On the 2 photos people labelled, the model had said the same for 1." in summary
    assert "Simulation" not in summary


async def test_report_answers_from_the_catalog_not_a_simulation(bot, dog_photos) -> None:
    from conftest import ADMIN_ID, STAFF_ID

    (bot.container.settings.data_dir / "reports").mkdir(parents=True, exist_ok=True)
    (bot.container.settings.data_dir / "reports" / "simulation.json").write_text('{"total": {}}')
    await bot.send_text(ADMIN_ID, "/report")
    assert bot.last_reply(ADMIN_ID).params["text"].startswith("No photos have come in yet")
    for kind in ("sure", "unsure"):
        await bot.send_photo(STAFF_ID, dog_photos[kind])
    await bot.send_text(ADMIN_ID, "/report")
    sent = bot.last_reply(ADMIN_ID)
    assert sent.method == "sendPhoto" and "2 photos came in" in sent.params["caption"]
