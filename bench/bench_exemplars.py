"""What do labelled exemplars buy before any retrain? (issue 11, "learn from the first label")

A stream of dev photos is answered by the base model (no retrain). Staff label every photo the bot
asks about, plus a 5 % audit of the ones it auto-accepts; every labelled photo's embedding becomes an
exemplar. Three answer policies are compared on the same streams:

- ``base``: the breed buttons are the model's top 3; a photo is asked about when the confidence is
  below the auto-accept threshold;
- ``+ buttons``: up to two breeds of the nearest labelled exemplars (cosine similarity of the stored
  embeddings at least ``--button-similarity``) join the buttons;
- ``+ buttons + veto``: also, a confident answer is asked about instead of auto-accepted when the
  nearest exemplar (similarity at least ``--veto-similarity``) is of another breed.

The stream is the dog photos of ``manifest.csv`` (breeds the base model knows) and the photos of
``other_breeds.csv`` breeds with at least ``--new-breed-min-photos`` photos (breeds it does not know),
which start arriving after the first ``--warm-up`` photos, as in ``dogbot simulate``'s
``new_breeds@D``. ``new-breed in buttons`` counts new-breed photos from each breed's 3rd photo on
whose true breed was auto-accepted or offered as a button (the simulation's metric of that name).
Means over ``--seeds`` stream orders, with their spread (min-max).

    .venv/bin/python bench/bench_exemplars.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from dev_embeddings import base_predictor, known_and_new_rows, load_dev_embeddings  # noqa: E402


def run_stream(order, truth, is_new, top3, top1_p, unit, policy, args, rng):
    exemplar_rows: list[int] = []
    seen_per_breed: Counter = Counter()
    asked = correct = in_buttons = in_buttons_n = known_asked = known_n = 0
    for i in order:
        seen_per_breed[truth[i]] += 1
        buttons = list(top3[i])
        nearest_breed, nearest_similarity = None, -1.0
        if exemplar_rows:
            similarity = unit[exemplar_rows] @ unit[i]
            ranked = np.argsort(-similarity)[:5]
            vetoing = [j for j in ranked if not args.unknown_only or is_new[exemplar_rows[j]]]
            if vetoing:
                nearest_breed = truth[exemplar_rows[vetoing[0]]]
                nearest_similarity = float(similarity[vetoing[0]])
            if policy != "base":
                extra = []
                for j in ranked:
                    breed = truth[exemplar_rows[j]]
                    if args.unknown_only and not is_new[exemplar_rows[j]]:
                        continue
                    if (
                        similarity[j] >= args.button_similarity
                        and breed not in buttons
                        and breed not in extra
                    ):
                        extra.append(breed)
                buttons += extra[:2]
        ask = top1_p[i] < args.threshold
        if (
            policy == "+ buttons + veto"
            and not ask
            and nearest_breed is not None
            and nearest_similarity >= args.veto_similarity
            and nearest_breed != top3[i][0]
        ):
            ask = True
        if ask:
            asked += 1
            correct += 1  # staff label it (staff error 0)
            exemplar_rows.append(i)
        else:
            correct += top3[i][0] == truth[i]
            if rng.random() < 0.05:  # the audit slice: staff check an auto-accepted photo
                exemplar_rows.append(i)
        if is_new[i] and seen_per_breed[truth[i]] >= 3:
            in_buttons_n += 1
            in_buttons += (not ask and top3[i][0] == truth[i]) or (ask and truth[i] in buttons)
        if not is_new[i]:
            known_n += 1
            known_asked += ask
    n = len(order)
    return {
        "asked": asked / n,
        "catalog accuracy": correct / n,
        "new-breed in buttons": in_buttons / in_buttons_n if in_buttons_n else float("nan"),
        "known breeds asked": known_asked / known_n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--button-similarity", type=float, default=0.6)
    parser.add_argument("--veto-similarity", type=float, default=0.8)
    parser.add_argument("--new-breed-min-photos", type=int, default=4)
    parser.add_argument("--warm-up", type=int, default=150)
    parser.add_argument("--center", action="store_true", help="centre embeddings before the cosine")
    parser.add_argument(
        "--unknown-only",
        action="store_true",
        help="only exemplars of breeds the model has no row for join the buttons or veto",
    )
    args = parser.parse_args()

    from dogbot.core.taxonomy import Taxonomy
    from dogbot.settings import Settings

    data = load_dev_embeddings(Settings(_env_file=None).model)
    taxonomy = Taxonomy()
    predictor = base_predictor(taxonomy)
    known = set(predictor.head.breed_keys)
    rows, truth, is_new = known_and_new_rows(data, taxonomy, known, args.new_breed_min_photos)
    outputs = predictor.predict_embeddings(data["emb"][rows], data["dog"][rows])
    top3 = [tuple(b for b, _ in o.top(3)) for o in outputs]
    top1_p = np.array([o.top(1)[0][1] for o in outputs])
    emb = data["emb"][rows].astype(np.float64)
    if args.center:
        # Lite0's pooled features are all positive, so raw cosines crowd near 1; centring on the mean
        # embedding of every stored photo (which the catalog has) spreads them out.
        emb = emb - emb.mean(axis=0)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    is_new_array = np.array(is_new)

    n_new = int(is_new_array.sum())
    print(
        f"{len(rows)} photos: {len(rows) - n_new} of known breeds, {n_new} of "
        f"{len({t for t, new in zip(truth, is_new, strict=True) if new})} new breeds; "
        f"button similarity >= {args.button_similarity}, veto similarity >= {args.veto_similarity}, "
        f"{args.seeds} stream orders"
    )
    policies = ("base", "+ buttons", "+ buttons + veto")
    results = {p: [] for p in policies}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        known_rows = rng.permutation(np.flatnonzero(~is_new_array))
        warm, rest = known_rows[: args.warm_up], known_rows[args.warm_up :]
        order = list(warm) + list(rng.permutation(np.concatenate([rest, np.flatnonzero(is_new_array)])))
        for policy in policies:
            results[policy].append(
                run_stream(
                    order, truth, is_new, top3, top1_p, unit, policy, args, np.random.default_rng(seed)
                )
            )
    metrics = list(results["base"][0])
    print("| policy | " + " | ".join(metrics) + " |")
    print("|---" * (len(metrics) + 1) + "|")
    for policy in policies:
        cells = []
        for metric in metrics:
            values = np.array([r[metric] for r in results[policy]])
            cells.append(f"{values.mean():.3f} ({values.min():.3f}-{values.max():.3f})")
        print(f"| {policy} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
