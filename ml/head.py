"""The breed head: a linear layer from the backbone's image embedding to one logit per breed.

Model version 0 is the ImageNet classifier's rows for the dog classes, so it knows 121 breeds with
no training. Retraining (``jobs.retrain``) replaces only this head, which is why it is small, cheap
to train on stored embeddings, and saved on its own: ``state_dict`` plus a JSON sidecar naming the
breeds and the backbone it belongs to.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class BreedHead:
    """``logits = embedding @ weight.T + bias``; ``breed_keys[i]`` names row ``i``."""

    breed_keys: list[str]
    weight: torch.Tensor  # (n_breeds, embedding_dim)
    bias: torch.Tensor  # (n_breeds,)
    backbone: str
    # Temperature applied to the logits before softmax: set by calibration after training.
    temperature: float = 1.0
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.weight.shape[0] != len(self.breed_keys) or self.bias.shape[0] != len(self.breed_keys):
            raise ValueError("head rows do not match its breed list")
        if len(set(self.breed_keys)) != len(self.breed_keys):
            raise ValueError("duplicate breed keys in head")

    @classmethod
    def from_classifier(
        cls,
        classifier: torch.nn.Linear,
        indices: Sequence[int],
        breed_keys: Sequence[str],
        backbone: str,
        *,
        embedding_dim: int | None = None,
    ) -> BreedHead:
        """Take the rows of an ImageNet classifier for the given class indices.

        With a wider ``embedding_dim`` (embeddings pooled more than one way, the classifier's input
        first), the extra columns start at zero: the zero-shot answers are the classifier's own.
        """
        index = torch.as_tensor(list(indices))
        weight = classifier.weight.detach()[index].clone()
        extra = (embedding_dim or weight.shape[1]) - weight.shape[1]
        if extra < 0:
            raise ValueError(f"embedding_dim {embedding_dim} is narrower than the classifier's input")
        return cls(
            breed_keys=list(breed_keys),
            weight=torch.cat([weight, torch.zeros(len(weight), extra)], dim=1),
            bias=classifier.bias.detach()[index].clone(),
            backbone=backbone,
        )

    @property
    def embedding_dim(self) -> int:
        return int(self.weight.shape[1])

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return (embeddings @ self.weight.T + self.bias) / self.temperature

    def probabilities(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.logits(embeddings).softmax(dim=-1)

    def save(self, path: Path, *, write: Callable[[Path, bytes], None]) -> str:
        """Write ``path`` (tensors), then ``path.json`` (sidecar), with ``write``; return the SHA-256.

        ``write`` is the one atomic writer (``storage.blobs.write_bytes_atomically``: temporary file,
        fsync, rename, fsync the folder), handed in so that ``ml`` imports no other project package
        and a crash mid-write never leaves a half-written head where a reader could load it.
        """
        buffer = io.BytesIO()
        torch.save({"weight": self.weight.contiguous(), "bias": self.bias.contiguous()}, buffer)
        tensors = buffer.getvalue()
        digest = hashlib.sha256(tensors).hexdigest()
        sidecar = {
            "breed_keys": self.breed_keys,
            "backbone": self.backbone,
            "temperature": self.temperature,
            "embedding_dim": self.embedding_dim,
            "sha256": digest,
            "metadata": self.metadata,
        }
        write(path, tensors)
        write(sidecar_path(path), json.dumps(sidecar, indent=2).encode())
        return digest

    @classmethod
    def load(cls, path: Path) -> BreedHead:
        """Load a head saved by :meth:`save`, refusing one whose tensors do not match the sidecar."""
        sidecar = json.loads(sidecar_path(path).read_text())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sidecar["sha256"]:
            raise ValueError(f"{path} is corrupt: checksum {digest[:12]} != {sidecar['sha256'][:12]}")
        tensors = torch.load(path, map_location="cpu", weights_only=True)
        return cls(
            breed_keys=list(sidecar["breed_keys"]),
            weight=tensors["weight"],
            bias=tensors["bias"],
            backbone=sidecar["backbone"],
            temperature=float(sidecar.get("temperature", 1.0)),
            metadata=dict(sidecar.get("metadata", {})),
        )


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")
