"""Judge a retrained head from the labels there are: cross-validation and a paired test for noise.

A shelter labels a handful of photos a day, so holding a fifth of them out for validation (the old
rule: wait for 20) meant judging nothing for weeks. Here every labelled photo is used twice: K-fold
cross-validation trains K candidates, each on the photos outside one fold, and scores it on the fold;
so each photo gets an answer from a candidate that never saw it. The golden set (the fixed yardstick
every model is compared on) is never trained on, and is scored by every fold's candidate.

Candidate and champion are compared photo by photo on the same photos, and only the photos where
they disagree count (McNemar's exact test: under "no better, no worse", a disagreement goes either
way with probability 1/2). The candidate is promoted when it is

* better on what changed (photos of breeds the champion has no row for, or taken after a shift):
  more of its disagreements won than lost, and either it names at least ``min_new_breed_hits``
  photos of breeds the champion cannot name (the champion scores zero there by construction, so a
  hit by a candidate that never saw the photo is not a coin toss), or, on new conditions, its wins
  are unlikely by luck (one-sided p below ``better_alpha``); when nothing changed, it must be
  better that way on everything;
* not worse on the rest: not losing more disagreements than luck explains (``worse_alpha``), on
  the rest as a whole and on the unbiased photos alone. Staff label mostly the photos the model was
  unsure of, where the champion is weakest, so a candidate can look good on those while getting
  worse on the photos nobody asks about; the audit slice (auto-accepted photos staff checked at
  random) is where that would show, and the golden set is checked on its own as before;
* and, over everything compared, it loses no more disagreements than it wins. A tie passes: a
  candidate that names a new breed's photo and loses one known-breed photo within noise is what the
  first label of a breed buys at a shelter's pace (``bench/README.md``, fourth round).

Photos the champion was trained on, and auto-accepted photos (labelled by a model), are trained on
but left out of the comparison: the champion would be graded on answers it had learned or given,
the candidate on photos it never saw. Folds keep each photo's group together (its
SHA-256, or its dog once dogs exist: two photos of one dog never sit on both sides of a fold) and
spread each breed's groups over the folds (``assign_folds``).

Pure numpy: the caller gathers the embeddings and supplies the training function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from math import comb

import numpy as np

from ml.folds import assign_folds
from ml.head import BreedHead


@dataclass(frozen=True)
class LabelledPhotos:
    """Labelled embeddings and what the judge needs to know about each photo."""

    x: np.ndarray  # (n, embedding_dim)
    y: tuple[str, ...]  # breed keys
    groups: tuple[str, ...]  # fold key: the photo's SHA-256 (or its dog): never split across folds
    changed: np.ndarray  # bool (n,): a breed new to the champion, or taken after a shift
    audited: np.ndarray  # bool (n,): from the unbiased audit slice (auto-accepted, checked at random)
    # bool (n,): trained on, never compared: the champion learned from it, or its label is a
    # model's own (auto-accepted), so grading the champion on it would grade its own answers
    train_only: np.ndarray

    @classmethod
    def of(
        cls,
        x: np.ndarray,
        y: Sequence[str],
        groups: Sequence[str],
        *,
        changed: Sequence[bool] | None = None,
        audited: Sequence[bool] | None = None,
        train_only: Sequence[bool] | None = None,
    ) -> LabelledPhotos:
        n = len(y)
        if len(groups) != n or len(x) != n:
            raise ValueError("embeddings, labels and groups must have one row per photo")

        def flags(values: Sequence[bool] | None) -> np.ndarray:
            out = np.zeros(n, dtype=bool) if values is None else np.asarray(values, dtype=bool)
            if out.shape != (n,):
                raise ValueError("one flag per photo")
            return out

        matrix = np.asarray(x, dtype=np.float32).reshape(n, -1) if n else np.zeros((0, 0), np.float32)
        return cls(matrix, tuple(y), tuple(groups), flags(changed), flags(audited), flags(train_only))

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, rows: np.ndarray) -> LabelledPhotos:
        rows = np.asarray(rows, dtype=int)
        return LabelledPhotos(
            self.x[rows] if len(self.x) else self.x,
            tuple(self.y[i] for i in rows),
            tuple(self.groups[i] for i in rows),
            self.changed[rows],
            self.audited[rows],
            self.train_only[rows],
        )


# What the retrain job does with labelled photos: the judge trains one candidate per fold with it.
Trainer = Callable[[LabelledPhotos], BreedHead]


@dataclass(frozen=True)
class JudgeRules:
    """How a candidate is judged; the values come from Settings (``promotion_*``), stated there once."""

    folds: int
    better_alpha: float  # one-sided McNemar p below which "better" is not luck
    worse_alpha: float  # looser: doubt about getting worse counts against the candidate
    min_compared: int  # photos both models answered that neither trained on
    # Photos of breeds the champion has no row for, named right by a candidate that never saw them.
    # The champion cannot name them at all, so McNemar's coin does not apply: a fold's candidate
    # names one of 120-odd breeds right by chance about once in a hundred tries, not one in two.
    min_new_breed_hits: int


@dataclass(frozen=True)
class SliceComparison:
    """Candidate and champion on the same photos: hits, and the photos where exactly one was right."""

    n: int
    candidate_right: int
    champion_right: int
    wins: int  # the candidate right, the champion wrong
    losses: int  # the champion right, the candidate wrong
    p_better: float  # one-sided McNemar exact: P(>= wins of wins+losses | a coin)
    p_worse: float  # P(>= losses of wins+losses | a coin)

    @classmethod
    def of(cls, candidate_hit: np.ndarray, champion_hit: np.ndarray) -> SliceComparison:
        candidate_hit = np.asarray(candidate_hit, dtype=bool)
        champion_hit = np.asarray(champion_hit, dtype=bool)
        wins = int((candidate_hit & ~champion_hit).sum())
        losses = int((~candidate_hit & champion_hit).sum())
        return cls(
            n=len(candidate_hit),
            candidate_right=int(candidate_hit.sum()),
            champion_right=int(champion_hit.sum()),
            wins=wins,
            losses=losses,
            p_better=binomial_tail(wins, wins + losses),
            p_worse=binomial_tail(losses, wins + losses),
        )

    @property
    def candidate_top1(self) -> float | None:
        return self.candidate_right / self.n if self.n else None

    @property
    def champion_top1(self) -> float | None:
        return self.champion_right / self.n if self.n else None

    def to_json(self) -> dict:
        return {**asdict(self), "candidate_top1": self.candidate_top1, "champion_top1": self.champion_top1}


class Outcome(StrEnum):
    """Why the judge decided as it did; the layer that speaks words it (dogbot/lifecycle_text.py)."""

    TOO_FEW = "too_few"  # fewer photos to compare on than rules.min_compared
    WORSE = "worse"  # worse on ``on`` (rest, unbiased or golden)
    NOT_BETTER = "not_better"  # not clearly better on ``on`` (changed, or everything)
    LOSES_OVERALL = "loses_overall"  # better on what changed, but loses more photos than it wins
    BETTER = "better"  # promoted


@dataclass(frozen=True)
class Verdict:
    """The decision, the numbers behind it, and one English sentence for the log and ``--json``.

    People read ``outcome``, ``on`` and ``tally`` worded in their language, not ``reason``."""

    promote: bool
    reason: str
    changed: SliceComparison  # new breeds / new conditions
    new_breeds_slice: SliceComparison  # the part of ``changed`` the champion has no row for
    rest: SliceComparison  # everything else compared (labelled photos not changed + golden set)
    unbiased: SliceComparison  # the audit slice (labelled and golden photos flagged audited)
    golden: SliceComparison
    n_labelled: int
    n_compared: int  # labelled photos compared (not seen by the champion) + golden photos
    folds: int
    new_breeds: tuple[str, ...] = field(default=())  # changed breeds the candidates learned
    outcome: str = ""  # an Outcome; "" in verdicts stored before it existed (then ``reason`` is all)
    on: str = ""  # the slice that decided: a name in SLICES, or "everything"
    tally: tuple[int, int] = (0, 0)  # that slice's (wins, losses)
    needed: int = 0  # rules.min_compared, for TOO_FEW
    # The fold candidates' answers on the compared photos they never saw: (breed named, its
    # probability, the breed named second, right). What the candidate's answers are worth before
    # anyone answers a question about it (dogbot/core/asking.py); kept beside the verdict, not in it.
    judged_answers: tuple[tuple[str, float, str | None, bool], ...] = field(
        default=(), repr=False, compare=False
    )

    SLICES = ("changed", "new_breeds_slice", "rest", "unbiased", "golden")

    def headline(self) -> dict:
        """Who won the disagreements, per slice: what ``retrain --json`` prints."""
        return {
            "promote": self.promote,
            "n_compared": self.n_compared,
            "folds": self.folds,
            **{name: [getattr(self, name).wins, getattr(self, name).losses] for name in self.SLICES},
        }

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("judged_answers")
        for name in self.SLICES:
            out[name] = getattr(self, name).to_json()
        out["new_breeds"] = list(self.new_breeds)
        return out

    @classmethod
    def from_json(cls, data: dict) -> Verdict:
        slice_fields = {f.name for f in fields(SliceComparison)}

        def comparison(part: dict) -> SliceComparison:
            return SliceComparison(**{k: v for k, v in part.items() if k in slice_fields})

        return cls(
            **{
                **data,
                **{name: comparison(data[name]) for name in cls.SLICES},
                "new_breeds": tuple(data.get("new_breeds", ())),
                "tally": tuple(data.get("tally", (0, 0))),
            }
        )


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): McNemar's exact one-sided p-value (1.0 with no pairs)."""
    if n <= 0 or k <= 0:
        return 1.0
    return sum(comb(n, i) for i in range(k, n + 1)) / 2**n


def hits(head: BreedHead, x: np.ndarray, y: Sequence[str]) -> np.ndarray:
    """Top-1 right or not, per photo; a breed the head has no row for is always a miss."""
    if not len(y):
        return np.zeros(0, dtype=bool)
    index = {key: i for i, key in enumerate(head.breed_keys)}
    predicted = head.logits(np.asarray(x, np.float32)).argmax(axis=1)
    truth = np.array([index.get(label, -1) for label in y])
    return predicted == truth


def judge(
    labelled: LabelledPhotos,
    golden: LabelledPhotos,
    champion: BreedHead,
    train: Trainer,
    rules: JudgeRules,
) -> Verdict:
    """Cross-validate ``train`` on ``labelled``, compare with ``champion`` photo by photo, decide.

    ``golden`` photos must not be in ``labelled`` (they are never trained on); a golden photo counts
    as right for the candidate when most fold candidates get it right. A photo of a breed the
    champion has no row for counts as changed whatever its flag says.
    """
    folds = max(1, min(rules.folds, len(set(labelled.groups))))
    assignment = assign_folds(labelled.groups, labelled.y, folds)
    candidate_hit = np.zeros(len(labelled), dtype=bool)
    golden_votes = np.zeros(len(golden), dtype=int)
    trained_folds = 0
    learned: set[str] = set()
    compared = ~labelled.train_only
    judged_answers: list[tuple[str, float, str | None, bool]] = []
    for k in range(folds):
        held_out = assignment == k
        if not held_out.any() or held_out.all():
            continue
        if not (held_out & compared).any() and not len(golden):
            continue  # nothing this fold's candidate would be graded on
        head = train(labelled.subset(np.flatnonzero(~held_out)))
        trained_folds += 1
        rows = np.flatnonzero(held_out)
        candidate_hit[rows] = hits(head, labelled.x[rows], [labelled.y[i] for i in rows])
        judged_answers += _answers(head, labelled, rows[compared[rows]])
        golden_votes += hits(head, golden.x, golden.y)
        learned |= set(head.breed_keys) - set(champion.breed_keys)
    # With a single fold nothing can be held out: no candidate answers, so nothing is compared.
    if trained_folds == 0:
        compared = np.zeros(len(labelled), dtype=bool)
    golden_candidate = golden_votes * 2 > trained_folds if trained_folds else np.zeros(len(golden), bool)
    golden_in = np.full(len(golden), trained_folds > 0)

    champion_hit = hits(champion, labelled.x, labelled.y)
    golden_champion = hits(champion, golden.x, golden.y)

    def compare(label_mask: np.ndarray, golden_mask: np.ndarray) -> SliceComparison:
        return SliceComparison.of(
            np.concatenate([candidate_hit[label_mask], golden_candidate[golden_mask]]),
            np.concatenate([champion_hit[label_mask], golden_champion[golden_mask]]),
        )

    champion_keys = set(champion.breed_keys)
    unnamable = np.array([label not in champion_keys for label in labelled.y], dtype=bool)
    golden_unnamable = np.array([label not in champion_keys for label in golden.y], dtype=bool)
    labelled_changed = labelled.changed | unnamable
    golden_changed = golden.changed | golden_unnamable
    changed = compare(compared & labelled_changed, golden_in & golden_changed)
    new_breeds_slice = compare(compared & unnamable, golden_in & golden_unnamable)
    conditions = compare(
        compared & labelled_changed & ~unnamable, golden_in & golden_changed & ~golden_unnamable
    )
    rest = compare(compared & ~labelled_changed, golden_in & ~golden_changed)
    unbiased = compare(compared & labelled.audited, golden_in & golden.audited)
    golden_only = compare(np.zeros(len(labelled), dtype=bool), golden_in)
    everything = compare(compared, golden_in)
    new_breeds = tuple(sorted({labelled.y[i] for i in np.flatnonzero(unnamable)} & learned))
    promote, reason, outcome, on, deciding = _decide(
        changed, new_breeds_slice, conditions, rest, unbiased, golden_only, everything, rules
    )
    return Verdict(
        promote=promote,
        reason=reason,
        outcome=outcome,
        on=on,
        tally=(deciding.wins, deciding.losses),
        needed=rules.min_compared,
        changed=changed,
        new_breeds_slice=new_breeds_slice,
        rest=rest,
        unbiased=unbiased,
        golden=golden_only,
        n_labelled=len(labelled),
        n_compared=everything.n,
        folds=trained_folds,
        new_breeds=new_breeds,
        judged_answers=tuple(judged_answers),
    )


def _answers(head: BreedHead, labelled: LabelledPhotos, rows: np.ndarray) -> list:
    """``head``'s answer on each of ``rows``: (first breed, its probability, second breed, right)."""
    if not len(rows):
        return []
    probabilities = head.probabilities(np.asarray(labelled.x[rows], np.float32))
    order = np.argsort(-probabilities, axis=1)[:, :2]
    keys = head.breed_keys
    return [
        (
            keys[order[j, 0]],
            round(float(probabilities[j, order[j, 0]]), 6),
            keys[order[j, 1]] if order.shape[1] > 1 else None,
            keys[order[j, 0]] == labelled.y[i],
        )
        for j, i in enumerate(rows)
    ]


def _photos(n: int, noun: str = "photo") -> str:
    """ "1 photo", "3 photos": the verdict is read by people."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _decide(
    changed: SliceComparison,
    new_breeds: SliceComparison,
    conditions: SliceComparison,
    rest: SliceComparison,
    unbiased: SliceComparison,
    golden: SliceComparison,
    everything: SliceComparison,
    rules: JudgeRules,
) -> tuple[bool, str, Outcome, str, SliceComparison]:
    """(promote, the English reason, the outcome, the deciding slice's name, that slice)."""
    keep = "Kept the current model: "
    if everything.n < rules.min_compared:
        return (
            False,
            keep + f"only {_photos(everything.n, 'labelled photo')} it has not learned from yet "
            f"(need {rules.min_compared}) to compare the new one on.",
            Outcome.TOO_FEW,
            "everything",
            everything,
        )
    for slice_name, name, part in (
        ("rest", "the breeds it already knew", rest),
        ("unbiased", "the photos checked at random", unbiased),
        ("golden", "the fixed test photos", golden),
    ):
        if part.losses > part.wins and part.p_worse < rules.worse_alpha:
            return (
                False,
                keep + f"the new one is worse on {name}: it got {_photos(part.losses)} wrong that the "
                f"current one got right, and only {part.wins} the other way.",
                Outcome.WORSE,
                slice_name,
                part,
            )

    def clearly_better(part: SliceComparison) -> bool:
        return part.wins > part.losses and part.p_better < rules.better_alpha

    if changed.n:
        on, what, target = "changed", "what changed", changed
        better = (
            new_breeds.candidate_right >= rules.min_new_breed_hits or clearly_better(conditions)
        ) and changed.wins > changed.losses
    else:
        on, what, target = "everything", "the labelled photos", everything
        better = clearly_better(everything)
    names = ""
    if new_breeds.n:
        names = (
            f", naming {new_breeds.candidate_right} of {new_breeds.n} photos of breeds the current one "
            "cannot name"
        )
    tally = (
        f"it got {_photos(target.wins)} right that the current one got wrong and {target.losses} the "
        f"other way{names}"
    )
    if not better:
        return (
            False,
            keep + f"the new one is not clearly better on {what}: {tally}, which could be luck.",
            Outcome.NOT_BETTER,
            on,
            target,
        )
    # A tie overall passes: the photos won are of what changed, which keeps arriving (a breed the
    # champion cannot name stays unnamed), while the rest's losses already passed their own noise
    # check. At a shelter's pace this is what lets the first candidate that names a new breed serve.
    if everything.wins < everything.losses:
        return (
            False,
            keep + "what the new one gains on what changed, it loses on the rest.",
            Outcome.LOSES_OVERALL,
            "everything",
            everything,
        )
    return (
        True,
        f"The new model replaces the current one: on {what} {tally}; on the rest it is as good "
        f"({rest.candidate_right} of {rest.n} right, against {rest.champion_right}).",
        Outcome.BETTER,
        on,
        target,
    )
