"""How the provisioning tool reaches OCI and how patiently it waits: one settings class, from the environment.

Credentials stay in the OCI config file (`~/.oci/config`, the OCI CLI's); nothing secret is read here.
`TODO_PROVISION_OCI_ENDPOINT` points every OCI client at one base URL: the test suite's stand-in server.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProvisionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TODO_PROVISION_", extra="ignore", populate_by_name=True)

    oci_config_file: Path = Field(
        Path("~/.oci/config"),
        validation_alias=AliasChoices("TODO_PROVISION_OCI_CONFIG_FILE", "OCI_CLI_CONFIG_FILE", "oci_config_file"),
    )
    oci_profile: str = Field(
        "DEFAULT", validation_alias=AliasChoices("TODO_PROVISION_OCI_PROFILE", "OCI_CLI_PROFILE", "oci_profile")
    )
    # One base URL for every OCI service instead of the regional endpoints (the test stand-in).
    oci_endpoint: str | None = None

    # Polling: OKE takes ~7-10 min for a cluster and ~5 for a node pool; VCN resources seconds.
    poll_interval_s: float = Field(10.0, gt=0)
    progress_interval_s: float = Field(30.0, gt=0)  # a "still waiting" line at least this often
    wait_timeout_s: float = Field(5400.0, gt=0)  # for any one resource

    # 429 and 5xx: exponential backoff with jitter, or what Retry-After says.
    max_attempts: int = Field(8, ge=1)
    backoff_base_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    request_timeout_s: float = Field(60.0, gt=0)
