"""One component stopped and started again while the rest of the stack keeps running, as
the fault tests use it: same port, same data, a new process, the others untouched."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from recon_stack.components import APISERVER, ETCD, MINIO
from recon_stack.stack import Stack, StackError

from tests.support.stack_handle import StackHandle, handle_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    local = Stack(tmp_path_factory.mktemp("outage-stack"), start_node=False)
    local.up()
    try:
        yield local
    finally:
        local.down()


def pids(stack: Stack) -> dict[str, int | None]:
    return {s.name: s.pid for s in stack.status()}


def minio_live(handle: StackHandle) -> bool:
    url = f"http://{handle.minio_endpoint}/minio/health/live"
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_minio_stopped_then_started_keeps_its_port_and_data(own: Stack) -> None:
    handle = handle_for(own)
    client = handle.minio_client()
    client.make_bucket("outage")
    client.put_object("outage", "kept.txt", io.BytesIO(b"kept"), 4)
    before = pids(own)

    assert own.stop_component(MINIO) is True
    assert not minio_live(handle)
    assert own.stop_component(MINIO) is False, "stopping a stopped component says so"
    alive = {s.name for s in own.status() if s.alive}
    assert APISERVER in alive and ETCD in alive and MINIO not in alive

    own.start_component(MINIO)
    assert minio_live(handle)
    assert handle_for(own).minio_endpoint == handle.minio_endpoint
    assert client.get_object("outage", "kept.txt").read() == b"kept"
    after = pids(own)
    assert after[MINIO] != before[MINIO]
    assert after[APISERVER] == before[APISERVER], "the others were left alone"


def test_api_server_stopped_then_started_serves_what_etcd_kept(own: Stack) -> None:
    handle = handle_for(own)
    handle.kubectl("create", "namespace", "survives-outage")
    before = pids(own)
    own.stop_component(APISERVER)
    down = handle.kubectl("get", "namespaces", check=False, timeout=20)
    assert down.returncode != 0

    own.start_component(APISERVER)
    ns = json.loads(handle.kubectl("get", "namespace", "survives-outage", "-o", "json").stdout)
    assert ns["metadata"]["name"] == "survives-outage"
    after = pids(own)
    assert after[APISERVER] != before[APISERVER]
    assert after[ETCD] == before[ETCD] and after[MINIO] == before[MINIO]
    assert own.is_running()


def test_starting_a_running_component_is_a_no_op(own: Stack) -> None:
    before = pids(own)
    own.start_component(ETCD)
    assert pids(own) == before


def test_unknown_component_is_refused(own: Stack, tmp_path: Path) -> None:
    with pytest.raises(StackError, match="unknown component"):
        own.stop_component("kubelet")
    with pytest.raises(StackError, match="no stack has been started"):
        Stack(tmp_path / "never-started").start_component(MINIO)
