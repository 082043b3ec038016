"""The module exported as the embedding graph: a transformer, mean pooling, normalisation.

Kept apart from :mod:`app.retrieval.onnx_encoder` because it imports torch, which only
the process that exports the model needs.
"""

from __future__ import annotations

import torch

__all__ = ["MeanPooled"]


class MeanPooled(torch.nn.Module):
    """Transformer output averaged over the non-padding tokens, optionally unit length."""

    def __init__(self, transformer: torch.nn.Module, normalize: bool) -> None:
        """Wrap a Hugging Face encoder model (ids, mask, types to hidden states)."""
        super().__init__()
        self.transformer = transformer
        self.normalize = normalize

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """Pooled rows of a padded batch, as sentence-transformers computes them."""
        hidden = self.transformer(
            input_ids=ids, attention_mask=mask, token_type_ids=types, return_dict=False
        )[0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * weights).sum(1)
        pooled: torch.Tensor = summed / weights.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled
