"""The local AWS and Azure stand-ins, started together: moto (S3, STS), Azurite (+ Entra)."""

from __future__ import annotations

from pathlib import Path

from local.azurite import Azurite
from local.emulator import free_port
from local.moto_server import MotoServer
from shared.sources.identity import write_local_signing_key

# The storage account `make run` serves (Azurite knows only the accounts it starts with).
LOCAL_STORAGE_ACCOUNTS = ["cvglocalexports"]


class CloudStandIns:
    """Starts both on free ports; `environment()` points the platform's settings at them."""

    name = "aws and azure stand-ins (moto: S3, STS; Azurite + Entra)"

    def __init__(self, data_dir: Path, storage_accounts: list[str] | None = None) -> None:
        self.key_file = write_local_signing_key(data_dir / "google-identity")
        certs = data_dir / "google-identity" / "certs.json"
        self.moto = MotoServer(data_dir / "moto", free_port(), certs)
        self.azurite = Azurite(
            data_dir / "azurite",
            free_port(),
            free_port(),
            certs,
            storage_accounts or LOCAL_STORAGE_ACCOUNTS,
        )

    def start(self) -> None:
        self.moto.start()
        try:
            self.azurite.start()
        except BaseException:
            self.moto.stop()
            raise

    def stop(self) -> None:
        self.azurite.stop()
        self.moto.stop()

    def environment(self) -> dict[str, str]:
        return {
            "AWS_S3_ENDPOINT_URL": self.moto.url,
            "AWS_STS_ENDPOINT_URL": self.moto.url,
            "AZURE_BLOB_ENDPOINT": self.azurite.blob_endpoint,
            "AZURE_AUTHORITY_HOST": self.azurite.entra.url,
            "CLOUD_CA_BUNDLE": str(self.azurite.cert),
            "LOCAL_ID_TOKEN_KEY": str(self.key_file),
        }

    def endpoints(self) -> dict[str, object]:
        return {
            "moto_url": self.moto.url,
            "azurite_blob_endpoint": self.azurite.blob_endpoint,
            "entra_url": self.azurite.entra.url,
        }
