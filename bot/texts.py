"""Everything the bot says, as pure functions of plain values: easy to read, test and translate.

Messages are plain text (no parse mode), so a breed name an admin typed can never break markup.
The retrain report and the model list read the same in the chat and the terminal: they are in
dogbot/lifecycle_text.py, beside the CLI's own words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo

from dogbot import i18n
from dogbot.core.dogs import DogAnswer, PhotoRef, SameDog, ShelterBreed
from dogbot.core.errors import ErrorAnalysis
from dogbot.core.intake import Classification
from dogbot.core.members import Role
from dogbot.core.reporting import CatalogStatus
from dogbot.core.standing import AccuracyNow
from dogbot.i18n import N_, _, ngettext
from dogbot.intake_report import accuracy_in_words
from dogbot.lifecycle_text import (  # noqa: F401 (drift_report: the chat's words, kept with the CLI's)
    age_group_name,
    drift_report,
    model_name,
    not_enough_for_drift,
    puppies_in_words,
    verdict_words,
)
from jobs.incidents import AnswerQuality, IncidentFacts
from jobs.service import LifecycleStatus
from storage.lifecycle_tables import ModelVersion
from storage.vocabulary import (
    MIXED_BREED,
    NOT_A_DOG,
    SKIP,
    DriftTest,
    IncidentClose,
    IncidentKind,
    LabelSource,
    ModelStatus,
    Outcome,
)

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
    "start": N_("what this bot is"),
    "help": N_("what you can do"),
    "review": N_("label photos that are waiting"),
    "status": N_("model and catalog at a glance"),
    "stats": N_("counts per breed and who decided"),
    "breeds": N_("the breeds I know (or /breeds NAME to search)"),
    "language": N_("the language I speak to you"),
    "dogs": N_("the dogs that came in lately"),
    "dog": N_("one dog's card: /dog D-2026-0042"),
}
COMMANDS_ADMIN = {
    "export": N_("the catalog as a CSV file"),
    "conflicts": N_("photos where staff disagree"),
    "addbreed": N_("add a breed: /addbreed NAME"),
    "addstaff": N_("give someone staff rights: /addstaff USER_ID"),
    "removestaff": N_("take staff rights away: /removestaff USER_ID"),
    "staff": N_("who has staff rights"),
    "apitoken": N_("a token for the web API: /apitoken NAME"),
    "asm": N_("dogs in Animal Shelter Manager, and what waits to go there"),
    "retrain": N_("retrain the breed model on new labels"),
    "drift": N_("check whether incoming photos changed"),
    "models": N_("model versions and how good they are"),
    "rollback": N_("go back to the model before"),
    "report": N_("the shelter's intake day by day: photos, answers, changes"),
    "errors": N_("what the model gets wrong most, and what I do about it"),
}

# Messages without a value in them, read as ``texts.STALE`` and so on: translated when read (module
# __getattr__ below), so each person gets them in their own language.
_CONSTANT = {
    "STICKER": N_("Nice sticker! To catalog a dog I need a photo, though."),
    "VOICE": N_("I can't listen to voice or audio messages. Please send a photo of the dog."),
    "ANIMATION": N_("I can't catalog GIFs or animations. Please send a still photo of the dog."),
    "VIDEO": N_("I can't catalog videos. Please send a still photo of the dog."),
    "UNSUPPORTED": N_("I only understand photos of dogs (and /help)."),
    "TEXT_HINT": N_("Send me a photo of a dog, or /help to see what I can do."),
    "STALE": N_("This question is out of date (the photo was re-examined). Use /review to answer it again."),
    "FORGED": N_("Sorry, I can't use that button. Send the photo again or use /review."),
    "NOT_STAFF_BUTTON": N_("Only shelter staff can answer."),
    "UNKNOWN_BREED": N_("I don't know that breed any more. Please choose again."),
    "API_TOKEN_UNDELIVERED": N_(
        "I could not send you the token privately, so none was kept. Open a chat with me, press Start, "
        "then ask again."
    ),
    "REVIEW_DONE": N_("🎉 Nothing is waiting for review."),
    "NEWER_ANSWER_STANDS": N_("Not changed: your newer answer stands."),
    "CHECKING_DRIFT": N_("Checking whether new photos changed…"),
    "RETRAIN_NOW": N_("Retrain now"),
    "EXPECTED": N_("Expected, use these photos as the new normal"),
    "NO_INCIDENT": N_("This drift alert is no longer on record."),
    "MERGED_TOAST": N_("Merged: one dog."),
    "KEPT_APART_TOAST": N_("Kept as a new dog."),
}


def __getattr__(name: str) -> str:
    if name in _CONSTANT:
        return _(_CONSTANT[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def percent(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "<1%"


def special_name(key: str) -> str | None:
    names = {MIXED_BREED: N_("Mixed breed"), NOT_A_DOG: N_("Not a dog"), SKIP: N_("Skipped")}
    return _(names[key]) if key in names else None


# --- buttons -------------------------------------------------------------------------------------
def button(which: str) -> str:
    """What a fixed button says: mixed, not_a_dog, other, skip, wrong, is_dog."""
    words = {
        "mixed": N_("Mixed breed"),
        "not_a_dog": N_("Not a dog"),
        "other": N_("Other…"),
        "skip": N_("Skip"),
        "wrong": N_("Wrong?"),
        "is_dog": N_("It is a dog"),
    }
    return _(words[which])


def button_words() -> frozenset[str]:
    """Every fixed word on the bot's buttons, in every language it ships: no breed may be named so
    (a breed "Puppy" would give a card two "Puppy" buttons; "Skip" would read as skipping)."""
    fixed = ("mixed", "not_a_dog", "other", "skip", "wrong", "is_dog")
    own = ("male", "female", "puppy", "adult", "senior", "same", "new", "unknown_mix")
    words = set()
    for language in i18n.LANGUAGES:
        with i18n.using(language):
            words.update(button(which) for which in fixed)
            words.update(dog_button(which) for which in own)
            words.update(_(_CONSTANT[name]) for name in ("RETRAIN_NOW", "EXPECTED"))
            words.update((asm_send_now_button(), more_button()))
        words.add(i18n.LANGUAGES[language])
    return frozenset(words)


def more_button() -> str:
    return _("More ▸")


def type_breed_placeholder() -> str:
    return _("e.g. German shepherd")


# --- who may do what ----------------------------------------------------------------------------
def stranger(user_id: int) -> str:
    return _(
        "Sorry, this bot is only for the shelter's staff. "
        "If you work there, ask an admin to add you: your Telegram user id is {user_id}."
    ).format(user_id=user_id)


def admin_only() -> str:
    return _("Only admins can do that.")


def welcome(role: Role, first_name: str) -> str:
    if role is Role.ADMIN:
        who = _(
            "Hello {first_name}! I help the shelter catalog new arrivals by breed. You are an admin here."
        )
    else:
        who = _("Hello {first_name}! I help the shelter catalog new arrivals by breed. You are staff here.")
    return "\n".join(
        [
            who.format(first_name=first_name),
            _("Send me a photo of a dog and I tell you its breed; if I am unsure, you pick the right one."),
            _("/help lists everything you can do; /language changes the language I speak."),
        ]
    )


def help_text(role: Role) -> str:
    lines = [
        _("I catalog new arrivals by dog breed."),
        "",
        _("Send a photo (or an image file up to 20 MB, or an album) and I answer with the likely breed."),
        _("When I'm sure, the dog is registered at once; press “{wrong}” if I'm not right.").format(
            wrong=button("wrong")
        ),
        _("When I'm unsure, pick the breed, {mixed}, {not_a_dog}, {other} (type a name) or {skip}.").format(
            mixed=button("mixed"), not_a_dog=button("not_a_dog"), other=button("other"), skip=button("skip")
        ),
        "",
        _("Each photo is a new dog, unless:"),
        "• " + _("you send several photos as one album: they are one dog;"),
        "• " + _("you reply to a dog's card with a photo: it joins that dog;"),
        "• " + _("the photo has a caption: it becomes the dog's name."),
        "",
        _("Staff commands:"),
        *(f"/{name} — {_(what)}" for name, what in COMMANDS_STAFF.items()),
    ]
    if role is Role.ADMIN:
        lines += [
            "",
            _("Admin commands:"),
            *(f"/{name} — {_(what)}" for name, what in COMMANDS_ADMIN.items()),
        ]
    else:
        lines += ["", _("Admins can also export the catalog, add breeds and staff, and retrain the model.")]
    return "\n".join(lines)


# A language named inside a sentence, in the reader's language ("te hablo en español"); its buttons
# keep the name people know it by in itself (i18n.LANGUAGES: "Español").
_LANGUAGE_NAMES = {"en": N_("English"), "es": N_("Spanish")}


def language_in_sentence(language: str, languages: Mapping[str, str]) -> str:
    return _(_LANGUAGE_NAMES[language]) if language in _LANGUAGE_NAMES else languages[language]


def language_menu(current: str, languages: Mapping[str, str]) -> str:
    return _("I speak to you in {language}. Choose another:").format(
        language=language_in_sentence(current, languages)
    )


def language_set(languages: Mapping[str, str], chosen: str) -> str:
    return _("From now on I speak to you in {language}.").format(
        language=language_in_sentence(chosen, languages)
    )


# --- photos ---------------------------------------------------------------------------------------
def classification(result: Classification, name: Name) -> str:
    """The answer to a photo: what the model thinks and what happens next."""
    lines = [_("I've seen this photo before.")] if result.duplicate else []
    guesses = ", ".join(f"{name(breed.key)} {percent(p)}" for breed, p in result.top)
    if result.outcome == Outcome.NOT_A_DOG:
        lines.append(
            _("This does not look like a dog ({sure} sure).").format(
                sure=percent(result.prediction.confidence)
            )
        )
    elif result.outcome == Outcome.AUTO_ACCEPTED:
        top, p = result.top[0]
        lines.append(_("🐕 {breed} ({sure} sure).").format(breed=name(top.key), sure=percent(p)))
        if len(result.top) > 1:
            others = ", ".join(f"{name(b.key)} {percent(q)}" for b, q in result.top[1:])
            lines.append(_("Also possible: {breeds}").format(breeds=others))
    elif not result.prediction.is_dog:  # asked: perhaps a dog of a breed the model does not know
        lines.append(
            _("🤔 This may not be a dog. If it is one, best guesses: {guesses}.").format(guesses=guesses)
        )
    elif result.lookalikes:
        top, p = result.top[0]
        learning = _(" or ").join(name(key) for key in result.lookalikes)
        lines.append(
            _(
                "🤔 It looks like a {breed} ({sure}), but staff lately corrected that to {learning}, "
                "which I am still learning. Best guesses: {guesses}."
            ).format(breed=name(top.key), sure=percent(p), learning=learning, guesses=guesses)
        )
    elif result.learning and result.held_back:
        top, p = result.top[0]
        learning = _(" or ").join(name(key) for key in result.learning)
        lines.append(
            _(
                "🤔 It looks like a {breed} ({sure}), but also like photos staff labelled {learning}, "
                "which I am still learning. Best guesses: {guesses}."
            ).format(breed=name(top.key), sure=percent(p), learning=learning, guesses=guesses)
        )
    elif result.learning:
        learning = _(" or ").join(name(key) for key in result.learning)
        lines.append(
            _(
                "🤔 I'm not sure. Best guesses: {guesses}; it also looks like photos staff labelled {learning}."
            ).format(guesses=guesses, learning=learning)
        )
    else:
        lines.append(_("🤔 I'm not sure. Best guesses: {guesses}.").format(guesses=guesses))
    return "\n".join(lines) + ANSWER_SEPARATOR + photo_state(result, name)


def photo_state(result: Classification, name: Name) -> str:
    """The line under the model's verdict: what the catalog holds now and what staff can do."""
    photo_id, decided = result.photo.id, result.label
    if decided is not None and decided.breed != NOT_A_DOG:
        return _("Registered as #{photo_id}: {breed}.").format(photo_id=photo_id, breed=name(decided.breed))
    if decided is None and result.spot_check:  # filed without asking, and picked for staff to check
        if result.outcome == Outcome.NOT_A_DOG:
            return _(
                "Saved, not as a dog, for now.\nQuick check, picked at random: is it really not a dog? "
                "Tap “{not_a_dog}”, or its breed: your answer tells us how right the catalog is."
            ).format(not_a_dog=button("not_a_dog"))
        return spot_check_question(f"#{photo_id}", name(result.prediction.breed))
    if decided is not None or result.outcome == Outcome.NOT_A_DOG:  # catalogued, or taken, as not a dog
        return _("Saved, not as a dog. If it is one, press “{is_dog}”: it gets its dog code then.").format(
            is_dog=button("is_dog")
        )
    return _("Which breed is photo #{photo_id}?").format(photo_id=photo_id)


def reopened(photo: str, *, overruled_not_a_dog: bool) -> str:
    """The line under the verdict once someone pressed “Wrong?” or “It is a dog”."""
    if overruled_not_a_dog:
        return _("You say it is a dog: which breed is {photo}?").format(photo=photo)
    return _("Which breed is {photo}, then?").format(photo=photo)


def reopened_dog(code: str, *, overruled_not_a_dog: bool) -> str:
    """A dog card's state line once someone pressed “Wrong?” or “It is a dog” on it."""
    if overruled_not_a_dog:
        return _("You say it is a dog: which breed is {code}?").format(code=code)
    return _("Which breed is {code}, then?").format(code=code)


def already_in_dog(code: str) -> str:
    return _("This photo is already in dog {code}, with its other photos: it stays there.").format(code=code)


def stored_unclassified(photo: str) -> str:
    return _(
        "Saved as {photo}, but I couldn't classify it just now. It is safe and waiting for review (/review)."
    ).format(photo=photo)


def rejected(reason: str) -> str:
    return _("{reason} Nothing was saved. Please send a photo of the dog.").format(reason=reason)


def too_big(size_bytes: int | None, limit_mb: int) -> str:
    if size_bytes is None:
        text = _("This file is too big; I can take files up to {limit} MB.")
    else:
        text = _("This file is too big ({size:.1f} MB); I can take files up to {limit} MB.")
    return (
        text.format(size=(size_bytes or 0) / 1024 / 1024, limit=limit_mb)
        + " "
        + _("Please send it as a photo instead, or a smaller file.")
    )


def not_an_image(file_name: str | None, mime_type: str | None) -> str:
    what = f"“{file_name}”" if file_name else _("This file")
    kind = f" ({mime_type})" if mime_type else ""
    return _("{what} is not an image. Please send a photo of the dog.").format(what=what + kind)


def download_failed() -> str:
    return _("I couldn't download that file from Telegram. Please send it again.")


def slow_down(limit: int) -> str:
    return _(
        "That's more than {limit} photos in a minute. Please wait a moment, then send the rest again."
    ).format(limit=limit)


# --- dogs ----------------------------------------------------------------------------------------
# Every dog card starts with "🐕 ", the word for a dog and its code (a reply to a card finds its dog from
# the database's record of the message, not from these words).
_DOG_WORD = N_("Dog")


def dog_card_header(code: str, name: str | None, photos: int) -> str:
    return f"🐕 {_(_DOG_WORD)} {dog_title(code, name)} ({photo_count(photos)})"


_SEX_WORDS = {"male": N_("male"), "female": N_("female")}


def dog_title(code: str, name: str | None) -> str:
    return f"{code} {name}" if name else code


def shelter_breed(breed: ShelterBreed, name: Name) -> str:
    """ "Labrador Retriever", "Labrador Retriever mix", "Labrador Retriever / Boxer mix", "Mixed breed"."""
    if breed.primary is None:
        return special_name(MIXED_BREED) or ""
    words = name(breed.primary)
    if breed.secondary:
        words += f" / {name(breed.secondary)}"
    return _("{breeds} mix").format(breeds=words) if breed.mix else words


def photo_count(n: int) -> str:
    return ngettext("{n} photo", "{n} photos", n).format(n=n)


def dog_state(answer: DogAnswer, name: Name) -> str:
    """A dog card's one state line: what the catalog holds for the dog now and what staff can do."""
    dog = answer.dog
    if answer.not_a_dog:
        return _("This does not look like a dog. If it is one, press “{is_dog}”.").format(
            is_dog=button("is_dog")
        )
    if answer.breed is not None and answer.spot_check:
        return spot_check_question(dog.code, shelter_breed(answer.breed, name))
    if answer.breed is not None:
        return _("Registered as {code}: {breed}.").format(
            code=dog.code, breed=shelter_breed(answer.breed, name)
        )
    if answer.top:
        return _("Which breed is {dog}?").format(dog=dog_title(dog.code, dog.name))
    return _("I couldn't classify its photos just now; they wait in /review.")


def spot_check_question(code: str, breed: str) -> str:
    """The state line of an answer filed without asking that was picked at random for staff to check."""
    return _(
        "Registered as {code}: {breed}, for now.\nQuick check, picked at random: is it a {breed}? "
        "Tap the right breed: your answer tells us how right the catalog is."
    ).format(code=code, breed=breed)


def dog_card(
    answer: DogAnswer,
    name: Name,
    same: SameDog | None = None,
    *,
    seen_before: bool = False,
    state: str | None = None,
    in_asm_since: datetime | None = None,
    tz: tzinfo = UTC,
) -> str:
    """One dog: its code and name, the breed from all its photos, then its one state line (``state``
    replaces it, e.g. after “Wrong?”), then the details and what staff can do next.
    ``in_asm_since``: when the dog was registered in the shelter's Animal Shelter Manager; days are
    on the shelter's clock ``tz``."""
    dog = answer.dog
    lines = [dog_card_header(dog.code, dog.name, len(answer.photos))]
    if seen_before:
        lines.append(_("I've seen this photo before: it is one of {code}'s.").format(code=dog.code))
    guesses = ", ".join(f"{name(breed.key)} {percent(p)}" for breed, p in answer.top)
    if not answer.not_a_dog and answer.breed is not None and answer.label is None and answer.top:
        lines.append(
            _("{breed} ({sure} sure, from all its photos).").format(
                breed=_capitalized(shelter_breed(answer.breed, name)), sure=percent(answer.top[0][1])
            )
        )
    elif not answer.not_a_dog and answer.breed is None and answer.top and answer.maybe_not_a_dog:
        lines.append(
            _("🤔 This may not be a dog. If it is one, best guesses from all its photos: {guesses}.").format(
                guesses=guesses
            )
        )
    elif not answer.not_a_dog and answer.breed is None and answer.top:
        lines.append(
            _("🤔 I'm not sure. Best guesses from all its photos: {guesses}.").format(guesses=guesses)
        )
    details = []
    if dog.sex in _SEX_WORDS:
        details.append(_(_SEX_WORDS[dog.sex]))
    if dog.age_group in ("puppy", "adult", "senior"):
        details.append(age_group_name(dog.age_group))
    if details:
        lines.append(", ".join(details).capitalize() + ".")
    if in_asm_since is not None:
        lines.append(_("📋 In Animal Shelter Manager since {day}.").format(day=_date(in_asm_since)))
    if same is not None:
        other = same.dog
        if same.previous_of_sender:
            lines.append(_("Same dog as {dog}?").format(dog=dog_title(other.code, other.name)))
        else:
            lines.append(
                _("Is this {dog}, who came in on {day}?").format(
                    dog=dog_title(other.code, other.name), day=_date(_on_clock(other.intake_at, tz))
                )
            )
    lines.append(_("Reply to this message with more photos of this dog."))
    state_lines = [state or dog_state(answer, name)]
    if state is None and answer.breed is not None and answer.label is not None and answer.label.conflict:
        state_lines.append(_("Staff disagree about this dog; admins see it in /conflicts."))
    return "\n".join(lines) + ANSWER_SEPARATOR + "\n".join(state_lines)


def _capitalized(text: str) -> str:
    """A line's first letter upper-case (“cruce de Beagle” starts a line as “Cruce de Beagle”)."""
    return text[:1].upper() + text[1:]


def _date(moment: datetime, with_year: bool = True) -> str:
    """A day as people write it (“3 Mar 2026”), the month in the language in force."""
    month = _(_MONTHS[moment.month - 1])
    return f"{moment.day} {month} {moment.year}" if with_year else f"{moment.day} {month}"


_MONTHS = (
    N_("Jan"),
    N_("Feb"),
    N_("Mar"),
    N_("Apr"),
    N_("May"),
    N_("Jun"),
    N_("Jul"),
    N_("Aug"),
    N_("Sep"),
    N_("Oct"),
    N_("Nov"),
    N_("Dec"),
)


def dog_list(answers: Sequence[DogAnswer], name: Name, tz: tzinfo = UTC, *, first: int = 1) -> str:
    """A page of /dogs: ``first`` is the number of its first dog in the whole list (pages after
    the first say which dogs they are); dates on the shelter's clock ``tz``."""
    if not answers:
        if first > 1:
            return _("No more dogs.")
        return _("No dogs yet. Send a photo of a dog to register one.")
    if first > 1:
        lines = [_("Dogs {first}–{last} (newest first):").format(first=first, last=first + len(answers) - 1)]
    else:
        lines = [_("Dogs that came in lately (newest first):")]
    for answer in answers:
        dog = answer.dog
        if answer.not_a_dog:
            breed = _("not a dog")
        elif answer.breed is not None:
            breed = shelter_breed(answer.breed, name)
        else:
            breed = _("breed not known yet")
        lines.append(
            f"{dog_title(dog.code, dog.name)}: {breed}, {photo_count(len(answer.photos))}, "
            f"{_date(_on_clock(dog.intake_at, tz), with_year=False)}"
        )
    return "\n".join(lines)


def _on_clock(moment: datetime, tz: tzinfo) -> datetime:
    """A stored time (naive ones from SQLite are UTC) on the shelter's clock."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz)


def no_such_dog(code: str) -> str:
    return _("I have no dog {code}. /dogs lists the recent ones.").format(code=code)


def dog_detail_toast(field: str, value: str) -> str:
    if not field:
        return _("Saved.")
    shown = _(_SEX_WORDS[value]) if value in _SEX_WORDS else age_group_name(value)
    return _("Saved: {value}").format(value=shown)


def dog_button(which: str) -> str:
    """What a dog card's own buttons say: male, female, puppy, adult, senior, same, new, unknown_mix."""
    words = {
        "male": N_("♂ Male"),
        "female": N_("♀ Female"),
        "puppy": N_("Puppy"),
        "adult": N_("Adult"),
        "senior": N_("Senior"),
        "same": N_("Same dog"),
        "new": N_("New dog"),
        "unknown_mix": N_("Unknown mix"),
    }
    return _(words[which])


def only_first_breed(primary: str) -> str:
    return _("Just “{breed} mix”").format(breed=primary)


def mixed_primary_question(code: str) -> str:
    return _("Mixed breed. Which breed does {code} look most like?").format(code=code)


def mixed_secondary_question(code: str, primary: str) -> str:
    return _("{breed} mix. And the other breed?").format(breed=primary)


# --- answers -------------------------------------------------------------------------------------
def photo_words(ref: PhotoRef | None, photo_id: int) -> str:
    """How staff read which photo this is: "photo 2 of D-2026-0042 Max", or the dog alone when it
    has one photo ("D-2026-0042 Max"); "photo #22" only for a photo in no dog."""
    if ref is None:
        return _("photo #{photo_id}").format(photo_id=photo_id)
    dog = dog_title(ref.code, ref.name)
    if ref.count == 1:
        return dog
    return _("photo {number} of {dog}").format(number=ref.number, dog=dog)


def answer_saved(
    photo: str, code: str | None, given: str, decided: str | None, conflict: bool, name: Name
) -> str:
    """The question message's state line after someone answered it (``photo``: :func:`photo_words`;
    ``code``: its dog's code, None for a photo in no dog)."""
    if given == SKIP:
        return _("⏭ Skipped {photo}; it waits in /review.").format(photo=photo)
    if given == NOT_A_DOG:
        line = _("✅ {photo}: not a dog.").format(photo=_capitalized(photo))
    else:
        line = "✅ " + _("Registered as {code}: {breed}.").format(code=code or photo, breed=name(given))
    if decided is not None and decided != given:
        line += "\n" + _("The catalog says {breed} (an admin's or most people's answer).").format(
            breed=name(decided)
        )
    if conflict:
        line += "\n" + _("Staff disagree about this photo; admins see it in /conflicts.")
    return line


def card_answer_note(given: str, decided: str | None, name: Name) -> str | None:
    """Under a dog card after someone answered: only what the card's state line does not say already."""
    if given == SKIP:
        return _("⏭ Skipped; it waits in /review.")
    if decided is not None and decided != given:
        return _("You said {given}; an admin's or most people's answer stands.").format(given=name(given))
    return None


def answer_replaces(before: str, now: str, when: str, name: Name, *, by: str | None = None) -> str:
    """A press that changes an earlier answer (often on an older message): what it replaces, and
    whose it was (``by``: None for the person's own, "" for someone the bot has no name for)."""
    words = {"before": name(before), "now": name(now), "when": when}
    if by is None:
        return _("{before} → {now}, your answer of {when}").format(**words)
    if by:
        return _("{before} → {now}, {person}'s answer of {when}").format(person=by, **words)
    return _("{before} → {now}, someone else's answer of {when}").format(**words)


def unmerged_toast(code: str) -> str:
    return _("Merge undone: {code} is a dog of its own again.").format(code=code)


def answer_toast(given: str, created: bool, name: Name) -> str:
    if not created:
        return _("Already saved.")
    return _("Skipped.") if given == SKIP else _("Saved: {breed}").format(breed=name(given))


def ask_breed_name(photo: str) -> str:
    return _("{photo}: which breed is it? Type its name as a reply to this message.").format(
        photo=_capitalized(photo)
    )


def breed_matches(photo: str, typed: str) -> str:
    return _("{photo}: which breed did you mean by “{typed}”?").format(photo=_capitalized(photo), typed=typed)


def no_breed_match(typed: str, role: Role) -> str:
    if role is Role.ADMIN:
        hint = _("Add it with /addbreed {typed}, then type it again.").format(typed=typed)
    else:
        hint = _("Try another spelling, or ask an admin to add it with /addbreed.")
    return _("I don't know a breed called “{typed}”.").format(typed=typed) + " " + hint


# --- review ----------------------------------------------------------------------------------------
def review_caption(photo: str, received: str, top: Sequence[tuple[str, float]], is_dog: bool) -> str:
    guesses = ", ".join(f"{breed} {percent(p)}" for breed, p in top)
    if is_dog:
        verdict = _("Best guesses: {guesses}.").format(guesses=guesses)
    else:
        verdict = _("The model thinks it is not a dog ({guesses} if it is).").format(guesses=guesses)
    head = _("{photo} (received {received}).").format(photo=_capitalized(photo), received=received)
    return f"{head} {verdict}{ANSWER_SEPARATOR}" + _("Which breed is it?")


def review_dog_question(dog: str, received: str) -> str:
    """/review's question on a dog's card: one answer labels all its photos."""
    return _("Which breed is {dog}? It came in on {received}.").format(dog=dog, received=received)


def review_photo(photo: str) -> str:
    """/review: the caption of one of a dog's photos shown before its question."""
    return _capitalized(photo)


# --- admin ---------------------------------------------------------------------------------------
def local_time(moment: datetime, tz: tzinfo) -> str:
    """A stored time (UTC; naive ones from SQLite are UTC too) as the shelter's clock shows it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"


def _whole(p: float) -> str:
    """ "95 %": the sign goes in the value, not the message (gettext would read "% s" as a format)."""
    return f"{100 * p:.0f} %"


def accuracy_status(now: AccuracyNow) -> list[str]:
    """/status's lines on how right the catalog is, and when the bot asks because of it."""
    target = _whole(now.target)
    if now.estimate is not None:
        said = accuracy_in_words(now.estimate)
        if now.target > 0:
            first = _("Catalog: {estimate}; the target is {target}.").format(estimate=said, target=target)
        else:
            first = _("Catalog: {estimate}.").format(estimate=said)
    elif now.spot_check_share <= 0:
        first = _("Catalog: no estimate of how right it is, because spot checks are off.")
    else:
        first = _(
            "Catalog: no estimate of how right it is yet. It comes from spot checks (answers I filed "
            "alone, picked at random for staff to check), and none has been answered yet."
        )
    decision, threshold = now.decision, _whole(now.fallback_threshold)
    if now.target <= 0:
        rule = _("When I ask: below {threshold} sure (no target accuracy is set).").format(
            threshold=threshold
        )
    elif decision.mode == "strict":
        rule = _(
            "When I ask: more often than usual, because the spot checks say the catalog is below the target."
        )
    elif decision.mode == "target":
        rule = ngettext(
            "When I ask: as little as keeps the catalog {target} right, learnt from {n} answer about "
            "my guesses.",
            "When I ask: as little as keeps the catalog {target} right, learnt from {n} answers about "
            "my guesses.",
            decision.answers,
        ).format(target=target, n=decision.answers)
    elif decision.answers < now.min_answers:
        rule = _(
            "When I ask: below {threshold} sure, until people have answered {needed} of my questions "
            "({n} so far)."
        ).format(threshold=threshold, needed=now.min_answers, n=decision.answers)
    else:
        rule = _(
            "When I ask: below {threshold} sure, until people's answers show where I go wrong (none "
            "of my {n} answers they checked was wrong)."
        ).format(threshold=threshold, n=decision.answers)
    return [first, rule]


def catalog_below_target(now: AccuracyNow) -> str:
    """To admins, once, when the spot checks say the catalog fell below its target accuracy."""
    said = accuracy_in_words(now.estimate) if now.estimate is not None else ""
    return _(
        "⚠️ The spot checks say the catalog is below its target of {target} right: {estimate}. "
        "I now ask staff about more photos until it is back. /errors shows what I get wrong most."
    ).format(target=_whole(now.target), estimate=said)


def status(
    report: CatalogStatus, lifecycle: LifecycleStatus, tz: tzinfo = UTC, accuracy: AccuracyNow | None = None
) -> str:
    """/status: which model answers, the catalog, when the model was last checked and retrained.

    The same facts as /models and /drift, from the same records, in the same words."""
    version = lifecycle.model_version or report.model_version
    called = model_name(version, lifecycle.model_created_at, tz)
    if lifecycle.checked is not None:
        right, n = lifecycle.checked
        model = _("Model: {model}, right on {right} of {n} labelled photos it had not learned from").format(
            model=called, right=right, n=n
        )
    elif lifecycle.accuracy is not None:  # judged before verdicts kept their counts
        model = _("Model: {model}, right on {right} of the photos it was tested on").format(
            model=called, right=percent(lifecycle.accuracy)
        )
    elif lifecycle.last_retrain is not None:
        model = _("Model: {model} (no retrain has been better yet)").format(model=called)
    else:
        model = _("Model: {model} (not retrained here yet)").format(model=called)
    drift, trained = lifecycle.last_drift_check, lifecycle.last_retrain
    drift_text = retrain_text = _("never")
    if drift is not None:
        if drift.drift:
            verdict = _("new photos look different, see /drift")
        elif not drift.tests:
            verdict = _("too few photos to tell: needs {needs} recent, has {n}").format(
                needs=lifecycle.drift_min_photos, n=drift.current_n
            )
        else:
            verdict = _("new photos look as before")
        drift_text = f"{local_time(drift.created_at, tz)} ({verdict})"
    if trained is not None:
        if trained.version == version:
            outcome = _("{model}, now answering")
        elif trained.status == ModelStatus.PROMOTED:
            outcome = _("{model} was put to work, then rolled back")
        else:
            outcome = _("{model} was not better, so it was not used")
        retrain_text = outcome.format(model=model_name(trained.version, trained.created_at, tz))
    return "\n".join(
        [
            model,
            _("Photos: {today} today, {total} in total").format(
                today=report.photos_today, total=report.photos_total
            ),
            _("Waiting for a label: {n}").format(n=report.awaiting_label),
            _("Labels: {n} ({conflicts} photos with disagreement)").format(
                n=report.labels_total, conflicts=report.conflicts
            ),
            _("Last check for changed photos: {when}").format(when=drift_text),
            _("Last retrain: {when}").format(when=retrain_text),
            *(accuracy_status(accuracy) if accuracy is not None else []),
        ]
    )


def errors(analysis: ErrorAnalysis, name: Name) -> str:
    """/errors: the model's most frequent mistakes by people's answers, and what the bot does now."""
    days = analysis.days
    if not analysis.checked:
        return _("People have not answered about any of the model's breed answers in the last {days} days: "
                 "nothing to learn from yet.").format(days=days)  # fmt: skip
    if not analysis.wrong:
        return ngettext(
            "In the last {days} days people answered about {n} of the model's breed answers, and found none wrong.",
            "In the last {days} days people answered about {n} of the model's breed answers, and found none wrong.",
            analysis.checked,
        ).format(days=days, n=analysis.checked)  # fmt: skip
    lines = [
        ngettext(
            "The model's mistakes in the last {days} days: people answered otherwise on {wrong} of {n} photo.",
            "The model's mistakes in the last {days} days: people answered otherwise on {wrong} of {n} photos.",
            analysis.checked,
        ).format(days=days, wrong=analysis.wrong, n=analysis.checked)  # fmt: skip
    ]
    for i, c in enumerate(analysis.confusions, 1):
        if c.accepts_from is None:
            now = _("I always ask")
        else:
            now = _("I ask when under {sure} sure").format(sure=_whole(c.accepts_from))
        times = ngettext("{n} time", "{n} times", c.times).format(n=c.times)
        lines.append(
            _("{i}. I said {predicted}, people said {said}: {times}. Now: {now}.").format(
                i=i, predicted=name(c.predicted), said=name(c.said), times=times, now=now
            )
        )
    if analysis.breeds:
        each = ", ".join(
            _("{breed} ({wrong} of {n})").format(breed=name(b.breed), wrong=b.wrong, n=b.checked)
            for b in analysis.breeds
        )
        lines.append(_("Breeds I get wrong most: {breeds}.").format(breeds=each))
    if analysis.mode == "fallback":
        lines.append(
            _("Every breed has the same rule for now (below {sure} sure I ask): too few answers to tell "
              "breeds apart yet.").format(sure=_whole(analysis.fallback_threshold))
        )  # fmt: skip
    elif analysis.mode == "strict":
        lines.append(_("I ask more than usual now: the spot checks say the catalog is below the target."))
    return "\n".join(lines)


def label_source(source: str) -> str:
    """Who decided a label, in words."""
    words = {
        LabelSource.STAFF: N_("staff"),
        LabelSource.ADMIN: N_("admins"),
        LabelSource.AUTO: N_("the model on its own (sure enough)"),
        LabelSource.IMPORT: N_("imported"),
    }
    return _(words[source]) if source in words else source


def stats(
    rows: Iterable[Mapping[str, object]],
    conflicts: int,
    role: Role = Role.STAFF,
    limit: int = 30,
    name: Callable[[str], str] = str,
) -> str:
    """Per-breed counts of the catalog, where labels came from, and how many photos are disputed.

    ``name``: a row's label (the export's English display name) as the reader says it."""
    rows = list(rows)
    breeds = Counter(str(row["label"]) for row in rows if row["label"])
    sources = Counter(str(row["label_source"]) for row in rows if row["label_source"])
    unlabeled = sum(1 for row in rows if not row["label"])
    lines = [
        _("{n} photos, {unlabeled} without a label, {conflicts} with disagreement.").format(
            n=len(rows), unlabeled=unlabeled, conflicts=conflicts
        )
    ]
    if sources:
        who = ", ".join(f"{label_source(source)} {n}" for source, n in sources.most_common())
        lines.append(_("Who decided: {who}").format(who=who))
    if breeds:
        lines.append("")
        lines += [f"{name(breed)}: {n}" for breed, n in breeds.most_common(limit)]
        if len(breeds) > limit:
            if role is Role.ADMIN:
                more = _("… and {n} more breeds (/export has them all)")
            else:
                more = _("… and {n} more breeds (an admin can /export them all)")
            lines.append(more.format(n=len(breeds) - limit))
    return "\n".join(lines)


def conflicts(items: Sequence[tuple[int, Sequence[tuple[int | str | None, str, str]]]], name: Name) -> str:
    """Photos people disagree about: ``(photo id, [(user id or API token name, source, breed key), ...])``."""
    if not items:
        return _("No disagreements. 👍")
    lines = [_("{n} photos where people disagree:").format(n=len(items))]
    for photo_id, answers in items[-20:]:
        said = "; ".join(f"{user} ({label_source(source)}): {name(breed)}" for user, source, breed in answers)
        lines.append(f"#{photo_id}: {said}")
    return "\n".join(lines)


def breed_list(names: Sequence[str]) -> str:
    head = _("I know {n} breeds (plus {mixed} and {not_a_dog}):").format(
        n=len(names), mixed=button("mixed"), not_a_dog=button("not_a_dog")
    )
    return head + "\n" + ", ".join(names)


def breed_search(typed: str, names: Sequence[str]) -> str:
    if not names:
        return _("No breed matches “{typed}”.").format(typed=typed)
    return _("Breeds matching “{typed}”:").format(typed=typed) + "\n" + "\n".join(names)


def breed_added(display_name: str, key: str) -> str:
    return _(
        "Added “{breed}” ({key}). Staff can choose it now ({other} → type the name); "
        "the model learns it at the next retrain."
    ).format(breed=display_name, key=key, other=button("other"))


def api_token(name: str, token: str) -> str:
    return (
        _(
            "Web API token for {name}. It is shown only this once: put it in the app's settings, "
            "then delete this message. Revoke it with `dogbot api-token revoke {name}`."
        ).format(name=name)
        + f"\n\n{token}"
    )


def api_token_sent(name: str) -> str:
    return _("I sent you the token for {name} in a private message.").format(name=name)


def usage_api_token() -> str:
    return usage("apitoken", _("NAME, e.g. /apitoken intake-app"))


def usage(command: str, argument: str) -> str:
    return _("Usage: /{command} {argument}").format(command=command, argument=argument)


def breed_refused(error: ValueError, name: Name) -> str:
    """Why /addbreed refused a name (dogbot.core.taxonomy.BreedRefused), in the reader's language."""
    code, facts = getattr(error, "code", ""), dict(getattr(error, "facts", {}))
    if "breed" in facts:
        facts["breed"] = name(str(facts["breed"]))
    words = {
        "known": N_("{breed} is already in the breed list."),
        "reserved": N_("“{name}” is a word the bot's own buttons use; please give the breed another name."),
        "named": N_("{name} is already in the breed list, as {breed}."),
        "short": N_("Please type the breed's name (at least 2 letters)."),
        "long": N_("That name is too long for a breed ({n} characters; at most {most})."),
        "characters": N_("A breed name can only contain letters, spaces, hyphens and apostrophes."),
        "latin": N_("Please type the breed's name in Latin letters (A to Z, accents are fine)."),
    }
    return _(words[code]).format(**facts) if code in words else str(error)


def token_refused(code: str, name: str) -> str:
    """Why /apitoken refused (dogbot.core.api_clients.ClientError's code)."""
    words = {
        "bad_name": N_(
            "A token name is 1 to 64 letters, digits, dots, dashes or underscores, e.g. intake-app."
        ),
        "taken": N_("A token named {name} exists already; choose another name."),
        "unknown": N_("No token is named {name}."),
    }
    return _(words.get(code, words["bad_name"])).format(name=name)


def staff_refused(code: str, user_id: int) -> str:
    """Why /addstaff or /removestaff refused (dogbot.core.members.MembershipError's code)."""
    words = {
        "not_user": N_("{user} is not a Telegram user id (a positive number)."),
        "admin": N_("{user} is an admin (from the settings) and cannot be removed here."),
        "from_settings": N_(
            "{user} is staff through DOGBOT_STAFF_IDS; remove them there and restart the bot."
        ),
    }
    return _(words.get(code, words["not_user"])).format(user=user_id)


def usage_dog() -> str:
    return usage("dog", _("CODE, e.g. /dog D-2026-0042"))


def usage_add_breed() -> str:
    return usage("addbreed", _("NAME, e.g. /addbreed Shiba Inu"))


def usage_user_id(command: str) -> str:
    return usage(command, _("USER_ID (a person's Telegram id: a positive number, e.g. 123456789)"))


def staff_changed(user_id: int, added: bool, changed: bool) -> str:
    if not changed:
        text = _("{user} already has staff rights.") if added else _("{user} does not have staff rights.")
    else:
        text = _("{user} now has staff rights.") if added else _("{user} no longer has staff rights.")
    return text.format(user=user_id)


def staff_list(admins: Iterable[int], staff: Iterable[int], names: Mapping[int, str] | None = None) -> str:
    """/staff: each person by the name they go by in Telegram, with the id commands take."""
    none = _("none")
    names = names or {}

    def who(ids: Iterable[int]) -> str:
        return ", ".join(f"{names[i]} ({i})" if names.get(i) else str(i) for i in ids) or none

    return "\n".join(
        [_("Admins: {ids}").format(ids=who(sorted(admins))), _("Staff: {ids}").format(ids=who(staff))]
    )


def export_caption(rows: int) -> str:
    return _("The catalog: {n} photos.").format(n=rows)


# --- model lifecycle (admins) ----------------------------------------------------------------------
def not_retrained(why: str) -> str:
    return _("Not retrained: {why}").format(why=_(why))


RETRAIN_BUSY = N_("another retrain is running now; try again when it has finished.")
NO_FULL_RETRAIN = N_(
    "a full retrain (fine-tuning the whole model) is not available yet; /retrain trains the fast way."
)
NO_EARLIER_MODEL = N_("no model answered before this one, so there is none to go back to.")


def retrain_done(promoted: bool) -> str:
    return _("New model put to work.") if promoted else _("Retrain finished.")


# What each drift test noticing something means, in a shelter worker's words.
_CHANGE_WORDS = {
    DriftTest.BRIGHTNESS: N_("how bright the photos are"),
    DriftTest.SIZE: N_("the size of the photos"),
    DriftTest.CORRECTION_RATE: N_("how often staff correct the bot"),
    DriftTest.EMBEDDING_AUC: N_("what the photos look like to the model"),
    DriftTest.CONFIDENCE: N_("how sure the model is"),
    DriftTest.BREED_DISTRIBUTION: N_("which breeds the model names"),
}


def drift_incident(facts: IncidentFacts, breed_name: Callable[[str], str], tz: tzinfo = UTC) -> str:
    """The one message admins get when the photos change (jobs.incidents): what changed, since
    when (the shelter's day, ``tz``), how many photos, whether the answers suffered, and what the
    two buttons do."""
    if facts.since:
        since = _("since {day}").format(day=_day(_on_clock(facts.since, tz)))
    else:
        since = _("in the last {n} photos").format(n=facts.photos)
    breeds = ", ".join(breed_name(key) for key in facts.new_breeds)
    if facts.kind == IncidentKind.NEW_BREEDS:
        count = len(facts.new_breeds)
        lines = [
            "🐕 "
            + ngettext(
                "{count} breed the model does not know arrived {since}: {breeds} ({n} labelled photos).",
                "{count} breeds the model does not know arrived {since}: {breeds} ({n} labelled photos).",
                count,
            ).format(count=count, since=since, breeds=breeds, n=facts.new_breed_photos)
            + " "
            + _("Staff labels teach it; a retrain starts once a breed has a few labelled photos.")
        ]
    else:
        lines = [f"📉 {_shift_headline(facts, since)}"]
        if facts.new_breeds:
            lines.append(_("Also new to the model: {breeds}.").format(breeds=breeds))
    lines.append(_answers_sentence(facts.answers))
    lines.append(
        _(
            "{retrain_now}: train a new model on the photos so far. "
            "Expected: these photos are normal now; drift checks compare with them from here on."
        ).format(retrain_now=_(_CONSTANT["RETRAIN_NOW"]))
    )
    return "\n".join(lines)


def _shift_headline(facts: IncidentFacts, since: str) -> str:
    changed = [name for name in _CHANGE_WORDS if name in facts.changed]
    if DriftTest.BRIGHTNESS in changed and facts.brightness is not None:
        before, after = facts.brightness
        text = (
            _("Photos are darker {since}: {n} photos, brightness {before:.2f} -> {after:.2f}.")
            if after < before
            else _("Photos are brighter {since}: {n} photos, brightness {before:.2f} -> {after:.2f}.")
        )
        head = text.format(since=since, n=facts.photos, before=before, after=after)
        others = [name for name in changed if name != DriftTest.BRIGHTNESS]
    else:
        head = _("Recent photos differ from the ones the model learned from ({n} photos).").format(
            n=facts.photos
        )
        others = changed
    if others:
        head += " " + _("Also changed: {what}.").format(
            what=", ".join(_(_CHANGE_WORDS[name]) for name in others)
        )
    return head


def _answers_sentence(answers: AnswerQuality | None) -> str:
    if answers is None or answers.worse is None:
        checked = answers.checked if answers else 0
        return _(
            "Staff checked {n} of the bot's answers since then: too few to tell whether they suffered."
        ).format(n=checked)
    now = answers.changed / answers.checked
    before = answers.changed_before / answers.checked_before
    counts = _("staff changed {k} of {n} answers they checked ({now}; {before} before)").format(
        k=answers.changed, n=answers.checked, now=f"{now:.0%}", before=f"{before:.0%}"
    )
    if answers.worse:
        return _("The answers got worse: {counts}. Retraining on these photos should help.").format(
            counts=counts
        )
    return _("The answers are as good as before: {counts}.").format(counts=counts)


_WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def _day(moment: datetime) -> str:
    return f"{_(_WEEKDAYS[moment.weekday()])} {moment.day:02d} {_(_MONTHS[moment.month - 1])}"


def incident_closed(how: str | None) -> str:
    """A press on an incident's button after it closed (a callback alert: short)."""
    if how == IncidentClose.PROMOTED:
        return _("Closed already: a model trained on these photos is serving.")
    return _("Closed already: an admin accepted these photos as the new normal.")


def new_normal_accepted(photos: int) -> str:
    return _(
        "OK: the last {n} photos are the new normal. Drift checks compare with them from now on."
    ).format(n=photos)


def model_trained_elsewhere(model: ModelVersion, tz: tzinfo = UTC) -> str:
    """News to admins of a model the worker trained (its verdict worded here, not the log's English)."""
    from jobs.scores import RetrainMetrics

    metrics = RetrainMetrics.from_json(model.metrics)
    reason = verdict_words(metrics.verdict) if metrics and metrics.verdict else model.reason
    reason = reason[:1].upper() + reason[1:]
    if model.status == ModelStatus.PROMOTED:
        text = _("A new model ({model}) was trained and put to work. {reason}")
    else:
        text = _("A new model ({model}) was trained but not used. {reason}")
    return text.format(model=model_name(model.version, model.created_at, tz), reason=reason)


def not_rolled_back(why: str) -> str:
    return _("Not rolled back: {why}").format(why=_(why))


def rolled_back(old: str, new: str) -> str:
    """``old`` and ``new``: models as people name them (lifecycle_text.model_name)."""
    return _("Rolled back: {new} answers again instead of {old}.").format(old=old, new=new)


_PLACES = {
    "background": N_("a background task"),
    "button": N_("a button press"),
    "photo": N_("a photo"),
    "document": N_("a file"),
    "text": N_("a message"),
    "sticker": N_("a sticker"),
    "voice": N_("a voice message"),
    "animation": N_("a GIF"),
    "message": N_("a message"),
    "update": N_("a message"),
}


def error_place(where: tuple[str, int | None]) -> str:
    """What was being handled and from whom (bot.errors.place), in the reader's language."""
    kind, user = where
    what = _(_PLACES.get(kind, _PLACES["message"]))
    return _("{what} from user {user}").format(what=what, user=user) if user else what


def error_for_admins(kind: str, where: tuple[str, int | None]) -> str:
    return _("⚠️ Something went wrong ({kind}) while handling {where}. Details are in the bot's log.").format(
        kind=kind, where=error_place(where)
    )


def internal_error() -> str:
    return _("Sorry, something went wrong on my side. Please try again in a moment.")


# What is wrong with the bot's storage, in words for staff and for admins (see bot.errors.storage_problem).
_STORAGE = {
    "full": N_("the bot's storage is full"),
    "read_only": N_("the bot is not allowed to write to its storage (read-only or no permission)"),
}
_STORAGE_FIX = {
    "full": N_("Free some disk space (or grow the database's disk)."),
    "read_only": N_("Check that the photo folder and the database are writable by the bot."),
}


def photo_not_saved(problem: str) -> str:
    return _(
        "I couldn't save this photo: {problem}. The admins have been told. Please keep the photo and send it again later."
    ).format(problem=_(_STORAGE[problem]))


def answer_not_saved(problem: str) -> str:
    """A button press whose answer could not be written (a callback alert: at most 200 characters)."""
    return _("Your answer was not saved: {problem}. The admins have been told; answer again later.").format(
        problem=_(_STORAGE[problem])
    )


def storage_alert(problem: str, where: tuple[str, int | None]) -> str:
    what = _(_STORAGE[problem])
    return _("⚠️ {what}: nothing could be saved from {where}. {fix}").format(
        what=what[0].upper() + what[1:], where=error_place(where), fix=_(_STORAGE_FIX[problem])
    )


# --- Animal Shelter Manager (/asm) ----------------------------------------------------------------
def asm_not_set_up() -> str:
    return _(
        "Animal Shelter Manager is not set up: whoever installed the bot sets DOGBOT_ASM_URL and its login "
        "in .env (README, “Animal Shelter Manager”)."
    )


def asm_overview(overview) -> str:
    """/asm: how many dogs are in ASM, then each dog waiting or refused, and why, in words."""
    lines = [
        ngettext(
            "{count} dog is in Animal Shelter Manager.",
            "{count} dogs are in Animal Shelter Manager.",
            overview.in_asm,
        ).format(count=overview.in_asm)
    ]
    if overview.waiting:
        lines.append(_("Waiting to be sent:"))
        not_yet = _("not sent yet")
        for code, why in overview.waiting[:20]:
            lines.append(f"• {code}: {asm_reason(why) if why else not_yet}")
    if overview.failed:
        lines.append(_("Refused by Animal Shelter Manager (fix it there or here, then press Send now):"))
        for code, why in overview.failed[:20]:
            lines.append(f"• {code}: {asm_reason(why)}")
    if not overview.waiting and not overview.failed:
        lines.append(_("Nothing is waiting: every dog with a settled breed is there."))
    if overview.not_settled:
        lines.append(
            ngettext(
                "{count} dog waits for staff to settle its breed.",
                "{count} dogs wait for staff to settle their breed.",
                overview.not_settled,
            ).format(count=overview.not_settled)
        )
    return "\n".join(lines)


def asm_reason(answer: str) -> str:
    """ASM's answer in a manager's words where we know it; else ASM's own words."""
    if "did not answer" in answer or "HTTP 5" in answer or "HTTP 4" in answer:
        return _("Animal Shelter Manager could not be reached; the bot tries again by itself.")
    if "Invalid username and password" in answer or "Invalid API Key" in answer:
        return _("Animal Shelter Manager refused the bot's login: check DOGBOT_ASM_USERNAME and password.")
    return answer


def asm_sync_result(report) -> str:
    """After Send now: what went, what did not, and what someone must change in ASM by hand."""
    lines = []
    if report.sent:
        lines.append(_("Sent: {codes}.").format(codes=", ".join(report.sent)))
    if report.updated:
        lines.append(_("Updated: {codes}.").format(codes=", ".join(report.updated)))
    for code, why in report.waiting + report.failed:
        lines.append(_("Not sent: {code}: {why}").format(code=code, why=asm_reason(why)))
    for fix in report.hand_fixes:
        if fix.merged_into:
            lines.append(
                _("Remove {code} in Animal Shelter Manager: it is the same dog as {other}.").format(
                    code=fix.code, other=fix.merged_into
                )
            )
        elif fix.not_a_dog:
            lines.append(_("Remove {code} in Animal Shelter Manager: it is not a dog.").format(code=fix.code))
        elif fix.removed:
            lines.append(
                _("Remove {code} in Animal Shelter Manager: it was removed from the bot.").format(
                    code=fix.code
                )
            )
        else:
            changes = "; ".join(
                f"{_(_ASM_FIELDS[what])}: {ours or '-'}" for what, _asm, ours in fix.differences
            )
            lines.append(
                _("Change {code} by hand in Animal Shelter Manager ({changes}).").format(
                    code=fix.code, changes=changes
                )
            )
    if report.not_settled:
        lines.append(
            ngettext(
                "{count} dog waits for staff to settle its breed.",
                "{count} dogs wait for staff to settle their breed.",
                report.not_settled,
            ).format(count=report.not_settled)
        )
    return "\n".join(lines) or _("Nothing to send: Animal Shelter Manager has every dog.")


_ASM_FIELDS = {
    "name": N_("name"),
    "sex": N_("sex"),
    "breed": N_("breed"),
    "second breed": N_("second breed"),
    "type": N_("type"),
}


def asm_send_now_button() -> str:
    return _("📤 Send now")


def asm_sending() -> str:
    return _("Sending to Animal Shelter Manager…")


def asm_busy() -> str:
    return _("The bot is sending to Animal Shelter Manager already; try again in a minute.")
