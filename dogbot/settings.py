"""The one settings object, read from the environment (prefix ``DOGBOT_``) and an optional ``.env`` file.

Which ``.env``: the file ``DOGBOT_ENV_FILE`` names, else ``.env`` in the current folder, else the ``.env``
of the install (beside ``pyproject.toml``), so a command run from another folder (cron, a service) still
finds the shelter's catalog (:func:`env_file`). Relative paths in it are taken from its own folder.

Every default of a deployment choice is written here and nowhere else: the code below the
composition root takes these values as required arguments. Built once by the composition root
(:mod:`dogbot.app`); nothing below it reads the environment. Every field is documented in
``.env.example``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from storage.vocabulary import DRIFT_TESTS, DriftTest

ModelName = Literal["lite0", "lite0gem", "lite2"]


class Settings(BaseSettings):
    # No .env by default: load_settings picks the file (a test's Settings() must not read the developer's).
    model_config = SettingsConfigDict(env_prefix="DOGBOT_", env_file=None, extra="ignore")

    # --- Telegram -------------------------------------------------------------------------------
    telegram_token: str = ""
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: str = ""
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    staff_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Signs inline-button data; empty: derived from the token (rotating the token then voids old buttons).
    callback_secret: str = ""

    # --- Bot behaviour --------------------------------------------------------------------------
    # Photos arriving within this window are classified in one forward pass.
    batch_window_ms: int = Field(default=5, ge=0)
    # On ONNX Runtime a photo costs the same at batch 1, 2 and 4 and ~25 % more at 8 and 16 (activations
    # outgrow the cache; bench/README.md "Serving"): batches past 4 only make the last photo wait longer.
    batch_max_size: int = Field(default=4, ge=1)
    # Per staff member: more photos than this in a minute are refused (stops one account flooding).
    photos_per_minute: int = Field(default=60, ge=0)
    # Count that limit in the database, so bot replicas share it (else each replica allows its own).
    shared_rate_limit: bool = False
    # A stranger gets at most one refusal in this many seconds (an album is one refusal, not ten).
    stranger_reply_cooldown_s: float = 10.0
    # How long an admin/staff list read from the database is trusted before re-reading it.
    member_cache_s: float = 30.0
    # Telegram API retries on flood control (RetryAfter), 5xx answers and network errors.
    telegram_max_retries: int = 3
    # Tries to reach Telegram at start-up (with growing pauses: 5 take about a minute) before giving up.
    telegram_start_retries: int = 5
    # Seconds to wait for Telegram when downloading a photo (files up to 20 MB).
    download_timeout_s: float = 60.0

    # The shelter's time zone (an IANA name such as Europe/Madrid): every time the bot shows is on its clock.
    timezone: str = "UTC"
    # The language the bot speaks to someone whose Telegram app uses a language it does not speak, and
    # who chose none with /language: en or es.
    language: str = "en"
    # --- Web API (`dogbot api`) -------------------------------------------------------------------
    # Where the HTTP server listens: loopback by default; put it behind a TLS proxy to open it up.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    # Per API token: more requests than this in a minute are refused with 429 (0: no limit). Counted
    # in the database, so several API processes share it.
    api_requests_per_minute: int = Field(default=120, ge=0)
    # Photos in one request (a dog's registration or its added photos); each is at most max_upload_mb.
    api_max_photos: int = Field(default=10, ge=1)
    # Requests that may wait for a decode slot (decode_slots); more are answered 503 with Retry-After.
    api_decode_queue: int = Field(default=16, ge=0)

    # --- Animal Shelter Manager (README "Animal Shelter Manager") ---------------------------------
    # ASM's base URL (its service API is URL/service); empty: dogbot sends nothing to ASM.
    asm_url: str = ""
    asm_account: str = ""  # the database name on a multi-database install (sheltermanager.com); else empty
    # Log in with an ASM user (it needs "Import CSV file" and "View animal") or with an API key.
    asm_username: str = ""
    asm_password: str = ""
    asm_key: str = ""
    # The ASM animal type of dogs dogbot registers: ASM's stock "D (Dog)", or e.g. "A (Stray Dog)".
    # Spelled as in ASM (Settings > Lookup data > Animal types): an unknown name becomes ASM's default type.
    asm_animal_type: str = "D (Dog)"
    # A JSON file {"dogbot breed": "your ASM breed name", ...} for breeds your ASM names differently.
    asm_breed_overrides: str = ""  # empty: ASM's stock breed names
    # A dog is sent this many minutes after its breed is settled, so sex and age tapped just after go too
    # (ASM's import cannot change sex, breed or name once the animal exists).
    asm_quiet_minutes: float = Field(default=10.0, ge=0)
    # How often the worker syncs, and how long one request to ASM may take.
    asm_sync_minutes: float = Field(default=5.0, gt=0)
    asm_timeout_s: float = Field(default=60.0, gt=0)

    # --- Storage --------------------------------------------------------------------------------
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file under data_dir
    # Where photo bytes live: empty is a folder under data_dir; s3://bucket/prefix an S3-compatible
    # bucket shared by bot replicas and the worker (credentials from the standard AWS_* variables).
    photo_store: str = ""
    s3_endpoint_url: str = ""  # empty: AWS itself; else e.g. http://minio:9000
    # How long a SQLite write waits for another writer, and (PostgreSQL) how long a statement may run
    # or wait for a lock (0: forever), before it fails: the API then answers 503 instead of hanging.
    db_busy_timeout_s: float = Field(default=10.0, gt=0)
    db_statement_timeout_s: float = Field(default=60.0, ge=0)
    db_lock_timeout_s: float = Field(default=10.0, ge=0)

    # --- Model ----------------------------------------------------------------------------------
    # Backbone and pooling (ml/backbone.py); bench/README.md compares them.
    model: ModelName = "lite0"
    # Threads for the model (ONNX Runtime when serving, torch when training). 1 leaves the other core to
    # the bot's event loop and the database; on a busy 2-core machine more threads made one forward
    # pass 50x slower (bench/README.md). 0: the runtime decides.
    torch_threads: int = Field(default=1, ge=0)
    # Where the backbone exported for serving (ml/runtime.py) is kept; empty: <data_dir>/backbones, outside
    # models/ so backups leave it out (any install can make it again). Made on first start or by
    # `dogbot db upgrade` (about 20 s, once); processes sharing the folder share the export.
    backbone_dir: Path | None = None
    # A photo is "a dog" when the model puts at least this much probability on dog classes.
    dog_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # ...and is filed as not a dog without asking only below this; in between, staff are asked. A dog of
    # a breed ImageNet lacks often looks to the model like a dingo or a wolf (not dog classes), and
    # staff send dogs: bench/README.md, "Not a dog, or a breed the model does not know?".
    not_a_dog_below: float = Field(default=0.1, ge=0.0, le=1.0)
    # Above this breed confidence the label is accepted without asking staff. `dogbot eval` on the
    # dev photos: confidence >= 0.69 keeps 95 % precision and covers 67 % of dog photos. Above 1:
    # staff are asked about every photo.
    auto_accept_threshold: float = Field(default=0.7, ge=0.0)
    # The share of right entries the shelter wants among the answers accepted without asking
    # (dogbot/core/asking.py): once people have answered target_min_answers questions about the
    # serving model, it asks when the answer's chance of being right (learnt from those answers, per
    # breed and per pair of breeds it hesitates between) is too low for that; until then
    # auto_accept_threshold decides. 0: auto_accept_threshold always decides.
    # bench/README.md, "Target accuracy".
    target_accuracy: float = Field(default=0.95, ge=0.0, lt=1.0)
    target_min_answers: int = Field(default=40, ge=1)
    # Of the answers accepted without asking, this share (picked at random) is shown to staff to
    # check: the unbiased sample that says how right the catalog is (/status) and that makes the bot
    # ask more when it falls short of target_accuracy. 0: no spot checks (and no estimate). At 15
    # photos a day 5 % gave 6-15 checks in 26 days and estimates up to 5 points off; 10 % is about
    # one more question a day (bench/README.md, "Target accuracy").
    spot_check_share: float = Field(default=0.1, ge=0.0, le=1.0)
    # ...unless staff recently corrected at least this many of the model's answers of that breed to
    # a breed the model does not know yet (a look-alike it cannot name, dogbot/core/lookalikes.py), within
    # the last lookalike_days. 0 turns this off.
    lookalike_min_corrections: int = 2
    lookalike_days: int = 30
    # Labelled photos as exemplars (ml.exemplars; measured in bench/bench_exemplars.py): the breeds
    # of the nearest ones that the model cannot name join the buttons (at most exemplar_buttons; 0
    # turns exemplars off), and one at centred cosine similarity exemplar_veto_similarity or more
    # stops a confident answer (a breed, or "not a dog") from being auto-accepted (above 1: never).
    # The veto is an operating point on one curve (more asked, fewer wrong entries): 0.45 keeps
    # issue 11's question budget (at most 45 % of photos asked at 15 a day) once maybe-dogs are asked
    # too (not_a_dog_below): 43.1 / 40.9 % asked on seeds 0 / 1 of the 30-day simulation, where 0.4
    # asked 46.9 / 43.3 %; bench/README.md, "At a shelter's pace".
    exemplar_buttons: int = Field(default=2, ge=0)
    exemplar_veto_similarity: float = 0.45
    max_upload_mb: int = Field(default=20, ge=1)
    max_megapixels: int = Field(default=40, ge=1)
    # Full-size photos decoded at once in one process (bot or API): a 40-megapixel photo is 120 MB
    # decoded, so memory follows this, not the number of requests (bench/README.md, "Web API").
    decode_slots: int = Field(default=1, ge=1)

    # --- Dogs -----------------------------------------------------------------------------------
    # Shelter codes: dog_code_format filled with prefix, year (of intake) and serial (per year).
    dog_code_prefix: str = Field(default="D", min_length=1, max_length=8)
    dog_code_format: str = "{prefix}-{year}-{serial:04d}"
    # How a dog's photos make one answer (ml/combine.py): "mean" of probabilities or "log_mean" of
    # log-probabilities. bench/bench_dogs.py on the dev photos: see bench/README.md, "Dogs".
    dog_combine: Literal["mean", "log_mean"] = "log_mean"
    # A new dog whose photo is this close (cosine of embeddings) to an earlier dog's photo is asked
    # about ("Same dog as D-2026-0041?"); above 1: never. bench/bench_dogs.py: 0.80 matched 0.5 % of
    # pairs of different photos of one breed and found 80 % of photos re-shot (crop, resize, light, JPEG).
    same_dog_similarity: float = 0.8
    # How many of the newest photos a new dog is compared with.
    same_dog_window: int = Field(default=2000, ge=1)
    # Photos of one album arriving within this many seconds of each other are answered with one card.
    album_settle_s: float = 1.5

    # --- Lifecycle jobs -------------------------------------------------------------------------
    fold_interval_minutes: int = 60
    drift_interval_minutes: int = 24 * 60
    drift_window: int = 200
    retrain_min_new_labels: int = 50
    # ...or as soon as a breed the model cannot name has this many labelled photos, one of them new
    # since the last retrain (the fewest the judge can see learned: 2 to train on, 1 held out). 0: off.
    retrain_new_breed_photos: int = 3
    # How often the worker checks whether a retrain is due (enough new labels, or a drift alarm).
    retrain_interval_minutes: int = 60
    # Share of photos (by hash, fixed per photo) held out for validation; golden set size.
    validation_share: float = Field(default=0.2, gt=0.0, lt=1.0)
    golden_size: int = 200
    # Promotion (ml.judging): candidate and champion are compared on every labelled photo by
    # cross-validation over promotion_folds folds. Promoted when better on what changed (at least
    # promotion_min_new_breed_hits photos of breeds the champion cannot name, or more photos won
    # than lost at one-sided McNemar p < promotion_better_alpha) and not worse on the rest (losing
    # more than winning at p < promotion_worse_alpha refuses, and so does losing more photos overall
    # than it wins: a tie passes); fewer than promotion_min_compared photos to compare on: no
    # promotion. Checked offline in bench/bench_judge.py. One new-breed hit
    # is enough: the champion has no row for that breed, so it can never name such a photo, and the
    # rule on the rest still refuses a candidate that pays for it elsewhere (bench_judge: no wrong
    # promotion with 1 or 2, none from shuffled labels).
    promotion_folds: int = Field(default=5, ge=2)
    promotion_better_alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    promotion_worse_alpha: float = Field(default=0.10, gt=0.0, lt=1.0)
    promotion_min_compared: int = 5
    promotion_min_new_breed_hits: int = 1
    # Drift alarms, measured on the dev photos (bench/bench_jobs.py): domain-classifier AUC above
    # this (and significant; Evidently uses 0.55); drift_p_value is the chance that one check of
    # unchanged photos alarms at all: each alarming test is held to it divided by their number
    # (Bonferroni); fewer photos than drift_min_photos in either window: no verdict.
    drift_auc_threshold: float = 0.6
    drift_p_value: float = 0.01
    drift_min_photos: int = 50
    # Admins are told of a shift (a drift incident opens) once this many scheduled checks in a row
    # alarmed: in 30 days of unchanged photos a lone alarm came and went the next day (issue 11),
    # while a real shift alarms every day until a model learns it.
    drift_incident_after_alarms: int = Field(default=2, ge=1)
    # Which drift tests raise the alarm (comma-separated); the others are still reported and drawn.
    # "size" is left out by default: the model resizes every photo to its input size, and in the
    # 30-day simulation a new photo source (smaller pictures of new breeds) raised it alone, days
    # before anything the model sees had changed.
    drift_alarm_tests: str = ",".join(name for name in DRIFT_TESTS if name != DriftTest.SIZE)
    # Train on auto-accepted labels too (people's labels are always used).
    train_on_auto_labels: bool = True
    # A training lease not renewed for this long is taken over (its holder died or hung); the holder
    # renews it every quarter of this while it works. One on this machine whose process is gone at once.
    lock_ttl_minutes: int = 2
    # Run fold/drift/retrain inside the bot process instead of a separate `dogbot worker`.
    jobs_in_bot: bool = False
    # How often the bot checks the registry for a newly promoted champion (no restart needed).
    champion_check_seconds: int = Field(default=60, ge=1)

    @field_validator("backbone_dir", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        # `DOGBOT_BACKBONE_DIR=` as shipped in .env.example is the default, not Path(""), the current folder.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_ids", "staff_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept ``"1,2, 3"`` from the environment as well as a list."""
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("drift_alarm_tests")
    @classmethod
    def _check_drift_tests(cls, value: str) -> str:
        # A misspelt name would silently never alarm; the names are jobs.drift.compare's tests.
        unknown = {name.strip() for name in value.split(",") if name.strip()} - set(DRIFT_TESTS)
        if unknown:
            raise ValueError(f"unknown drift tests {sorted(unknown)}; choose from {', '.join(DRIFT_TESTS)}")
        return value

    @field_validator("dog_code_format")
    @classmethod
    def _check_dog_code_format(cls, value: str) -> str:
        try:
            code = value.format(prefix="D", year=2026, serial=42)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"dog_code_format may use {{prefix}}, {{year}} and {{serial}} only: {error}"
            ) from None
        if "42" not in code or not 0 < len(code) <= 32:
            raise ValueError("dog_code_format must include {serial} and make codes of at most 32 characters")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}; use a name like Europe/Madrid or UTC") from error
        return value

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        from dogbot.i18n import LANGUAGES

        if value not in LANGUAGES:
            raise ValueError(f"unknown language {value!r}; the bot speaks {', '.join(LANGUAGES)}")
        return value

    @field_validator("photo_store")
    @classmethod
    def _check_photo_store(cls, value: str) -> str:
        if value and not (value.startswith("s3://") and value.removeprefix("s3://").split("/")[0]):
            raise ValueError("photo_store must be empty (a local folder) or s3://bucket/prefix")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'dogbot.db'}"

    @property
    def photo_dir(self) -> Path:
        return self.data_dir / "photos"

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def serving_backbone_dir(self) -> Path:
        return self.backbone_dir or self.data_dir / "backbones"


# The install's own folder: dogbot/ sits in it (an editable install, or a checkout run in place).
INSTALL_DIR = Path(__file__).resolve().parent.parent


class EnvFileMissing(Exception):
    """DOGBOT_ENV_FILE names a file that is not there."""


def env_file(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The .env to read: DOGBOT_ENV_FILE, else ./.env, else the install's .env; None when there is none."""
    environ = os.environ if environ is None else environ
    named = environ.get("DOGBOT_ENV_FILE", "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.exists():  # /dev/null is fine: "no .env at all", as tests and containers want
            # Falling back to another file would quietly open another shelter's catalog, or none.
            raise EnvFileMissing(f"DOGBOT_ENV_FILE={named}: no such file")
        return path.resolve()
    for folder in (cwd or Path.cwd(), INSTALL_DIR):
        if (folder / ".env").is_file():
            return (folder / ".env").resolve()
    return None


def load_settings(cwd: Path | None = None) -> Settings:
    """Settings from the environment and the .env :func:`env_file` finds.

    Relative paths are taken from the .env's folder: `data` in the install's .env is the install's
    data/, wherever the command runs. Raises :class:`EnvFileMissing` or pydantic's ValidationError.
    """
    path = env_file(None, cwd)
    settings = Settings(_env_file=path)
    base = path.parent if path is not None and path.is_file() else (cwd or Path.cwd())
    for name in ("data_dir", "backbone_dir"):
        value = getattr(settings, name)
        if value is not None and not value.is_absolute():
            setattr(settings, name, base / value)
    return settings


def explain(error: ValidationError) -> list[str]:
    """One readable line per bad value, named as it is set: ``DOGBOT_MAX_MEGAPIXELS=-1: ...``."""
    lines = []
    for item in error.errors():
        name = "DOGBOT_" + str(item["loc"][0]).upper() if item.get("loc") else "settings"
        value = item.get("input")
        message = item.get("msg", "invalid").removeprefix("Value error, ")
        shown = f"={value}" if isinstance(value, str | int | float) else ""
        lines.append(f"{name}{shown}: {message}")
    return lines
