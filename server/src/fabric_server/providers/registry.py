"""The registry of provider adapters and the routing that picks one for a request."""

from __future__ import annotations

from collections.abc import Iterable

from fabric_server.providers.base import Provider, ProviderInputError, ProviderRequest


class ProviderRegistry:
    def __init__(self, providers: Iterable[Provider]) -> None:
        self._providers = {p.id: p for p in providers}

    def all(self) -> list[Provider]:
        return list(self._providers.values())

    def route(self, request: ProviderRequest, tier: str | None = None) -> Provider:
        """Pick the provider for a request: model pinning first, then tier, then the first."""
        candidates = [p for p in self._providers.values() if request.modality in p.modalities]
        if request.model:
            pinned = [p for p in candidates if request.model in p.models()]
            if not pinned:
                raise ProviderInputError(
                    f"no configured provider offers model {request.model!r} for "
                    f"{request.modality}; available: {self._models_for(request.modality)}"
                )
            candidates = pinned
        if tier:
            tiered = [p for p in candidates if p.tier == tier]
            candidates = tiered or candidates
        if not candidates:
            raise ProviderInputError(f"no provider supports modality {request.modality!r}")
        return candidates[0]

    def _models_for(self, modality: str) -> list[str]:
        return sorted(
            m for p in self._providers.values() if modality in p.modalities for m in p.models()
        )
