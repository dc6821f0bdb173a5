"""Owner inference from a pod's own metadata (no extra RBAC for ReplicaSets or Jobs)."""

from __future__ import annotations

from typing import Any

from gpucost.sources.owners import infer_owner


def metadata(
    *owners: tuple[str, str], labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    references = [{"kind": kind, "name": name, "controller": True} for kind, name in owners]
    return {"labels": labels or {}, "annotations": annotations or {}, "ownerReferences": references}


def test_replicaset_with_template_hash_suffix_is_its_deployment() -> None:
    pod = metadata(("ReplicaSet", "vllm-7d9f8c6b5"), labels={"pod-template-hash": "7d9f8c6b5"})
    assert infer_owner(pod) == ("Deployment", "vllm")


def test_replicaset_without_matching_hash_stays_a_replicaset() -> None:
    assert infer_owner(metadata(("ReplicaSet", "standalone-rs"))) == ("ReplicaSet", "standalone-rs")
    odd = metadata(("ReplicaSet", "rs-abc"), labels={"pod-template-hash": "xyz"})
    assert infer_owner(odd) == ("ReplicaSet", "rs-abc")


def test_job_stays_a_job_when_no_label_names_a_cronjob() -> None:
    assert infer_owner(metadata(("Job", "eval-28971234"))) == ("Job", "eval-28971234")


def test_job_with_scheduled_suffix_is_its_cronjob_when_the_pod_carries_the_cronjob_name() -> None:
    pod = metadata(("Job", "nightly-eval-28971234"), labels={"app": "nightly-eval"})
    assert infer_owner(pod) == ("CronJob", "nightly-eval")
    by_annotation = metadata(("Job", "nightly-eval-28971234"), annotations={"cronjob": "nightly-eval"})
    assert infer_owner(by_annotation) == ("CronJob", "nightly-eval")


def test_job_whose_suffix_is_not_a_schedule_is_not_lifted_to_a_cronjob() -> None:
    pod = metadata(("Job", "nightly-eval-abc"), labels={"app": "nightly-eval"})
    assert infer_owner(pod) == ("Job", "nightly-eval-abc")


def test_statefulset_and_daemonset_are_their_own_owners() -> None:
    assert infer_owner(metadata(("StatefulSet", "triton"))) == ("StatefulSet", "triton")
    assert infer_owner(metadata(("DaemonSet", "dcgm"))) == ("DaemonSet", "dcgm")


def test_jobset_label_names_the_jobset_over_the_owning_job() -> None:
    pod = metadata(("Job", "train-workers-0"), labels={"jobset.sigs.k8s.io/jobset-name": "train"})
    assert infer_owner(pod) == ("JobSet", "train")


def test_custom_resource_owner_reference_is_kept() -> None:
    assert infer_owner(metadata(("PyTorchJob", "bert-ft"))) == ("PyTorchJob", "bert-ft")


def test_kubeflow_labels_name_the_training_job_without_owner_references() -> None:
    pytorch = {
        "training.kubeflow.org/job-name": "bert",
        "training.kubeflow.org/operator-name": "pytorchjob-controller",
    }
    assert infer_owner(metadata(labels=pytorch)) == ("PyTorchJob", "bert")
    unknown_operator = {"training.kubeflow.org/job-name": "bert"}
    assert infer_owner(metadata(labels=unknown_operator)) == ("KubeflowJob", "bert")


def test_controller_reference_wins_over_other_owner_references() -> None:
    pod = {
        "ownerReferences": [
            {"kind": "ConfigMap", "name": "not-me"},
            {"kind": "StatefulSet", "name": "db", "controller": True},
        ]
    }
    assert infer_owner(pod) == ("StatefulSet", "db")


def test_job_name_label_identifies_the_job_when_owner_references_are_missing() -> None:
    assert infer_owner(metadata(labels={"batch.kubernetes.io/job-name": "once"})) == ("Job", "once")


def test_bare_pod_has_no_owner() -> None:
    assert infer_owner({}) == ("", "")
    assert infer_owner({"ownerReferences": "garbage", "labels": None}) == ("", "")
