"""vitlib: the Vision Transformer of the ViT course, built from small, tested parts.

Each module is one idea, built in the open in one notebook first:

- :mod:`vitlib.patches`     images -> patches -> patch tokens (notebook 01)
- :mod:`vitlib.attention`   scaled dot-product and multi-head self-attention (02, 03)
- :mod:`vitlib.embeddings`  class token and position embeddings (01, 04)
- :mod:`vitlib.encoder`     MLP and the pre-norm encoder block (05)
- :mod:`vitlib.model`       the whole ViT; :mod:`vitlib.configs` its named sizes (06)
- :mod:`vitlib.train`       the course's training recipe: batches, optimizer, schedule (06)
- :mod:`vitlib.explain`     attention maps, rollout, attention distance (07); :mod:`vitlib.plots`
- :mod:`vitlib.cnn`, :mod:`vitlib.compare`   a small CNN, and training for a time budget (08)
- :mod:`vitlib.pretrained`  Google's .npz checkpoints and keras-hub ViTs into vitlib.ViT (09)
- :mod:`vitlib.finetune`    a new head, a new image size, a frozen encoder (09)
- :mod:`vitlib.mae`         the masked autoencoder (09)
- :mod:`vitlib.segment`     per-patch segmentation of canvases with the course's encoder (10)
- :mod:`vitlib.distribute`  data and tensor (model) parallel training with keras.distribution (12)
- :mod:`vitlib.cross_attention`, :mod:`vitlib.axial`, :mod:`vitlib.sets`   cross-attention and
  learned queries, axial attention, Set Transformer blocks (10, 13, 14)
- :mod:`vitlib.detr`        DETR: object queries, Hungarian matching loss, scenes, scores (13)
- :mod:`vitlib.set_tasks`   sets of item features, Set Transformer and Deep Sets models (14)
- :mod:`vitlib.tokens`      Image Transformer and VideoBERT over discrete tokens (15)
- :mod:`vitlib.data`, :mod:`vitlib.course_files`   datasets, photos and shipped files, offline (00)

The commands that train and measure (the shipped checkpoints and records) are in the
repository's ``experiments/`` folder, outside the package."""

from ._meta import VERSION as __version__  # noqa: F401  (one version source)
from .attention import MultiHeadSelfAttention, scaled_dot_product_attention
from .configs import CONFIGS, vit_config
from .embeddings import (
    ClassToken,
    PositionEmbedding,
    resize_position_embedding,
    sincos_1d,
    sincos_2d,
)
from .encoder import MLP, EncoderBlock
from .finetune import copy_encoder, freeze_encoder, with_new_head
from .mae import MaskedAutoencoder, masked_autoencoder, masked_mse, random_masking
from .model import ViT, architecture, load_model, make_vit
from .patches import PatchEmbedding, extract_patches, patches_to_images
from .segment import PatchSegmenter

__all__ = [
    "architecture", "ClassToken", "CONFIGS", "copy_encoder", "EncoderBlock", "extract_patches",
    "freeze_encoder", "load_model", "make_vit", "masked_autoencoder", "masked_mse",
    "MaskedAutoencoder", "MLP", "MultiHeadSelfAttention", "PatchEmbedding", "patches_to_images",
    "PatchSegmenter", "PositionEmbedding", "random_masking", "resize_position_embedding",
    "scaled_dot_product_attention", "sincos_1d", "sincos_2d", "ViT", "vit_config", "with_new_head",
]
