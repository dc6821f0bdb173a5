"""Parse and validate a simulated-node scenario file into frozen values.

A scenario describes one Kubernetes GPU node over scenario time (seconds from
the scenario's start): its labels, its GPUs (full, time-sliced or MIG-carved),
what each GPU reports over time, which pods hold which devices when, and
injected NVML faults.  The simulated GPU backend, the static allocation source
and tests read it through the pure query methods of `Scenario`.

This package does no I/O besides `load_scenario` reading the one file; every
problem is a `ConfigError` naming the file, the key path and the value.  The
format is documented in docs/scenarios.md.

Callers import from here.  Inside: `parts.py` (timelines, GPUs, pods, faults),
`model.py` (`Scenario` and its queries), `field_reader.py` (typed field reads),
`gpu_parser.py` (the `gpus` section) and `parser.py` (the whole document).
"""

from gpucost.sources.scenario.field_reader import MAX_MEMORY_BYTES, MAX_SCENARIO_INTEGER
from gpucost.sources.scenario.model import Scenario
from gpucost.sources.scenario.parser import MAX_POD_OCCURRENCES, load_scenario, parse_scenario
from gpucost.sources.scenario.parts import (
    DEFAULT_IDLE_POWER_WATTS,
    DEFAULT_MAX_POWER_WATTS,
    DEFAULT_PARENT_SLICES,
    FAULT_KINDS,
    GPU_RESOURCE,
    REPLICA_SEPARATOR,
    ContainerDeviceIds,
    Fault,
    FaultKind,
    MigSlice,
    ScenarioContainer,
    ScenarioGpu,
    ScenarioPod,
    ScenarioProcess,
    Timeline,
    TimelineField,
    TimelinePoint,
    replica_device_id,
)

__all__ = [
    "DEFAULT_IDLE_POWER_WATTS",
    "DEFAULT_MAX_POWER_WATTS",
    "DEFAULT_PARENT_SLICES",
    "FAULT_KINDS",
    "GPU_RESOURCE",
    "MAX_MEMORY_BYTES",
    "MAX_POD_OCCURRENCES",
    "MAX_SCENARIO_INTEGER",
    "REPLICA_SEPARATOR",
    "ContainerDeviceIds",
    "Fault",
    "FaultKind",
    "MigSlice",
    "Scenario",
    "ScenarioContainer",
    "ScenarioGpu",
    "ScenarioPod",
    "ScenarioProcess",
    "Timeline",
    "TimelineField",
    "TimelinePoint",
    "load_scenario",
    "parse_scenario",
    "replica_device_id",
]
