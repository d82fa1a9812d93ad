"""The operator's calls to the API server beyond kopf's own watching and bookkeeping.

Blocking client calls, run in worker threads by the async callers. Bodies come back as
plain JSON (no model round trip), which is what the pure modules consume. Every call here
is one request; the operator's request budget per job is the sum of the callers' use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from recon_api.constants import GROUP, PLURAL, VERSION

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = (5.0, 30.0)


@dataclass(frozen=True)
class StoredSecret:
    """A Secret as read: its labels say whether it may be used, `data` is still base64."""

    labels: dict[str, str]
    data: dict[str, str] = field(repr=False)


def transient(error: BaseException) -> bool:
    """Whether the same request may well succeed if sent again: the API server unreachable,
    slow (a timeout), overloaded (429) or failing (5xx), as opposed to a refusal."""
    if isinstance(error, ApiException):
        return error.status is None or error.status == 429 or error.status >= 500
    return isinstance(error, urllib3.exceptions.HTTPError | OSError)


class NotOwnedError(RuntimeError):
    """An object with the child's name exists but belongs to something else."""


def api_client() -> client.ApiClient:
    """From $KUBECONFIG or ~/.kube/config on a workstation, in-cluster config in a pod."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    # Admission, positions and Job watch run calls side by side in worker threads.
    configuration.connection_pool_maxsize = 16
    api = client.ApiClient(configuration)
    # The API server names a writer's field manager after its User-Agent: this makes
    # managedFields say which fields the operator owns.
    api.user_agent = "recon-operator/0.1.0"
    return api


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data or b"{}")
    return data


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return any(ref.get("uid") == uid for ref in refs)


def _status_details(e: ApiException) -> dict[str, Any]:
    """The `details` of the API server's Status in an error response ({} if none)."""
    try:
        body = json.loads(e.body or b"{}")
    except (TypeError, ValueError):
        return {}
    details = body.get("details") if isinstance(body, dict) else None
    return details if isinstance(details, dict) else {}


def namespace_gone(e: ApiException) -> bool:
    """A create refused because its namespace is going away: 404 for the namespace itself
    (gone), or 403 with cause NamespaceTerminating (being deleted). A 404 about anything
    else (a RoleBinding's Role the API server cannot see yet, say) is not."""
    details = _status_details(e)
    if e.status == 404:
        return details.get("kind") == "namespaces"
    if e.status == 403:
        causes = details.get("causes") or ()
        return any(
            isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes
        )
    return False


class Cluster:
    def __init__(self, api: client.ApiClient) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)

    def list_reconjobs(self, namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
        if not namespaces:
            result = self.objects.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, _preload_content=False, _request_timeout=TIMEOUT
            )
            return list(_json(result).get("items") or [])
        items: list[dict[str, Any]] = []
        for ns in namespaces:
            result = self.objects.list_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, _preload_content=False, _request_timeout=TIMEOUT
            )
            items.extend(_json(result).get("items") or [])
        return items

    def patch_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch `.status`; None when the ReconJob is gone."""
        try:
            result = self.objects.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": dict(status)},
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return _json(result)

    def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        """The Secret's labels and data (still base64), or None when it does not exist."""
        try:
            result = self.core.read_namespaced_secret(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        body = _json(result)
        labels = (body.get("metadata") or {}).get("labels") or {}
        return StoredSecret(labels=dict(labels), data=dict(body.get("data") or {}))

    def create_owned(self, obj: Mapping[str, Any], owner_uid: str) -> dict[str, Any]:
        """Create, or take the existing object when it is ours already.

        Names are deterministic, so after a restart in the middle of admission the object
        may exist: 409 AlreadyExists is then success, provided the object points at the
        same owner (a same-named object of someone else's is an error, not ours to run).
        """
        kind = obj["kind"]
        ns = obj["metadata"]["namespace"]
        name = obj["metadata"]["name"]
        apis: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "Job": (self.batch.create_namespaced_job, self.batch.read_namespaced_job),
            "ServiceAccount": (
                self.core.create_namespaced_service_account,
                self.core.read_namespaced_service_account,
            ),
            "Role": (self.rbac.create_namespaced_role, self.rbac.read_namespaced_role),
            "RoleBinding": (
                self.rbac.create_namespaced_role_binding,
                self.rbac.read_namespaced_role_binding,
            ),
        }
        create, read = apis[kind]
        try:
            return _json(create(ns, dict(obj), _preload_content=False, _request_timeout=TIMEOUT))
        except ApiException as e:
            if e.status != 409:
                raise
        existing = _json(read(name, ns, _preload_content=False, _request_timeout=TIMEOUT))
        if not _owned_by(existing, owner_uid):
            raise NotOwnedError(f"{kind} {ns}/{name} exists and is not owned by this ReconJob")
        return existing

    def delete_job(self, namespace: str, name: str) -> bool:
        """Delete the Job and, in the foreground, its pods; False when already gone."""
        try:
            self.batch.delete_namespaced_job(
                name,
                namespace,
                propagation_policy="Foreground",
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def job_gone(self, namespace: str, name: str) -> bool:
        """No Job of that name left (foreground deletion ends once its pods are gone)."""
        try:
            self.batch.read_namespaced_job(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        return False

    def pods_left(self, namespace: str, selector: str) -> int:
        result = self.core.list_namespaced_pod(
            namespace, label_selector=selector, _preload_content=False, _request_timeout=TIMEOUT
        )
        return len(_json(result).get("items") or [])

    def live_pods(self, namespace: str, selector: str) -> set[str]:
        """Names of the matching pods whose containers may still run (not Succeeded or
        Failed)."""
        result = self.core.list_namespaced_pod(
            namespace, label_selector=selector, _preload_content=False, _request_timeout=TIMEOUT
        )
        return {
            str(p["metadata"]["name"])
            for p in _json(result).get("items") or []
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        }

    def create_event(self, body: Mapping[str, Any]) -> None:
        self.core.create_namespaced_event(
            body["metadata"]["namespace"],
            # The client sends a plain dict as is (its stubs ask for a V1Event model).
            cast(Any, dict(body)),
            _preload_content=False,
            _request_timeout=TIMEOUT,
        )
