"""`dogbot eval`: how good is the serving model on a labeled photo list?

Reports breed top-1/top-3 on dog photos (all, and the honest subset that is not ImageNet images),
the not-a-dog decision's precision and recall, calibration, and how many photos could be accepted
without asking staff at 95/98/99 % precision — the curve the auto-accept threshold is chosen from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from dogbot.core.intake_rules import IntakeRules
from dogbot.core.manifest import ManifestRow
from dogbot.core.taxonomy import Taxonomy
from ml.combine import Combine, combine_outputs
from ml.images import ImageRejected, load_image
from ml.metrics import coverage_at_precision, expected_calibration_error, precision_recall, top_k_hits
from ml.predictor import ModelOutput, Predictor
from storage.vocabulary import NOT_A_DOG

AUTO_ACCEPT_TARGETS = (0.95, 0.98, 0.99)


@dataclass
class EvalReport:
    model_version: str
    n: int  # photos scored
    n_dogs: int
    top1: float
    top3: float
    top1_unseen: float | None  # imagenet_overlap == "no"
    top3_unseen: float | None
    n_unseen: int
    top1_known_breeds: float  # only breeds the model has a row for
    not_a_dog_precision: float
    not_a_dog_recall: float
    calibration_error: float
    auto_accept: dict[str, dict[str, float]]  # "0.95" -> {"coverage", "threshold"}
    errors: list[dict] = field(default_factory=list)
    unknown_labels: list[str] = field(default_factory=list)
    # With a manifest `dog` column: one answer per dog from all its photos (ml.combine).
    dogs: int | None = None
    dog_top1: float | None = None
    dog_top3: float | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        if self.dogs is None:  # no `dog` column: the keys of a photo-level report only
            for key in ("dogs", "dog_top1", "dog_top3"):
                data.pop(key)
        return data


@dataclass(frozen=True)
class ScoredPhoto:
    row: ManifestRow
    truth: str  # breed key or not_a_dog
    output: ModelOutput


def score_manifest(
    predictor: Predictor,
    taxonomy: Taxonomy,
    rows: Sequence[ManifestRow],
    *,
    rules: IntakeRules,
    batch_size: int = 16,
    progress: Callable = lambda iterable, **_: iterable,
) -> tuple[list[ScoredPhoto], list[dict], list[str]]:
    """Run the model over every readable photo; unreadable ones are reported, not fatal."""
    scored: list[ScoredPhoto] = []
    errors: list[dict] = []
    unknown: set[str] = set()
    pending: list[tuple[ManifestRow, str, Image.Image]] = []

    def flush() -> None:
        outputs = predictor.predict([image for _, _, image in pending])
        scored.extend(
            ScoredPhoto(row, truth, out) for (row, truth, _), out in zip(pending, outputs, strict=True)
        )
        pending.clear()

    for row in progress(rows, desc="eval", unit="photo"):
        breed = taxonomy.resolve(row.breed)
        if breed is None:
            unknown.add(row.breed)
            continue
        try:
            image = load_image(row.path.read_bytes(), max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)
        except (ImageRejected, OSError) as error:
            errors.append({"path": str(row.path), "error": getattr(error, "message", str(error))})
            continue
        pending.append((row, breed.key, image))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return scored, errors, sorted(unknown)


def summarize(scored: Sequence[ScoredPhoto], *, dog_threshold: float, model_version: str) -> EvalReport:
    dogs = [s for s in scored if s.truth != NOT_A_DOG]
    keys = list(dogs[0].output.breed_keys) if dogs else []
    index = {key: i for i, key in enumerate(keys)}
    probabilities = np.stack([s.output.breed_probabilities for s in dogs]) if dogs else np.zeros((0, 1))
    truth = np.array([index.get(s.truth, -1) for s in dogs], dtype=int)
    hit1 = top_k_hits(probabilities, truth, 1)
    hit3 = top_k_hits(probabilities, truth, 3)
    unseen = np.array([s.row.extra.get("imagenet_overlap") == "no" for s in dogs], dtype=bool)
    known = truth >= 0

    called_dog = np.array([s.output.is_dog(dog_threshold) for s in scored], dtype=bool)
    is_dog = np.array([s.truth != NOT_A_DOG for s in scored], dtype=bool)
    nad_precision, nad_recall = precision_recall(~called_dog, ~is_dog)

    confidence = probabilities.max(axis=1) if dogs else np.zeros(0)
    dog_called = np.array([s.output.is_dog(dog_threshold) for s in dogs], dtype=bool)
    correct = hit1 & dog_called
    auto = {}
    for target in AUTO_ACCEPT_TARGETS:
        coverage, threshold = coverage_at_precision(confidence, correct, target)
        auto[f"{target:.2f}"] = {"coverage": round(coverage, 4), "threshold": round(threshold, 4)}

    def mean(values: np.ndarray) -> float | None:
        return round(float(values.mean()), 4) if len(values) else None

    return EvalReport(
        model_version=model_version,
        n=len(scored),
        n_dogs=len(dogs),
        top1=mean(hit1) or 0.0,
        top3=mean(hit3) or 0.0,
        top1_unseen=mean(hit1[unseen]),
        top3_unseen=mean(hit3[unseen]),
        n_unseen=int(unseen.sum()),
        top1_known_breeds=mean(hit1[known]) or 0.0,
        not_a_dog_precision=round(nad_precision, 4),
        not_a_dog_recall=round(nad_recall, 4),
        calibration_error=round(expected_calibration_error(confidence, hit1.astype(float)), 4),
        auto_accept=auto,
    )


def summarize_dogs(scored: Sequence[ScoredPhoto], combine: Combine) -> tuple[int, float, float] | None:
    """(dogs, top-1, top-3) of one answer per dog (the manifest's `dog` column; a photo without one is
    a dog of its own) from its dog photos together; None when no row names a dog."""
    if not any(s.row.extra.get("dog", "").strip() for s in scored):
        return None
    groups: dict[str, list[ScoredPhoto]] = {}
    for i, s in enumerate(scored):
        if s.truth != NOT_A_DOG:
            groups.setdefault(s.row.extra.get("dog", "").strip() or f"photo {i}", []).append(s)
    if not groups:
        return 0, 0.0, 0.0
    hit1, hit3 = [], []
    for photos in groups.values():
        combined = combine_outputs([s.output for s in photos], combine)
        truth = Counter(s.truth for s in photos).most_common(1)[0][0]
        top = [key for key, _ in combined.top(3)]
        hit1.append(top[0] == truth)
        hit3.append(truth in top)
    return len(groups), round(float(np.mean(hit1)), 4), round(float(np.mean(hit3)), 4)


def evaluate(
    predictor: Predictor,
    taxonomy: Taxonomy,
    rows: Sequence[ManifestRow],
    *,
    rules: IntakeRules,
    combine: Combine,
    progress: Callable = lambda iterable, **_: iterable,
) -> EvalReport:
    """Score the model on labelled photos, deciding "is it a dog?" and reading files as intake does."""
    scored, errors, unknown = score_manifest(predictor, taxonomy, rows, rules=rules, progress=progress)
    report = summarize(scored, dog_threshold=rules.dog_threshold, model_version=predictor.model_version)
    report.errors, report.unknown_labels = errors, unknown
    dogs = summarize_dogs(scored, combine)
    if dogs is not None:
        report.dogs, report.dog_top1, report.dog_top3 = dogs
    return report


def format_report(report: EvalReport) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        f"model {report.model_version}: {report.n} photos scored, {report.n_dogs} dogs",
        f"breed top-1 {pct(report.top1)}  top-3 {pct(report.top3)}",
        f"  not ImageNet images ({report.n_unseen}): top-1 {pct(report.top1_unseen)}  "
        f"top-3 {pct(report.top3_unseen)}",
        f"  breeds the model knows: top-1 {pct(report.top1_known_breeds)}",
        f"not a dog: precision {pct(report.not_a_dog_precision)}  recall {pct(report.not_a_dog_recall)}",
        f"calibration error (ECE) {pct(report.calibration_error)}",
        "auto-accept without asking staff:",
    ]
    for target, entry in report.auto_accept.items():
        lines.append(
            f"  at {float(target):.0%} precision: {entry['coverage']:.1%} of dog photos "
            f"(confidence >= {entry['threshold']:.3f})"
        )
    if report.dogs is not None:
        lines.append(
            f"one answer per dog from all its photos ({report.dogs} dogs): top-1 {pct(report.dog_top1)}  "
            f"top-3 {pct(report.dog_top3)}"
        )
    for error in report.errors:
        lines.append(f"unreadable: {error['path']}: {error['error']}")
    if report.unknown_labels:
        lines.append(f"unknown breed names skipped: {', '.join(report.unknown_labels)}")
    return "\n".join(lines)
