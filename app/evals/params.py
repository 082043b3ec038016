"""The fusion parameters of the hybrid retriever, and fusing offline exactly as it does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from app.retrieval.fusion import Fusion, fuse
from app.retrieval.types import Hit
from app.settings import RetrievalSettings

__all__ = ["FusionParams"]


@dataclass(frozen=True, slots=True)
class FusionParams:
    """What :class:`~app.retrieval.retriever.HybridRetriever` does with two candidate lists.

    Depths are resolved (never None): how many candidates each engine contributes.
    """

    fusion: Fusion
    rrf_k: int
    dense_weight: float
    keyword_weight: float
    dense_depth: int
    keyword_depth: int

    @classmethod
    def from_settings(cls, retrieval: RetrievalSettings) -> FusionParams:
        """The parameters a retriever built from ``retrieval`` uses."""
        return cls(
            fusion=retrieval.fusion,
            rrf_k=retrieval.rrf_k,
            dense_weight=retrieval.dense_weight,
            keyword_weight=retrieval.keyword_weight,
            dense_depth=retrieval.dense_depth or retrieval.top_k,
            keyword_depth=retrieval.keyword_depth or retrieval.top_k,
        )

    def as_dict(self) -> dict[str, str | int | float]:
        """The parameters as ``retrieval.*`` settings."""
        return asdict(self)

    def fuse(self, dense: Sequence[Hit], keyword: Sequence[Hit], top_n: int) -> list[Hit]:
        """Fuse candidate lists retrieved at any depth at least this one's, as the retriever does.

        Args:
            dense: The vector engine's hits, best first.
            keyword: The keyword engine's hits, best first.
            top_n: Fused results kept.

        Returns:
            The same hits, in the same order, that the retriever would return.
        """
        fused = fuse(
            [dense[: self.dense_depth], keyword[: self.keyword_depth]],
            method=self.fusion,
            k=self.rrf_k,
            weights=(self.dense_weight, self.keyword_weight),
        )
        return fused[:top_n]

    def describe(self) -> str:
        """A short human-readable summary."""
        method = f"rrf k={self.rrf_k}" if self.fusion == "rrf" else self.fusion
        return (
            f"{method}, weights dense {self.dense_weight:g} / keyword {self.keyword_weight:g}, "
            f"depths dense {self.dense_depth} / keyword {self.keyword_depth}"
        )
