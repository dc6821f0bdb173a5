"""Infer the workload that owns a pod from its metadata alone.

Only the pod object is read (owner references, labels, annotations): looking
up the ReplicaSet or Job would need more RBAC than get/list/watch on pods, so
the higher owner is inferred from naming conventions the controllers follow:

- ReplicaSet `<deployment>-<pod-template-hash>` -> Deployment `<deployment>`.
- Job `<cronjob>-<scheduled minute>` -> CronJob `<cronjob>`, but only when a
  label or annotation of the pod carries `<cronjob>` (a bare Job named like
  that stays a Job).
- Pods of a JobSet or a Kubeflow TrainJob carry the top-level name in a
  well-known label; that name wins over the Job that directly owns the pod.
- Pods owned directly by a custom resource (PyTorchJob, RayCluster, ...) keep
  that owner's kind and name; Kubeflow training-operator labels cover pods
  whose owner references were stripped.

Pure: takes the pod's `metadata` as decoded JSON and returns (kind, name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "OWNER_LABEL_KEYS",
    "infer_owner",
    "owner_from_reference",
]

TEMPLATE_HASH_LABEL = "pod-template-hash"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
TRAINJOB_NAME_LABEL = "trainer.kubeflow.org/trainjob-name"
KUBEFLOW_JOB_NAME_LABEL = "training.kubeflow.org/job-name"
KUBEFLOW_OPERATOR_LABEL = "training.kubeflow.org/operator-name"
LEGACY_PYTORCH_JOB_LABEL = "pytorch-job-name"

# Every label key `infer_owner` reads.  The API server source keeps these on a
# pod besides the workload-label keys; the owner itself is inferred before any
# label or annotation is dropped (the CronJob rule reads every value).
OWNER_LABEL_KEYS: tuple[str, ...] = (
    TEMPLATE_HASH_LABEL,
    *JOB_NAME_LABELS,
    JOBSET_NAME_LABEL,
    TRAINJOB_NAME_LABEL,
    KUBEFLOW_JOB_NAME_LABEL,
    KUBEFLOW_OPERATOR_LABEL,
    LEGACY_PYTORCH_JOB_LABEL,
)

# training-operator v1 names its controllers `<kind lower>-controller`.
_KUBEFLOW_KINDS_BY_OPERATOR = {
    "pytorchjob-controller": "PyTorchJob",
    "tfjob-controller": "TFJob",
    "mpijob-controller": "MPIJob",
    "xgboostjob-controller": "XGBoostJob",
    "paddlejob-controller": "PaddleJob",
    "jaxjob-controller": "JAXJob",
}
_GENERIC_KUBEFLOW_KIND = "KubeflowJob"

# Owners that Kubernetes itself runs; anything else is a custom resource.
_BUILTIN_OWNER_KINDS = frozenset(
    {
        "ReplicaSet",
        "Job",
        "StatefulSet",
        "DaemonSet",
        "ReplicationController",
        "Node",
        "Deployment",
        "CronJob",
    }
)


def infer_owner(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name) of the top-level workload of the pod; ("", "") for a bare pod."""
    labels = _string_map(metadata.get("labels"))
    annotations = _string_map(metadata.get("annotations"))
    reference = _controller_reference(metadata.get("ownerReferences"))

    # A TrainJob runs as a JobSet which runs Jobs: name the outermost one.
    if labels.get(TRAINJOB_NAME_LABEL):
        return "TrainJob", labels[TRAINJOB_NAME_LABEL]
    if labels.get(JOBSET_NAME_LABEL):
        return "JobSet", labels[JOBSET_NAME_LABEL]
    if reference is not None and reference[0] not in _BUILTIN_OWNER_KINDS:
        return reference
    kubeflow_job = labels.get(KUBEFLOW_JOB_NAME_LABEL)
    if kubeflow_job:
        operator = labels.get(KUBEFLOW_OPERATOR_LABEL, "")
        return _KUBEFLOW_KINDS_BY_OPERATOR.get(operator, _GENERIC_KUBEFLOW_KIND), kubeflow_job
    if labels.get(LEGACY_PYTORCH_JOB_LABEL):
        return "PyTorchJob", labels[LEGACY_PYTORCH_JOB_LABEL]
    if reference is not None:
        return owner_from_reference(reference[0], reference[1], labels, annotations)
    for job_label in JOB_NAME_LABELS:
        if labels.get(job_label):
            return owner_from_reference("Job", labels[job_label], labels, annotations)
    return "", ""


def owner_from_reference(
    kind: str, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> tuple[str, str]:
    """Lift a direct owner (ReplicaSet, Job) to the workload that created it, where naming allows."""
    if kind == "ReplicaSet":
        template_hash = labels.get(TEMPLATE_HASH_LABEL, "")
        suffix = f"-{template_hash}"
        if template_hash and name.endswith(suffix) and len(name) > len(suffix):
            return "Deployment", name[: -len(suffix)]
        return kind, name
    if kind == "Job":
        cronjob = _cronjob_named_in(name, labels, annotations)
        if cronjob:
            return "CronJob", cronjob
    return kind, name


def _cronjob_named_in(job_name: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """The CronJob name if the Job is `<value>-<digits>` for a value the pod carries, else ""."""
    stem, dash, suffix = job_name.rpartition("-")
    if not dash or not stem or not suffix.isdigit():
        return ""
    for values in (labels, annotations):
        if stem in values.values():
            return stem
    return ""


def _controller_reference(references: object) -> tuple[str, str] | None:
    """The owner reference marked controller, else the first one, as (kind, name)."""
    if not isinstance(references, Sequence) or isinstance(references, str):
        return None
    candidates = [
        ref for ref in references if isinstance(ref, Mapping) and ref.get("kind") and ref.get("name")
    ]
    if not candidates:
        return None
    chosen = next((ref for ref in candidates if ref.get("controller") is True), candidates[0])
    return str(chosen["kind"]), str(chosen["name"])


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): str(item) for key, item in value.items() if item is not None}
