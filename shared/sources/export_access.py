"""What a cloud export reader holds: one tenant's credential bound to one export location."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Self

from shared.platform.settings import Settings
from shared.sources.identity import IdTokens

if TYPE_CHECKING:
    from shared.deps import Deps


class ExportAccess[Location](ABC):
    """One tenant's credential bound to one export location; its client is built lazily, once.

    A provider's subclass (AWS S3, Azure Blob) builds `_client` under `_lock` on
    first use and lists the export; the secret stays private to the instance.
    """

    def __init__(
        self,
        settings: Settings,
        id_tokens: IdTokens,
        *,
        tenant_id: str,
        credential_type: str,
        secret: dict[str, Any],
        location: Location,
    ) -> None:
        self.settings = settings
        self.id_tokens = id_tokens
        self.tenant_id = tenant_id
        self.credential_type = credential_type
        self._secret = secret
        self.location = location
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def of(
        cls,
        deps: Deps,
        tenant_id: str,
        credential_type: str,
        secret: dict[str, Any],
        location: Location,
    ) -> Self:
        """The factory: the one way readers and the config check get at a tenant's export."""
        return cls(
            deps.settings,
            deps.id_tokens,
            tenant_id=tenant_id,
            credential_type=credential_type,
            secret=secret,
            location=location,
        )

    def __repr__(self) -> str:  # the secret never reaches a log through repr()
        return f"{type(self).__name__}({self.tenant_id}, {self.credential_type}, {self.where})"

    @property
    @abstractmethod
    def where(self) -> str:
        """The export's place, for logs and repr (a bucket, an account URL)."""
