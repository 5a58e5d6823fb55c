"""A retrain's scores as frozen dataclasses: what the judge, /models, /status and the CLI read.

Stored in ``ModelVersion.metrics`` as JSON (:meth:`RetrainMetrics.to_json`, the same shape as
always) and read back with :meth:`RetrainMetrics.from_json`; nothing reads them by key path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ml.judging import Verdict
from ml.training import TrainReport

# The scores people read (and ``retrain --json`` prints); per-breed tables stay in the registry.
HEADLINE = ("n", "top1", "top3", "top1_imagenet_breeds", "top1_new_breeds", "n_new_breeds")


@dataclass(frozen=True)
class SplitScores:
    """A head's accuracy on one set of people-labelled photos (validation, or the golden set)."""

    n: int
    top1: float | None
    top3: float | None = None
    nll: float | None = None
    top1_imagenet_breeds: float | None = None  # on breeds the base model knew
    n_imagenet_breeds: int = 0
    top1_new_breeds: float | None = None  # on breeds added since
    n_new_breeds: int = 0
    per_breed: dict = field(default_factory=dict)  # key -> {"n", "top1"}
    confusions: list = field(default_factory=list)  # [{"truth", "predicted", "n"}]
    per_age_group: dict = field(
        default_factory=dict
    )  # puppy|adult|senior -> {"n", "top1"}, enough photos only

    def headline(self) -> dict:
        return {name: getattr(self, name) for name in HEADLINE}


@dataclass(frozen=True)
class ModelScores:
    validation: SplitScores
    golden: SplitScores

    def headline(self) -> dict:
        return {"validation": self.validation.headline(), "golden": self.golden.headline()}

    @classmethod
    def from_json(cls, data: dict) -> ModelScores:
        known = {f.name for f in fields(SplitScores)}
        return cls(
            **{
                split: SplitScores(**{k: v for k, v in data[split].items() if k in known})
                for split in ("validation", "golden")
            }
        )


@dataclass(frozen=True)
class RetrainMetrics:
    train: TrainReport
    candidate: ModelScores
    champion: ModelScores
    champion_version: str
    # The cross-validated comparison that decided (``ml.judging``); None in rows stored before it.
    verdict: Verdict | None = None

    def to_json(self) -> dict:
        return {**asdict(self), "verdict": self.verdict.to_json() if self.verdict else None}

    @classmethod
    def from_json(cls, data: dict | None) -> RetrainMetrics | None:
        """Read back what :meth:`to_json` stored; None for a model that was never trained (v0)."""
        if not data or "candidate" not in data:
            return None
        return cls(
            train=TrainReport(**data["train"]),
            candidate=ModelScores.from_json(data["candidate"]),
            champion=ModelScores.from_json(data["champion"]),
            champion_version=data["champion_version"],
            verdict=Verdict.from_json(data["verdict"]) if data.get("verdict") else None,
        )

    def headline(self) -> dict:
        """The ``retrain --json`` "metrics" object: headline scores, new breeds, training photos."""
        return {
            "candidate": self.candidate.headline(),
            "champion": self.champion.headline(),
            "breeds_added": len(self.train.breeds_added),
            "n_train": self.train.n_train,
            "verdict": self.verdict.headline() if self.verdict else None,
        }
