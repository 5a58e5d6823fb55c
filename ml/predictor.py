"""Turn images into embeddings, a dog probability and breed probabilities.

The backbone stays fixed (ImageNet-trained); only the breed head changes between model versions.
"Is this a dog?" is answered by the ImageNet classifier itself: the probability mass it puts on the
dog classes. That works for cats, people, chairs and wolves alike, and needs no extra training.

No torch: serving runs the exported backbone on ONNX Runtime (``ml.runtime``) and the head in numpy.
``ml.backbone.TorchEncoder`` runs the same network in torch, for checks and benchmarks.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.head import BreedHead
from ml.images import exposure_corrected
from ml.runtime import ImageEncoder, OnnxEncoder, softmax


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

    def surely_not_a_dog(self, threshold: float, sure_below: float) -> bool:
        """Not a dog, and sure enough to file it so without asking (a dog of a breed ImageNet lacks
        can fall under ``threshold``, rarely under ``sure_below``)."""
        return not self.is_dog(threshold) and self.dog_probability < sure_below

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.breed_probabilities)[:k]
        return [(self.breed_keys[i], float(self.breed_probabilities[i])) for i in order]


class Predictor:
    """Thread-safe inference: many threads may call :meth:`predict`; :meth:`use_head` swaps models live."""

    def __init__(
        self,
        backbone: ImageEncoder,
        imagenet_breeds: Sequence[tuple[int, str]],
        head: BreedHead | None = None,
        model_version: str | None = None,
        *,
        correct_exposure: bool = True,
    ) -> None:
        """``imagenet_breeds`` pairs each ImageNet dog class index with our breed key.

        Without a head, serve version 0: the ImageNet classifier's rows for those classes.
        ``correct_exposure``: stretch underexposed photos before the network
        (``ml.images.exposure_corrected``); off only to measure what it does.
        """
        self.backbone = backbone
        self.correct_exposure = correct_exposure
        self.backbone_name = backbone.name
        self.embedding_dim = backbone.embedding_dim
        self.imagenet_breeds = list(imagenet_breeds)
        self._dog_indices = np.asarray([index for index, _ in self.imagenet_breeds], dtype=np.int64)
        if head is None:
            head, model_version = self.base_head(), base_version(self.backbone_name)
        # Head and version change together; readers take both from one tuple so they never mix.
        self._serving: tuple[BreedHead, str] = (head, model_version or base_version(self.backbone_name))
        self._swap_lock = threading.Lock()

    @classmethod
    def pretrained(
        cls,
        backbone_name: str,
        imagenet_breeds: Sequence[tuple[int, str]],
        *,
        backbone_dir: Path,
        threads: int = 1,
    ) -> Predictor:
        """Model version 0 on ONNX Runtime (the backbone exported into ``backbone_dir`` on first use)."""
        return cls(OnnxEncoder.open(backbone_name, backbone_dir, threads=threads), imagenet_breeds)

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
            self.backbone.classifier_weight,
            self.backbone.classifier_bias,
            [index for index, _ in self.imagenet_breeds],
            [key for _, key in self.imagenet_breeds],
            self.backbone_name,
            embedding_dim=self.embedding_dim,
        )

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The model's input for one RGB image (its own resize, crop and normalisation): 0.6 MB.

        Intake prepares each photo as soon as it is decoded and lets the decoded image go, so a
        batch holds one full-size photo at a time, however many pixels each one has.
        """
        return self.backbone.prepare(self._exposed(image))

    def _exposed(self, image: Image.Image) -> Image.Image:
        return exposure_corrected(image) if self.correct_exposure else image

    def embed(self, images: Sequence[Image.Image | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and dog probabilities for RGB images (or their :meth:`prepare`d inputs), one batch."""
        images = [self._exposed(x) if isinstance(x, Image.Image) else x for x in images]
        embeddings, imagenet_logits = self.backbone.encode(images)
        dog_probability = softmax(imagenet_logits)[:, self._dog_indices].sum(axis=-1)
        return embeddings.astype(np.float32, copy=False), dog_probability.astype(np.float32)

    def predict(self, images: Sequence[Image.Image | np.ndarray]) -> list[ModelOutput]:
        if not images:
            return []
        embeddings, dog_probability = self.embed(images)
        return self.predict_embeddings(embeddings, dog_probability)

    def predict_embeddings(self, embeddings: np.ndarray, dog_probability: np.ndarray) -> list[ModelOutput]:
        """Score stored embeddings with the current head (re-scoring needs no images)."""
        head, version = self._serving
        probabilities = head.probabilities(embeddings)
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
