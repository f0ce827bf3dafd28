from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_UNSPECIFIED: _ClassVar[Protocol]
    PROTOCOL_TCP: _ClassVar[Protocol]
    PROTOCOL_UDP: _ClassVar[Protocol]
    PROTOCOL_SCTP: _ClassVar[Protocol]
    PROTOCOL_ICMP: _ClassVar[Protocol]
    PROTOCOL_ICMPV6: _ClassVar[Protocol]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_ALLOW: _ClassVar[Verdict]
    VERDICT_DENY: _ClassVar[Verdict]

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    REASON_LOOPBACK: _ClassVar[Reason]
    REASON_NODE_TRAFFIC: _ClassVar[Reason]
    REASON_NO_POD_INVOLVED: _ClassVar[Reason]
    REASON_HOST_NETWORK: _ClassVar[Reason]
    REASON_NOT_ISOLATED: _ClassVar[Reason]
    REASON_ALLOWED_BY_POLICY: _ClassVar[Reason]
    REASON_DENIED_ON_INGRESS: _ClassVar[Reason]
    REASON_DENIED_ON_EGRESS: _ClassVar[Reason]
    REASON_DENIED_ON_BOTH: _ClassVar[Reason]
    REASON_ALLOWED_BY_ADMIN_POLICY: _ClassVar[Reason]
    REASON_DENIED_BY_ADMIN_POLICY: _ClassVar[Reason]
    REASON_ALLOWED_BY_BASELINE_POLICY: _ClassVar[Reason]
    REASON_DENIED_BY_BASELINE_POLICY: _ClassVar[Reason]
    REASON_SERVICE_PARTIALLY_ALLOWED: _ClassVar[Reason]
    REASON_SERVICE_NO_READY_ENDPOINTS: _ClassVar[Reason]
    REASON_SERVICE_PORT_NOT_FOUND: _ClassVar[Reason]

class EndpointKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENDPOINT_KIND_UNSPECIFIED: _ClassVar[EndpointKind]
    ENDPOINT_KIND_POD: _ClassVar[EndpointKind]
    ENDPOINT_KIND_NODE: _ClassVar[EndpointKind]
    ENDPOINT_KIND_EXTERNAL: _ClassVar[EndpointKind]
    ENDPOINT_KIND_SERVICE: _ClassVar[EndpointKind]
PROTOCOL_UNSPECIFIED: Protocol
PROTOCOL_TCP: Protocol
PROTOCOL_UDP: Protocol
PROTOCOL_SCTP: Protocol
PROTOCOL_ICMP: Protocol
PROTOCOL_ICMPV6: Protocol
VERDICT_UNSPECIFIED: Verdict
VERDICT_ALLOW: Verdict
VERDICT_DENY: Verdict
REASON_UNSPECIFIED: Reason
REASON_LOOPBACK: Reason
REASON_NODE_TRAFFIC: Reason
REASON_NO_POD_INVOLVED: Reason
REASON_HOST_NETWORK: Reason
REASON_NOT_ISOLATED: Reason
REASON_ALLOWED_BY_POLICY: Reason
REASON_DENIED_ON_INGRESS: Reason
REASON_DENIED_ON_EGRESS: Reason
REASON_DENIED_ON_BOTH: Reason
REASON_ALLOWED_BY_ADMIN_POLICY: Reason
REASON_DENIED_BY_ADMIN_POLICY: Reason
REASON_ALLOWED_BY_BASELINE_POLICY: Reason
REASON_DENIED_BY_BASELINE_POLICY: Reason
REASON_SERVICE_PARTIALLY_ALLOWED: Reason
REASON_SERVICE_NO_READY_ENDPOINTS: Reason
REASON_SERVICE_PORT_NOT_FOUND: Reason
ENDPOINT_KIND_UNSPECIFIED: EndpointKind
ENDPOINT_KIND_POD: EndpointKind
ENDPOINT_KIND_NODE: EndpointKind
ENDPOINT_KIND_EXTERNAL: EndpointKind
ENDPOINT_KIND_SERVICE: EndpointKind

class Flow(_message.Message):
    __slots__ = ("src_ip", "dst_ip", "protocol", "dst_port", "src_port", "ip_protocol")
    SRC_IP_FIELD_NUMBER: _ClassVar[int]
    DST_IP_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    IP_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    src_ip: str
    dst_ip: str
    protocol: Protocol
    dst_port: int
    src_port: int
    ip_protocol: int
    def __init__(self, src_ip: _Optional[str] = ..., dst_ip: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., dst_port: _Optional[int] = ..., src_port: _Optional[int] = ..., ip_protocol: _Optional[int] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("kind", "name", "namespace", "host_network_pods")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    HOST_NETWORK_PODS_FIELD_NUMBER: _ClassVar[int]
    kind: EndpointKind
    name: str
    namespace: str
    host_network_pods: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[EndpointKind, str]] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ..., host_network_pods: _Optional[_Iterable[str]] = ...) -> None: ...

class RuleRef(_message.Message):
    __slots__ = ("policy", "rule")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    policy: str
    rule: int
    def __init__(self, policy: _Optional[str] = ..., rule: _Optional[int] = ...) -> None: ...

class TierRuleRef(_message.Message):
    __slots__ = ("tier", "policy", "rule", "name", "action")
    TIER_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    tier: str
    policy: str
    rule: int
    name: str
    action: str
    def __init__(self, tier: _Optional[str] = ..., policy: _Optional[str] = ..., rule: _Optional[int] = ..., name: _Optional[str] = ..., action: _Optional[str] = ...) -> None: ...

class DirectionTrace(_message.Message):
    __slots__ = ("direction", "pod", "isolated", "allowed", "isolating_policies", "allowed_by", "decided_by", "passed")
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    ISOLATED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    ISOLATING_POLICIES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_BY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    direction: str
    pod: str
    isolated: bool
    allowed: bool
    isolating_policies: _containers.RepeatedScalarFieldContainer[str]
    allowed_by: _containers.RepeatedCompositeFieldContainer[RuleRef]
    decided_by: TierRuleRef
    passed: _containers.RepeatedCompositeFieldContainer[TierRuleRef]
    def __init__(self, direction: _Optional[str] = ..., pod: _Optional[str] = ..., isolated: _Optional[bool] = ..., allowed: _Optional[bool] = ..., isolating_policies: _Optional[_Iterable[str]] = ..., allowed_by: _Optional[_Iterable[_Union[RuleRef, _Mapping]]] = ..., decided_by: _Optional[_Union[TierRuleRef, _Mapping]] = ..., passed: _Optional[_Iterable[_Union[TierRuleRef, _Mapping]]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("egress", "ingress")
    EGRESS_FIELD_NUMBER: _ClassVar[int]
    INGRESS_FIELD_NUMBER: _ClassVar[int]
    egress: DirectionTrace
    ingress: DirectionTrace
    def __init__(self, egress: _Optional[_Union[DirectionTrace, _Mapping]] = ..., ingress: _Optional[_Union[DirectionTrace, _Mapping]] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("verdict", "reason", "generation", "src", "dst", "notes", "explanation", "service")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    reason: Reason
    generation: int
    src: Endpoint
    dst: Endpoint
    notes: _containers.RepeatedScalarFieldContainer[str]
    explanation: Explanation
    service: ServiceTrace
    def __init__(self, verdict: _Optional[_Union[Verdict, str]] = ..., reason: _Optional[_Union[Reason, str]] = ..., generation: _Optional[int] = ..., src: _Optional[_Union[Endpoint, _Mapping]] = ..., dst: _Optional[_Union[Endpoint, _Mapping]] = ..., notes: _Optional[_Iterable[str]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., service: _Optional[_Union[ServiceTrace, _Mapping]] = ...) -> None: ...

class ServiceTrace(_message.Message):
    __slots__ = ("service", "address", "address_kind", "protocol", "port", "port_name", "target_port", "traffic_policy", "endpoints")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_KIND_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    PORT_NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_POLICY_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    service: str
    address: str
    address_kind: str
    protocol: str
    port: int
    port_name: str
    target_port: str
    traffic_policy: str
    endpoints: _containers.RepeatedCompositeFieldContainer[ServiceEndpoint]
    def __init__(self, service: _Optional[str] = ..., address: _Optional[str] = ..., address_kind: _Optional[str] = ..., protocol: _Optional[str] = ..., port: _Optional[int] = ..., port_name: _Optional[str] = ..., target_port: _Optional[str] = ..., traffic_policy: _Optional[str] = ..., endpoints: _Optional[_Iterable[_Union[ServiceEndpoint, _Mapping]]] = ...) -> None: ...

class ServiceEndpoint(_message.Message):
    __slots__ = ("ip", "port", "decision", "target", "node", "terminating")
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    TERMINATING_FIELD_NUMBER: _ClassVar[int]
    ip: str
    port: int
    decision: Decision
    target: str
    node: str
    terminating: bool
    def __init__(self, ip: _Optional[str] = ..., port: _Optional[int] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ..., target: _Optional[str] = ..., node: _Optional[str] = ..., terminating: _Optional[bool] = ...) -> None: ...

class FlowError(_message.Message):
    __slots__ = ("field", "message")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    field: str
    message: str
    def __init__(self, field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class FlowResult(_message.Message):
    __slots__ = ("decision", "error")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    error: FlowError
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ..., error: _Optional[_Union[FlowError, _Mapping]] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("flow", "explain")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    flow: Flow
    explain: bool
    def __init__(self, flow: _Optional[_Union[Flow, _Mapping]] = ..., explain: _Optional[bool] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class DecideBatchRequest(_message.Message):
    __slots__ = ("request_id", "flows", "explain")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    flows: _containers.RepeatedCompositeFieldContainer[Flow]
    explain: bool
    def __init__(self, request_id: _Optional[int] = ..., flows: _Optional[_Iterable[_Union[Flow, _Mapping]]] = ..., explain: _Optional[bool] = ...) -> None: ...

class DecideBatchResponse(_message.Message):
    __slots__ = ("request_id", "results", "generation")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    results: _containers.RepeatedCompositeFieldContainer[FlowResult]
    generation: int
    def __init__(self, request_id: _Optional[int] = ..., results: _Optional[_Iterable[_Union[FlowResult, _Mapping]]] = ..., generation: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FeedStatus(_message.Message):
    __slots__ = ("kind", "sources", "loads", "errors", "last_error", "last_load_unix", "last_error_unix", "stale", "resources", "stopped", "empty")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    LOADS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_LOAD_UNIX_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_UNIX_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    sources: _containers.RepeatedScalarFieldContainer[str]
    loads: int
    errors: int
    last_error: str
    last_load_unix: float
    last_error_unix: float
    stale: bool
    resources: _containers.RepeatedCompositeFieldContainer[ResourceStatus]
    stopped: str
    empty: bool
    def __init__(self, kind: _Optional[str] = ..., sources: _Optional[_Iterable[str]] = ..., loads: _Optional[int] = ..., errors: _Optional[int] = ..., last_error: _Optional[str] = ..., last_load_unix: _Optional[float] = ..., last_error_unix: _Optional[float] = ..., stale: _Optional[bool] = ..., resources: _Optional[_Iterable[_Union[ResourceStatus, _Mapping]]] = ..., stopped: _Optional[str] = ..., empty: _Optional[bool] = ...) -> None: ...

class ResourceStatus(_message.Message):
    __slots__ = ("kind", "synced", "resource_version", "objects", "invalid_objects", "watching", "events", "last_event_unix", "reconnects", "relists", "last_error", "last_error_unix", "last_invalid", "seconds_without_watch", "stale", "not_installed")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SYNCED_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    INVALID_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    WATCHING_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_UNIX_FIELD_NUMBER: _ClassVar[int]
    RECONNECTS_FIELD_NUMBER: _ClassVar[int]
    RELISTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_UNIX_FIELD_NUMBER: _ClassVar[int]
    LAST_INVALID_FIELD_NUMBER: _ClassVar[int]
    SECONDS_WITHOUT_WATCH_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    NOT_INSTALLED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    synced: bool
    resource_version: str
    objects: int
    invalid_objects: int
    watching: bool
    events: int
    last_event_unix: float
    reconnects: int
    relists: int
    last_error: str
    last_error_unix: float
    last_invalid: str
    seconds_without_watch: float
    stale: bool
    not_installed: bool
    def __init__(self, kind: _Optional[str] = ..., synced: _Optional[bool] = ..., resource_version: _Optional[str] = ..., objects: _Optional[int] = ..., invalid_objects: _Optional[int] = ..., watching: _Optional[bool] = ..., events: _Optional[int] = ..., last_event_unix: _Optional[float] = ..., reconnects: _Optional[int] = ..., relists: _Optional[int] = ..., last_error: _Optional[str] = ..., last_error_unix: _Optional[float] = ..., last_invalid: _Optional[str] = ..., seconds_without_watch: _Optional[float] = ..., stale: _Optional[bool] = ..., not_installed: _Optional[bool] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("generation", "ready", "synced", "object_counts", "feed", "uptime_seconds", "version", "max_batch_flows")
    class ObjectCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    SYNCED_FIELD_NUMBER: _ClassVar[int]
    OBJECT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    FEED_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FLOWS_FIELD_NUMBER: _ClassVar[int]
    generation: int
    ready: bool
    synced: bool
    object_counts: _containers.ScalarMap[str, int]
    feed: FeedStatus
    uptime_seconds: float
    version: str
    max_batch_flows: int
    def __init__(self, generation: _Optional[int] = ..., ready: _Optional[bool] = ..., synced: _Optional[bool] = ..., object_counts: _Optional[_Mapping[str, int]] = ..., feed: _Optional[_Union[FeedStatus, _Mapping]] = ..., uptime_seconds: _Optional[float] = ..., version: _Optional[str] = ..., max_batch_flows: _Optional[int] = ...) -> None: ...
