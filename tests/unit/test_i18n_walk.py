"""Every admin command and chart, walked in every shipped language: no text that is not in that
language's catalog (issue 27, "English inside Spanish").

The language's real catalog is read through a pseudo-translation that writes every catalog text in
full-width letters (Ｌｉｋｅ ｔｈｉｓ), and breed names from its breed table the same way. What
still shows plain ASCII letters afterwards was never looked up in the catalog: English built in
ml/ or jobs/, an f-string, a breed's English display name, a version string. Placeholders keep
their values, so an English sentence handed to a translated "Why: {why}" is caught too.
"""

from __future__ import annotations

import gettext
import pprint
import re
import string

import matplotlib.figure
import pytest
from conftest import ADMIN_ID, STAFF_ID

from dogbot import i18n

# Full-width letters are not in matplotlib's font: drawn as boxes, which is all right for a test.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Glyph .* missing from font")]

SHIPPED = [language for language in i18n.LANGUAGES if language != i18n.SOURCE_LANGUAGE]
_WIDE = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in string.ascii_letters})
_FIELD = re.compile(r"(\{[^{}]*\})")
# Not words of any language: commands, @names, dog codes, the CLI's name, photo numbers; what the
# person typed, quoted back («pastor»); the harness's people's names (User1001); each language's
# name for itself on the /language buttons.
_ALLOWED = re.compile(
    r"/[a-z_]+|@\w+|\b[A-Z]-\d{4}-\d{4}\b|`dogbot [a-z -]+`|#\d+|«[^»]*»|\bUser\d+\b|"
    + "|".join(rf"^{name}$" for name in i18n.LANGUAGES.values())
)
_ENGLISH = re.compile(r"[A-Za-z]{2,}")


def pseudo(text: str) -> str:
    return "".join(part if part.startswith("{") else part.translate(_WIDE) for part in _FIELD.split(text))


class PseudoCatalog(gettext.NullTranslations):
    """The language's catalog, its translations in full-width letters; a missing one stays English."""

    def __init__(self, real: gettext.NullTranslations) -> None:
        super().__init__()
        self.real = real

    def gettext(self, message: str) -> str:
        found = self.real.gettext(message)
        return pseudo(found) if found != message else found

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        found = self.real.ngettext(singular, plural, n)
        return pseudo(found) if found not in (singular, plural) else found


class PseudoNames(dict):
    def get(self, key, default=None):
        return pseudo(super().get(key, default))


@pytest.fixture
def pseudo_language(monkeypatch):
    real_catalog, real_names = i18n._catalog, i18n.breed_names

    def catalog(language: str):
        found = real_catalog(language)
        return PseudoCatalog(found) if language in SHIPPED else found

    def names(language: str):
        return PseudoNames(real_names(language)) if language in SHIPPED else real_names(language)

    monkeypatch.setattr(i18n, "_catalog", catalog)
    monkeypatch.setattr(i18n, "breed_names", names)


@pytest.fixture
def chart_texts(monkeypatch):
    """Every text drawn on a chart saved while the test runs (titles, labels, ticks, legends)."""
    drawn: list[str] = []
    save = matplotlib.figure.Figure.savefig

    def savefig(figure, *args, **kwargs):
        drawn.extend(t.get_text() for t in figure.findobj(matplotlib.text.Text) if t.get_text())
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return drawn


def untranslated(text: str) -> list[str]:
    """The lines of ``text`` with words no catalog gave (ASCII letters left after the pseudo-translation)."""
    return [line for line in text.splitlines() if _ENGLISH.search(_ALLOWED.sub("", line))]


def test_the_detector_catches_english_and_passes_the_catalog() -> None:
    assert untranslated("Why: Kept the current model") and untranslated(pseudo("Por qué: ") + "Newfoundland")
    assert not untranslated(pseudo("Modelo de {when}: acierta en {n}").format(when="3 ｄｉｃ", n=41))
    assert not untranslated("/drift, D-2026-0042, `dogbot models`, #12, 41 %")


ADMIN_COMMANDS = (
    "/help", "/start", "/status", "/stats", "/breeds", "/breeds pastor", "/conflicts", "/staff",
    "/language", "/models", "/drift", "/retrain", "/retrain full", "/rollback", "/report", "/asm",
    "/addbreed", "/addstaff", "/addstaff nobody", "/apitoken", "/dog", "/dogs", "/export",
    "/nosuchcommand",
)  # fmt: skip


def _said(bot, chat_id: int, since: int) -> list[str]:
    calls = bot.sent(chat_id=chat_id)[since:]
    out = []
    for call in calls:
        for key in ("text", "caption"):
            if call.params.get(key):
                out.append(str(call.params[key]))
        out += list(bot.buttons(call))
    return out


@pytest.mark.parametrize("language", SHIPPED)
async def test_every_admin_command_and_chart_speaks_the_admins_language(
    bot, dog_photos, pseudo_language, chart_texts, language
) -> None:
    bot.container.members.choose_language(ADMIN_ID, language)
    bot.container.members.choose_language(STAFF_ID, language)
    for kind in ("sure", "unsure", "not_dog"):
        await bot.send_photo(STAFF_ID, dog_photos[kind])
    bad = {}
    for command in ADMIN_COMMANDS:
        since = len(bot.sent(chat_id=ADMIN_ID))
        await bot.send_text(ADMIN_ID, command)
        lines = [line for text in _said(bot, ADMIN_ID, since) for line in untranslated(text)]
        if lines:
            bad[command] = lines
    staff_lines = [line for text in _said(bot, STAFF_ID, 0) for line in untranslated(text)]
    if staff_lines:
        bad["staff photos"] = staff_lines
    drawn = [line for text in chart_texts for line in untranslated(text)]
    if drawn:
        bad["charts"] = drawn
    assert bad == {}, pprint.pformat(bad, width=160)


def test_the_charts_english_words_are_the_catalogs_message_ids() -> None:
    from dogbot.lifecycle_text import chart_words
    from jobs.charts import ChartWords

    assert chart_words() == ChartWords()  # else a chart word was changed in one place only


def _verdicts():
    from ml.judging import Outcome, SliceComparison, Verdict

    none = SliceComparison(0, 0, 0, 0, 0, 1.0, 1.0)
    some = SliceComparison(
        n=30, candidate_right=20, champion_right=18, wins=4, losses=2, p_better=0.3, p_worse=0.9
    )
    for outcome in Outcome:
        for on in ("rest", "unbiased", "golden", "changed", "everything"):
            for tally in ((0, 3), (1, 0), (5, 2)):
                yield Verdict(
                    promote=outcome == Outcome.BETTER,
                    reason="English for the log",
                    changed=some,
                    new_breeds_slice=some if on == "changed" else none,
                    rest=some,
                    unbiased=none,
                    golden=none,
                    n_labelled=40,
                    n_compared=3 if outcome == Outcome.TOO_FEW else 30,
                    folds=5,
                    outcome=outcome,
                    on=on,
                    tally=tally,
                    needed=5,
                )


@pytest.mark.parametrize("language", SHIPPED)
def test_every_verdict_retrain_step_and_chart_is_in_the_language(
    language, pseudo_language, chart_texts, tmp_path
) -> None:
    import numpy as np

    from dogbot.lifecycle_text import chart_words, nothing_trained, retrain_step, verdict_words
    from jobs import charts, retrain

    with i18n.using(language):
        said = [verdict_words(v) for v in _verdicts()]
        said += [
            nothing_trained(r) for r in (retrain.NO_LABELS, retrain.NO_BREED_PHOTOS, retrain.NOTHING_NEW)
        ]
        said += [retrain_step("starting")] + [
            retrain_step(retrain.RetrainStep(step, photos=3, golden=1))
            for step in ("fold", "judge", "train", "save")
        ]
        words = chart_words()
        name = lambda key: i18n.breed_name(key, key.title())  # noqa: E731
    with i18n.using(language):  # drawn in the reader's language, as the bot's threads do
        tests = [
            {"name": test, "alarm": i == 0, "statistic": None if i == 1 else 0.5}
            for i, test in enumerate(("brightness", "confidence", "embedding_auc", "breed_distribution"))
        ]
        rng = np.random.default_rng(0)
        charts.drift_png(
            tmp_path / "drift.png",
            title=words.drift_title.format(n=60, before=words.before_first, verdict=words.drift_no),
            tests=tests,
            brightness=(rng.random(60), rng.random(60) * 0.5),
            confidence=(rng.random(60), rng.random(60)),
            breeds=({"beagle": 0.5, "pug": 0.2}, {"beagle": 0.3, "not a dog": 0.1}),
            name=name,
            before_label=words.before_first,
            words=words,
        )
        charts.error_analysis_png(
            tmp_path / "errors.png",
            title=words.retrain_title.format(answer=words.retrain_yes),
            per_breed={"beagle": {"n": 5, "top1": 0.8}, "pug": {"n": 4, "top1": 0.5}},
            champion_per_breed={"beagle": {"n": 5, "top1": 0.4}, "pug": {"n": 4, "top1": 0.75}},
            confusions=[{"truth": "pug", "predicted": "beagle", "n": 2}],
            name=name,
            new_breeds=["beagle"],
            words=words,
        )
    assert chart_texts, "no chart was drawn"
    bad = [line for text in said + chart_texts for line in untranslated(text)]
    assert bad == []


def test_the_workers_threads_draw_charts_in_the_shelters_language() -> None:
    """Scheduled jobs run in threads no update set a language in: they use the shelter's."""
    import threading

    from dogbot.lifecycle_text import chart_words

    said = []
    i18n.set_default_language("es")
    try:
        worker = threading.Thread(target=lambda: said.append(chart_words().drift_no))
        worker.start()
        worker.join()
        with i18n.using("en"):  # an update's choice still wins
            said.append(chart_words().drift_no)
    finally:
        i18n.set_default_language(i18n.SOURCE_LANGUAGE)
    assert said == ["No, han cambiado.", "No, they changed."]
