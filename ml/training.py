"""Train a breed head on stored embeddings, warm-started from the ImageNet dog rows, and measure it.

Only the linear head is trained: the backbone is fixed, so a photo's embedding never changes and
retraining needs no images (seconds on a CPU). What it does, and why (measured on the dev photos
with ``bench/bench_jobs.py``):

* **Anchored old rows.** Rows of the warm-start head are pulled towards their initial values by an
  L2 penalty (not frozen): they adapt to shelter photos but keep what a million ImageNet images
  taught them.
* **New rows for new breeds**, learned from zero with a small L2 penalty. (Initialising them at
  scaled class means, a prototype classifier, did worse here: 0.27 instead of 0.36 top-1 on new
  breeds at the same ImageNet-breed accuracy.)
* **Standardised coordinates.** Raw embeddings are non-negative, correlated and of norm ~14; the
  optimiser works on standardised features and the result is folded back into one linear layer.
* **Balanced classes.** Each breed weighs the same in the loss, however many photos it has.
* **Fair competition.** One shared bias offset for the new rows is chosen on the validation split:
  the best balanced accuracy of new and old breeds among the offsets that keep the old breeds
  within ``old_tolerance`` of the warm-start head (so learning a breed never costs the others).
* **Calibration.** A temperature fitted on the validation split makes confidences mean what they
  say (the auto-accept threshold relies on it).

Pure torch/numpy: no database. ``jobs.retrain`` gathers the embeddings and stores the result.
Heads are numpy (``ml.head``, so serving needs no torch); training converts at its edges.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ml.head import BreedHead

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that train: jobs.retrain imports this module in every
# process (the bot too), and only a process that actually trains should pay for torch.


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of :func:`train_head`; the defaults were chosen on the dev photos (``bench/bench_jobs.py``)."""

    old_anchor: float = 1.0  # L2 pull of warm-start rows towards their initial values (standardised)
    new_l2: float = 0.001  # L2 penalty on new rows (standardised)
    max_iter: int = 150  # L-BFGS iterations (full batch) on up to `full_iter_rows` photos
    full_iter_rows: int = 2000  # beyond this, iterations shrink in proportion (10,000 photos: 60)
    min_iter: int = 60
    min_photos: int = 2  # a new breed gets a row once it has this many training photos
    balance: bool = True
    bias_offsets: tuple[float, ...] = tuple(float(o) for o in np.round(np.arange(-2.0, 4.01, 0.25), 2))
    old_tolerance: float = 0.01  # old-breed validation top-1 may drop at most this below the warm start
    calibrate: bool = True
    seed: int = 0
    threads: int = 0  # torch threads while training (DOGBOT_TORCH_THREADS); 0: leave torch's default


@dataclass
class TrainReport:
    """What training did: rows added, the offset and temperature chosen, loss, sample counts."""

    breeds_added: list[str]
    breeds_too_few: list[str]
    n_train: int
    n_val: int
    new_bias_offset: float
    temperature: float
    final_loss: float
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def train_head(
    base: BreedHead,
    x_train: np.ndarray,
    y_train: Sequence[str],
    *,
    x_val: np.ndarray | None = None,
    y_val: Sequence[str] | None = None,
    config: TrainConfig = TrainConfig(),  # noqa: B008 (frozen dataclass: a safe default)
) -> tuple[BreedHead, TrainReport]:
    """A new head with ``base``'s rows (anchored) plus one row per new breed in ``y_train``.

    ``y_train`` / ``y_val`` hold breed keys; labels that are not breeds (not a dog, mixed breed)
    must be filtered out by the caller. Validation photos of breeds without a row are ignored for
    the offset and temperature (they cannot be right whatever they are set to).
    """
    import torch

    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    x_train = np.asarray(x_train, np.float32)
    counts = Counter(y_train)
    known = set(base.breed_keys)
    new_keys = sorted(k for k, n in counts.items() if k not in known and n >= config.min_photos)
    too_few = sorted(k for k, n in counts.items() if k not in known and n < config.min_photos)
    keys = list(base.breed_keys) + new_keys
    index = {key: i for i, key in enumerate(keys)}
    keep = np.array([label in index for label in y_train], dtype=bool)
    x = torch.from_numpy(x_train[keep]) if len(x_train) else torch.zeros(0, base.embedding_dim)
    y = torch.as_tensor([index[label] for label in np.asarray(y_train, dtype=object)[keep]], dtype=torch.long)

    n_old = len(base.breed_keys)
    init_w = torch.cat([torch.from_numpy(base.weight), torch.zeros(len(new_keys), base.embedding_dim)])
    init_b = torch.cat([torch.from_numpy(base.bias), torch.zeros(len(new_keys))])
    final_loss = float("nan")
    if len(y) > 1:
        weight, bias, final_loss = _fit(x, y, init_w, init_b, n_old, len(keys), config)
    else:
        weight, bias = init_w, init_b
        bias[n_old:] = -1e4  # nothing to learn a new breed from: never predict it

    head = BreedHead(
        keys, weight.detach().numpy(), bias.detach().numpy(), base.backbone, metadata=dict(base.metadata)
    )
    offset, temperature, n_val = 0.0, 1.0, 0
    if x_val is not None and y_val is not None and len(y_val):
        val_keep = np.array([label in index for label in y_val], dtype=bool)
        n_val = int(val_keep.sum())
        if n_val:
            xv = torch.from_numpy(np.asarray(x_val, np.float32)[val_keep])
            yv = torch.as_tensor([index[label] for label in np.asarray(y_val, dtype=object)[val_keep]])
            if new_keys:
                offset = _choose_offset(head, base, xv, yv, n_old, config)
                head.bias[n_old:] += offset
            if config.calibrate:
                temperature = fit_temperature(_logits(head, xv), yv)
                head.temperature = temperature
    report = TrainReport(
        breeds_added=new_keys,
        breeds_too_few=too_few,
        n_train=int(keep.sum()),
        n_val=n_val,
        new_bias_offset=float(offset),
        temperature=float(temperature),
        final_loss=float(final_loss),
        seconds=round(time.perf_counter() - started, 3),
    )
    return head, report


def _fit(
    x: torch.Tensor,
    y: torch.Tensor,
    init_w: torch.Tensor,
    init_b: torch.Tensor,
    n_old: int,
    n_classes: int,
    config: TrainConfig,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    import torch

    # Optimise in standardised coordinates, where L-BFGS converges in a hundred steps; the logits
    # are the same function: x W^T + b == ((x - mu) / sd) (W sd)^T + (b + W mu).
    mu = x.mean(dim=0)
    sd = x.std(dim=0).clamp_min(1e-3)
    xs = (x - mu) / sd
    init_ws = init_w * sd
    init_bs = init_b + init_w @ mu
    weight = init_ws.clone().requires_grad_(True)
    bias = init_bs.clone().requires_grad_(True)
    present = torch.bincount(y, minlength=n_classes).float()
    sample_weight = (1.0 / present.clamp_min(1.0))[y] if config.balance else torch.ones(len(y))
    sample_weight = sample_weight / sample_weight.sum()
    penalty = torch.full((n_classes, 1), config.new_l2)
    penalty[:n_old] = config.old_anchor
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=_iterations(len(y), config),
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = xs @ weight.T + bias
        loss = (torch.nn.functional.cross_entropy(logits, y, reduction="none") * sample_weight).sum()
        # Anchor the biases too: otherwise the breeds absent from a small training set have their
        # bias pushed down until they are never predicted again (measured: 0.81 -> 0.58 top-1).
        loss = (
            loss + (penalty * (weight - init_ws) ** 2).sum() + (penalty[:, 0] * (bias - init_bs) ** 2).sum()
        )
        loss.backward()
        return loss

    with torch.enable_grad():
        loss = optimizer.step(closure)
    weight_s, bias_s = weight.detach(), bias.detach()
    return weight_s / sd, bias_s - (weight_s / sd) @ mu, float(loss.detach())


def _iterations(n: int, config: TrainConfig) -> int:
    """Fewer full-batch steps on big datasets: each step costs O(n), and many photos converge sooner."""
    scaled = int(config.max_iter * config.full_iter_rows / max(n, 1))
    return max(config.min_iter, min(config.max_iter, scaled))


def _choose_offset(
    head: BreedHead, base: BreedHead, x: torch.Tensor, y: torch.Tensor, n_old: int, config: TrainConfig
) -> float:
    """The shared bias offset for new rows (see the module docstring); ties go to the offset nearest 0."""
    import torch

    with torch.no_grad():
        logits = _logits(head, x)
        is_new = y >= n_old
        old_floor = -1.0
        if (~is_new).any():
            base_hit = (_logits(base, x[~is_new]).argmax(dim=1) == y[~is_new]).float().mean()
            old_floor = float(base_hit) - config.old_tolerance
        scored = []
        for offset in sorted(config.bias_offsets, key=abs):
            shifted = logits.clone()
            shifted[:, n_old:] += offset
            hit = (shifted.argmax(dim=1) == y).float()
            old = float(hit[~is_new].mean()) if (~is_new).any() else 1.0
            parts = [hit[mask].mean() for mask in (is_new, ~is_new) if mask.any()]
            scored.append((old >= old_floor - 1e-9, float(sum(parts) / len(parts)), old, offset))
        allowed = [s for s in scored if s[0]]
        if allowed:
            return max(allowed, key=lambda s: s[1])[3]
        return max(scored, key=lambda s: s[2])[3]


def _logits(head: BreedHead, x: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.from_numpy(head.logits(x.numpy()))


def fit_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Temperature minimising the negative log-likelihood of ``y`` (grid search: robust, fast)."""
    import torch

    if len(y) == 0:
        return 1.0
    grid = torch.exp(torch.linspace(np.log(0.25), np.log(8.0), 61))
    with torch.no_grad():
        nll = torch.stack([torch.nn.functional.cross_entropy(logits / t, y) for t in grid])
    return float(grid[int(nll.argmin())])


@dataclass
class HeadMetrics:
    """Accuracy of a head on labeled embeddings; breeds the head lacks count as misses."""

    n: int
    top1: float | None
    top3: float | None
    per_breed: dict[str, dict]  # key -> {"n", "top1"}
    confusions: list[dict]  # [{"truth", "predicted", "n"}], most frequent first
    nll: float | None

    def to_json(self) -> dict:
        return asdict(self)

    def subset_top1(self, keys: Sequence[str]) -> tuple[float | None, int]:
        """Photo-weighted top-1 over the photos whose true breed is in ``keys``."""
        chosen = [self.per_breed[k] for k in keys if k in self.per_breed]
        n = sum(entry["n"] for entry in chosen)
        if not n:
            return None, 0
        return sum(entry["top1"] * entry["n"] for entry in chosen) / n, n


def evaluate_head(
    head: BreedHead, x: np.ndarray, y: Sequence[str], *, max_confusions: int = 10
) -> HeadMetrics:
    if len(y) == 0:
        return HeadMetrics(0, None, None, {}, [], None)
    index = {key: i for i, key in enumerate(head.breed_keys)}
    truth = np.asarray([index.get(label, -1) for label in y])
    logits = head.logits(x)
    top = np.argsort(-logits, axis=1, kind="stable")[:, : min(3, logits.shape[1])]
    known = truth >= 0
    hit1 = (top[:, 0] == truth) & known
    hit3 = (top == truth[:, None]).any(axis=1) & known
    nll = None
    if known.any():
        shifted = logits[known] - logits[known].max(axis=1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        nll = float(-log_probabilities[np.arange(int(known.sum())), truth[known]].mean())
    per_breed: dict[str, dict] = {}
    pairs: Counter = Counter()
    for i, label in enumerate(y):
        entry = per_breed.setdefault(label, {"n": 0, "hits": 0})
        entry["n"] += 1
        entry["hits"] += int(hit1[i])
        if not hit1[i]:
            pairs[(label, head.breed_keys[int(top[i, 0])])] += 1
    for entry in per_breed.values():
        entry["top1"] = entry.pop("hits") / entry["n"]
    return HeadMetrics(
        n=len(y),
        top1=float(hit1.mean()),
        top3=float(hit3.mean()),
        per_breed=per_breed,
        confusions=[{"truth": t, "predicted": p, "n": n} for (t, p), n in pairs.most_common(max_confusions)],
        nll=nll,
    )
