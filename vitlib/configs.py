"""Named ViT configurations.

The paper's models (Dosovitskiy et al. 2021, Table 1; Ti and S from Touvron et al. 2021 and
Steiner et al. 2022), named "size/patch": at 224x224 with a 1000-class head, ViT-B/16 has
86,567,656 parameters. Plus small models for 28x28 Fashion-MNIST that train on a laptop CPU.
"""

from __future__ import annotations

_SIZES = {  # dim (D), depth (layers), num_heads, mlp_dim
    "Ti": dict(dim=192, depth=12, num_heads=3, mlp_dim=768),
    "S": dict(dim=384, depth=12, num_heads=6, mlp_dim=1536),
    "B": dict(dim=768, depth=12, num_heads=12, mlp_dim=3072),
    "L": dict(dim=1024, depth=24, num_heads=16, mlp_dim=4096),
    "H": dict(dim=1280, depth=32, num_heads=16, mlp_dim=5120),
}
_IMAGENET = dict(image_size=224, channels=3, num_classes=1000)
_FASHION = dict(image_size=28, channels=1, num_classes=10)
#: Fashion-MNIST's ten classes, label 0 to 9 (also ``vitlib.data.CLASS_NAMES``).
FASHION_CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

CONFIGS = {
    **{
        f"{size}/{patch}": {**_IMAGENET, **_SIZES[size], "patch_size": patch}
        for size, patch in [("Ti", 16), ("S", 16), ("S", 32), ("B", 16), ("B", 32),
                            ("L", 16), ("L", 32), ("H", 14)]
    },
    # Small models for Fashion-MNIST (28x28, 1 channel, 10 classes).
    "fashion-tiny": {**_FASHION, "patch_size": 7, "dim": 32, "depth": 2, "num_heads": 2,
                     "mlp_dim": 64},  # 16 tokens + class token: for live demos
    "fashion-small": {**_FASHION, "patch_size": 4, "dim": 64, "depth": 4, "num_heads": 4,
                      "mlp_dim": 128},  # 49 tokens + class token, about 139k parameters
    "fashion-medium": {**_FASHION, "patch_size": 4, "dim": 96, "depth": 4, "num_heads": 4,
                       "mlp_dim": 192},  # fashion-small made wider: the shipped checkpoint
}


def vit_config(name: str, **overrides) -> dict:
    """Return the keyword arguments of :class:`vitlib.ViT` for a named model, with overrides."""
    if name not in CONFIGS:
        raise ValueError(f"`name` must be one of {list(CONFIGS)}, got {name!r}.")
    return {**CONFIGS[name], **overrides}
