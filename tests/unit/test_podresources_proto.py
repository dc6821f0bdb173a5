"""Our api.proto is wire-identical to the kubelet's, and the committed generated code is current."""

from __future__ import annotations

from pathlib import Path

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gpucost.sources.podresources import regenerate
from gpucost.sources.podresources.generated import api_pb2, api_pb2_grpc

# Transcribed by hand from the kubelet's published
# staging/src/k8s.io/kubelet/pkg/apis/podresources/v1/api.proto:
# message -> field -> (number, type, repeated).  A message-typed field names its message.
KUBELET_V1_MESSAGES: dict[str, dict[str, tuple[int, str, bool]]] = {
    "AllocatableResourcesRequest": {},
    "AllocatableResourcesResponse": {
        "devices": (1, "v1.ContainerDevices", True),
        "cpu_ids": (2, "int64", True),
        "memory": (3, "v1.ContainerMemory", True),
    },
    "ListPodResourcesRequest": {},
    "ListPodResourcesResponse": {"pod_resources": (1, "v1.PodResources", True)},
    "PodResources": {
        "name": (1, "string", False),
        "namespace": (2, "string", False),
        "containers": (3, "v1.ContainerResources", True),
    },
    "ContainerResources": {
        "name": (1, "string", False),
        "devices": (2, "v1.ContainerDevices", True),
        "cpu_ids": (3, "int64", True),
        "memory": (4, "v1.ContainerMemory", True),
        "dynamic_resources": (5, "v1.DynamicResource", True),
    },
    "ContainerMemory": {
        "memory_type": (1, "string", False),
        "size": (2, "uint64", False),
        "topology": (3, "v1.TopologyInfo", False),
    },
    "ContainerDevices": {
        "resource_name": (1, "string", False),
        "device_ids": (2, "string", True),
        "topology": (3, "v1.TopologyInfo", False),
    },
    "TopologyInfo": {"nodes": (1, "v1.NUMANode", True)},
    "NUMANode": {"ID": (1, "int64", False)},
    "DynamicResource": {
        "claim_name": (2, "string", False),
        "claim_namespace": (3, "string", False),
        "claim_resources": (4, "v1.ClaimResource", True),
    },
    "ClaimResource": {
        "cdi_devices": (1, "v1.CDIDevice", True),
        "driver_name": (2, "string", False),
        "pool_name": (3, "string", False),
        "device_name": (4, "string", False),
    },
    "CDIDevice": {"name": (1, "string", False)},
    "GetPodResourcesRequest": {"pod_name": (1, "string", False), "pod_namespace": (2, "string", False)},
    "GetPodResourcesResponse": {"pod_resources": (1, "v1.PodResources", False)},
}

KUBELET_V1_METHODS = {
    "List": ("v1.ListPodResourcesRequest", "v1.ListPodResourcesResponse"),
    "GetAllocatableResources": ("v1.AllocatableResourcesRequest", "v1.AllocatableResourcesResponse"),
    "Get": ("v1.GetPodResourcesRequest", "v1.GetPodResourcesResponse"),
}

_SCALAR_NAMES = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
}


def _field_table(message: Descriptor) -> dict[str, tuple[int, str, bool]]:
    table = {}
    for field in message.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            type_name = field.message_type.full_name
        else:
            type_name = _SCALAR_NAMES.get(field.type, f"unexpected type {field.type}")
        table[field.name] = (field.number, type_name, field.is_repeated)
    return table


def test_proto_package_is_v1_proto3() -> None:
    assert api_pb2.DESCRIPTOR.package == "v1"
    assert api_pb2.DESCRIPTOR.name == "api.proto"


def test_proto_declares_exactly_the_kubelet_messages() -> None:
    assert set(api_pb2.DESCRIPTOR.message_types_by_name) == set(KUBELET_V1_MESSAGES)


def test_every_field_name_number_and_type_matches_the_kubelet() -> None:
    ours = {name: _field_table(message) for name, message in api_pb2.DESCRIPTOR.message_types_by_name.items()}
    assert ours == KUBELET_V1_MESSAGES


def test_service_has_the_kubelet_name_methods_and_types() -> None:
    service = api_pb2.DESCRIPTOR.services_by_name["PodResourcesLister"]
    assert service.full_name == "v1.PodResourcesLister"
    methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
    assert methods == KUBELET_V1_METHODS


class _PathRecordingChannel:
    """Records the method paths a stub registers; the paths are what goes on the wire."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def unary_unary(self, path: str, **_: object) -> object:
        self.paths.append(path)
        return object()


def test_grpc_stub_calls_the_kubelet_method_paths() -> None:
    channel = _PathRecordingChannel()
    api_pb2_grpc.PodResourcesListerStub(channel)
    assert sorted(channel.paths) == sorted(f"/v1.PodResourcesLister/{name}" for name in KUBELET_V1_METHODS)


def test_a_message_encoded_by_hand_with_kubelet_field_numbers_decodes() -> None:
    # ContainerDevices{resource_name=1:"nvidia.com/gpu", device_ids=2:"GPU-1"} as the kubelet writes it.
    wire = b"\x0a\x0envidia.com/gpu" + b"\x12\x05GPU-1"
    decoded = api_pb2.ContainerDevices.FromString(wire)
    assert decoded.resource_name == "nvidia.com/gpu"
    assert list(decoded.device_ids) == ["GPU-1"]


def test_committed_generated_code_is_what_the_proto_compiles_to(tmp_path: Path) -> None:
    fresh = {path.name: path.read_bytes() for path in regenerate.generate(tmp_path / "generated")}
    committed = {
        path.name: path.read_bytes() for path in regenerate.GENERATED_DIR.iterdir() if path.is_file()
    }
    assert sorted(committed) == sorted(fresh), "run `make proto` and commit generated/"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"generated code is out of date ({stale}); run `make proto`"


def test_generated_grpc_module_imports_its_messages_package_relative() -> None:
    text = (regenerate.GENERATED_DIR / "api_pb2_grpc.py").read_text()
    assert "from . import api_pb2 as api__pb2" in text
    assert "\nimport api_pb2" not in text
