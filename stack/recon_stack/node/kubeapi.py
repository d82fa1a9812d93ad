"""The process node's calls to the API server, with objects as plain JSON dicts.

Everything the node builds (status bodies, Node and Lease objects) is plain JSON, and
the pods it reads are handed to pure functions as JSON, so responses are not turned into
client model objects and back. Patches are strategic merge patches, as a kubelet sends:
conditions merge by type, so the scheduler's PodScheduled condition is kept.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from recon_stack.kubeconfig import Kubeconfig, token_kubeconfig

Json = dict[str, Any]

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"

# The TokenRequest lifetime a kubelet asks for; the API server extends pod-bound tokens
# of exactly this lifetime (to a year, with audit warnings after the hour), so a
# long-running pod's kubeconfig does not need rewriting while it runs.
KUBELET_TOKEN_SECONDS = 3607


def _json(response: Any) -> Json:
    data: Json = json.loads(response.data)
    return data


def is_not_found(e: ApiException) -> bool:
    return e.status == 404


class NodeApi:
    """The API calls the node makes, over one client built from its kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)
        configuration = self.api_client.configuration
        self.server: str = configuration.host
        ca_file = configuration.ssl_ca_cert
        self.ca_pem: bytes = Path(ca_file).read_bytes() if ca_file else b""

    # Nodes and Leases

    def read_node(self, name: str) -> Json | None:
        try:
            return _json(self.core.read_node(name, _preload_content=False))
        except ApiException as e:
            if is_not_found(e):
                return None
            raise

    def create_node(self, body: Json) -> Json:
        return _json(
            self.core.create_node(client.V1Node.model_validate(body), _preload_content=False)
        )

    def patch_node(self, name: str, body: Json) -> Json:
        return _json(
            self.core.patch_node(name, body, _content_type=STRATEGIC, _preload_content=False)
        )

    def patch_node_status(self, name: str, body: Json) -> Json:
        return _json(
            self.core.patch_node_status(name, body, _content_type=STRATEGIC, _preload_content=False)
        )

    def renew_lease(self, namespace: str, name: str, spec: Json) -> None:
        self.coordination.patch_namespaced_lease(
            name, namespace, {"spec": spec}, _content_type=MERGE, _preload_content=False
        )

    def create_lease(self, namespace: str, body: Json) -> None:
        self.coordination.create_namespaced_lease(
            namespace, client.V1Lease.model_validate(body), _preload_content=False
        )

    # Pods

    def list_pods(self, field_selector: str) -> Json:
        return _json(
            self.core.list_pod_for_all_namespaces(
                field_selector=field_selector, _preload_content=False
            )
        )

    def watch_pods(
        self, field_selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[Json]:
        """Watch events as dicts (type, object), ending when the server closes the watch."""
        response: Any = self.core.list_pod_for_all_namespaces(
            field_selector=field_selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            watch=True,
            _preload_content=False,
            _request_timeout=(10, timeout_seconds + 30),
        )
        try:
            for line in iter_resp_lines(response):
                if line.strip():
                    yield json.loads(line)
        finally:
            response.close()
            response.release_conn()

    def patch_pod_status(self, namespace: str, name: str, status: Json) -> Json:
        return _json(
            self.core.patch_namespaced_pod_status(
                name,
                namespace,
                {"status": status},
                _content_type=STRATEGIC,
                _preload_content=False,
            )
        )

    def delete_pod_now(self, namespace: str, name: str, uid: str) -> None:
        """Remove the pod object, as a kubelet does once its containers are gone.

        The UID precondition keeps a new pod of the same name (a StatefulSet's, or a test
        re-creating it) from being deleted by mistake.
        """
        body = client.V1DeleteOptions.from_dict(
            {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        )
        try:
            self.core.delete_namespaced_pod(
                name, namespace, body=body, grace_period_seconds=0, _preload_content=False
            )
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    # What a pod's containers are given

    def secret_data(self, namespace: str, name: str) -> Mapping[str, str] | None:
        try:
            secret = _json(
                self.core.read_namespaced_secret(name, namespace, _preload_content=False)
            )
        except ApiException as e:
            if is_not_found(e):
                return None
            raise
        data = secret.get("data") or {}
        text = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}
        text.update(secret.get("stringData") or {})
        return text

    def config_map_data(self, namespace: str, name: str) -> Mapping[str, str] | None:
        try:
            cm = _json(
                self.core.read_namespaced_config_map(name, namespace, _preload_content=False)
            )
        except ApiException as e:
            if is_not_found(e):
                return None
            raise
        return dict(cm.get("data") or {})

    def pod_kubeconfig(self, pod: Mapping[str, Any]) -> Kubeconfig:
        """A kubeconfig holding a token for the pod's ServiceAccount, bound to the pod.

        No audience is named, so the API server issues the token for its own audiences:
        the token authenticates to this API server as the ServiceAccount and nothing else,
        and stops working when the pod is deleted.
        """
        meta = pod["metadata"]
        namespace = str(meta["namespace"])
        spec = pod.get("spec") or {}
        if spec.get("automountServiceAccountToken") is False:
            anonymous = token_kubeconfig(self.server, self.ca_pem, "x", namespace)
            anonymous["users"][0]["user"] = {}
            return anonymous
        account = str(spec.get("serviceAccountName") or "default")
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": KUBELET_TOKEN_SECONDS,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        response = _json(
            self.core.create_namespaced_service_account_token(
                account,
                namespace,
                client.AuthenticationV1TokenRequest.model_validate(request),
                _preload_content=False,
            )
        )
        token = str(response["status"]["token"])
        return token_kubeconfig(self.server, self.ca_pem, token, namespace)
