"""The catalog: every photo and label of a shelter, as four services over one database and model.

Split along its seams so each reads on its own: :mod:`~dogbot.core.intake` (photos in, classified,
auto-labelled), :mod:`~dogbot.core.labelling` (people's answers), :mod:`~dogbot.core.reporting`
(status, conflicts, export) and :mod:`~dogbot.core.breeds` (the breed list, which grows). What the
bot, the CLI and the simulation hold is a :class:`Catalog`; a caller that needs one part uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from dogbot.core.asking import AskPolicy, AskRules
from dogbot.core.breeds import Breeds
from dogbot.core.dogs import DogRules, Dogs
from dogbot.core.intake import PhotoIntake
from dogbot.core.intake_rules import IntakeRules
from dogbot.core.labelling import Labelling
from dogbot.core.limits import DecodeSlots
from dogbot.core.lookalikes import Lookalikes
from dogbot.core.reporting import Reporting
from ml.exemplars import ExemplarRules
from ml.predictor import Predictor
from storage.blobs import PhotoStore
from storage.tables import utcnow


@dataclass(frozen=True)
class Catalog:
    breeds: Breeds
    intake: PhotoIntake
    labelling: Labelling
    reporting: Reporting
    dogs: Dogs

    @classmethod
    def open(
        cls,
        engine: Engine,
        photos: PhotoStore,
        predictor: Predictor,
        *,
        rules: IntakeRules,
        dog_rules: DogRules,
        ask_rules: AskRules,
        lookalike_min_corrections: int,
        lookalike_days: int,
        exemplars: ExemplarRules | None = None,
        breeds: Breeds | None = None,
        clock: Callable[[], datetime] = utcnow,
        decode_slots: DecodeSlots | None = None,
    ) -> Catalog:
        """The four services sharing one breed list and one look-alike memory."""
        breeds = breeds or Breeds(engine, clock=clock)
        lookalikes = Lookalikes(
            engine,
            known=lambda: predictor.head.breed_keys,
            clock=clock,
            min_corrections=lookalike_min_corrections,
            days=lookalike_days,
            exemplars=exemplars,
            backbone=lambda: predictor.head.backbone,
            base_breeds=[key for _, key in predictor.imagenet_breeds],
        )
        labelling = Labelling(engine, photos, breeds, lookalikes, clock=clock)
        asking = AskPolicy(engine, ask_rules, model_version=lambda: predictor.model_version, clock=clock)
        dogs = Dogs(engine, predictor, breeds, labelling, dog_rules, asking=asking, clock=clock)
        return cls(
            breeds=breeds,
            intake=PhotoIntake(
                engine,
                photos,
                predictor,
                breeds,
                lookalikes,
                rules,
                dogs=dogs,
                asking=asking,
                clock=clock,
                decode_slots=decode_slots,
            ),
            labelling=labelling,
            reporting=Reporting(engine, predictor, breeds, clock=clock, tz=ZoneInfo(dog_rules.timezone)),
            dogs=dogs,
        )
