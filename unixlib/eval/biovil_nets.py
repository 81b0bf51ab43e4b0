"""BioViL-T's networks (Bannur et al., CVPR 2023) for image-text alignment, with the parameter
names of its released checkpoints; our implementation of hi-ml-multimodal 0.2.2's inference path.

**Image** (``health_multimodal/image/model``: ``ImageModel`` with a ``MultiImageEncoder`` on
``resnet50``; checkpoint ``biovil_t_image_model_proj_size_128.pt``, a plain state dict)::

    x (B, 3, 448, 448) in [0, 1], no normalisation
    -> ResNet-50 trunk (torchvision layout, to layer4; fc kept for the names)  (B, 2048, 14, 14)
    -> backbone_to_vit: 1x1 conv, no bias                                      (B, 256, 14, 14)
    -> cat with missing_previous_emb tiled (no prior study given)              (B, 512, 14, 14)
    -> projector: 1x1 conv (no bias) - BatchNorm - ReLU - 1x1 conv             (B, 128, 14, 14)
    -> mean over the grid                                                      (B, 128)

The ``encoder.vit_pooler`` weights (a transformer that compares the current with a *prior*
image) are not used when no prior image is given, which is how CheXGenBench scores alignment.
Widths and block counts are read from the checkpoint, so tests use a narrow copy.

**Text** (``health_multimodal/text/model``: ``CXRBertModel``, a ``BertForMaskedLM`` plus
``cls_projection_head``): BERT's last hidden state at [CLS] -> Linear(hidden, 128) - GELU -
LayerNorm(eps 1e-12) - Linear(128, 128). The masked-LM head (``cls.predictions``) is unused.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 block (stride on the 3x3 conv); keys conv1..3, bn1..3, downsample."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetTrunk(nn.Module):
    """torchvision ResNet-50 names, ``forward`` returning layer4's map (hi-ml's ResNetHIML)."""

    def __init__(self, base: int = 64, blocks: tuple[int, ...] = (3, 4, 6, 3), classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        cin = base
        for i, n in enumerate(blocks):
            width, stride = base * 2**i, 1 if i == 0 else 2
            layer = [
                Bottleneck(cin if j == 0 else width * 4, width, stride if j == 0 else 1)
                for j in range(n)
            ]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            cin = width * 4
        self.fc = nn.Linear(cin, classes)  # ImageNet head: in the checkpoint, unused here
        self.out_channels = cin

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _count_blocks(state: dict[str, Tensor], layer: int) -> int:
    """Blocks of ``layer{layer}`` in a checkpoint (3, 4, 6, 3 for ResNet-50)."""
    pattern = re.compile(rf"encoder\.encoder\.layer{layer}\.(\d+)\.")
    return 1 + max((int(m.group(1)) for k in state if (m := pattern.match(k))), default=-1)


class BioViLTImageNet(nn.Module):
    """``ImageModel`` keys: ``encoder.encoder.*`` (trunk), ``encoder.backbone_to_vit``,
    ``encoder.missing_previous_emb``, ``projector.model.{0,1,3}``."""

    def __init__(self, base: int, blocks: tuple[int, ...], classes: int, vit: int, joint: int):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.encoder = ResNetTrunk(base, blocks, classes)
        trunk_out = self.encoder.encoder.out_channels
        self.encoder.backbone_to_vit = nn.Conv2d(trunk_out, vit, 1, bias=False)
        self.encoder.missing_previous_emb = nn.Parameter(torch.zeros(1, vit, 1, 1))
        self.projector = nn.Module()
        self.projector.model = nn.Sequential(
            nn.Conv2d(2 * vit, joint, 1, bias=False),
            nn.BatchNorm2d(joint),
            nn.ReLU(),
            nn.Conv2d(joint, joint, 1),
        )

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> BioViLTImageNet:
        """The architecture a checkpoint describes (widths and block counts from its shapes)."""
        blocks = tuple(_count_blocks(state, i) for i in range(1, 5))
        return cls(
            base=state["encoder.encoder.conv1.weight"].shape[0],
            blocks=blocks,
            classes=state["encoder.encoder.fc.weight"].shape[0],
            vit=state["encoder.backbone_to_vit.weight"].shape[0],
            joint=state["projector.model.3.weight"].shape[0],
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) in [0, 1] -> (B, joint) projected global embedding (not normalised)."""
        patches = self.encoder.backbone_to_vit(self.encoder.encoder(x))  # (B, V, h, w)
        b, _, h, w = patches.shape
        prior = self.encoder.missing_previous_emb.expand(b, -1, h, w)  # no prior study
        fused = torch.cat([patches, prior], dim=1)  # (B, 2V, h, w)
        return self.projector.model(fused).mean(dim=(2, 3))  # (B, joint)


class ProjectionHead(nn.Module):
    """CXR-BERT's ``cls_projection_head``: dense_to_hidden - GELU - LayerNorm - dense_to_output."""

    def __init__(self, hidden: int, projection: int) -> None:
        super().__init__()
        self.dense_to_hidden = nn.Linear(hidden, projection)
        self.LayerNorm = nn.LayerNorm(projection, eps=1e-12)
        self.dense_to_output = nn.Linear(projection, projection)

    def forward(self, cls: Tensor) -> Tensor:
        """(B, hidden) [CLS] state -> (B, projection), not normalised."""
        return self.dense_to_output(self.LayerNorm(F.gelu(self.dense_to_hidden(cls))))
