"""Everything the bot says, as pure functions of plain values: easy to read, test and translate.

Messages are plain text (no parse mode), so a breed name an admin typed can never break markup.
The retrain report and the model list read the same in the chat and the terminal: they are in
dogbot/lifecycle_text.py, beside the CLI's own words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from dogbot.core.dogs import DogAnswer, SameDog, ShelterBreed, shelter_breed_name
from dogbot.core.intake import Classification
from dogbot.core.members import Role
from dogbot.core.reporting import CatalogStatus
from dogbot.lifecycle_text import puppies_in_words
from jobs.drift import DriftResult
from jobs.service import LifecycleStatus
from storage.lifecycle_tables import ModelVersion
from storage.vocabulary import MIXED_BREED, NOT_A_DOG, SKIP, ModelStatus, Outcome

Name = Callable[[str], str]  # breed key (or special label) -> what people read

TOKEN_REFUSED = "Telegram refused the bot token. Check DOGBOT_TELEGRAM_TOKEN (from @BotFather)."
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
    "dogs": "the dogs that came in lately",
    "dog": "one dog's card: /dog D-2026-0042",
}
COMMANDS_ADMIN = {
    "export": "the catalog as a CSV file",
    "conflicts": "photos where staff disagree",
    "addbreed": "add a breed: /addbreed NAME",
    "addstaff": "give someone staff rights: /addstaff USER_ID",
    "removestaff": "take staff rights away: /removestaff USER_ID",
    "staff": "who has staff rights",
    "apitoken": "a token for the web API: /apitoken NAME",
    "retrain": "retrain the breed model on new labels",
    "drift": "check whether incoming photos changed",
    "models": "model versions and their accuracy",
    "rollback": "serve the previous model again",
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
        lines.append(f"Saved as photo #{photo_id}. If it is a dog, press “It is a dog”.")
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
    decided = result.label
    if decided is not None and decided.breed != NOT_A_DOG:
        lines.append(f"Registered as #{photo_id}: {name(decided.breed)}.")
    elif decided is None and result.outcome != Outcome.NOT_A_DOG:
        lines.append(f"Which breed is photo #{photo_id}?")
    return "\n".join(lines)


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


# --- dogs ----------------------------------------------------------------------------------------
ANSWER_SEPARATOR = "\n—\n"  # between a question and what became of it
DOG_CARD_PREFIX = "🐕 Dog "  # every dog card starts so; a photo sent as a reply to one joins that dog
_SEX_WORDS = {"male": "male", "female": "female"}
_AGE_WORDS = {"puppy": "puppy", "adult": "adult", "senior": "senior"}


def dog_title(code: str, name: str | None) -> str:
    return f"{code} {name}" if name else code


def shelter_breed(breed: ShelterBreed, name: Name) -> str:
    """ "Labrador Retriever", "Labrador Retriever mix", "Labrador Retriever / Boxer mix", "Mixed breed"."""
    return shelter_breed_name(breed, name)


def dog_card(answer: DogAnswer, name: Name, same: SameDog | None = None, *, seen_before: bool = False) -> str:
    """One dog: its code and name, the breed from all its photos, what happens next."""
    dog = answer.dog
    n = len(answer.photos)
    photos = f"{n} photo{'s' if n != 1 else ''}"
    lines = [f"{DOG_CARD_PREFIX}{dog_title(dog.code, dog.name)} ({photos})"]
    if seen_before:
        lines.append(f"I've seen this photo before: it is one of {dog.code}'s.")
    guesses = ", ".join(f"{breed.display_name} {percent(p)}" for breed, p in answer.top)
    if answer.not_a_dog:
        lines.append("This does not look like a dog. If it is one, press “It is a dog”.")
    elif answer.breed is not None:
        breed = shelter_breed(answer.breed, name)
        if answer.label is None and answer.top:
            lines.append(f"{breed} ({percent(answer.top[0][1])} sure, from all its photos).")
        lines.append(f"Registered as {dog.code}: {breed}.")
        if answer.label is not None and answer.label.conflict:
            lines.append("Staff disagree about this dog; admins see it in /conflicts.")
    elif answer.top:
        lines.append(f"🤔 I'm not sure. Best guesses from all its photos: {guesses}.")
        lines.append(f"Which breed is {dog_title(dog.code, dog.name)}?")
    else:
        lines.append("I couldn't classify its photos just now; they wait in /review.")
    details = []
    if dog.sex in _SEX_WORDS:
        details.append(_SEX_WORDS[dog.sex])
    if dog.age_group in _AGE_WORDS:
        details.append(_AGE_WORDS[dog.age_group])
    if details:
        lines.append(", ".join(details).capitalize() + ".")
    if same is not None:
        other = same.dog
        if same.previous_of_sender:
            lines.append(f"Same dog as {dog_title(other.code, other.name)}?")
        else:
            came = other.intake_at.strftime("%-d %b %Y")
            lines.append(f"Is this {dog_title(other.code, other.name)}, who came in on {came}?")
    lines.append("Reply to this message with more photos of this dog.")
    return "\n".join(lines)


def dog_list(answers: Sequence[DogAnswer], name: Name) -> str:
    if not answers:
        return "No dogs yet. Send a photo of a dog to register one."
    lines = ["Dogs that came in lately (newest first):"]
    for answer in answers:
        dog = answer.dog
        if answer.not_a_dog:
            breed = "not a dog"
        elif answer.breed is not None:
            breed = shelter_breed(answer.breed, name)
        else:
            breed = "breed not known yet"
        n = len(answer.photos)
        lines.append(
            f"{dog_title(dog.code, dog.name)}: {breed}, {n} photo{'s' if n != 1 else ''}, "
            f"{dog.intake_at.strftime('%-d %b')}"
        )
    return "\n".join(lines)


def no_such_dog(code: str) -> str:
    return f"I have no dog {code}. /dogs lists the recent ones."


def dog_detail_toast(field: str, value: str) -> str:
    return f"Saved: {value}" if field else "Saved."


MERGED_TOAST = "Merged: one dog."
KEPT_APART_TOAST = "Kept as a new dog."


def mixed_primary_question(code: str) -> str:
    return f"Mixed breed. Which breed does {code} look most like?"


def mixed_secondary_question(code: str, primary: str) -> str:
    return f"{primary} mix. And the other breed?"


def mixed_saved(code: str, breed: str) -> str:
    return f"✅ Registered as {code}: {breed}."


# --- answers -------------------------------------------------------------------------------------
def answer_saved(
    photo_id: int, given: str, decided: str | None, conflict: bool, name: Name, *, dog_code: str | None = None
) -> str:
    """The question message after someone answered it (about a photo, or a dog's card: ``dog_code``)."""
    what = dog_code or f"photo #{photo_id}"
    if given == SKIP:
        return f"⏭ Skipped {what}; it waits in /review."
    if given == NOT_A_DOG:
        line = f"✅ {what[0].upper() + what[1:]}: not a dog."
    else:
        line = f"✅ Registered as {dog_code or f'#{photo_id}'}: {name(given)}."
    if decided is not None and decided != given:
        line += f"\nThe catalog says {name(decided)} (an admin's or most people's answer)."
    if conflict:
        line += f"\nStaff disagree about this {'dog' if dog_code else 'photo'}; admins see it in /conflicts."
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
    return f"Photo #{photo_id} (received {received}). {verdict}\nWhich breed is it?"


REVIEW_DONE = "🎉 Nothing is waiting for review."


# --- admin ---------------------------------------------------------------------------------------
def status(report: CatalogStatus, lifecycle: LifecycleStatus) -> str:
    accuracy = percent(lifecycle.accuracy) if lifecycle.accuracy is not None else "n/a"
    drift, trained = lifecycle.last_drift_check, lifecycle.last_retrain
    drift_text, retrain_text = "never", "never"
    if drift is not None:
        drift_text = f"{drift.created_at:%Y-%m-%d %H:%M} UTC ({'drift' if drift.drift else 'no drift'})"
    if trained is not None:
        retrain_text = f"{trained.created_at:%Y-%m-%d %H:%M} UTC ({trained.version} {trained.status})"
    return "\n".join(
        [
            f"Model: {report.model_version} (accuracy {accuracy})",
            f"Photos: {report.photos_today} today, {report.photos_total} in total",
            f"Waiting for a label: {report.awaiting_label}",
            f"Labels: {report.labels_total} ({report.conflicts} photos with disagreement)",
            f"Last drift check: {drift_text}",
            f"Last retrain: {retrain_text}",
        ]
    )


def stats(rows: Iterable[Mapping[str, object]], conflicts: int, limit: int = 30) -> str:
    """Per-breed counts of the catalog, where labels came from, and how many photos are disputed."""
    rows = list(rows)
    breeds = Counter(str(row["label"]) for row in rows if row["label"])
    sources = Counter(str(row["label_source"]) for row in rows if row["label_source"])
    unlabeled = sum(1 for row in rows if not row["label"])
    lines = [f"{len(rows)} photos, {unlabeled} without a label, {conflicts} with disagreement."]
    if sources:
        lines.append("Decided by: " + ", ".join(f"{source} {n}" for source, n in sources.most_common()))
    if breeds:
        lines.append("")
        lines += [f"{breed}: {n}" for breed, n in breeds.most_common(limit)]
        if len(breeds) > limit:
            lines.append(f"… and {len(breeds) - limit} more breeds (/export has them all)")
    return "\n".join(lines)


def conflicts(items: Sequence[tuple[int, Sequence[tuple[int | str | None, str, str]]]], name: Name) -> str:
    """Photos people disagree about: ``(photo id, [(user id or API token name, source, breed key), ...])``."""
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


def api_token(name: str, token: str) -> str:
    return (
        f"Web API token for {name}. It is shown only this once: put it in the app's settings, "
        f"then delete this message. Revoke it with `dogbot api-token revoke {name}`.\n\n{token}"
    )


def api_token_sent(name: str) -> str:
    return f"I sent you the token for {name} in a private message."


API_TOKEN_UNDELIVERED = (
    "I could not send you the token privately, so none was kept. Open a chat with me, press Start, "
    "then ask again."
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


def drift_report(result: DriftResult) -> str:
    """A drift report as a few lines an admin can read."""
    head = "DRIFT: " if result.drift else "No drift: "
    lines = [
        f"{head}last {result.current_n} photos vs {result.reference} ({result.reference_n}), "
        f"model {result.model_version}"
    ]
    if not result.tests:
        lines.append(result.reason or "")
    for test in result.tests:
        mark = "⚠️" if test["alarm"] else ("·" if test["statistic"] is None else "✓")
        lines.append(f"{mark} {test['name']}: {test['detail']}")
    puppies = puppies_in_words(result.extra.get("age_groups"))
    if puppies:
        lines.append(puppies)
    return "\n".join(lines)


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
