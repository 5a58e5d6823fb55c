"""The one settings object, read from the environment (prefix ``DOGBOT_``) and an optional ``.env`` file.

Built once by the composition root (:mod:`dogbot.app`); nothing below it reads the environment.
Every field is documented in ``.env.example``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ModelName = Literal["lite0", "lite2"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOGBOT_", env_file=".env", extra="ignore")

    # --- Telegram -------------------------------------------------------------------------------
    telegram_token: str = ""
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: str = ""
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    staff_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    # --- Storage --------------------------------------------------------------------------------
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file under data_dir

    # --- Model ----------------------------------------------------------------------------------
    model: ModelName = "lite0"
    torch_threads: int = 0  # 0: let torch decide
    # A photo is "a dog" when the model puts at least this much probability on dog classes.
    dog_threshold: float = 0.5
    # Above this breed confidence the label is accepted without asking staff (see `dogbot eval`).
    auto_accept_threshold: float = 0.8
    max_upload_mb: int = 20
    max_megapixels: int = 40

    # --- Lifecycle jobs -------------------------------------------------------------------------
    fold_interval_minutes: int = 60
    drift_interval_minutes: int = 24 * 60
    drift_window: int = 200
    retrain_min_new_labels: int = 50

    @field_validator("admin_ids", "staff_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept ``"1,2, 3"`` from the environment as well as a list."""
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
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
