"""Does the judge from few labels promote what learned and refuse what did not? (issue 11, part 1)

Offline, on the cached dev embeddings (``bench/dev_embeddings.py``). The champion is the base model
(ImageNet rows). A stream of dev photos is answered by it; staff label the photos it asks about
(confidence below ``--threshold``) and a 5 % audit of the ones it auto-accepts, until ``N`` labels
exist. ``ml.judging.judge`` then cross-validates a candidate on those ``N`` labels plus a golden set
of ``--golden`` known-breed photos and decides. Every other photo of the same kind is the truth the
decision is checked against: the candidate trained on all ``N`` labels versus the champion, top-1
on those held-out photos (``true gain``; a promotion with a true gain <= 0 is a wrong one).

Scenarios (each over ``--seeds`` streams):

- ``new breeds, learns``: 30 % of the stream is photos of the ``other_breeds.csv`` breeds with at
  least 4 photos (the model has no row for them); the candidate is ``ml.training.train_head`` as the
  retrain job runs it (a hash-chosen fifth of its photos calibrates it);
- ``new breeds, shuffled labels``: the same stream, the candidate trained on labels shuffled among
  the photos (it learns rows for the new breeds, but wrong ones);
- ``no shift, learns`` / ``no shift, shuffled labels``: known breeds only, nothing changed: a
  candidate must then be better on the labelled photos themselves.

    .venv/bin/python bench/bench_judge.py [--seeds 8] [--labels 10 20 40]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from dev_embeddings import base_predictor, known_and_new_rows, load_dev_embeddings  # noqa: E402


def calibrated_trainer(base, *, shuffle_seed: int | None = None, val_share: float = 0.2, min_photos: int = 2):
    """``train_head`` as the retrain job runs it: a hash-chosen fifth of the photos calibrates it."""
    from ml.judging import LabelledPhotos
    from ml.training import TrainConfig, train_head

    def train(photos: LabelledPhotos):
        y = list(photos.y)
        if shuffle_seed is not None:
            y = list(np.random.default_rng(shuffle_seed).permutation(y))
        config = TrainConfig(min_photos=min_photos)
        # Calibrated, and cross-fitted while the validation photos are few, on people's labels only
        # (auto-accepted ones are the model grading itself).
        people = ~photos.train_only
        val = people & np.array(
            [int(hashlib.sha256(g.encode()).hexdigest()[:8], 16) / 16**8 < val_share for g in photos.groups]
        )
        if val.all() or not val.any():
            return train_head(base, photos.x, y, labelled_by_people=people, config=config)[0]
        return train_head(
            base,
            photos.x[~val],
            [label for label, v in zip(y, val, strict=True) if not v],
            x_val=photos.x[val],
            y_val=[label for label, v in zip(y, val, strict=True) if v],
            groups=[g for g, v in zip(photos.groups, val, strict=True) if not v],
            labelled_by_people=people[~val],
            config=config,
        )[0]

    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--golden", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--new-share", type=float, default=0.3)
    parser.add_argument("--new-breed-min-photos", type=int, default=4)
    parser.add_argument(
        "--new-breeds", type=int, default=0, help="only the N new breeds with the most photos (0: all)"
    )
    parser.add_argument("--only", choices=["new breeds", "no shift"], help="one kind of stream")
    parser.add_argument("--val-share", type=float, default=0.2, help="of a candidate's photos, to calibrate")
    parser.add_argument("--min-photos", type=int, default=2, help="a new breed's photos before it gets a row")
    parser.add_argument(
        "--no-auto-labels",
        dest="auto_labels",
        action="store_false",
        help="train on people's labels only (the retrain job also trains on auto-accepted photos)",
    )
    parser.add_argument("--verbose", action="store_true", help="print every verdict")
    args = parser.parse_args()

    import torch

    from dogbot.app import promotion_gates
    from dogbot.core.taxonomy import Taxonomy
    from dogbot.settings import Settings
    from ml.judging import LabelledPhotos, hits, judge

    torch.set_num_threads(1)
    settings = Settings(_env_file=None)
    model = settings.model
    rules = promotion_gates(settings)  # the deployment's judge
    data = load_dev_embeddings(model)
    taxonomy = Taxonomy()
    predictor = base_predictor(taxonomy)
    champion = predictor.head
    known = set(champion.breed_keys)
    rows, truth, is_new = known_and_new_rows(data, taxonomy, known, args.new_breed_min_photos)
    if args.new_breeds:
        new_counts = Counter(t for t, new in zip(truth, is_new, strict=True) if new)
        keep_new = {b for b, _ in new_counts.most_common(args.new_breeds)}
        kept = [j for j, (t, new) in enumerate(zip(truth, is_new, strict=True)) if not new or t in keep_new]
        rows, truth, is_new = [rows[j] for j in kept], [truth[j] for j in kept], [is_new[j] for j in kept]
    x = data["emb"][rows].astype(np.float32)
    sha = [str(s) for s in data["sha256"][rows]]
    truth_arr = np.array(truth, dtype=object)
    is_new = np.array(is_new)
    outputs = predictor.predict_embeddings(x, data["dog"][rows])
    confident = np.array([o.top(1)[0][1] >= args.threshold for o in outputs])
    print(
        f"{len(rows)} photos ({int(is_new.sum())} of new breeds); champion: the base model; "
        f"golden {args.golden} known-breed photos; {args.seeds} streams per cell",
        flush=True,
    )

    champion_top1 = np.array([o.top(1)[0][0] for o in outputs], dtype=object)

    def labelled_from(stream, n, rng):
        """Photos labelled by people until ``n``, and the ones auto-accepted meanwhile."""
        people, audited, auto = [], [], []
        for i in stream:
            audit = bool(confident[i] and rng.random() < 0.05)
            if not confident[i] or audit:
                people.append(i), audited.append(audit)
            elif args.auto_labels:
                auto.append(i)
            if len(people) == n:
                break
        return np.array(people, dtype=int), np.array(audited, dtype=bool), np.array(auto, dtype=int)

    def photos(idx, audited, auto=np.zeros(0, dtype=int)):  # noqa: B008 (never mutated)
        both = np.concatenate([idx, auto])
        return LabelledPhotos.of(
            x[both],
            list(truth_arr[idx]) + list(champion_top1[auto]),
            [sha[i] for i in both],
            changed=is_new[both],
            audited=np.concatenate([audited, np.zeros(len(auto), dtype=bool)]),
            train_only=np.concatenate([np.zeros(len(idx), dtype=bool), np.ones(len(auto), dtype=bool)]),
        )

    scenarios = [
        ("new breeds", "learns"),
        ("new breeds", "shuffled labels"),
        ("no shift", "learns"),
        ("no shift", "shuffled labels"),
    ]
    print(
        "| stream | candidate | labels | promoted | true gain, promoted (top-1) | wrong promotions "
        "| true gain, all | judge time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for stream_kind, candidate_kind in scenarios:
        if args.only and stream_kind != args.only:
            continue
        for n in args.labels:
            promoted, gains, gains_promoted, wrong, seconds = [], [], [], 0, []
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                known_rows = rng.permutation(np.flatnonzero(~is_new))
                golden_rows, pool_known = known_rows[: args.golden], known_rows[args.golden :]
                pool = pool_known
                if stream_kind == "new breeds":
                    new_rows = np.flatnonzero(is_new)
                    n_new = int(len(pool_known) * args.new_share / (1 - args.new_share))
                    pool = np.concatenate(
                        [pool_known, rng.choice(new_rows, min(n_new, len(new_rows)), replace=False)]
                    )
                stream = rng.permutation(pool)
                idx, audited, auto = labelled_from(stream, n, rng)
                labelled = photos(idx, audited, auto)
                golden = photos(golden_rows, np.zeros(len(golden_rows), bool))
                shuffle = seed + 1000 if candidate_kind == "shuffled labels" else None
                train = calibrated_trainer(
                    champion, shuffle_seed=shuffle, val_share=args.val_share, min_photos=args.min_photos
                )
                started = time.perf_counter()
                verdict = judge(labelled, golden, champion, train, rules)
                seconds.append(time.perf_counter() - started)
                held_out = np.setdiff1d(pool, np.concatenate([idx, auto]))
                final = train(labelled)
                gain = float(
                    hits(final, x[held_out], list(truth_arr[held_out])).mean()
                    - hits(champion, x[held_out], list(truth_arr[held_out])).mean()
                )
                gains.append(gain)
                if args.verbose:
                    split = {
                        name: float(
                            hits(final, x[rows_], list(truth_arr[rows_])).mean()
                            - hits(champion, x[rows_], list(truth_arr[rows_])).mean()
                        )
                        for name, rows_ in (
                            ("known", held_out[~is_new[held_out]]),
                            ("new", held_out[is_new[held_out]]),
                        )
                        if len(rows_)
                    }
                    gains_text = ", ".join(f"{k} {v:+.3f}" for k, v in split.items())
                    print(
                        f"  seed {seed}: true gain {gains_text}; changed {verdict.changed.wins}-"
                        f"{verdict.changed.losses}/{verdict.changed.n}, rest {verdict.rest.wins}-"
                        f"{verdict.rest.losses}/{verdict.rest.n}, audit {verdict.unbiased.wins}-"
                        f"{verdict.unbiased.losses}/{verdict.unbiased.n}: {verdict.reason}",
                        flush=True,
                    )
                promoted.append(verdict.promote)
                if verdict.promote:
                    gains_promoted.append(gain)
                    wrong += gain <= 0
            gp = f"{np.mean(gains_promoted):+.3f}" if gains_promoted else "-"
            print(
                f"| {stream_kind} | {candidate_kind} | {n} | {sum(promoted)}/{len(promoted)} | {gp} | "
                f"{wrong}/{len(promoted)} | {np.mean(gains):+.3f} ({min(gains):+.3f} to {max(gains):+.3f}) | "
                f"{np.mean(seconds):.1f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
