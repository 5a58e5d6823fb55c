"""The composition root: the one place that reads settings and wires storage, model and services.

Everything below takes plain values; only this module and the CLI know about :class:`Settings`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from dogbot.catalog import Catalog, load_taxonomy
from dogbot.settings import Settings
from dogbot.taxonomy import Taxonomy
from jobs.wiring import lifecycle_jobs, serve_champion
from ml.predictor import Predictor
from storage.blobs import PhotoStore, open_photo_store
from storage.db import make_engine

if TYPE_CHECKING:
    from jobs.service import LifecycleJobs

log = logging.getLogger(__name__)


@dataclass
class Container:
    """Lazily built services, so a command that needs no model never loads one."""

    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return make_engine(self.settings.sqlalchemy_url)

    @cached_property
    def photo_store(self) -> PhotoStore:
        return open_photo_store(
            self.settings.photo_store, self.settings.photo_dir, s3_endpoint_url=self.settings.s3_endpoint_url
        )

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return load_taxonomy(self.engine)

    @cached_property
    def predictor(self) -> Predictor:
        predictor = Predictor.pretrained(
            self.settings.model,
            [(breed.imagenet_index, breed.key) for breed in self.taxonomy.imagenet_breeds()],
            backbone_dir=self.settings.serving_backbone_dir,
            threads=self.settings.torch_threads,
        )
        serve_champion(self, predictor)  # the registry's champion, not always version 0
        log.info("model %s loaded", predictor.model_version)
        return predictor

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(
            self.engine,
            self.photo_store,
            self.predictor,
            self.taxonomy,
            dog_threshold=self.settings.dog_threshold,
            auto_accept_threshold=self.settings.auto_accept_threshold,
            lookalike_min_corrections=self.settings.lookalike_min_corrections,
            lookalike_days=self.settings.lookalike_days,
            max_bytes=self.settings.max_upload_mb * 1024 * 1024,
            max_pixels=self.settings.max_megapixels * 1_000_000,
        )

    # --- lifecycle jobs (jobs/): fold, drift, retrain, the model registry ---------------------------
    @cached_property
    def lifecycle(self) -> LifecycleJobs:
        return lifecycle_jobs(self)

    def refresh_model(self) -> bool:
        """Serve the champion another process promoted (no restart); True if the model changed."""
        return self.lifecycle.refresh()

    def lifecycle_status(self) -> dict:
        """Champion accuracy and the last drift check and retrain, for /status."""
        return self.lifecycle.status()
