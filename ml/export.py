"""Export a backbone (pooling and ImageNet classifier included) to ONNX for ``ml.runtime``.

Needs torch, timm, onnx and onnxscript; runs once per backbone and deployment, on first start, in a
child process of its own (``python -m ml.export NAME DIR``, started by ``ml.runtime.ensure_exported``).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import timm
import torch
from safetensors.torch import save as safetensors_bytes
from torchvision.transforms import CenterCrop, Normalize, Resize

from ml.backbone import backbone_spec, create_backbone, create_eval_transform, pool_features
from ml.runtime import INPUT_NAME, OUTPUT_NAMES, BackboneFiles, Preprocessing, write_replacing, write_sidecar

log = logging.getLogger(__name__)


class ServingGraph(torch.nn.Module):
    """What serving computes from pixels: the embedding and the ImageNet logits it implies."""

    def __init__(self, backbone: torch.nn.Module, pooling: tuple[str, ...]) -> None:
        super().__init__()
        self.backbone, self.pooling = backbone, pooling
        self.classifier = backbone.get_classifier()

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = pool_features(self.backbone.forward_features(pixels), self.pooling)
        # The classifier reads the average-pooled block, which comes first in every embedding.
        return embedding, self.classifier(embedding[:, : self.classifier.in_features])


def preprocessing_of(model: torch.nn.Module) -> Preprocessing:
    """timm's evaluation transform for ``model``, as plain numbers; refuses a transform it cannot copy."""
    steps = list(create_eval_transform(model).transforms)
    resize, crop, normalize = steps[0], steps[1], steps[-1]
    if not (
        isinstance(resize, Resize)
        and isinstance(resize.size, int | list | tuple)
        and isinstance(crop, CenterCrop)
        and isinstance(normalize, Normalize)
        and len(steps) == 4
    ):
        raise ValueError(f"cannot reproduce this evaluation transform without torch: {steps}")
    size = resize.size if isinstance(resize.size, int) else resize.size[0]
    return Preprocessing(
        resize_short=int(size),
        crop=(int(crop.size[0]), int(crop.size[1])),
        interpolation=resize.interpolation.value,
        mean=tuple(float(v) for v in normalize.mean),
        std=tuple(float(v) for v in normalize.std),
    )


def export_backbone(name: str, files: BackboneFiles) -> None:
    """Write ``files`` for backbone ``name``: graph, classifier, then the sidecar vouching for both."""
    spec = backbone_spec(name)
    model = create_backbone(name)
    graph = ServingGraph(model, spec.pooling).eval()
    preprocessing = preprocessing_of(model)
    example = torch.zeros(2, 3, *preprocessing.crop)
    log.info("exporting %s to %s (once per install)", name, files.graph)
    with torch.inference_mode():
        embedding_dim = int(graph(example)[0].shape[1])
    # torch.onnx writes to a path; export beside the target and rename, so no reader sees half a file.
    handle, scratch = tempfile.mkstemp(dir=files.graph.parent, prefix=f".{files.graph.name}.")
    os.close(handle)
    try:
        torch.onnx.export(
            graph,
            (example,),
            scratch,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
            external_data=False,  # one file, one hash
            dynamo=True,
            verbose=False,
        )
        with open(scratch, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(scratch, files.graph)
    finally:
        Path(scratch).unlink(missing_ok=True)
    classifier = graph.classifier
    tensors = {
        "weight": classifier.weight.detach().contiguous(),
        "bias": classifier.bias.detach().contiguous(),
    }
    write_replacing(files.classifier, safetensors_bytes(tensors))
    write_sidecar(
        files,
        name=name,
        embedding_dim=embedding_dim,
        preprocessing=preprocessing,
        exported_with={"torch": torch.__version__, "timm": timm.__version__},
    )


def main(argv: list[str]) -> None:
    """``python -m ml.export NAME DIR``: write NAME's serving files into DIR (the caller holds the lock)."""
    name, directory = argv
    Path(directory).mkdir(parents=True, exist_ok=True)
    export_backbone(name, BackboneFiles.of(Path(directory), name))


if __name__ == "__main__":
    main(sys.argv[1:])
