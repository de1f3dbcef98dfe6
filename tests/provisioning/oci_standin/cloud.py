"""The stand-in's tenancy: what exists, how it changes with time, and OCI's rules about it.

Resources are kept as the JSON OCI would return (camelCase, validated against the SDK's response models).
Time moves them on: VCN resources are PROVISIONING for `provisioning_s`, then AVAILABLE; clusters and node
pools change through work requests that are ACCEPTED, IN_PROGRESS for `work_request_s`, then SUCCEEDED (or
FAILED when a test asks). The rules OCI enforces and a careless client trips on are enforced here too:
references must exist, subnets must fit the VCN and not overlap, nothing in use can be deleted (409),
nothing mid-change can be changed (409), limits are limits (400 LimitExceeded).
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from oci.container_engine import models as ce
from oci.core import models as core
from oci.identity import models as identity
from oci.limits import models as limits
from oci.load_balancer import models as lb

from tests.provisioning.oci_standin.wire import check_answer, timestamp, validate, wire


class ApiError(Exception):
    """An OCI error answer: status, code and message, as OCI's JSON error body carries them."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def not_found(what: str) -> ApiError:
    return ApiError(404, "NotAuthorizedOrNotFound", f"{what} not found or not authorized")


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON-able, or str for text bodies
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Limit:
    scope: str  # REGION, AD or VCN
    value: int
    used: int = 0  # what other things in the tenancy already use, on top of what the stand-in holds
    reports_availability: bool = True  # "not all resource limits support this API" (404 for the others)


def paid_tenancy_limits() -> dict[tuple[str, str], Limit]:
    """A Pay As You Go tenancy in its first days (Always Free resources included)."""
    return {
        ("container-engine", "cluster-count"): Limit("REGION", 15),
        ("vcn", "vcn-count"): Limit("REGION", 50),
        ("vcn", "internet-gateway-count"): Limit("VCN", 1),
        ("vcn", "nat-gateway-count"): Limit("VCN", 1),
        ("vcn", "service-gateway-count"): Limit("VCN", 1),
        ("compute", "standard-a1-core-count"): Limit("AD", 4),
        ("compute", "standard-a1-memory-count"): Limit("AD", 24),
        ("block-storage", "total-storage-gb"): Limit("AD", 200),
        ("load-balancer", "lb-flexible-count"): Limit("REGION", 1),
        ("load-balancer", "lb-flexible-bandwidth-sum"): Limit("REGION", 10),
    }


def free_tier_limits() -> dict[tuple[str, str], Limit]:
    """An account on the Free Tier alone, as reported by people refused OKE: no clusters, no NAT gateways."""
    values = paid_tenancy_limits()
    values[("container-engine", "cluster-count")] = Limit("REGION", 0)
    values[("vcn", "nat-gateway-count")] = Limit("VCN", 0)
    return values


@dataclass
class Item:
    kind: str
    data: dict[str, Any]
    ready_at: float = 0.0
    gone_at: float | None = None
    default: bool = False  # a VCN's default route table, security list or DHCP options

    @property
    def state(self) -> str:
        return str(self.data["lifecycleState"])


@dataclass
class WorkRequest:
    id: str
    operation: str  # CLUSTER_CREATE, NODEPOOL_UPDATE, ...
    kind: str  # cluster, nodepool, loadbalancer
    resource_id: str
    accepted_at: float
    duration: float
    fail: str | None = None  # the error message of a work request told to fail
    finished: bool = False
    time_accepted: str = field(default_factory=timestamp)

    def status(self, now: float) -> str:
        if now < self.accepted_at + self.duration * 0.1:
            return "ACCEPTED"
        if now < self.accepted_at + self.duration:
            return "IN_PROGRESS"
        return "FAILED" if self.fail else "SUCCEEDED"


# Collections of the Virtual Network service: path segment -> (kind, OCID type, create, update, response).
NETWORK = {
    "vcns": ("vcn", "vcn", core.CreateVcnDetails, core.UpdateVcnDetails, core.Vcn),
    "internetGateways": ("internet_gateway", "internetgateway", core.CreateInternetGatewayDetails,
                         core.UpdateInternetGatewayDetails, core.InternetGateway),
    "natGateways": ("nat_gateway", "natgateway", core.CreateNatGatewayDetails, core.UpdateNatGatewayDetails,
                    core.NatGateway),
    "serviceGateways": ("service_gateway", "servicegateway", core.CreateServiceGatewayDetails,
                        core.UpdateServiceGatewayDetails, core.ServiceGateway),
    "routeTables": ("route_table", "routetable", core.CreateRouteTableDetails, core.UpdateRouteTableDetails,
                    core.RouteTable),
    "securityLists": ("security_list", "securitylist", core.CreateSecurityListDetails,
                      core.UpdateSecurityListDetails, core.SecurityList),
    "subnets": ("subnet", "subnet", core.CreateSubnetDetails, core.UpdateSubnetDetails, core.Subnet),
}
NETWORK_BY_KIND = {spec[0]: (path, *spec) for path, spec in NETWORK.items()}
GATEWAYS = ("internet_gateway", "nat_gateway", "service_gateway")
GONE = ("TERMINATED", "DELETED")


def body_of(data: Any, model: type) -> dict[str, Any]:
    errors = validate(data, model)
    if errors:
        raise ApiError(400, "InvalidParameter", "; ".join(errors))
    return dict(data)


class Cloud:
    """One region of one tenancy, with one compartment the tool works in."""

    def __init__(self, *, tenancy: str, compartment: str, region: str, ads: Iterable[str],
                 kubernetes_versions: Iterable[str], limits: dict[tuple[str, str], Limit] | None = None,
                 provisioning_s: float = 0.05, work_request_s: float = 0.2, page_size: int = 100,
                 kube_api: tuple[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.tenancy, self.compartment, self.region = tenancy, compartment, region
        self.ads = list(ads)
        self.kubernetes_versions = list(kubernetes_versions)
        self.limits = limits if limits is not None else paid_tenancy_limits()
        self.provisioning_s, self.work_request_s = provisioning_s, work_request_s
        self.page_size = page_size
        self.kube_api = kube_api  # (server URL, base64 CA) that create_kubeconfig hands out
        self.clock = clock
        self.items: dict[str, Item] = {}
        self.work_requests: dict[str, WorkRequest] = {}
        self.fail_work_requests: dict[str, str] = {}  # operation type -> error message, for the next one
        self.holding = False  # while True, work requests stay IN_PROGRESS (a test decides when they end)
        short = region.split("-")[1][:3].upper()
        self.services = [
            wire(core.Service, id=self.ocid("service"), name=f"All {short} Services In Oracle Services Network",
                 cidr_block=f"all-{short.lower()}-services-in-oracle-services-network",
                 description=f"All {short} Services In Oracle Services Network"),
            wire(core.Service, id=self.ocid("service"), name=f"OCI {short} Object Storage",
                 cidr_block=f"oci-{short.lower()}-objectstorage", description=f"OCI {short} Object Storage"),
        ]
        self.images = {
            self.ocid("image"): f"Oracle-Linux-8.10-{arch}-2025.10.20-0-OKE-{version.lstrip('v')}-800"
            for version in self.kubernetes_versions for arch in ("aarch64", "x86_64")
        }

    def ocid(self, kind: str) -> str:
        return f"ocid1.{kind}.oc1.{self.region}.{secrets.token_hex(16)}"

    # ---- time -------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Move everything on to where the clock says it is."""
        now = self.clock()
        for item in self.items.values():
            if item.state == "PROVISIONING" and now >= item.ready_at:
                item.data["lifecycleState"] = "AVAILABLE"
            if item.gone_at is not None and now >= item.gone_at and item.state not in GONE:
                item.data["lifecycleState"] = "TERMINATED" if item.kind in NETWORK_BY_KIND else "DELETED"
        for request in self.work_requests.values():
            if not request.finished and self.status(request) in ("SUCCEEDED", "FAILED"):
                request.finished = True
                self._finish(request)

    def _finish(self, request: WorkRequest) -> None:
        item = self.items[request.resource_id]
        verb = request.operation.rsplit("_", 1)[1]
        if verb == "DELETE":
            item.data["lifecycleState"] = "DELETED"
            for pool in self._live("node_pool"):
                if pool.data["clusterId"] == item.data["id"]:
                    pool.data["lifecycleState"] = "DELETED"
            return
        if request.fail:
            item.data["lifecycleState"] = "FAILED"
            item.data["lifecycleDetails"] = request.fail
            return
        item.data["lifecycleState"] = "ACTIVE"
        if item.kind == "node_pool":
            for node in item.data["nodes"]:
                node["lifecycleState"] = "ACTIVE"

    def status(self, request: WorkRequest) -> str:
        status = request.status(self.clock())
        return "IN_PROGRESS" if self.holding and not request.finished and status != "ACCEPTED" else status

    def _start(self, operation: str, kind: str, resource_id: str) -> WorkRequest:
        request = WorkRequest(self.ocid(f"{'loadbalancer' if kind == 'loadbalancer' else 'clustersworkrequest'}"),
                              operation, kind, resource_id, self.clock(), self.work_request_s,
                              fail=self.fail_work_requests.pop(operation, None))
        self.work_requests[request.id] = request
        return request

    # ---- lookups ----------------------------------------------------------------------------------------

    def _live(self, kind: str) -> list[Item]:
        return [item for item in self.items.values() if item.kind == kind and item.state not in GONE]

    def _get(self, kind: str, resource_id: str) -> Item:
        item = self.items.get(resource_id)
        if item is None or item.kind != kind:
            raise not_found(f"{kind} {resource_id}")
        return item

    def _existing(self, kind: str, resource_id: str, where: str) -> Item:
        item = self.items.get(resource_id)
        if item is None or item.kind != kind or item.state in (*GONE, "TERMINATING", "DELETING"):
            raise not_found(f"{where}: {kind} {resource_id}")
        return item

    def _updatable(self, kind: str, resource_id: str, body: Any, model: type,
                   ready: str = "ACTIVE") -> tuple[Item, dict[str, Any]]:
        """The resource and the validated update body; OCI refuses to change what is mid-change (409)."""
        item = self._get(kind, resource_id)
        data = body_of(body, model)
        if item.state != ready:
            raise ApiError(409, "IncorrectState", f"{kind} {resource_id} is {item.state}")
        return item, data

    def _compartment(self, value: str | None, tenancy_ok: bool = False) -> None:
        if value != self.compartment and not (tenancy_ok and value == self.tenancy):
            raise not_found(f"compartment {value}")

    def page(self, items: list[dict[str, Any]], query: dict[str, list[str]]) -> Answer:
        limit = min(int(query.get("limit", [self.page_size])[0]), self.page_size)
        start = int(query.get("page", ["0"])[0])
        chunk = items[start:start + limit]
        headers = {"opc-next-page": str(start + limit)} if start + limit < len(items) else {}
        return Answer(200, chunk, headers)

    # ---- the Virtual Network service ---------------------------------------------------------------------

    def network_create(self, path: str, body: Any) -> Answer:
        kind, ocid_kind, create_model, _, model = NETWORK[path]
        data = body_of(body, create_model)
        self._compartment(data.get("compartmentId"))
        if kind != "vcn":
            vcn = self._existing("vcn", data["vcnId"], "vcnId")
            if vcn.state != "AVAILABLE":
                raise ApiError(409, "IncorrectState", f"VCN {vcn.data['id']} is {vcn.state}")
        getattr(self, f"_check_{kind}")(data)
        data.update(id=self.ocid(ocid_kind), lifecycleState="PROVISIONING", timeCreated=timestamp())
        data.setdefault("freeformTags", {})
        data.setdefault("definedTags", {})
        getattr(self, f"_complete_{kind}")(data)
        data = only(data, model)
        check_answer(data, model)
        self.items[data["id"]] = Item(kind, data, ready_at=self.clock() + self.provisioning_s)
        return Answer(200, data, {"etag": secrets.token_hex(8)})

    def network_list(self, path: str, query: dict[str, list[str]]) -> Answer:
        kind, *_ = NETWORK[path]
        self._compartment(query.get("compartmentId", [None])[0])
        wanted = {key: query[key][0] for key in ("vcnId", "displayName", "lifecycleState") if key in query}
        found = [item.data for item in self.items.values() if item.kind == kind
                 and item.data["compartmentId"] == self.compartment
                 and all(item.data.get(key) == value for key, value in wanted.items())]
        return self.page(found, query)

    def network_get(self, path: str, resource_id: str) -> Answer:
        kind, *_ = NETWORK[path]
        return Answer(200, self._get(kind, resource_id).data, {"etag": secrets.token_hex(8)})

    def network_update(self, path: str, resource_id: str, body: Any) -> Answer:
        kind, _, _, update_model, model = NETWORK[path]
        item, data = self._updatable(kind, resource_id, body, update_model, ready="AVAILABLE")
        vcn_id = item.data.get("vcnId", item.data["id"])
        if kind == "route_table":
            self._check_route_rules(vcn_id, data.get("routeRules", []))
        if kind == "subnet":
            self._check_subnet_refs(vcn_id, data)
        if kind == "service_gateway" and "services" in data:
            data["services"] = self._service_details(data["services"])
        item.data.update(data)
        check_answer(item.data, model)
        return Answer(200, item.data, {"etag": secrets.token_hex(8)})

    def network_delete(self, path: str, resource_id: str) -> Answer:
        kind, *_ = NETWORK[path]
        item = self._get(kind, resource_id)
        if item.state in GONE or item.gone_at is not None:
            return Answer(204)
        if item.default:
            raise ApiError(409, "Conflict", f"the default {kind} of a VCN goes with the VCN")
        users = self._users_of(item)
        if users:
            raise ApiError(409, "Conflict", f"{kind} {resource_id} is still used by {', '.join(users)}")
        item.data["lifecycleState"] = "TERMINATING"
        item.gone_at = self.clock() + self.provisioning_s
        if kind == "vcn":
            for child in self.items.values():
                if child.default and child.data.get("vcnId") == resource_id:
                    child.data["lifecycleState"] = "TERMINATING"
                    child.gone_at = item.gone_at
        return Answer(204)

    def _users_of(self, item: Item) -> list[str]:
        """What still depends on a network resource (OCI refuses the delete with 409 Conflict)."""
        target = item.data["id"]
        users: list[str] = []
        for other in self.items.values():
            if other.state in GONE or other is item:
                continue
            data = other.data
            if item.kind == "vcn" and data.get("vcnId") == target and not other.default:
                users.append(f"{other.kind} {data['id']}")
            elif item.kind in GATEWAYS and other.kind == "route_table" and any(
                    rule.get("networkEntityId") == target for rule in data.get("routeRules", [])):
                users.append(f"route table {data['id']}")
            elif item.kind in ("route_table", "security_list") and other.kind == "subnet" and (
                    data.get("routeTableId") == target or target in data.get("securityListIds", [])):
                users.append(f"subnet {data['id']}")
            elif item.kind == "subnet" and target in self._subnets_used_by(other):
                users.append(f"{other.kind} {data['id']}")
        return users

    @staticmethod
    def _subnets_used_by(item: Item) -> set[str]:
        data = item.data
        if item.kind == "cluster":
            return {data["endpointConfig"]["subnetId"], *data.get("options", {}).get("serviceLbSubnetIds", [])}
        if item.kind == "node_pool":
            return {p["subnetId"] for p in data["nodeConfigDetails"]["placementConfigs"]}
        if item.kind == "load_balancer":
            return set(data.get("subnetIds", []))
        return set()

    def _check_vcn(self, data: dict[str, Any]) -> None:
        blocks = data.get("cidrBlocks") or ([data["cidrBlock"]] if data.get("cidrBlock") else [])
        if not blocks:
            raise ApiError(400, "MissingParameter", "cidrBlocks is required")
        for block in blocks:
            network = _network(block, "cidrBlocks")
            if not 16 <= network.prefixlen <= 30:
                raise ApiError(400, "InvalidParameter", f"VCN CIDR {block} must be /16 to /30")
        self._limit("vcn", "vcn-count", len(self._live("vcn")) + 1)
        data["cidrBlocks"] = blocks

    def _complete_vcn(self, data: dict[str, Any]) -> None:
        data["cidrBlock"] = data["cidrBlocks"][0]
        if data.get("dnsLabel"):
            data["vcnDomainName"] = f"{data['dnsLabel']}.oraclevcn.com"
        defaults: dict[str, tuple[str, type, dict[str, Any]]] = {
            "defaultRouteTableId": ("route_table", core.RouteTable, {"routeRules": []}),
            "defaultSecurityListId": ("security_list", core.SecurityList,
                                      {"ingressSecurityRules": [], "egressSecurityRules": []}),
            "defaultDhcpOptionsId": ("dhcp_options", core.DhcpOptions,
                                     {"options": [{"type": "DomainNameServer", "serverType": "VcnLocalPlusInternet"}]}),
        }
        for field_name, (kind, model, extra) in defaults.items():
            child = {"id": self.ocid(kind.replace("_", "")), "compartmentId": data["compartmentId"],
                     "vcnId": data["id"], "displayName": f"Default {kind.replace('_', ' ').title()} for "
                                                         f"{data.get('displayName', data['id'])}",
                     "lifecycleState": "AVAILABLE", "timeCreated": timestamp(), "freeformTags": {}, **extra}
            check_answer(child, model)
            self.items[child["id"]] = Item(kind, child, default=True)
            data[field_name] = child["id"]

    def _per_vcn(self, kind: str, limit: str, vcn_id: str) -> None:
        count = sum(1 for item in self._live(kind) if item.data["vcnId"] == vcn_id)
        self._limit("vcn", limit, count + 1)

    def _check_internet_gateway(self, data: dict[str, Any]) -> None:
        self._per_vcn("internet_gateway", "internet-gateway-count", data["vcnId"])

    def _complete_internet_gateway(self, data: dict[str, Any]) -> None:
        data.setdefault("isEnabled", True)

    def _check_nat_gateway(self, data: dict[str, Any]) -> None:
        self._per_vcn("nat_gateway", "nat-gateway-count", data["vcnId"])

    def _complete_nat_gateway(self, data: dict[str, Any]) -> None:
        data.setdefault("blockTraffic", False)
        data["natIp"] = f"192.0.2.{len(self._live('nat_gateway')) + 10}"
        data["publicIpId"] = self.ocid("publicip")

    def _check_service_gateway(self, data: dict[str, Any]) -> None:
        self._per_vcn("service_gateway", "service-gateway-count", data["vcnId"])
        data["services"] = self._service_details(data["services"])

    def _service_details(self, requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = {service["id"]: service["name"] for service in self.services}
        for entry in requested:
            if entry["serviceId"] not in names:
                raise not_found(f"service {entry['serviceId']}")
        return [{"serviceId": e["serviceId"], "serviceName": names[e["serviceId"]]} for e in requested]

    def _complete_service_gateway(self, data: dict[str, Any]) -> None:
        data["blockTraffic"] = False

    def _check_route_table(self, data: dict[str, Any]) -> None:
        self._check_route_rules(data["vcnId"], data["routeRules"])

    def _check_route_rules(self, vcn_id: str, rules: list[dict[str, Any]]) -> None:
        service_cidrs = {service["cidrBlock"] for service in self.services}
        for rule in rules:
            target = self.items.get(rule["networkEntityId"])
            if target is None or target.kind not in GATEWAYS or target.state in GONE:
                raise not_found(f"route target {rule['networkEntityId']}")
            if target.data["vcnId"] != vcn_id:
                raise ApiError(400, "InvalidParameter", f"route target {target.data['id']} is in another VCN")
            destination = rule.get("destination") or rule.get("cidrBlock")
            if rule.get("destinationType") == "SERVICE_CIDR_BLOCK":
                if destination not in service_cidrs or target.kind != "service_gateway":
                    raise ApiError(400, "InvalidParameter", f"{destination} is not a service CIDR of a service gateway")
            else:
                _network(destination, "routeRules.destination")

    def _complete_route_table(self, data: dict[str, Any]) -> None:
        pass

    def _check_security_list(self, data: dict[str, Any]) -> None:
        service_cidrs = {service["cidrBlock"] for service in self.services}
        for rule in data["ingressSecurityRules"] + data["egressSecurityRules"]:
            peer = rule.get("source", rule.get("destination"))
            peer_type = rule.get("sourceType", rule.get("destinationType", "CIDR_BLOCK"))
            if peer_type == "SERVICE_CIDR_BLOCK":
                if peer not in service_cidrs:
                    raise ApiError(400, "InvalidParameter", f"{peer} is not a service CIDR label")
            else:
                _network(peer, "securityRules")
            if rule["protocol"] not in ("all", "1", "6", "17", "58"):
                raise ApiError(400, "InvalidParameter", f"protocol {rule['protocol']!r}")

    def _complete_security_list(self, data: dict[str, Any]) -> None:
        pass

    def _check_subnet(self, data: dict[str, Any]) -> None:
        vcn = self.items[data["vcnId"]]
        network = _network(data.get("cidrBlock"), "cidrBlock")
        if not any(network.subnet_of(ipaddress.IPv4Network(block)) for block in vcn.data["cidrBlocks"]):
            raise ApiError(400, "InvalidParameter", f"subnet {network} is not within the VCN's CIDR blocks")
        for other in self._live("subnet"):
            if other.data["vcnId"] == data["vcnId"] and network.overlaps(ipaddress.IPv4Network(other.data["cidrBlock"])):
                raise ApiError(400, "InvalidParameter", f"subnet {network} overlaps subnet {other.data['id']}")
            if other.data["vcnId"] == data["vcnId"] and data.get("dnsLabel") and \
                    other.data.get("dnsLabel") == data["dnsLabel"]:
                raise ApiError(400, "InvalidParameter", f"dnsLabel {data['dnsLabel']} is taken in this VCN")
        self._check_subnet_refs(data["vcnId"], data)

    def _check_subnet_refs(self, vcn_id: str, data: dict[str, Any]) -> None:
        for key, kind in (("routeTableId", "route_table"), ("dhcpOptionsId", "dhcp_options")):
            if data.get(key):
                ref = self._existing(kind, data[key], key)
                if ref.data["vcnId"] != vcn_id:
                    raise ApiError(400, "InvalidParameter", f"{key} is in another VCN")
        for ref_id in data.get("securityListIds") or []:
            if self._existing("security_list", ref_id, "securityListIds").data["vcnId"] != vcn_id:
                raise ApiError(400, "InvalidParameter", "securityListIds: a security list of another VCN")

    def _complete_subnet(self, data: dict[str, Any]) -> None:
        vcn = self.items[data["vcnId"]].data
        data.setdefault("routeTableId", vcn["defaultRouteTableId"])
        data.setdefault("securityListIds", [vcn["defaultSecurityListId"]])
        data.setdefault("dhcpOptionsId", vcn["defaultDhcpOptionsId"])
        data.setdefault("prohibitPublicIpOnVnic", False)
        data["prohibitInternetIngress"] = data["prohibitPublicIpOnVnic"]
        network = ipaddress.IPv4Network(data["cidrBlock"])
        data["virtualRouterIp"] = str(network.network_address + 1)
        data["virtualRouterMac"] = "00:00:17:" + ":".join(secrets.token_hex(1) for _ in range(3))
        data["ipv4CidrBlocks"] = [data["cidrBlock"]]
        if data.get("dnsLabel") and vcn.get("vcnDomainName"):
            data["subnetDomainName"] = f"{data['dnsLabel']}.{vcn['vcnDomainName']}"

    def list_services(self, query: dict[str, list[str]]) -> Answer:
        return self.page(self.services, query)

    # ---- Identity, Limits ---------------------------------------------------------------------------------

    def availability_domains(self, query: dict[str, list[str]]) -> Answer:
        if query.get("compartmentId", [None])[0] != self.tenancy:
            raise not_found("tenancy")
        domains = [wire(identity.AvailabilityDomain, name=ad, id=f"ocid1.availabilitydomain.oc1..{i}",
                        compartment_id=self.tenancy) for i, ad in enumerate(self.ads)]
        return Answer(200, domains)

    def limit_values(self, query: dict[str, list[str]]) -> Answer:
        if query.get("compartmentId", [None])[0] != self.tenancy:
            raise ApiError(400, "InvalidParameter", "limit values are read on the tenancy (the root compartment)")
        service, name = query["serviceName"][0], query.get("name", [None])[0]
        values = []
        for (svc, limit_name), limit in self.limits.items():
            if svc != service or (name and name != limit_name):
                continue
            scopes: list[str | None] = list(self.ads) if limit.scope == "AD" else [None]
            for ad in scopes:
                values.append(wire(limits.LimitValueSummary, name=limit_name, scope_type=limit.scope,
                                   availability_domain=ad, value=limit.value))
        return self.page(values, query)

    def resource_availability(self, service: str, name: str, query: dict[str, list[str]]) -> Answer:
        self._compartment(query.get("compartmentId", [None])[0], tenancy_ok=True)
        limit = self.limits.get((service, name))
        if limit is None:
            raise not_found(f"limit {service}/{name}")
        ad = query.get("availabilityDomain", [None])[0]
        if limit.scope == "VCN" or not limit.reports_availability:
            raise not_found(f"resource availability of {service}/{name}")
        if (limit.scope == "AD") != (ad is not None):
            raise ApiError(400, "InvalidParameter", f"{name} is {limit.scope}-scoped: availabilityDomain "
                                                    f"{'is required' if limit.scope == 'AD' else 'must be absent'}")
        used = limit.used + self._usage(name, ad)
        return Answer(200, wire(limits.ResourceAvailability, used=used, available=max(0, limit.value - used)))

    def _usage(self, name: str, ad: str | None) -> int:
        pools = self._live("node_pool")

        def per_node(field_name: str) -> int:
            total = 0.0
            for pool in pools:
                nodes = [n for n in pool.data["nodes"] if n["availabilityDomain"] == ad]
                if field_name == "boot":
                    total += len(nodes) * max(50, pool.data["nodeSourceDetails"].get("bootVolumeSizeInGBs") or 50)
                else:
                    total += len(nodes) * pool.data["nodeShapeConfig"][field_name]
            return int(total)

        usage: dict[str, Callable[[], int]] = {
            "vcn-count": lambda: len(self._live("vcn")),
            "cluster-count": lambda: len(self._live("cluster")),
            "standard-a1-core-count": lambda: per_node("ocpus"),
            "standard-a1-memory-count": lambda: per_node("memoryInGBs"),
            "total-storage-gb": lambda: per_node("boot"),
            "lb-flexible-count": lambda: len(self._live("load_balancer")),
            "lb-flexible-bandwidth-sum": lambda: 10 * len(self._live("load_balancer")),
        }
        return usage.get(name, lambda: 0)()

    def _limit(self, service: str, name: str, wanted: int, ad: str | None = None) -> None:
        limit = self.limits.get((service, name))
        if limit is not None and limit.used + wanted > limit.value:
            where = f" in {ad}" if ad else ""
            raise ApiError(400, "LimitExceeded", f"The following service limits were exceeded: {name}{where}")

    # ---- Container Engine -------------------------------------------------------------------------------

    def cluster_create(self, body: Any) -> Answer:
        data = body_of(body, ce.CreateClusterDetails)
        self._compartment(data["compartmentId"])
        vcn = self._existing("vcn", data["vcnId"], "vcnId")
        endpoint = data.get("endpointConfig") or {}
        for subnet_id in [endpoint.get("subnetId"), *data.get("options", {}).get("serviceLbSubnetIds", [])]:
            if subnet_id and self._existing("subnet", subnet_id, "subnetId").data["vcnId"] != vcn.data["id"]:
                raise ApiError(400, "InvalidParameter", f"subnet {subnet_id} is not in VCN {vcn.data['id']}")
        if data["kubernetesVersion"] not in self.kubernetes_versions:
            raise ApiError(400, "InvalidParameter", f"kubernetesVersion {data['kubernetesVersion']} is not supported")
        self._limit("container-engine", "cluster-count", len(self._live("cluster")) + 1)
        cluster_id = self.ocid("cluster")
        request = self._start("CLUSTER_CREATE", "cluster", cluster_id)
        data.update(
            id=cluster_id, lifecycleState="CREATING", type=data.get("type", "BASIC_CLUSTER"),
            clusterPodNetworkOptions=data.get("clusterPodNetworkOptions") or [{"cniType": "FLANNEL_OVERLAY"}],
            metadata={"timeCreated": timestamp(), "createdByWorkRequestId": request.id},
            endpoints={"kubernetes": "10.0.0.2:6443", "publicEndpoint": "203.0.113.10:6443",
                       "privateEndpoint": "10.0.0.2:6443"},
            availableKubernetesUpgrades=[],
        )
        data.setdefault("freeformTags", {})
        data = only(data, ce.Cluster)
        check_answer(data, ce.Cluster)
        self.items[cluster_id] = Item("cluster", data)
        return Answer(202, None, {"opc-work-request-id": request.id})

    def cluster_list(self, query: dict[str, list[str]]) -> Answer:
        return self._engine_list("cluster", ce.ClusterSummary, query)

    def _engine_list(self, kind: str, model: type, query: dict[str, list[str]], **filters: str) -> Answer:
        """Clusters or node pools: by lifecycleState (any of several), name and other query filters."""
        self._compartment(query.get("compartmentId", [None])[0])
        states, name = query.get("lifecycleState"), query.get("name", [None])[0]
        wanted = {field_name: query[param][0] for param, field_name in filters.items() if param in query}
        found = [_summary(item.data, model) for item in self.items.values() if item.kind == kind
                 and (not states or item.state in states) and (name is None or item.data["name"] == name)
                 and all(item.data.get(key) == value for key, value in wanted.items())]
        return self.page(found, query)

    def cluster_get(self, cluster_id: str) -> Answer:
        return Answer(200, self._get("cluster", cluster_id).data)

    def cluster_update(self, cluster_id: str, body: Any) -> Answer:
        item, data = self._updatable("cluster", cluster_id, body, ce.UpdateClusterDetails)
        version = data.get("kubernetesVersion")
        if version and (version not in self.kubernetes_versions or
                        _version(version) < _version(item.data["kubernetesVersion"])):
            raise ApiError(400, "InvalidParameter", f"cannot move the cluster to {version}")
        item.data.update({k: v for k, v in data.items() if k in ("kubernetesVersion", "type", "name")})
        item.data["lifecycleState"] = "UPDATING"
        request = self._start("CLUSTER_UPDATE", "cluster", cluster_id)
        return Answer(202, None, {"opc-work-request-id": request.id})

    def cluster_delete(self, cluster_id: str) -> Answer:
        answer = self._engine_delete("cluster", cluster_id, "CLUSTER_DELETE")
        for pool in self._live("node_pool"):  # OKE deletes a cluster's node pools with it
            if pool.data["clusterId"] == cluster_id:
                pool.data["lifecycleState"] = "DELETING"
        return answer

    def _engine_delete(self, kind: str, resource_id: str, operation: str) -> Answer:
        item = self._get(kind, resource_id)
        if item.state in GONE:
            raise not_found(f"{kind} {resource_id}")
        if item.state in ("CREATING", "UPDATING", "DELETING"):
            raise ApiError(409, "IncorrectState", f"{kind} {resource_id} is {item.state}")
        item.data["lifecycleState"] = "DELETING"
        request = self._start(operation, "cluster" if kind == "cluster" else "nodepool", resource_id)
        return Answer(202, None, {"opc-work-request-id": request.id})

    def kubeconfig(self, cluster_id: str, body: Any) -> Answer:
        item = self._get("cluster", cluster_id)
        details = body_of(body or {}, ce.CreateClusterKubeconfigContentDetails)
        if item.state != "ACTIVE":
            raise ApiError(409, "IncorrectState", f"cluster {cluster_id} is {item.state}")
        server, ca = self.kube_api or (f"https://{item.data['endpoints']['publicEndpoint']}", "")
        short = cluster_id[-11:]
        text = (
            "---\napiVersion: v1\nkind: \"\"\nclusters:\n"
            f"- name: \"cluster-{short}\"\n  cluster:\n    server: \"{server}\"\n"
            f"    certificate-authority-data: \"{ca}\"\n"
            f"users:\n- name: \"user-{short}\"\n  user:\n    exec:\n"
            "      apiVersion: client.authentication.k8s.io/v1beta1\n      command: oci\n      args:\n"
            f"      - ce\n      - cluster\n      - generate-token\n      - --cluster-id\n      - {cluster_id}\n"
            f"      - --region\n      - {self.region}\n      env: []\n"
            f"contexts:\n- name: \"context-{short}\"\n  context:\n    cluster: \"cluster-{short}\"\n"
            f"    user: \"user-{short}\"\ncurrent-context: \"context-{short}\"\n"
        )
        if details.get("tokenVersion") not in (None, "2.0.0"):
            raise ApiError(400, "InvalidParameter", "tokenVersion must be 2.0.0")
        return Answer(200, text, {"content-type": "application/x-yaml"})

    def node_pool_create(self, body: Any) -> Answer:
        data = body_of(body, ce.CreateNodePoolDetails)
        self._compartment(data["compartmentId"])
        cluster = self._existing("cluster", data["clusterId"], "clusterId")
        if cluster.state != "ACTIVE":
            raise ApiError(409, "IncorrectState", f"cluster {cluster.data['id']} is {cluster.state}")
        source = data.get("nodeSourceDetails") or {}
        if source.get("imageId") not in self.images:
            raise ApiError(400, "InvalidParameter", f"image {source.get('imageId')} is not an OKE image here")
        if data["nodeShape"].endswith(".Flex") and not data.get("nodeShapeConfig"):
            raise ApiError(400, "InvalidParameter", "flexible shapes need nodeShapeConfig")
        config = data.get("nodeConfigDetails") or {}
        self._check_placements(config.get("placementConfigs", []), cluster)
        data["nodes"] = self._nodes(data["clusterId"], config, data["kubernetesVersion"])
        self._check_capacity(data)
        pool_id = self.ocid("nodepool")
        request = self._start("NODEPOOL_CREATE", "nodepool", pool_id)
        data.update(id=pool_id, lifecycleState="CREATING", nodeImageId=source["imageId"],
                    nodeImageName=self.images[source["imageId"]],
                    nodeSource={"sourceType": "IMAGE", "sourceName": self.images[source["imageId"]],
                                "imageId": source["imageId"]})
        data.setdefault("freeformTags", {})
        for node in data["nodes"]:
            node["nodePoolId"] = pool_id
        data = only(data, ce.NodePool)
        check_answer(data, ce.NodePool)
        self.items[pool_id] = Item("node_pool", data)
        return Answer(202, None, {"opc-work-request-id": request.id})

    def _check_placements(self, placements: list[dict[str, Any]], cluster: Item) -> None:
        if not placements:
            raise ApiError(400, "InvalidParameter", "nodeConfigDetails.placementConfigs is required")
        for placement in placements:
            if placement["availabilityDomain"] not in self.ads:
                raise ApiError(400, "InvalidParameter", f"unknown availability domain {placement['availabilityDomain']}")
            subnet = self._existing("subnet", placement["subnetId"], "placementConfigs.subnetId")
            if subnet.data["vcnId"] != cluster.data["vcnId"]:
                raise ApiError(400, "InvalidParameter", "the node subnet is not in the cluster's VCN")

    def _nodes(self, cluster_id: str, config: dict[str, Any], version: str) -> list[dict[str, Any]]:
        placements = config["placementConfigs"]
        nodes = []
        for i in range(config.get("size", 0)):
            placement = placements[i % len(placements)]
            nodes.append(wire(ce.Node, id=self.ocid("instance"), name=f"oke-{secrets.token_hex(4)}-{i}",
                              kubernetes_version=version, availability_domain=placement["availabilityDomain"],
                              subnet_id=placement["subnetId"], private_ip=f"10.0.10.{10 + i}",
                              lifecycle_state="CREATING", freeform_tags=config.get("freeformTags", {})))
        return nodes

    def _check_capacity(self, pool: dict[str, Any], replacing: str | None = None) -> None:
        """A1 cores, memory and boot volume storage, per AD, against the limits (OCI: 400 LimitExceeded)."""
        if not pool["nodeShape"].startswith("VM.Standard.A1."):
            return
        shape = pool["nodeShapeConfig"]
        boot = max(50, (pool.get("nodeSourceDetails") or {}).get("bootVolumeSizeInGBs") or 50)
        for ad in self.ads:
            count = sum(1 for node in pool["nodes"] if node["availabilityDomain"] == ad)
            if not count:
                continue
            others = [p for p in self._live("node_pool") if p.data["id"] != replacing]
            for name, amount, key in (("standard-a1-core-count", shape["ocpus"], "ocpus"),
                                      ("standard-a1-memory-count", shape["memoryInGBs"], "memoryInGBs")):
                used = sum(p.data["nodeShapeConfig"][key] for p in others for n in p.data["nodes"]
                           if n["availabilityDomain"] == ad)
                self._limit("compute", name, int(used + count * amount), ad)
            used_boot = sum(max(50, p.data["nodeSourceDetails"].get("bootVolumeSizeInGBs") or 50)
                            for p in others for n in p.data["nodes"] if n["availabilityDomain"] == ad)
            self._limit("block-storage", "total-storage-gb", used_boot + count * boot, ad)

    def node_pool_list(self, query: dict[str, list[str]]) -> Answer:
        return self._engine_list("node_pool", ce.NodePoolSummary, query, clusterId="clusterId")

    def node_pool_get(self, pool_id: str) -> Answer:
        return Answer(200, self._get("node_pool", pool_id).data)

    def node_pool_update(self, pool_id: str, body: Any) -> Answer:
        item, data = self._updatable("node_pool", pool_id, body, ce.UpdateNodePoolDetails)
        pool = dict(item.data)
        for key in ("kubernetesVersion", "nodeShape", "nodeShapeConfig", "sshPublicKey"):
            if key in data:
                pool[key] = data[key]
        if "nodeSourceDetails" in data:
            if data["nodeSourceDetails"].get("imageId") not in self.images:
                raise ApiError(400, "InvalidParameter", "not an OKE image here")
            pool["nodeSourceDetails"] = data["nodeSourceDetails"]
        if "nodeConfigDetails" in data:
            config = {**pool["nodeConfigDetails"], **{k: v for k, v in data["nodeConfigDetails"].items() if v}}
            cluster = self._get("cluster", pool["clusterId"])
            self._check_placements(config["placementConfigs"], cluster)
            pool["nodeConfigDetails"] = config
            pool["nodes"] = self._nodes(pool["clusterId"], config, pool["kubernetesVersion"])
        self._check_capacity(pool, replacing=pool_id)
        item.data.clear()
        item.data.update(pool, lifecycleState="UPDATING")
        request = self._start("NODEPOOL_UPDATE", "nodepool", pool_id)
        return Answer(202, None, {"opc-work-request-id": request.id})

    def node_pool_delete(self, pool_id: str) -> Answer:
        return self._engine_delete("node_pool", pool_id, "NODEPOOL_DELETE")

    def node_pool_options(self, option_id: str, query: dict[str, list[str]]) -> Answer:
        self._compartment(query.get("compartmentId", [None])[0], tenancy_ok=True)
        version = query.get("nodePoolK8sVersion", [None])[0]
        arch = {"AARCH64": "aarch64", "X86_64": "x86_64"}.get(query.get("nodePoolOsArch", [""])[0])
        sources = [wire(ce.NodeSourceViaImageOption, source_type="IMAGE", source_name=name, image_id=image)
                   for image, name in self.images.items()
                   if (not version or f"-OKE-{version.lstrip('v')}-" in name) and (not arch or arch in name)]
        options = wire(ce.NodePoolOptions, kubernetes_versions=self.kubernetes_versions,
                       shapes=["VM.Standard.A1.Flex", "VM.Standard.E4.Flex", "VM.Standard.E5.Flex"],
                       images=[s["sourceName"] for s in sources], sources=sources)
        check_answer(options, ce.NodePoolOptions)
        return Answer(200, options)

    def cluster_options(self, option_id: str, query: dict[str, list[str]]) -> Answer:
        options = wire(ce.ClusterOptions, kubernetes_versions=self.kubernetes_versions,
                       cluster_pod_network_options=[{"cniType": "FLANNEL_OVERLAY"}, {"cniType": "OCI_VCN_IP_NATIVE"}])
        check_answer(options, ce.ClusterOptions)
        return Answer(200, options)

    def _work_request_body(self, request: WorkRequest, model: type) -> dict[str, Any]:
        status = self.status(request)
        action = {"CREATE": "CREATED", "UPDATE": "UPDATED", "DELETE": "DELETED"}[request.operation.rsplit("_", 1)[1]]
        body = wire(model, id=request.id, operation_type=request.operation, status=status,
                    compartment_id=self.compartment, time_accepted=request.time_accepted,
                    resources=[wire(ce.WorkRequestResource,
                                    action_type=action if status == "SUCCEEDED" else "IN_PROGRESS",
                                    entity_type=request.kind, identifier=request.resource_id,
                                    entity_uri=f"/{'clusters' if request.kind == 'cluster' else 'nodePools'}/"
                                               f"{request.resource_id}")])
        check_answer(body, model)
        return body

    def work_request_get(self, request_id: str) -> Answer:
        request = self.work_requests.get(request_id)
        if request is None or request.kind == "loadbalancer":
            raise not_found(f"work request {request_id}")
        return Answer(200, self._work_request_body(request, ce.WorkRequest))

    def work_request_list(self, query: dict[str, list[str]]) -> Answer:
        self._compartment(query.get("compartmentId", [None])[0])
        resource, statuses = query.get("resourceId", [None])[0], query.get("status")
        found = [self._work_request_body(r, ce.WorkRequestSummary) for r in self.work_requests.values()
                 if r.kind != "loadbalancer" and (resource is None or r.resource_id == resource)
                 and (not statuses or self.status(r) in statuses)]
        return self.page(found, query)

    def work_request_errors(self, request_id: str) -> Answer:
        request = self.work_requests.get(request_id)
        if request is None:
            raise not_found(f"work request {request_id}")
        errors = [wire(ce.WorkRequestError, code="InternalError", message=request.fail, timestamp=timestamp())] \
            if request.fail and self.status(request) == "FAILED" else []
        return Answer(200, errors)

    # ---- Load balancers (made by OKE's cloud controller; the tool only lists and deletes them) ------------

    def add_load_balancer(self, subnet_id: str, tags: dict[str, str]) -> str:
        lb_id = self.ocid("loadbalancer")
        data = wire(lb.LoadBalancer, id=lb_id, compartment_id=self.compartment, display_name=f"{secrets.token_hex(6)}",
                    lifecycle_state="ACTIVE", time_created=timestamp(), shape_name="flexible",
                    shape_details=wire(lb.ShapeDetails, minimum_bandwidth_in_mbps=10, maximum_bandwidth_in_mbps=10),
                    ip_addresses=[wire(lb.IpAddress, ip_address="203.0.113.20", is_public=True)],
                    is_private=False, subnet_ids=[subnet_id], freeform_tags=tags)
        check_answer(data, lb.LoadBalancer)
        self.items[lb_id] = Item("load_balancer", data)
        return lb_id

    def lb_list(self, query: dict[str, list[str]]) -> Answer:
        self._compartment(query.get("compartmentId", [None])[0])
        return self.page([i.data for i in self.items.values() if i.kind == "load_balancer"], query)

    def lb_get(self, lb_id: str) -> Answer:
        item = self._get("load_balancer", lb_id)
        if item.state in GONE:
            raise not_found(f"load balancer {lb_id}")
        return Answer(200, item.data)

    def lb_delete(self, lb_id: str) -> Answer:
        item = self._get("load_balancer", lb_id)
        if item.state in GONE:
            raise not_found(f"load balancer {lb_id}")
        item.data["lifecycleState"] = "DELETING"
        request = self._start("LOADBALANCER_DELETE", "loadbalancer", lb_id)
        return Answer(204, None, {"opc-work-request-id": request.id})

    def lb_work_request(self, request_id: str) -> Answer:
        request = self.work_requests.get(request_id)
        if request is None or request.kind != "loadbalancer":
            raise not_found(f"work request {request_id}")
        status = self.status(request)
        body = wire(lb.WorkRequest, id=request.id, load_balancer_id=request.resource_id, type="DeleteLoadBalancer",
                    compartment_id=self.compartment, lifecycle_state=status, message=status.lower(),
                    time_accepted=request.time_accepted, error_details=[])
        check_answer(body, lb.WorkRequest)
        return Answer(200, body)


def only(data: dict[str, Any], model: type) -> dict[str, Any]:
    """The fields of `data` that the response model has (a create request carries some it does not)."""
    keys = set(model().attribute_map.values())
    return {key: value for key, value in data.items() if key in keys}


def _summary(data: dict[str, Any], model: type) -> dict[str, Any]:
    """The list form of a resource: the fields its Summary model has."""
    summary = only(data, model)
    check_answer(summary, model)
    return summary


def _network(value: Any, where: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(str(value))
    except ValueError:
        raise ApiError(400, "InvalidParameter", f"{where}: {value!r} is not a CIDR block") from None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.lstrip("v").split("."))
