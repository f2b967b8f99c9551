"""Process model: listen sockets: several addresses, IPv6, wildcard."""

import http.client
import socket
import time

import pytest

from conftest import free_port


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port6():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def status(host, port, path="/healthz"):
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_several_addresses(feedd_factory):
    p1, p2 = free_port(), free_port()
    feedd_factory(listen=f"127.0.0.1:{p1},127.0.0.1:{p2}")
    assert status("127.0.0.1", p1) == 200
    assert status("127.0.0.1", p2) == 200


def test_wildcard_is_ipv4(feedd_factory):
    p = free_port()
    feedd_factory(listen=f"*:{p}")
    assert status("127.0.0.1", p) == 200


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback")
def test_ipv6_is_ipv6_only(feedd_factory):
    p = free_port6()
    # The fixture's health check speaks IPv4: wait here instead.
    f = feedd_factory(listen=f"[::]:{p}", wait=False)

    def up():
        try:
            return status("::1", p) == 200
        except OSError:
            return False
    deadline = time.monotonic() + 10
    while not up() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert up(), f.logs()
    # IPV6_V6ONLY: an IPv4 socket on the same port is a separate listen line.
    with pytest.raises(ConnectionRefusedError):
        status("127.0.0.1", p)


def test_address_in_use_fails_the_start(feedd_factory):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        port = blocker.getsockname()[1]
        f = feedd_factory(listen=f"127.0.0.1:{port}", wait=False)
        assert f.wait_exit(timeout=15) == 1
        assert f"127.0.0.1:{port}" in f.error_log() and "in use" in f.error_log()
        assert not (f.dir / "feedd.pid").exists()
    finally:
        blocker.close()


def test_address_a_reuseport_socket_listens_on_fails_the_start(feedd_factory):
    """feedd's own sockets use SO_REUSEPORT, which would let it join the
    group of any program of the same user listening with it and take half
    of that program's connections: it checks the address is free first."""
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        port = blocker.getsockname()[1]
        f = feedd_factory(listen=f"127.0.0.1:{port}", wait=False)
        assert f.wait_exit(timeout=15) == 1, f.logs()
        assert f"127.0.0.1:{port}" in f.error_log() and "in use" in f.error_log()
    finally:
        blocker.close()
