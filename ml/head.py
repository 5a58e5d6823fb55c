"""The breed head: a linear layer from the backbone's image embedding to one logit per breed.

Model version 0 is the ImageNet classifier's rows for the dog classes, so it knows 121 breeds with
no training. Retraining (``jobs.retrain``) replaces only this head, which is why it is small, cheap
to train on stored embeddings, and saved on its own: its tensors (safetensors) plus a JSON sidecar
naming the breeds and the backbone it belongs to.

numpy only: the bot serves a head without importing torch. Heads saved before (``torch.save``
files) still load, through torch, the only place here that needs it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors


@dataclass
class BreedHead:
    """``logits = embedding @ weight.T + bias``; ``breed_keys[i]`` names row ``i``."""

    breed_keys: list[str]
    weight: np.ndarray  # float32 (n_breeds, embedding_dim)
    bias: np.ndarray  # float32 (n_breeds,)
    backbone: str
    # Temperature applied to the logits before softmax: set by calibration after training.
    temperature: float = 1.0
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weight = np.ascontiguousarray(self.weight, dtype=np.float32)
        self.bias = np.ascontiguousarray(self.bias, dtype=np.float32)
        if self.weight.shape[0] != len(self.breed_keys) or self.bias.shape[0] != len(self.breed_keys):
            raise ValueError("head rows do not match its breed list")
        if len(set(self.breed_keys)) != len(self.breed_keys):
            raise ValueError("duplicate breed keys in head")

    @classmethod
    def from_classifier(
        cls,
        classifier_weight: np.ndarray,
        classifier_bias: np.ndarray,
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
        index = np.asarray(list(indices), dtype=np.int64)
        weight = np.asarray(classifier_weight, np.float32)[index]
        extra = (embedding_dim or weight.shape[1]) - weight.shape[1]
        if extra < 0:
            raise ValueError(f"embedding_dim {embedding_dim} is narrower than the classifier's input")
        return cls(
            breed_keys=list(breed_keys),
            weight=np.concatenate([weight, np.zeros((len(weight), extra), np.float32)], axis=1),
            bias=np.asarray(classifier_bias, np.float32)[index],
            backbone=backbone,
        )

    @property
    def embedding_dim(self) -> int:
        return int(self.weight.shape[1])

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n, embedding_dim)`` -> ``(n, n_breeds)``, float32."""
        return (np.asarray(embeddings, np.float32) @ self.weight.T + self.bias) / np.float32(self.temperature)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        logits = self.logits(embeddings)
        exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return exponentials / exponentials.sum(axis=-1, keepdims=True)

    def save(self, path: Path, *, write: Callable[[Path, bytes], None]) -> str:
        """Write ``path`` (tensors), then ``path.json`` (sidecar), with ``write``; return the SHA-256.

        ``write`` is the one atomic writer (``storage.blobs.write_bytes_atomically``: temporary file,
        fsync, rename, fsync the folder), handed in so that ``ml`` imports no other project package
        and a crash mid-write never leaves a half-written head where a reader could load it.
        """
        tensors = save_safetensors({"weight": self.weight, "bias": self.bias})
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
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sidecar["sha256"]:
            raise ValueError(f"{path} is corrupt: checksum {digest[:12]} != {sidecar['sha256'][:12]}")
        tensors = _legacy_torch_tensors(path) if data.startswith(b"PK") else load_safetensors(data)
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


def saved_head_intact(path: Path, sha256: str | None) -> bool:
    """Both files of a saved head are there, and the tensors match ``sha256`` (the registry's hash)."""
    if not (path.is_file() and sidecar_path(path).is_file()):
        return False
    return not sha256 or hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def _legacy_torch_tensors(path: Path) -> dict[str, np.ndarray]:
    """A head saved with ``torch.save`` (a zip archive) before heads were safetensors files."""
    import torch

    tensors = torch.load(path, map_location="cpu", weights_only=True)
    return {name: tensor.numpy() for name, tensor in tensors.items()}
