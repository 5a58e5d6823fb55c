"""Everything the bot says, as pure functions of plain values: easy to read, test and translate.

Messages are plain text (no parse mode), so a breed name an admin typed can never break markup.
The retrain report and the model list read the same in the chat and the terminal: they are in
dogbot/lifecycle_text.py, beside the CLI's own words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo

from dogbot.core.intake import Classification
from dogbot.core.members import Role
from dogbot.core.reporting import CatalogStatus
from jobs.drift import DriftResult
from jobs.service import LifecycleStatus
from storage.lifecycle_tables import ModelVersion
from storage.vocabulary import MIXED_BREED, NOT_A_DOG, SKIP, DriftTest, LabelSource, ModelStatus, Outcome

Name = Callable[[str], str]  # breed key (or special label) -> what people read

# Between a message's verdict (the model's answer, or a /review photo's caption) and the line saying
# where the photo stands: an edit replaces what follows it, so the message shows the current state once.
ANSWER_SEPARATOR = "\n—\n"

TOKEN_REFUSED = "Telegram refused the bot token. Check DOGBOT_TELEGRAM_TOKEN (from @BotFather)."


def telegram_unreachable(base_url: str, why: str) -> str:
    host = base_url.split("//", 1)[-1].split("/", 1)[0]
    return (
        f"Cannot reach Telegram at {host} ({why}); check this machine's internet connection "
        "(or DOGBOT_TELEGRAM_BASE_URL), then run again."
    )


BOTFATHER = (
    "No Telegram bot token is set.\n"
    "1. In Telegram, open a chat with @BotFather and send /newbot; follow its questions.\n"
    "2. It answers with a token like 123456789:AAE...; put it in the environment or in .env:\n"
    "   DOGBOT_TELEGRAM_TOKEN=123456789:AAE...\n"
    "3. Put your own Telegram user id in DOGBOT_ADMIN_IDS (ask @userinfobot for it), then run again."
)

COMMANDS_STAFF = {
    "start": "what this bot is",
    "help": "what you can do",
    "review": "label photos that are waiting",
    "status": "model and catalog at a glance",
    "stats": "counts per breed and label source",
    "breeds": "the breeds I know (or /breeds NAME to search)",
}
COMMANDS_ADMIN = {
    "export": "the catalog as a CSV file",
    "conflicts": "photos where staff disagree",
    "addbreed": "add a breed: /addbreed NAME",
    "addstaff": "give someone staff rights: /addstaff USER_ID",
    "removestaff": "take staff rights away: /removestaff USER_ID",
    "staff": "who has staff rights",
    "retrain": "retrain the breed model on new labels",
    "drift": "check whether incoming photos changed",
    "models": "model versions and their accuracy",
    "rollback": "serve the previous model again",
    "report": "the chart of the last simulated month",
}


def percent(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "<1%"


def special_name(key: str) -> str | None:
    return {MIXED_BREED: "Mixed breed", NOT_A_DOG: "Not a dog", SKIP: "Skipped"}.get(key)


# --- who may do what ----------------------------------------------------------------------------
def stranger(user_id: int) -> str:
    return (
        "Sorry, this bot is only for the shelter's staff. "
        f"If you work there, ask an admin to add you: your Telegram user id is {user_id}."
    )


def admin_only() -> str:
    return "Only admins can do that."


def welcome(role: Role, first_name: str) -> str:
    who = "an admin" if role is Role.ADMIN else "staff"
    return (
        f"Hello {first_name}! I help the shelter catalog new arrivals by breed. You are {who} here.\n"
        "Send me a photo of a dog and I tell you its breed; if I am unsure, you pick the right one.\n"
        "/help lists everything you can do."
    )


def help_text(role: Role) -> str:
    lines = [
        "I catalog new arrivals by dog breed.",
        "",
        "Send a photo (or an image file up to 20 MB, or an album) and I answer with the likely breed.",
        "When I'm sure, the dog is registered at once; press “Wrong?” if I'm not right.",
        "When I'm unsure, pick the breed, Mixed breed, Not a dog, Other… (type a name) or Skip.",
        "",
        "Staff commands:",
        *(f"/{name} — {what}" for name, what in COMMANDS_STAFF.items()),
    ]
    if role is Role.ADMIN:
        lines += ["", "Admin commands:", *(f"/{name} — {what}" for name, what in COMMANDS_ADMIN.items())]
    else:
        lines += ["", "Admins can also export the catalog, add breeds and staff, and retrain the model."]
    return "\n".join(lines)


# --- photos ---------------------------------------------------------------------------------------
def classification(result: Classification, name: Name) -> str:
    """The answer to a photo: what the model thinks and what happens next."""
    photo_id = result.photo.id
    lines = [f"I've seen this photo before (#{photo_id})."] if result.duplicate else []
    guesses = ", ".join(f"{breed.display_name} {percent(p)}" for breed, p in result.top)
    if result.outcome == Outcome.NOT_A_DOG:
        lines.append(f"This does not look like a dog ({percent(result.prediction.confidence)} sure).")
    elif result.outcome == Outcome.AUTO_ACCEPTED:
        top, p = result.top[0]
        lines.append(f"🐕 {top.display_name} ({percent(p)} sure).")
        if len(result.top) > 1:
            lines.append(
                "Also possible: " + ", ".join(f"{b.display_name} {percent(q)}" for b, q in result.top[1:])
            )
    elif result.lookalikes:
        top, p = result.top[0]
        learning = " or ".join(name(key) for key in result.lookalikes)
        lines.append(
            f"🤔 It looks like a {top.display_name} ({percent(p)}), but staff lately corrected that "
            f"to {learning}, which I am still learning. Best guesses: {guesses}."
        )
    elif result.learning and result.held_back:
        top, p = result.top[0]
        learning = " or ".join(name(key) for key in result.learning)
        lines.append(
            f"🤔 It looks like a {top.display_name} ({percent(p)}), but also like photos staff "
            f"labelled {learning}, which I am still learning. Best guesses: {guesses}."
        )
    elif result.learning:
        learning = " or ".join(name(key) for key in result.learning)
        lines.append(
            f"🤔 I'm not sure. Best guesses: {guesses}; it also looks like photos staff labelled {learning}."
        )
    else:
        lines.append(f"🤔 I'm not sure. Best guesses: {guesses}.")
    return "\n".join(lines) + ANSWER_SEPARATOR + photo_state(result, name)


def photo_state(result: Classification, name: Name) -> str:
    """The line under the model's verdict: what the catalog holds now and what staff can do."""
    photo_id, decided = result.photo.id, result.label
    if decided is not None and decided.breed == NOT_A_DOG:
        return f"Photo #{photo_id} is catalogued as not a dog. If it is a dog, press “It is a dog”."
    if decided is not None:
        return f"Registered as #{photo_id}: {name(decided.breed)}."
    if result.outcome == Outcome.NOT_A_DOG:
        return f"Saved as photo #{photo_id}. If it is a dog, press “It is a dog”."
    return f"Which breed is photo #{photo_id}?"


def reopened(photo_id: int, *, overruled_not_a_dog: bool) -> str:
    """The line under the verdict once someone pressed “Wrong?” or “It is a dog”."""
    if overruled_not_a_dog:
        return f"You say it is a dog: which breed is photo #{photo_id}?"
    return f"Which breed is photo #{photo_id}, then?"


def stored_unclassified(photo_id: int) -> str:
    return (
        f"Saved as photo #{photo_id}, but I couldn't classify it just now. "
        "It is safe and waiting for review (/review)."
    )


def rejected(reason: str) -> str:
    return f"{reason} Nothing was saved. Please send a photo of the dog."


def too_big(size_bytes: int | None, limit_mb: int) -> str:
    size = f" ({size_bytes / 1024 / 1024:.1f} MB)" if size_bytes is not None else ""
    return (
        f"This file is too big{size}; I can take files up to {limit_mb} MB. "
        "Please send it as a photo instead, or a smaller file."
    )


def not_an_image(file_name: str | None, mime_type: str | None) -> str:
    what = f"“{file_name}”" if file_name else "This file"
    kind = f" ({mime_type})" if mime_type else ""
    return f"{what}{kind} is not an image. Please send a photo of the dog."


def download_failed() -> str:
    return "I couldn't download that file from Telegram. Please send it again."


def slow_down(limit: int) -> str:
    return f"That's more than {limit} photos in a minute. Please wait a moment, then send the rest again."


STICKER = "Nice sticker! To catalog a dog I need a photo, though."
VOICE = "I can't listen to voice or audio messages. Please send a photo of the dog."
ANIMATION = "I can't catalog GIFs or animations. Please send a still photo of the dog."
VIDEO = "I can't catalog videos. Please send a still photo of the dog."
UNSUPPORTED = "I only understand photos of dogs (and /help)."
TEXT_HINT = "Send me a photo of a dog, or /help to see what I can do."


# --- answers -------------------------------------------------------------------------------------
def answer_saved(photo_id: int, given: str, decided: str | None, conflict: bool, name: Name) -> str:
    """The question message after someone answered it."""
    if given == SKIP:
        return f"⏭ Skipped photo #{photo_id}; it waits in /review."
    if given == NOT_A_DOG:
        line = f"✅ Photo #{photo_id}: not a dog."
    else:
        line = f"✅ Registered as #{photo_id}: {name(given)}."
    if decided is not None and decided != given:
        line += f"\nThe catalog says {name(decided)} (an admin's or most people's answer)."
    if conflict:
        line += "\nStaff disagree about this photo; admins see it in /conflicts."
    return line


def answer_toast(given: str, created: bool, name: Name) -> str:
    if not created:
        return "Already saved."
    return "Skipped." if given == SKIP else f"Saved: {name(given)}"


STALE = "This question is out of date (the photo was re-examined). Use /review to answer it again."
FORGED = "Sorry, I can't use that button. Send the photo again or use /review."
NOT_STAFF_BUTTON = "Only shelter staff can answer."
UNKNOWN_BREED = "I don't know that breed any more. Please choose again."


def ask_breed_name(photo_id: int) -> str:
    return f"Photo #{photo_id}: which breed is it? Type its name as a reply to this message."


def breed_matches(photo_id: int, typed: str) -> str:
    return f"Photo #{photo_id}: which breed did you mean by “{typed}”?"


def no_breed_match(typed: str, role: Role) -> str:
    hint = (
        f"Add it with /addbreed {typed}, then type it again."
        if role is Role.ADMIN
        else "Try another spelling, or ask an admin to add it with /addbreed."
    )
    return f"I don't know a breed called “{typed}”. {hint}"


# --- review ----------------------------------------------------------------------------------------
def review_caption(photo_id: int, received: str, top: Sequence[tuple[str, float]], is_dog: bool) -> str:
    guesses = ", ".join(f"{breed} {percent(p)}" for breed, p in top)
    verdict = (
        f"Best guesses: {guesses}." if is_dog else f"The model thinks it is not a dog ({guesses} if it is)."
    )
    return f"Photo #{photo_id} (received {received}). {verdict}{ANSWER_SEPARATOR}Which breed is it?"


REVIEW_DONE = "🎉 Nothing is waiting for review."


# --- admin ---------------------------------------------------------------------------------------
def local_time(moment: datetime, tz: tzinfo) -> str:
    """A stored time (UTC; naive ones from SQLite are UTC too) as the shelter's clock shows it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"


def status(report: CatalogStatus, lifecycle: LifecycleStatus, tz: tzinfo = UTC) -> str:
    """/status: which model answers, the catalog, when the model was last checked and retrained."""
    if lifecycle.accuracy is not None:
        right = percent(lifecycle.accuracy)
        model = f"Model: {report.model_version}, right on {right} of the photos it was tested on"
    else:
        model = f"Model: {report.model_version}, the starting model (not retrained here yet)"
    drift, trained = lifecycle.last_drift_check, lifecycle.last_retrain
    drift_text, retrain_text = "never", "never"
    if drift is not None:
        verdict = "new photos look different, see /drift" if drift.drift else "new photos look as before"
        drift_text = f"{local_time(drift.created_at, tz)} ({verdict})"
    if trained is not None:
        if trained.version == lifecycle.model_version:
            outcome = f"{trained.version}, now answering"
        elif trained.status == ModelStatus.PROMOTED:
            outcome = f"{trained.version} was put to work, then rolled back"
        else:
            outcome = f"{trained.version} was not better, so it was not used"
        retrain_text = f"{local_time(trained.created_at, tz)} ({outcome})"
    return "\n".join(
        [
            model,
            f"Photos: {report.photos_today} today, {report.photos_total} in total",
            f"Waiting for a label: {report.awaiting_label}",
            f"Labels: {report.labels_total} ({report.conflicts} photos with disagreement)",
            f"Last check for changed photos: {drift_text}",
            f"Last retrain: {retrain_text}",
        ]
    )


def label_source(source: str) -> str:
    """Who decided a label, in words."""
    return {
        LabelSource.STAFF: "staff",
        LabelSource.ADMIN: "admins",
        LabelSource.AUTO: "the model on its own (sure enough)",
        LabelSource.IMPORT: "imported",
    }.get(source, source)


def stats(
    rows: Iterable[Mapping[str, object]], conflicts: int, role: Role = Role.STAFF, limit: int = 30
) -> str:
    """Per-breed counts of the catalog, where labels came from, and how many photos are disputed."""
    rows = list(rows)
    breeds = Counter(str(row["label"]) for row in rows if row["label"])
    sources = Counter(str(row["label_source"]) for row in rows if row["label_source"])
    unlabeled = sum(1 for row in rows if not row["label"])
    lines = [f"{len(rows)} photos, {unlabeled} without a label, {conflicts} with disagreement."]
    if sources:
        lines.append(
            "Who decided: " + ", ".join(f"{label_source(source)} {n}" for source, n in sources.most_common())
        )
    if breeds:
        lines.append("")
        lines += [f"{breed}: {n}" for breed, n in breeds.most_common(limit)]
        if len(breeds) > limit:
            where = "/export has them all" if role is Role.ADMIN else "an admin can /export them all"
            lines.append(f"… and {len(breeds) - limit} more breeds ({where})")
    return "\n".join(lines)


def conflicts(items: Sequence[tuple[int, Sequence[tuple[int | None, str, str]]]], name: Name) -> str:
    """Photos people disagree about: ``(photo id, [(user id, source, breed key), ...])``."""
    if not items:
        return "No disagreements. 👍"
    lines = [f"{len(items)} photos where people disagree:"]
    for photo_id, answers in items[-20:]:
        said = "; ".join(f"{user} ({source}): {name(breed)}" for user, source, breed in answers)
        lines.append(f"#{photo_id}: {said}")
    return "\n".join(lines)


def breed_list(names: Sequence[str]) -> str:
    return f"I know {len(names)} breeds (plus Mixed breed and Not a dog):\n" + ", ".join(names)


def breed_search(typed: str, names: Sequence[str]) -> str:
    if not names:
        return f"No breed matches “{typed}”."
    return f"Breeds matching “{typed}”:\n" + "\n".join(names)


def breed_added(display_name: str, key: str) -> str:
    return (
        f"Added “{display_name}” ({key}). Staff can choose it now (Other… → type the name); "
        "the model learns it at the next retrain."
    )


def usage(command: str, argument: str) -> str:
    return f"Usage: /{command} {argument}"


def staff_changed(user_id: int, added: bool, changed: bool) -> str:
    if not changed:
        return f"{user_id} {'already has' if added else 'does not have'} staff rights."
    return f"{user_id} {'now has' if added else 'no longer has'} staff rights."


def staff_list(admins: Iterable[int], staff: Iterable[int]) -> str:
    return (
        f"Admins: {', '.join(map(str, sorted(admins))) or 'none'}\n"
        f"Staff: {', '.join(map(str, staff)) or 'none'}"
    )


def export_caption(rows: int) -> str:
    return f"The catalog: {rows} photos."


# --- model lifecycle (admins) ----------------------------------------------------------------------
CHECKING_DRIFT = "Checking for drift…"
NO_SIMULATION_REPORT = (
    "No simulation report yet. Run `dogbot simulate --manifest CSV --report DIR` on the server."
)


def retrain_step(step: str) -> str:
    return f"Retraining: {step}…"


def not_retrained(why: str) -> str:
    return f"Not retrained: {why}"


def retrain_done(promoted: bool) -> str:
    return "New model promoted." if promoted else "Retrain finished."


def drift_report(result: DriftResult, name: Name = str) -> str:
    """/drift in words: did the photos change, how (in shares of photos), and what to do about it.

    Test statistics stay in ``dogbot drift --json`` and the log: a shelter manager acts on "41 of
    the last 50 photos are darker", not on a p-value."""
    learned = (
        "the ones the model learned from"
        if result.reference == "training"
        else f"the first {result.reference_n} photos the bot received"
    )
    if not result.tests:
        return (
            f"Not enough photos yet to tell whether new photos differ from {learned} "
            f"({result.current_n} recent photos so far)."
        )
    if result.drift:
        lines = [f"⚠️ The last {result.current_n} photos differ from {learned}:"]
    else:
        lines = [f"✓ The last {result.current_n} photos look like {learned}."]
    changed = [test for test in result.tests if test["alarm"]]
    noticed = [t for t in result.tests if not t["alarm"] and "reported, not alarmed" in t.get("detail", "")]
    for test in changed + noticed:
        lines.append(f"• {_drift_change(test, name)}")
    if result.drift:
        lines += [
            "",
            "What to do: if photos really changed (a new camera, room or light, or new kinds of dogs), "
            "let the model learn from them with /retrain (it also retrains on its own once staff "
            "label enough of them). If nothing changed at the shelter, you can ignore this.",
        ]
    return "\n".join(lines)


def _drift_change(test: Mapping, name: Name) -> str:
    """One test's finding as a sentence about photos (older reports without facts: a plain fallback)."""
    facts, kind = test.get("facts") or {}, test["name"]
    if kind == DriftTest.BRIGHTNESS and facts:
        how = "darker" if facts["lower"] else "brighter"
        return (
            f"{facts['beyond']} of the last {facts['n']} photos are {how} than usual (about half would be)."
        )
    if kind == DriftTest.SIZE and facts:
        how = "smaller" if facts["lower"] else "larger"
        return (
            f"{facts['beyond']} of the last {facts['n']} pictures are {how} than usual (about half would be)."
        )
    if kind == DriftTest.CONFIDENCE and facts:
        how = "less" if facts["lower"] else "more"
        return (
            f"The model is {how} sure of itself: {facts['beyond']} of the last {facts['n']} dog photos "
            f"got a {how} sure answer than usual (about half would)."
        )
    if kind == DriftTest.BREED_DISTRIBUTION and facts.get("breed"):
        breed = "not a dog" if facts["breed"] == "not a dog" else name(facts["breed"])
        return (
            f"The breeds it names changed: {breed} went from {percent(facts['before'])} "
            f"to {percent(facts['now'])} of photos."
        )
    if kind == DriftTest.CORRECTION_RATE and facts:
        return (
            f"Staff corrected {percent(facts['now'])} of its recent answers "
            f"({facts['hits']} of {facts['n']}), up from {percent(facts['before'])}."
        )
    if kind == DriftTest.EMBEDDING_AUC:
        return "The photos look different to the model as a whole (their content, light or framing)."
    return {
        DriftTest.BRIGHTNESS: "The photos' brightness changed.",
        DriftTest.SIZE: "The pictures' size changed.",
        DriftTest.CONFIDENCE: "How sure the model is of its answers changed.",
        DriftTest.BREED_DISTRIBUTION: "The breeds it names changed.",
        DriftTest.CORRECTION_RATE: "Staff correct the model more often.",
    }.get(kind, "Something about the photos changed.")


def drift_alarm(tests: Sequence[str]) -> str:
    return f"Drift alarm ({', '.join(tests)}): recent photos differ from the reference."


def model_trained_elsewhere(model: ModelVersion) -> str:
    verdict = "promoted, now serving" if model.status == ModelStatus.PROMOTED else "rejected"
    return f"Model {model.version} ({model.trigger}) {verdict}: {model.reason}"


def not_rolled_back(why: str) -> str:
    return f"Not rolled back: {why}"


def rolled_back(old: str, new: str) -> str:
    return f"Rolled back: {old} -> {new}. Now serving {new}."


def error_for_admins(kind: str, where: str) -> str:
    return f"⚠️ Something went wrong ({kind}) while handling {where}. Details are in the bot's log."


def internal_error() -> str:
    return "Sorry, something went wrong on my side. Please try again in a moment."


# What is wrong with the bot's storage, in words for staff and for admins (see bot.errors.storage_problem).
_STORAGE = {
    "full": "the bot's storage is full",
    "read_only": "the bot is not allowed to write to its storage (read-only or no permission)",
}
_STORAGE_FIX = {
    "full": "Free some disk space (or grow the database's disk).",
    "read_only": "Check that the photo folder and the database are writable by the bot.",
}


def photo_not_saved(problem: str) -> str:
    return (
        f"I couldn't save this photo: {_STORAGE[problem]}. The admins have been told. "
        "Please keep the photo and send it again later."
    )


def answer_not_saved(problem: str) -> str:
    """A button press whose answer could not be written (a callback alert: at most 200 characters)."""
    return f"Your answer was not saved: {_STORAGE[problem]}. The admins have been told; answer again later."


def storage_alert(problem: str, where: str) -> str:
    what = _STORAGE[problem]
    return f"⚠️ {what[0].upper()}{what[1:]}: nothing could be saved from {where}. {_STORAGE_FIX[problem]}"
