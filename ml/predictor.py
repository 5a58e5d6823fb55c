"""Turn images into embeddings, a dog probability and breed probabilities.

The backbone stays fixed (ImageNet-trained); only the breed head changes between model versions.
"Is this a dog?" is answered by the ImageNet classifier itself: the probability mass it puts on the
dog classes. That works for cats, people, chairs and wolves alike, and needs no extra training.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ml.backbone import backbone_spec, create_backbone, create_eval_transform, pool_features
from ml.head import BreedHead


def is_dog(dog_probability, threshold: float):
    """The one "is it a dog?" rule: at least ``threshold`` of the ImageNet probability on dog classes.

    Works on one probability or a numpy array of them.
    """
    return dog_probability >= threshold


@dataclass(frozen=True)
class ModelOutput:
    """What the model says about one image."""

    embedding: np.ndarray  # float32, (embedding_dim,)
    dog_probability: float
    breed_probabilities: np.ndarray  # float32, aligned with ``breed_keys``
    breed_keys: tuple[str, ...]
    model_version: str

    def is_dog(self, threshold: float) -> bool:
        return bool(is_dog(self.dog_probability, threshold))

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.breed_probabilities)[:k]
        return [(self.breed_keys[i], float(self.breed_probabilities[i])) for i in order]


class Predictor:
    """Thread-safe inference: many threads may call :meth:`predict`; :meth:`use_head` swaps models live."""

    def __init__(
        self,
        backbone: torch.nn.Module,
        backbone_name: str,
        imagenet_breeds: Sequence[tuple[int, str]],
        head: BreedHead | None = None,
        model_version: str | None = None,
    ) -> None:
        """``imagenet_breeds`` pairs each ImageNet dog class index with our breed key.

        Without a head, serve version 0: the ImageNet classifier's rows for those classes.
        """
        self.backbone = backbone.eval()
        self.transform = create_eval_transform(backbone)
        self.backbone_name = backbone_name
        self.pooling = backbone_spec(backbone_name).pooling
        self._classifier = backbone.get_classifier()
        # The ImageNet classifier reads the average-pooled block, which comes first in every embedding.
        self.embedding_dim = self._classifier.in_features * len(self.pooling)
        self.imagenet_breeds = list(imagenet_breeds)
        self._dog_indices = torch.as_tensor([index for index, _ in self.imagenet_breeds])
        if head is None:
            head, model_version = self.base_head(), base_version(backbone_name)
        # Head and version change together; readers take both from one tuple so they never mix.
        self._serving: tuple[BreedHead, str] = (head, model_version or base_version(backbone_name))
        self._swap_lock = threading.Lock()

    @classmethod
    def pretrained(cls, backbone_name: str, imagenet_breeds: Sequence[tuple[int, str]]) -> Predictor:
        """Model version 0: the ImageNet classifier's dog rows as the breed head."""
        return cls(create_backbone(backbone_name), backbone_name, imagenet_breeds)

    @property
    def model_version(self) -> str:
        return self._serving[1]

    @property
    def head(self) -> BreedHead:
        return self._serving[0]

    def use_head(self, head: BreedHead, model_version: str) -> None:
        """Serve a new breed head from the next prediction on (no restart needed)."""
        if head.backbone != self.backbone_name:
            raise ValueError(f"head was trained on {head.backbone}, serving {self.backbone_name}")
        with self._swap_lock:
            self._serving = (head, model_version)

    def base_head(self) -> BreedHead:
        """A fresh copy of version 0's head (the warm start for retraining, the target of rollback)."""
        return BreedHead.from_classifier(
            self._classifier,
            [index for index, _ in self.imagenet_breeds],
            [key for _, key in self.imagenet_breeds],
            self.backbone_name,
            embedding_dim=self.embedding_dim,
        )

    @torch.inference_mode()
    def prepare(self, image: Image.Image) -> torch.Tensor:
        """The model's input for one RGB image (its own resize, crop and normalisation): 0.6 MB.

        Intake prepares each photo as soon as it is decoded and lets the decoded image go, so a
        batch holds one full-size photo at a time, however many pixels each one has.
        """
        return self.transform(image)

    @torch.inference_mode()
    def embed(self, images: Sequence[Image.Image | torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and dog probabilities for RGB images (or their :meth:`prepare`d inputs), one batch."""
        batch = torch.stack([x if isinstance(x, torch.Tensor) else self.transform(x) for x in images])
        embeddings = pool_features(self.backbone.forward_features(batch), self.pooling)
        imagenet = self._classifier(embeddings[:, : self._classifier.in_features]).softmax(dim=-1)
        dog_probability = imagenet[:, self._dog_indices].sum(dim=-1)
        return embeddings.numpy().astype(np.float32), dog_probability.numpy().astype(np.float32)

    @torch.inference_mode()
    def predict(self, images: Sequence[Image.Image | torch.Tensor]) -> list[ModelOutput]:
        if not images:
            return []
        embeddings, dog_probability = self.embed(images)
        return self.predict_embeddings(embeddings, dog_probability)

    @torch.inference_mode()
    def predict_embeddings(self, embeddings: np.ndarray, dog_probability: np.ndarray) -> list[ModelOutput]:
        """Score stored embeddings with the current head (re-scoring needs no images)."""
        head, version = self._serving
        probabilities = head.probabilities(torch.from_numpy(np.asarray(embeddings, np.float32))).numpy()
        keys = tuple(head.breed_keys)
        return [
            ModelOutput(
                embedding=embeddings[i],
                dog_probability=float(dog_probability[i]),
                breed_probabilities=probabilities[i],
                breed_keys=keys,
                model_version=version,
            )
            for i in range(len(embeddings))
        ]


def base_version(backbone_name: str) -> str:
    return f"{backbone_name}-v0"


def backbone_of(model_version: str) -> str:
    """``lite0-v3`` -> ``lite0``: versions are named ``<backbone>-v<n>`` (backbone names have no "-v")."""
    return model_version.rpartition("-v")[0]
