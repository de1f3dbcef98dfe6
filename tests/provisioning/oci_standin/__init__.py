"""A stand-in for the OCI REST API, strict the way OCI is, reached by the real `oci` SDK (service_endpoint).

No OCI API can be reached from CI, so the provisioning tool is tested against this: it checks request
signatures against the test API key, validates request bodies against the SDK's own models, answers with
the API's shapes, runs work requests through their states, honours opc-retry-tokens, and injects 429, 500,
409 and FAILED work requests when a test asks. See cloud.py for the rules it enforces.
"""

from tests.provisioning.oci_standin.cloud import Cloud, Limit, free_tier_limits, paid_tenancy_limits
from tests.provisioning.oci_standin.server import Call, Fault, OciStandIn
from tests.provisioning.oci_standin.signing import ApiKey

__all__ = ["ApiKey", "Call", "Cloud", "Fault", "Limit", "OciStandIn", "free_tier_limits", "paid_tenancy_limits"]
