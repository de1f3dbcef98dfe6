"""The one module that talks to OCI (the only import of the `oci` SDK in the project).

It turns SDK models into the planner's `Observed` and `Desired` attributes into SDK request models, and
owns every rule about talking to OCI safely:

- every create carries an `opc-retry-token`, kept across retries of that create, so a create whose answer
  was lost (a 500 after the work was done, a dropped connection) returns the first result instead of
  making a second resource;
- 429 and 5xx are retried with backoff, honouring Retry-After (`provisioning.retry`);
- a 409 is "look again": find the resource by its tags, or wait for it to settle, before trying again;
- VCN resources are synchronous and polled to their lifecycle state; clusters and node pools are followed
  through their work requests, reporting progress.

The SDK's own retry strategy and circuit breaker are off: they would retry creates with fresh tokens and
fail fast on the very 429s this module waits out.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import urlencode

import oci
import requests
from oci.container_engine import models as ce
from oci.core import models as core

from provisioning import network
from provisioning.model import TAG_CLUSTER, TAG_RESOURCE, Desired, Kind, Lifecycle, Observed, tags
from provisioning.retry import Backoff, retryable
from provisioning.settings import ProvisionSettings
from provisioning.spec import ClusterSpec

T = TypeVar("T")
Report = Callable[[str], None]

NETWORK_KINDS = frozenset({Kind.VCN, Kind.INTERNET_GATEWAY, Kind.NAT_GATEWAY, Kind.SERVICE_GATEWAY,
                           Kind.ROUTE_TABLE, Kind.SECURITY_LIST, Kind.SUBNET})
WORK_REQUEST_KINDS = frozenset({Kind.CLUSTER, Kind.NODE_POOL, Kind.LOAD_BALANCER})
# Work request resource entity types, as OKE reports them.
_ENTITY = {Kind.CLUSTER: "cluster", Kind.NODE_POOL: "nodepool"}

_LIFECYCLE = {
    "AVAILABLE": Lifecycle.READY, "ACTIVE": Lifecycle.READY,
    "NEEDS_ATTENTION": Lifecycle.READY, "INACTIVE": Lifecycle.READY,
    "PROVISIONING": Lifecycle.PENDING, "CREATING": Lifecycle.PENDING, "UPDATING": Lifecycle.PENDING,
    "TERMINATING": Lifecycle.DELETING, "DELETING": Lifecycle.DELETING,
    "TERMINATED": Lifecycle.GONE, "DELETED": Lifecycle.GONE,
    "FAILED": Lifecycle.FAILED,
}
_LIVE_CLUSTER_STATES = ["CREATING", "ACTIVE", "FAILED", "DELETING", "UPDATING"]
_LIVE_POOL_STATES = ["CREATING", "ACTIVE", "UPDATING", "DELETING", "FAILED", "INACTIVE", "NEEDS_ATTENTION"]

# The service gateway's "all services" entry, e.g. "All FRA Services In Oracle Services Network", whose
# CIDR label is "all-fra-services-in-oracle-services-network".
_ALL_SERVICES_NAME = re.compile(r"^All .+ Services In Oracle Services Network$", re.IGNORECASE)
_ALL_SERVICES_CIDR = re.compile(r"^all-[a-z0-9-]+-services-in-oracle-services-network$")


class OciError(Exception):
    """A one-line, user-facing failure talking to OCI."""


class OciConfigError(OciError):
    """Cannot even start: no or bad OCI config, unreadable key, a signature OCI refuses."""


class OciUnreachable(OciError):
    """OCI (or the endpoint configured) did not answer, after retries."""


class OciRequestFailed(OciError):
    """OCI answered with an error this tool cannot work around (400 LimitExceeded, 404, ...)."""


class NotOffered(OciRequestFailed, LookupError):
    """OKE in this region does not offer what the spec asks for (a Kubernetes version, a node image)."""


class WorkRequestFailed(OciError):
    """A work request ended FAILED or CANCELED; the message carries OCI's own errors."""


class _Conflict(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"409 {code}: {message}")
        self.code = code


class _NotFound(OciRequestFailed):
    """404: gone, or never there (OCI says NotAuthorizedOrNotFound for both)."""


@dataclass(frozen=True)
class Discovery:
    observed: list[Observed]
    # Load balancers in this cluster's subnets that do not carry its tags: destroy cannot remove them.
    foreign_load_balancers: list[Observed]


def _connection_reason(exc: Exception) -> str:
    """The useful end of requests' nested connection errors: 'Connection refused', 'timed out'..."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip()
    return "timed out" if "timed out" in text.lower() else text.splitlines()[0][:160]


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class OciClient:
    """Everything the planner, apply, destroy, preflight and kubeconfig need from OCI, for one cluster spec."""

    def __init__(self, spec: ClusterSpec, settings: ProvisionSettings, report: Report | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.settings = settings
        self.report: Report = report or (lambda message: None)
        self.sleep, self.clock = sleep, clock
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s, settings.max_attempts)
        self.calls: Counter[str] = Counter()  # HTTP requests made, by SDK operation
        self._images: dict[tuple[str, str], str] = {}
        self.config, self.signer = self._load_config()
        kwargs: dict[str, Any] = {
            "signer": self.signer,
            "retry_strategy": oci.retry.NoneRetryStrategy(),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
            "timeout": (10.0, settings.request_timeout_s),
        }
        if settings.oci_endpoint:
            kwargs["service_endpoint"] = settings.oci_endpoint.rstrip("/")
        self._network = oci.core.VirtualNetworkClient(self.config, **kwargs)
        self._ce = oci.container_engine.ContainerEngineClient(self.config, **kwargs)
        self._identity = oci.identity.IdentityClient(self.config, **kwargs)
        self._limits = oci.limits.LimitsClient(self.config, **kwargs)
        self._lb = oci.load_balancer.LoadBalancerClient(self.config, **kwargs)

    @property
    def tenancy(self) -> str:
        return str(self.config["tenancy"])

    def _load_config(self) -> tuple[dict[str, Any], oci.signer.Signer]:
        path = self.settings.oci_config_file.expanduser()
        try:
            config = oci.config.from_file(str(path), self.settings.oci_profile)
            config["region"] = self.spec.region
            oci.config.validate_config(config)
            return config, oci.signer.Signer.from_config(config)
        except oci.exceptions.ConfigFileNotFound:
            raise OciConfigError(f"no OCI config at {path}: run `oci setup config` or set OCI_CLI_CONFIG_FILE") from None
        except oci.exceptions.ProfileNotFound:
            raise OciConfigError(f"{path} has no profile [{self.settings.oci_profile}]") from None
        except (oci.exceptions.ClientError, OSError, ValueError) as exc:
            raise OciConfigError(f"OCI config {path} [{self.settings.oci_profile}]: {exc}") from None

    # ---- one call, retried ---------------------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        attempt = 0
        while True:
            attempt += 1
            self.calls[operation] += 1
            try:
                return fn(*args, **kwargs)
            except oci.exceptions.ServiceError as exc:
                if exc.status == 409:
                    raise _Conflict(exc.code, exc.message) from None
                if exc.status == 404:
                    raise _NotFound(f"{operation}: {exc.code}: {exc.message}") from None
                if exc.status == 401:
                    raise OciConfigError(f"OCI refused the request signature ({exc.code}): check user, fingerprint "
                                         f"and key_file of profile [{self.settings.oci_profile}]") from None
                if not retryable(exc.status) or self.backoff.gives_up_after(attempt):
                    raise OciRequestFailed(f"{operation}: {exc.status} {exc.code}: {exc.message}") from None
                headers = exc.headers or {}
                delay = self.backoff.delay(attempt, headers.get("retry-after") or headers.get("Retry-After"))
                self.report(f"{operation}: {exc.status} {exc.code}; trying again in {delay:.1f}s")
            except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as exc:
                if self.backoff.gives_up_after(attempt):
                    where = self.settings.oci_endpoint or f"OCI in {self.spec.region}"
                    raise OciUnreachable(f"cannot reach {where}: {_connection_reason(exc)}") from None
                delay = self.backoff.delay(attempt)
                self.report(f"{operation}: no answer; trying again in {delay:.1f}s")
            self.sleep(delay)

    def _list(self, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Every page of a list call."""
        items: list[Any] = []
        page = None
        while True:
            response = self._call(operation, fn, *args, **kwargs, **({"page": page} if page else {}))
            items.extend(response.data)
            page = response.next_page
            if not page:
                return items

    def _client(self, kind: Kind) -> Any:
        if kind in NETWORK_KINDS:
            return self._network
        return self._lb if kind is Kind.LOAD_BALANCER else self._ce

    def _op(self, verb: str, kind: Kind) -> tuple[str, Callable[..., Any]]:
        name = f"{verb}_{kind.value}s" if verb == "list" else f"{verb}_{kind.value}"
        return name, getattr(self._client(kind), name)

    # ---- discovery -----------------------------------------------------------------------------------

    def discover(self, include_load_balancers: bool = False) -> Discovery:
        """Everything in the compartment carrying this cluster's tag: one list call per kind, no polling."""
        compartment = self.spec.compartment_id
        observed: list[Observed] = []
        for kind in (Kind.VCN, Kind.INTERNET_GATEWAY, Kind.NAT_GATEWAY, Kind.SERVICE_GATEWAY,
                     Kind.ROUTE_TABLE, Kind.SECURITY_LIST, Kind.SUBNET):
            name, fn = self._op("list", kind)
            observed += self._ours(kind, self._list(name, fn, compartment))
        observed += self._ours(Kind.CLUSTER, self._list("list_clusters", self._ce.list_clusters, compartment,
                                                        lifecycle_state=_LIVE_CLUSTER_STATES))
        observed += self._ours(Kind.NODE_POOL, self._list("list_node_pools", self._ce.list_node_pools, compartment,
                                                          lifecycle_state=_LIVE_POOL_STATES))
        foreign: list[Observed] = []
        if include_load_balancers:
            subnets = {o.id for o in observed if o.kind is Kind.SUBNET}
            balancers = self._list("list_load_balancers", self._lb.list_load_balancers, compartment, detail="simple")
            observed += self._ours(Kind.LOAD_BALANCER, balancers)
            foreign = [self._observe(Kind.LOAD_BALANCER, lb) for lb in balancers
                       if not self._is_ours(lb) and subnets & set(lb.subnet_ids or ())
                       and _LIFECYCLE.get(lb.lifecycle_state) is not Lifecycle.GONE]
        return Discovery(observed, foreign)

    def _is_ours(self, item: Any) -> bool:
        return (item.freeform_tags or {}).get(TAG_CLUSTER) == self.spec.name

    def _ours(self, kind: Kind, items: Sequence[Any]) -> list[Observed]:
        found = [self._observe(kind, item) for item in items if self._is_ours(item)]
        return [o for o in found if o.lifecycle is not Lifecycle.GONE]

    def _observe(self, kind: Kind, item: Any) -> Observed:
        name = getattr(item, "display_name", None) or getattr(item, "name", None) or ""
        created = getattr(item, "time_created", None) or getattr(getattr(item, "metadata", None), "time_created", None)
        return Observed(
            key=(item.freeform_tags or {}).get(TAG_RESOURCE, ""),
            kind=kind,
            id=item.id,
            name=name,
            lifecycle=_LIFECYCLE.get(item.lifecycle_state, Lifecycle.PENDING),
            state=item.lifecycle_state,
            attrs=_OBSERVERS[kind](item),
            created=created.isoformat() if isinstance(created, datetime) else "",
        )

    def find(self, want: Desired) -> Observed | None:
        """Look again for one resource after a 409: a list filtered by its name, matched by its tags."""
        compartment = self.spec.compartment_id
        name, fn = self._op("list", want.kind)
        by_name = {"name": want.name} if want.kind in (Kind.CLUSTER, Kind.NODE_POOL) else {"display_name": want.name}
        for item in self._list(name, fn, compartment, **by_name):
            observed = self._observe(want.kind, item)
            if self._is_ours(item) and observed.key == want.key and observed.lifecycle in (
                    Lifecycle.READY, Lifecycle.PENDING):
                return observed
        return None

    # ---- lookups -------------------------------------------------------------------------------------

    @cached_property
    def availability_domains(self) -> list[str]:
        domains = self._call("list_availability_domains", self._identity.list_availability_domains, self.tenancy)
        return sorted(ad.name for ad in domains.data)

    @cached_property
    def _oracle_services(self) -> core.Service:
        for service in self._list("list_services", self._network.list_services):
            if _ALL_SERVICES_NAME.match(service.name):
                return service
        raise OciRequestFailed(f"{self.spec.region} offers no 'All Services In Oracle Services Network' service")

    def node_image(self, kubernetes_version: str, arch: str) -> str:
        """The newest OKE node image (Oracle Linux) for this Kubernetes version and CPU architecture."""
        if (kubernetes_version, arch) not in self._images:
            self._images[(kubernetes_version, arch)] = self._newest_image(kubernetes_version, arch)
        return self._images[(kubernetes_version, arch)]

    def _newest_image(self, kubernetes_version: str, arch: str) -> str:
        options = self._call("get_node_pool_options", self._ce.get_node_pool_options, "all",
                             compartment_id=self.spec.compartment_id, node_pool_k8s_version=kubernetes_version,
                             node_pool_os_arch=arch.upper()).data
        marker = f"-OKE-{kubernetes_version.lstrip('v')}-"
        names = sorted(
            (source.source_name, source.image_id) for source in options.sources or ()
            if source.source_type == "IMAGE" and marker in source.source_name and arch in source.source_name
            and "GPU" not in source.source_name
        )
        if not names:
            raise NotOffered(f"no OKE node image for Kubernetes {kubernetes_version} on {arch} in "
                             f"{self.spec.region}: pin node_pool.image_id in the spec")
        return names[-1][1]

    def kubernetes_versions(self) -> list[str]:
        options = self._call("get_cluster_options", self._ce.get_cluster_options, "all",
                             compartment_id=self.spec.compartment_id).data
        return list(options.kubernetes_versions or ())

    def limit_values(self, service: str, limit: str) -> dict[str | None, int]:
        """The tenancy's limit, by availability domain (None for regional and per-resource limits)."""
        items = self._list("list_limit_values", self._limits.list_limit_values, self.tenancy, service, name=limit)
        return {item.availability_domain: int(item.value) for item in items}

    def availability(self, service: str, limit: str, availability_domain: str | None) -> tuple[int, int] | None:
        """(available, used) in the spec's compartment: the limit minus use, minus compartment quotas. None
        when OCI does not report it for this limit (the API answers 404 for those)."""
        extra = {"availability_domain": availability_domain} if availability_domain else {}
        try:
            data = self._call("get_resource_availability", self._limits.get_resource_availability,
                              service, limit, self.spec.compartment_id, **extra).data
        except _NotFound:
            return None
        return int(data.available or 0), int(data.used or 0)

    # ---- create, update, delete ----------------------------------------------------------------------

    def create(self, want: Desired, attrs: Mapping[str, Any]) -> str:
        """Create one resource and wait until it is ready; returns its OCID."""
        label = f"{want.kind.label} {want.name}"
        details = self._create_details(want, attrs)
        name, fn = self._op("create", want.kind)
        for attempt in range(1, self.settings.max_attempts + 1):
            token = uuid.uuid4().hex  # one per create, kept across its 429/5xx retries
            self.report(f"creating {label}")
            try:
                response = self._call(name, fn, details, opc_retry_token=token)
            except _Conflict as conflict:
                self.report(f"{label}: {conflict}; looking again")
                found = self.find(want)
                if found is not None:
                    self.wait_ready(want.kind, found.id, label)
                    return found.id
                self.sleep(self.backoff.delay(attempt))
                continue
            if want.kind in WORK_REQUEST_KINDS:
                return self._follow(response.headers["opc-work-request-id"], label, want.kind)
            self._wait_state(want.kind, response.data.id, label, want_gone=False)
            return str(response.data.id)
        raise OciRequestFailed(f"{label}: OCI kept answering 409 Conflict; nothing was created")

    def update(self, want: Desired, resource_id: str, attrs: Mapping[str, Any], changed: set[str]) -> None:
        label = f"{want.kind.label} {want.name}"
        details = self._update_details(want, attrs, changed)
        name, fn = self._op("update", want.kind)
        for attempt in range(1, self.settings.max_attempts + 1):
            self.report(f"updating {label}: {', '.join(sorted(changed))}")
            try:
                response = self._call(name, fn, resource_id, details)
            except _Conflict as conflict:
                self.report(f"{label}: {conflict}; waiting for it to settle")
                self.wait_ready(want.kind, resource_id, label)
                self.sleep(self.backoff.delay(attempt))
                continue
            if want.kind in WORK_REQUEST_KINDS:
                self._follow(response.headers["opc-work-request-id"], label, want.kind)
            else:
                self._wait_state(want.kind, resource_id, label, want_gone=False)
            return
        raise OciRequestFailed(f"{label}: OCI kept answering 409 Conflict; not updated")

    def delete(self, kind: Kind, resource_id: str, label: str) -> None:
        """Delete and wait until it is gone. A 409 means something still depends on it: look again, wait."""
        name, fn = self._op("delete", kind)
        last = ""
        for attempt in range(1, self.settings.max_attempts + 1):
            self.report(f"deleting {label}")
            try:
                response = self._call(name, fn, resource_id)
            except _NotFound:
                return
            except _Conflict as conflict:
                last = str(conflict)
                lifecycle = self._lifecycle(kind, resource_id)
                if lifecycle in (None, Lifecycle.GONE):
                    return
                if lifecycle is Lifecycle.DELETING:
                    self.wait_gone(kind, resource_id, label)
                    return
                delay = self.backoff.delay(attempt)
                self.report(f"{label}: {conflict}; trying again in {delay:.1f}s")
                self.sleep(delay)
                continue
            if kind in WORK_REQUEST_KINDS and response.headers.get("opc-work-request-id"):
                self._follow(response.headers["opc-work-request-id"], label, kind)
            self._wait_state(kind, resource_id, label, want_gone=True)
            return
        raise OciRequestFailed(f"{label} cannot be deleted ({last}): something not made by this tool still "
                               f"uses it; remove that, then run destroy again")

    def wait_ready(self, kind: Kind, resource_id: str, label: str) -> None:
        """A resource found mid-change (an earlier apply was killed): follow its work request, or poll it."""
        self._follow_pending(kind, resource_id, label)
        self._wait_state(kind, resource_id, label, want_gone=False)

    def wait_gone(self, kind: Kind, resource_id: str, label: str) -> None:
        self._follow_pending(kind, resource_id, label)
        self._wait_state(kind, resource_id, label, want_gone=True)

    # ---- waiting -------------------------------------------------------------------------------------

    def _wait(self, label: str, probe: Callable[[], tuple[bool, str]]) -> None:
        """Poll until probe() says done, reporting each new status and a line every progress interval."""
        started = last_report = self.clock()
        last_status = None
        while True:
            done, status = probe()
            now = self.clock()
            if status != last_status or now - last_report >= self.settings.progress_interval_s:
                self.report(f"{label}: {status} ({_elapsed(now - started)})")
                last_status, last_report = status, now
            if done:
                return
            if now - started > self.settings.wait_timeout_s:
                raise OciRequestFailed(f"{label}: still {status} after {_elapsed(now - started)}")
            self.sleep(self.settings.poll_interval_s)

    def _lifecycle(self, kind: Kind, resource_id: str) -> Lifecycle | None:
        name, fn = self._op("get", kind)
        try:
            state = self._call(name, fn, resource_id).data.lifecycle_state
        except _NotFound:
            return None
        return _LIFECYCLE.get(state, Lifecycle.PENDING)

    def _wait_state(self, kind: Kind, resource_id: str, label: str, want_gone: bool) -> None:
        name, fn = self._op("get", kind)

        def probe() -> tuple[bool, str]:
            try:
                state = self._call(name, fn, resource_id).data.lifecycle_state
            except _NotFound:
                if want_gone:
                    return True, "gone"
                raise OciRequestFailed(f"{label} ({resource_id}) disappeared") from None
            lifecycle = _LIFECYCLE.get(state, Lifecycle.PENDING)
            if want_gone:
                return lifecycle is Lifecycle.GONE, state
            if lifecycle is Lifecycle.FAILED or lifecycle is Lifecycle.GONE:
                raise OciRequestFailed(f"{label} is {state}")
            return lifecycle is Lifecycle.READY, state

        self._wait(label, probe)

    def _follow(self, work_request_id: str, label: str, kind: Kind) -> str:
        """Wait for a work request; returns the OCID of the resource it worked on."""
        if kind is Kind.LOAD_BALANCER:
            def lb_probe() -> tuple[bool, str]:
                request = self._call("get_work_request", self._lb.get_work_request, work_request_id).data
                if request.lifecycle_state == "FAILED":
                    errors = "; ".join(e.message for e in request.error_details or ()) or request.message
                    raise WorkRequestFailed(f"{label}: work request {work_request_id} FAILED: {errors}")
                return request.lifecycle_state == "SUCCEEDED", request.lifecycle_state
            self._wait(label, lb_probe)
            return ""

        result: dict[str, Any] = {}

        def probe() -> tuple[bool, str]:
            request = self._call("get_work_request", self._ce.get_work_request, work_request_id).data
            result["request"] = request
            if request.status in ("FAILED", "CANCELED"):
                raise WorkRequestFailed(f"{label}: work request {work_request_id} {request.status}: "
                                        f"{self._work_request_errors(work_request_id)}")
            return request.status == "SUCCEEDED", request.status

        self._wait(label, probe)
        for resource in result["request"].resources or ():
            if (resource.entity_type or "").lower() == _ENTITY[kind]:
                return str(resource.identifier)
        raise OciRequestFailed(f"{label}: work request {work_request_id} names no {_ENTITY[kind]}")

    def _work_request_errors(self, work_request_id: str) -> str:
        errors = self._list("list_work_request_errors", self._ce.list_work_request_errors,
                            self.spec.compartment_id, work_request_id)
        return "; ".join(f"{e.code}: {e.message}" for e in errors) or "OCI gave no reason"

    def _follow_pending(self, kind: Kind, resource_id: str, label: str) -> None:
        if kind not in (Kind.CLUSTER, Kind.NODE_POOL):
            return
        pending = self._list("list_work_requests", self._ce.list_work_requests, self.spec.compartment_id,
                             resource_id=resource_id, status=["ACCEPTED", "IN_PROGRESS"])
        for request in pending:
            self._follow(request.id, label, kind)

    # ---- kubeconfig ----------------------------------------------------------------------------------

    def kubeconfig(self, cluster_id: str) -> str:
        """OKE's kubeconfig for the public endpoint; it authenticates through `oci ce cluster generate-token`."""
        details = ce.CreateClusterKubeconfigContentDetails(
            token_version="2.0.0", endpoint="PUBLIC_ENDPOINT")  # noqa: S106 - the kubeconfig format, not a secret
        response = self._call("create_kubeconfig", self._ce.create_kubeconfig, cluster_id,
                              create_cluster_kubeconfig_content_details=details)
        content = response.data.content
        return content.decode() if isinstance(content, bytes) else str(content)

    def cluster_token(self, cluster_id: str) -> str:
        """A short-lived bearer token for the cluster's API, made the way `oci ce cluster generate-token`
        makes it (a request to OKE's cluster_request URL, signed with the API key, base64url-encoded), but
        in-process: no CLI, nothing to hang on an expired session."""
        url = f"https://containerengine.{self.spec.region}.oraclecloud.com/cluster_request/{cluster_id}"
        request = requests.Request("GET", url).prepare()
        self.signer.do_request_sign(request, enforce_content_headers=False)
        query = urlencode({"authorization": request.headers["authorization"], "date": request.headers["date"]})
        return base64.urlsafe_b64encode(f"{url}?{query}".encode()).decode()

    # ---- request models ------------------------------------------------------------------------------

    def _create_details(self, want: Desired, attrs: Mapping[str, Any]) -> Any:
        common = {"compartment_id": self.spec.compartment_id, "freeform_tags": tags(self.spec.name, want.key)}
        named = {"display_name": want.name, **common}
        kind = want.kind
        if kind is Kind.VCN:
            return core.CreateVcnDetails(cidr_blocks=list(attrs["cidr_blocks"]), dns_label=attrs["dns_label"], **named)
        if kind is Kind.INTERNET_GATEWAY:
            return core.CreateInternetGatewayDetails(vcn_id=attrs["vcn_id"], is_enabled=attrs["is_enabled"], **named)
        if kind is Kind.NAT_GATEWAY:
            return core.CreateNatGatewayDetails(vcn_id=attrs["vcn_id"], block_traffic=attrs["block_traffic"], **named)
        if kind is Kind.SERVICE_GATEWAY:
            return core.CreateServiceGatewayDetails(vcn_id=attrs["vcn_id"], services=self._services(attrs), **named)
        if kind is Kind.ROUTE_TABLE:
            return core.CreateRouteTableDetails(vcn_id=attrs["vcn_id"], route_rules=self._route_rules(attrs),
                                                **named)
        if kind is Kind.SECURITY_LIST:
            ingress, egress = self._security_rules(attrs)
            return core.CreateSecurityListDetails(vcn_id=attrs["vcn_id"], ingress_security_rules=ingress,
                                                  egress_security_rules=egress, **named)
        if kind is Kind.SUBNET:
            return core.CreateSubnetDetails(
                vcn_id=attrs["vcn_id"], cidr_block=attrs["cidr_block"], dns_label=attrs["dns_label"],
                prohibit_public_ip_on_vnic=not attrs["public"], route_table_id=attrs["route_table_id"],
                security_list_ids=sorted(attrs["security_list_ids"]), **named)
        if kind is Kind.CLUSTER:
            return self._cluster_details(want, attrs, common)
        if kind is Kind.NODE_POOL:
            return self._node_pool_details(want, attrs, common)
        raise ValueError(f"this tool does not create {kind.label}s")

    def _cluster_details(self, want: Desired, attrs: Mapping[str, Any], common: dict[str, Any]) -> Any:
        pod_network = (ce.FlannelOverlayClusterPodNetworkOptionDetails() if attrs["cni"] == "FLANNEL_OVERLAY"
                       else ce.OciVcnIpNativeClusterPodNetworkOptionDetails())
        return ce.CreateClusterDetails(
            name=want.name, vcn_id=attrs["vcn_id"], kubernetes_version=attrs["kubernetes_version"],
            type=attrs["type"], cluster_pod_network_options=[pod_network],
            endpoint_config=ce.CreateClusterEndpointConfigDetails(
                subnet_id=attrs["endpoint_subnet_id"], is_public_ip_enabled=attrs["public_endpoint"]),
            options=ce.ClusterCreateOptions(
                service_lb_subnet_ids=list(attrs["service_lb_subnet_ids"]),
                kubernetes_network_config=ce.KubernetesNetworkConfig(
                    pods_cidr=attrs["pods_cidr"], services_cidr=attrs["services_cidr"]),
                add_ons=ce.AddOnOptions(is_kubernetes_dashboard_enabled=False, is_tiller_enabled=False)),
            **common)

    def _node_pool_details(self, want: Desired, attrs: Mapping[str, Any], common: dict[str, Any]) -> Any:
        return ce.CreateNodePoolDetails(
            name=want.name, cluster_id=attrs["cluster_id"], kubernetes_version=attrs["kubernetes_version"],
            node_shape=attrs["node_shape"],
            node_shape_config=ce.CreateNodeShapeConfigDetails(ocpus=float(attrs["ocpus"]),
                                                              memory_in_gbs=float(attrs["memory_in_gbs"])),
            node_source_details=self._node_source(attrs),
            ssh_public_key=attrs["ssh_public_key"],
            node_config_details=ce.CreateNodePoolNodeConfigDetails(
                size=attrs["size"], placement_configs=self._placements(attrs),
                node_pool_pod_network_option_details=self._pool_pod_network(attrs),
                freeform_tags=common["freeform_tags"]),  # nodes and their boot volumes carry the tags too
            **common)

    def _update_details(self, want: Desired, attrs: Mapping[str, Any], changed: set[str]) -> Any:
        kind = want.kind
        if kind is Kind.INTERNET_GATEWAY:
            return core.UpdateInternetGatewayDetails(is_enabled=attrs["is_enabled"])
        if kind is Kind.NAT_GATEWAY:
            return core.UpdateNatGatewayDetails(block_traffic=attrs["block_traffic"])
        if kind is Kind.SERVICE_GATEWAY:
            return core.UpdateServiceGatewayDetails(services=self._services(attrs))
        if kind is Kind.ROUTE_TABLE:
            return core.UpdateRouteTableDetails(route_rules=self._route_rules(attrs))
        if kind is Kind.SECURITY_LIST:
            ingress, egress = self._security_rules(attrs)
            return core.UpdateSecurityListDetails(ingress_security_rules=ingress, egress_security_rules=egress)
        if kind is Kind.SUBNET:
            return core.UpdateSubnetDetails(route_table_id=attrs["route_table_id"],
                                            security_list_ids=sorted(attrs["security_list_ids"]))
        if kind is Kind.CLUSTER:
            return ce.UpdateClusterDetails(**{attr: attrs[attr] for attr in changed & {"kubernetes_version", "type"}})
        if kind is Kind.NODE_POOL:
            return self._node_pool_update(attrs, changed)
        raise ValueError(f"{kind.label}s have nothing this tool updates")

    def _node_pool_update(self, attrs: Mapping[str, Any], changed: set[str]) -> Any:
        details = ce.UpdateNodePoolDetails()
        if "kubernetes_version" in changed:
            details.kubernetes_version = attrs["kubernetes_version"]
        if changed & {"node_shape", "ocpus", "memory_in_gbs"}:
            details.node_shape = attrs["node_shape"]
            details.node_shape_config = ce.UpdateNodeShapeConfigDetails(ocpus=float(attrs["ocpus"]),
                                                                        memory_in_gbs=float(attrs["memory_in_gbs"]))
        if changed & {"kubernetes_version", "boot_volume_size_in_gbs", "image_id"}:
            details.node_source_details = self._node_source(attrs)
        if "ssh_public_key" in changed:
            details.ssh_public_key = attrs["ssh_public_key"] or ""
        if changed & {"size", "subnet_id"}:
            details.node_config_details = ce.UpdateNodePoolNodeConfigDetails(
                size=attrs["size"], placement_configs=self._placements(attrs))
        if changed & {"kubernetes_version", "node_shape", "ocpus", "memory_in_gbs", "boot_volume_size_in_gbs",
                      "image_id"}:
            # Existing nodes only change when replaced, one at a time: a new one up before an old one goes,
            # unless the pool fills the Always Free allowance and there is no room for an extra node.
            surge, unavailable = ("0", "1") if self.spec.always_free else ("1", "0")
            details.node_pool_cycling_details = ce.NodePoolCyclingDetails(
                is_node_cycling_enabled=True, maximum_surge=surge, maximum_unavailable=unavailable)
        return details

    def _node_source(self, attrs: Mapping[str, Any]) -> Any:
        image = attrs.get("image_id") or self.node_image(attrs["kubernetes_version"], self.spec.node_pool.arch)
        return ce.NodeSourceViaImageDetails(image_id=image, boot_volume_size_in_gbs=attrs["boot_volume_size_in_gbs"])

    def _placements(self, attrs: Mapping[str, Any]) -> list[Any]:
        """One placement per availability domain: OKE spreads the nodes across them."""
        return [ce.NodePoolPlacementConfigDetails(availability_domain=ad, subnet_id=attrs["subnet_id"])
                for ad in self.availability_domains]

    def _pool_pod_network(self, attrs: Mapping[str, Any]) -> Any:
        if attrs["cni"] == "FLANNEL_OVERLAY":
            return ce.FlannelOverlayNodePoolPodNetworkOptionDetails()
        return ce.OciVcnIpNativeNodePoolPodNetworkOptionDetails(pod_subnet_ids=[attrs["subnet_id"]])

    def _services(self, attrs: Mapping[str, Any]) -> list[Any]:
        return [core.ServiceIdRequestDetails(service_id=self._oracle_services.id)
                for name in sorted(attrs["services"]) if name == network.ORACLE_SERVICES]

    def _peer(self, peer: str) -> tuple[str, str]:
        if peer == network.ORACLE_SERVICES:
            return self._oracle_services.cidr_block, "SERVICE_CIDR_BLOCK"
        return peer, "CIDR_BLOCK"

    def _route_rules(self, attrs: Mapping[str, Any]) -> list[Any]:
        rules = []
        for rule in sorted(attrs["route_rules"], key=lambda r: r.destination):
            destination, destination_type = self._peer(rule.destination)
            rules.append(core.RouteRule(destination=destination, destination_type=destination_type,
                                        network_entity_id=rule.target))
        return rules

    def _security_rules(self, attrs: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
        ingress, egress = [], []
        for rule in sorted(attrs["security_rules"], key=repr):
            peer, peer_type = self._peer(rule.peer)
            options = _rule_options(rule)
            if rule.direction == "ingress":
                ingress.append(core.IngressSecurityRule(
                    protocol=rule.protocol, source=peer, source_type=peer_type, is_stateless=rule.stateless,
                    description=rule.description or None, **options))
            else:
                egress.append(core.EgressSecurityRule(
                    protocol=rule.protocol, destination=peer, destination_type=peer_type,
                    is_stateless=rule.stateless, description=rule.description or None, **options))
        return ingress, egress


def _rule_options(rule: network.SecurityRule) -> dict[str, Any]:
    if rule.icmp is not None:
        return {"icmp_options": core.IcmpOptions(type=rule.icmp[0], code=rule.icmp[1])}
    if rule.ports is None:
        return {}
    ports = core.PortRange(min=rule.ports[0], max=rule.ports[1])
    if rule.protocol == network.UDP:
        return {"udp_options": core.UdpOptions(destination_port_range=ports)}
    return {"tcp_options": core.TcpOptions(destination_port_range=ports)}


# ---- SDK models -> the planner's attributes ------------------------------------------------------------

def _peer_name(peer: str | None, peer_type: str | None) -> str:
    if peer_type == "SERVICE_CIDR_BLOCK" and peer and _ALL_SERVICES_CIDR.match(peer):
        return network.ORACLE_SERVICES
    return peer or ""


def _observed_rule(direction: str, rule: Any) -> network.SecurityRule:
    if direction == "ingress":
        peer = _peer_name(rule.source, rule.source_type)
    else:
        peer = _peer_name(rule.destination, rule.destination_type)
    options = rule.tcp_options or rule.udp_options
    port_range = options.destination_port_range if options else None
    icmp = rule.icmp_options
    return network.SecurityRule(
        direction="ingress" if direction == "ingress" else "egress",
        protocol=rule.protocol,
        peer=peer,
        ports=(port_range.min, port_range.max) if port_range else None,
        icmp=(icmp.type, icmp.code) if icmp else None,
        description=rule.description or "",
        stateless=bool(rule.is_stateless),
    )


def _observe_security_list(item: Any) -> dict[str, Any]:
    rules = [_observed_rule("ingress", r) for r in item.ingress_security_rules or ()]
    rules += [_observed_rule("egress", r) for r in item.egress_security_rules or ()]
    return {"vcn_id": item.vcn_id, "security_rules": frozenset(rules)}


def _observe_route_table(item: Any) -> dict[str, Any]:
    rules = frozenset(network.RouteRule(_peer_name(r.destination, r.destination_type), r.network_entity_id)
                      for r in item.route_rules or ())
    return {"vcn_id": item.vcn_id, "route_rules": rules}


def _observe_service_gateway(item: Any) -> dict[str, Any]:
    names = frozenset(network.ORACLE_SERVICES if _ALL_SERVICES_NAME.match(s.service_name or "") else s.service_name
                      for s in item.services or ())
    return {"vcn_id": item.vcn_id, "services": names}


def _observe_cluster(item: Any) -> dict[str, Any]:
    options = item.options or ce.ClusterCreateOptions()
    network_config = options.kubernetes_network_config or ce.KubernetesNetworkConfig()
    endpoint = item.endpoint_config or ce.ClusterEndpointConfig()
    pod_networks = item.cluster_pod_network_options or ()
    return {
        "vcn_id": item.vcn_id,
        "kubernetes_version": item.kubernetes_version,
        "type": item.type,
        "cni": pod_networks[0].cni_type if pod_networks else "FLANNEL_OVERLAY",
        "endpoint_subnet_id": endpoint.subnet_id,
        "public_endpoint": bool(endpoint.is_public_ip_enabled),
        "service_lb_subnet_ids": tuple(options.service_lb_subnet_ids or ()),
        "pods_cidr": network_config.pods_cidr,
        "services_cidr": network_config.services_cidr,
    }


def _observe_node_pool(item: Any) -> dict[str, Any]:
    config = item.node_config_details or ce.NodePoolNodeConfigDetails()
    shape = item.node_shape_config or ce.NodeShapeConfig()
    source = item.node_source_details
    subnets = {placement.subnet_id for placement in config.placement_configs or ()}
    pod_network = config.node_pool_pod_network_option_details
    return {
        "cluster_id": item.cluster_id,
        "kubernetes_version": item.kubernetes_version,
        "node_shape": item.node_shape,
        "ocpus": shape.ocpus,
        "memory_in_gbs": shape.memory_in_gbs,
        "size": config.size,
        "boot_volume_size_in_gbs": getattr(source, "boot_volume_size_in_gbs", None),
        "image_id": getattr(source, "image_id", None),
        "ssh_public_key": item.ssh_public_key or None,
        "subnet_id": next(iter(subnets)) if len(subnets) == 1 else None,
        "cni": pod_network.cni_type if pod_network else "FLANNEL_OVERLAY",
    }


def _fields(*names: str) -> Callable[[Any], dict[str, Any]]:
    return lambda item: {name: getattr(item, name) for name in names}


_OBSERVERS: dict[Kind, Callable[[Any], dict[str, Any]]] = {
    Kind.VCN: lambda item: {"cidr_blocks": tuple(item.cidr_blocks or (item.cidr_block,)), "dns_label": item.dns_label},
    Kind.INTERNET_GATEWAY: _fields("vcn_id", "is_enabled"),
    Kind.NAT_GATEWAY: _fields("vcn_id", "block_traffic"),
    Kind.SERVICE_GATEWAY: _observe_service_gateway,
    Kind.ROUTE_TABLE: _observe_route_table,
    Kind.SECURITY_LIST: _observe_security_list,
    Kind.SUBNET: lambda item: {
        "vcn_id": item.vcn_id, "cidr_block": item.cidr_block, "dns_label": item.dns_label,
        "public": not item.prohibit_public_ip_on_vnic, "route_table_id": item.route_table_id,
        "security_list_ids": frozenset(item.security_list_ids or ()),
    },
    Kind.CLUSTER: _observe_cluster,
    Kind.NODE_POOL: _observe_node_pool,
    Kind.LOAD_BALANCER: lambda item: {"subnet_ids": tuple(item.subnet_ids or ())},
}
