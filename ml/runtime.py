"""The serving backbone without torch: the exported ONNX graph, run by ONNX Runtime.

torch and timm weigh about a gigabyte resident and take seconds to import; a bot that only answers
photos needs neither. So each backbone (with its pooling and the ImageNet classifier) is exported
once to ONNX by ``ml.export`` (the only torch here, imported only when the files are missing or
damaged) and served from then on by ONNX Runtime. The breed head is a numpy matmul (``ml.head``) and
preprocessing is Pillow and numpy, step for step what timm's evaluation transform does, with its
parameters read from the model's own data config at export, never retyped.

Files, in one folder per deployment (``DOGBOT_BACKBONE_DIR``, default ``<data dir>/backbones``):
``<name>.onnx`` (the graph), ``<name>.classifier.safetensors`` (the ImageNet classifier's weights,
for version 0's head and retraining's warm start) and ``<name>.onnx.json`` (the sidecar: both files'
SHA-256, the preprocessing, the embedding size). Written atomically, sidecar last, under a file lock,
so concurrent first starts export once and a reader never sees half a model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

# Bump when the exported graph's inputs or outputs change: older exports are then made again.
EXPORT_FORMAT = 1
INPUT_NAME = "pixels"  # (batch, 3, height, width) float32, normalised
OUTPUT_NAMES = ("embedding", "imagenet_logits")  # (batch, embedding_dim), (batch, 1000)

_RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


class ImageEncoder(Protocol):
    """What :class:`ml.predictor.Predictor` needs from a backbone, whichever runtime runs it."""

    name: str
    embedding_dim: int
    classifier_weight: np.ndarray  # (1000, classifier input), the ImageNet classifier
    classifier_bias: np.ndarray  # (1000,)

    def prepare(self, image: Image.Image) -> Any:
        """The network's input for one RGB image (resize, crop, normalise)."""
        ...

    def encode(self, images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings ``(n, embedding_dim)`` and ImageNet logits ``(n, 1000)``, float32, for RGB images
        or their :meth:`prepare`d inputs."""
        ...


@dataclass(frozen=True)
class Preprocessing:
    """timm's evaluation transform (resize the short side, centre crop, normalise) in Pillow and numpy.

    Each step copies torchvision's arithmetic (sizes truncated, crop offsets rounded, the same Pillow
    filter), so the network sees the same numbers as on the torch path.
    """

    resize_short: int
    crop: tuple[int, int]  # (height, width)
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        """A batch of RGB images, or of inputs :meth:`one` already made, -> ``(n, 3, height, width)``."""
        return np.stack([x if isinstance(x, np.ndarray) else self.one(x) for x in images])

    def one(self, image: Image.Image) -> np.ndarray:
        """One RGB image -> ``(3, height, width)`` float32."""
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.resize_short, int(self.resize_short * long / short)
        size = (new_short, new_long) if width <= height else (new_long, new_short)
        if size != image.size:
            image = image.resize(size, _RESAMPLING[self.interpolation])
        crop_h, crop_w = self.crop
        if size[0] < crop_w or size[1] < crop_h:  # only a resize_short below the crop could do this
            raise ValueError(f"image {size} smaller than the crop {self.crop}")
        top = int(round((size[1] - crop_h) / 2.0))
        left = int(round((size[0] - crop_w) / 2.0))
        image = image.crop((left, top, left + crop_w, top + crop_h))
        pixels = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        pixels = (pixels - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))


@dataclass(frozen=True)
class BackboneFiles:
    """Where one backbone's exported files live."""

    graph: Path
    classifier: Path
    sidecar: Path

    @classmethod
    def of(cls, directory: Path, name: str) -> BackboneFiles:
        directory = Path(directory)
        return cls(
            graph=directory / f"{name}.onnx",
            classifier=directory / f"{name}.classifier.safetensors",
            sidecar=directory / f"{name}.onnx.json",
        )

    def intact(self, name: str) -> bool:
        """All three files there, made by this export format for this backbone, hashes matching."""
        try:
            sidecar = json.loads(self.sidecar.read_text())
            return (
                sidecar.get("format") == EXPORT_FORMAT
                and sidecar.get("backbone") == name
                and file_sha256(self.graph) == sidecar["graph_sha256"]
                and file_sha256(self.classifier) == sidecar["classifier_sha256"]
            )
        except (OSError, ValueError, KeyError):
            return False


class OnnxEncoder:
    """A backbone exported by ``ml.export``, run by ONNX Runtime. Thread-safe (``InferenceSession.run``)."""

    def __init__(self, files: BackboneFiles, *, threads: int = 1, checked: bool = False) -> None:
        """``checked``: the files' hashes were just found to match (``open``): not hashed again."""
        import onnxruntime
        from safetensors.numpy import load_file

        sidecar = json.loads(files.sidecar.read_text())
        if not checked and file_sha256(files.graph) != sidecar["graph_sha256"]:
            raise ValueError(f"{files.graph} is corrupt: its checksum does not match {files.sidecar.name}")
        if not checked and file_sha256(files.classifier) != sidecar["classifier_sha256"]:
            raise ValueError(f"{files.classifier} is corrupt: its checksum does not match the sidecar")
        self.name: str = sidecar["backbone"]
        self.embedding_dim: int = int(sidecar["embedding_dim"])
        self.preprocess = Preprocessing(
            **{**sidecar["preprocessing"], "crop": tuple(sidecar["preprocessing"]["crop"])}
        )
        classifier = load_file(str(files.classifier))
        self.classifier_weight, self.classifier_bias = classifier["weight"], classifier["bias"]
        options = onnxruntime.SessionOptions()
        # One photo's convolutions on ``threads`` cores; no second pool competing with the first.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # ONNX Runtime's defaults, stated: every graph fusion, and the CPU memory arena and memory
        # pattern that reuse one photo's buffers for the next (bench/bench_serving.py prints them).
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_cpu_mem_arena = True
        options.enable_mem_pattern = True
        self._session = onnxruntime.InferenceSession(
            str(files.graph), options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def open(cls, name: str, directory: Path, *, threads: int = 1) -> OnnxEncoder:
        """The named backbone from ``directory``, exported there first if missing or damaged."""
        return cls(ensure_exported(name, directory), threads=threads, checked=True)

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.preprocess.one(image)

    def encode(self, images: Sequence[Image.Image | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        embeddings, logits = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: self.preprocess(images)})
        return embeddings, logits


def ensure_exported(name: str, directory: Path) -> BackboneFiles:
    """The backbone's files in ``directory``; exported (with torch, once) when missing or damaged."""
    files = BackboneFiles.of(directory, name)
    if files.intact(name):
        return files
    files.graph.parent.mkdir(parents=True, exist_ok=True)
    # Several processes may start at once on a fresh install: one exports, the others wait for it.
    with open(files.graph.parent / f".{name}.export.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not files.intact(name):
            if files.sidecar.exists():
                log.warning("%s: exported backbone is damaged or stale; exporting it again", name)
            _export_in_child_process(name, files.graph.parent)
    return files


def _export_in_child_process(name: str, directory: Path) -> None:
    """Run ``ml.export`` in a child process: torch and timm (about a gigabyte) leave with it.

    A bot that exported in its own process on first start would keep torch resident until restarted.
    """
    log.info("exporting %s to %s (once per install; about 20 s)", name, directory)
    # The child imports this very code: give it this process's import path, whatever set it up.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run(
        [sys.executable, "-m", "ml.export", name, str(directory)], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"exporting {name} for serving failed:\n{result.stderr[-2000:]}")


def write_sidecar(
    files: BackboneFiles, *, name: str, embedding_dim: int, preprocessing: Preprocessing, **about
) -> None:
    """The sidecar that vouches for the graph and the classifier (written last, by the exporter)."""
    sidecar = {
        "backbone": name,
        "format": EXPORT_FORMAT,
        "graph_sha256": file_sha256(files.graph),
        "classifier_sha256": file_sha256(files.classifier),
        "embedding_dim": embedding_dim,
        "preprocessing": asdict(preprocessing),
        **about,
    }
    write_replacing(files.sidecar, json.dumps(sidecar, indent=2).encode())


def write_replacing(path: Path, data: bytes) -> None:
    """Write ``path`` so a reader (or a crash) sees the old file or the whole new one.

    The exporter runs as its own process (``python -m ml.export``), so it cannot be handed
    ``storage.blobs.write_bytes_atomically`` as heads are, and ``ml`` imports no other project package.
    A file left half-written by a crash anyway fails the sidecar's hashes and is exported again.
    """
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    finally:
        Path(scratch).unlink(missing_ok=True)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
