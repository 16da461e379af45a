"""Host pools without a database: checking a pool's hosts and credentials, and allocating hosts to
brokers (table cases, and hypothesis properties over sequences of allocations and releases)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.ansible.inventory import InventoryHost
from provisioning.ansible.pool import (
    HostPool,
    PoolExhausted,
    allocate,
    host_errors,
    known_hosts_errors,
    ssh_key_error,
)
from provisioning.placement import place_brokers


def _pool(*racks: str, declared: tuple[str, ...] = ()) -> HostPool:
    return HostPool(
        "lab",
        tuple(InventoryHost(f"h{i}", f"10.1.0.{i}", rack) for i, rack in enumerate(racks, 1)),
        racks=declared,
    )


def test_brokers_get_free_hosts_of_their_own_rack_and_keep_the_ones_they_hold() -> None:
    pool = _pool("a", "a", "b", "b", "c")
    first = allocate(pool, {1: "a", 2: "b", 3: "c"}, held={}, taken=set())
    assert first == {1: "h1", 2: "h3", 3: "h5"}
    grown = allocate(pool, {1: "a", 2: "b", 3: "c", 4: "a"}, held=first, taken=set(first.values()))
    assert grown == {**first, 4: "h2"}


def test_a_pool_too_small_for_the_layout_says_what_each_rack_lacks() -> None:
    pool = _pool("a", "a", "b", "c", "c")
    with pytest.raises(PoolExhausted) as refused:
        allocate(pool, place_brokers(["a", "b", "c"], 6), held={}, taken={"h4"})
    assert str(refused.value) == (
        "Host pool lab: rack b needs 2 free hosts, the pool has 1; rack c needs 2 free hosts, the pool has 1."
    )
    assert refused.value.short == {"b": (2, 1), "c": (2, 1)}


RACKS = ["a", "b", "c", "d"]


@st.composite
def pools_and_requests(draw: st.DrawFn) -> tuple[HostPool, list[tuple[str, int, int]]]:
    host_racks = draw(st.lists(st.sampled_from(RACKS), min_size=1, max_size=14))
    # A sequence of cluster requests: (cluster name, number of racks, brokers per rack), and releases.
    requests = draw(
        st.lists(
            st.tuples(st.sampled_from(["create", "grow", "free"]), st.integers(1, 3), st.integers(1, 3)),
            max_size=8,
        )
    )
    return _pool(*host_racks), [(kind, racks, per_rack) for kind, racks, per_rack in requests]


@settings(max_examples=200, deadline=None)
@given(pools_and_requests())
def test_allocation_is_rack_aware_and_never_double_books(
    case: tuple[HostPool, list[tuple[str, int, int]]],
) -> None:
    pool, requests = case
    racks_of = {h.name: h.rack for h in pool.hosts}
    clusters: dict[int, tuple[list[str], dict[int, str]]] = {}  # id -> (racks, node id -> host)
    for number, (kind, rack_count, per_rack) in enumerate(requests):
        taken = {host for _, held in clusters.values() for host in held.values()}
        if kind == "free" and clusters:
            clusters.pop(min(clusters))
            continue
        if kind == "grow" and clusters:
            cluster = min(clusters)
            racks, held = clusters[cluster]
            wanted = place_brokers(racks, len(held) + len(racks), {n: racks_of[h] for n, h in held.items()})
        else:
            cluster, racks, held = number, RACKS[:rack_count], {}
            wanted = place_brokers(racks, rack_count * per_rack)
        free = {r: sum(1 for h in pool.hosts if h.rack == r and h.name not in taken) for r in RACKS}
        needed = {r: sum(1 for n, rr in wanted.items() if rr == r and n not in held) for r in RACKS}
        try:
            result = allocate(pool, wanted, held=held, taken=taken)
        except PoolExhausted as exc:
            # Refused exactly when some rack lacks hosts, naming those racks.
            assert set(exc.short) == {r for r in RACKS if needed[r] > free[r]}
            assert exc.short
            continue
        assert all(needed[r] <= free[r] for r in RACKS)
        assert set(result) == set(wanted)
        assert all(racks_of[result[n]] == wanted[n] for n in wanted)  # rack-aware
        assert {n: result[n] for n in held} == held  # held hosts are kept
        new_hosts = [result[n] for n in wanted if n not in held]
        assert len(set(new_hosts)) == len(new_hosts) and not set(new_hosts) & taken  # no double booking
        clusters[cluster] = (racks, result)
    every = [host for _, held in clusters.values() for host in held.values()]
    assert len(every) == len(set(every))


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"address": "10.1.0.300"}, "hosts", "neither an IP address nor a host name"),
        ({"address": "not an address"}, "hosts", "neither an IP address nor a host name"),
        ({"name": "h2"}, "hosts", "listed twice"),
        ({"address": "10.1.0.2"}, "hosts", "already another host"),
        ({"rack": "z"}, "hosts", "unknown rack 'z'"),
        ({"ssh_user": "Root User"}, "hosts", "not a valid SSH user name"),
        ({"ssh_port": 0}, "hosts", "out of range"),
        ({"kafka_root": "relative/path"}, "hosts", "absolute path"),
    ],
)
def test_bad_hosts_are_named_in_the_message(change: dict[str, object], field: str, words: str) -> None:
    pool = _pool("a", "b", "c", declared=("a", "b", "c"))
    broken = replace(pool, hosts=(replace(pool.hosts[0], **change), *pool.hosts[1:]))
    errors = host_errors(broken)
    assert words in errors[field] and "'h" in errors[field]
    assert host_errors(pool) == {}


def _ssh_keygen(tmp_path: Path, passphrase: str = "") -> str:
    """A key as users make them (OpenSSH's own format, optionally with a passphrase)."""
    path = tmp_path / f"key{len(passphrase)}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
    return path.read_text()


def test_ssh_keys_must_parse_and_carry_no_passphrase(tmp_path: Path) -> None:
    assert ssh_key_error(_ssh_keygen(tmp_path)) is None
    assert "passphrase" in (ssh_key_error(_ssh_keygen(tmp_path, "secret")) or "")
    assert "Not a private key" in (ssh_key_error("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END") or "")
    assert "Give the SSH private key" in (ssh_key_error("") or "")


def test_known_hosts_must_name_every_host() -> None:
    pool = _pool("a", "b")
    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    assert known_hosts_errors(f"10.1.0.1 {line}\n10.1.0.2 {line}\n", pool) is None
    assert "No host key for h2" in (known_hosts_errors(f"10.1.0.1 {line}\n", pool) or "")
    assert "not 'host key-type key'" in (known_hosts_errors("10.1.0.1\n", pool) or "")
    assert "public keys" in (known_hosts_errors("", pool) or "")
