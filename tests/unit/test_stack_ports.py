"""Port picking: stacks side by side never collide, and a restarted stack keeps its ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from recon_stack.ports import pick_ports, port_is_free


@pytest.fixture
def listener() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_every_name_gets_a_distinct_free_port() -> None:
    names = [f"c{i}" for i in range(8)]
    chosen = pick_ports(names)
    assert set(chosen) == set(names)
    assert len(set(chosen.values())) == len(names)
    assert all(port_is_free(p) for p in chosen.values())


def test_a_free_preferred_port_is_kept() -> None:
    first = pick_ports(["apiserver", "etcd"])
    again = pick_ports(["apiserver", "etcd"], preferred=first)
    assert again == first


def test_a_port_in_use_is_replaced_by_another(listener: int) -> None:
    assert not port_is_free(listener)
    chosen = pick_ports(["apiserver", "etcd"], preferred={"apiserver": listener})
    assert chosen["apiserver"] != listener
    assert port_is_free(chosen["apiserver"])


def test_one_preferred_port_is_never_given_to_two_names() -> None:
    port = pick_ports(["x"])["x"]
    chosen = pick_ports(["a", "b"], preferred={"a": port, "b": port})
    assert chosen["a"] == port
    assert chosen["b"] != port
