"""Process model: sd_notify messages (Type=notify) at start, reload and stop,
received on a datagram socket posing as systemd's NOTIFY_SOCKET."""

import signal
import socket
import time

import pytest


def built_with_systemd(build_dir):
    try:
        return "#define HAVE_SYSTEMD 1" in (build_dir / "auto-config.h").read_text()
    except OSError:
        return False


@pytest.fixture
def notify_socket(tmp_path, build_dir):
    if not built_with_systemd(build_dir):
        pytest.skip("feedd was built without libsystemd: it sends no notifications")
    path = tmp_path / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(10)
    yield s, str(path)
    s.close()


def next_state(sock, want):
    """Messages until one carries want; returns the list received."""
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msg = sock.recv(4096).decode()
        seen.append(msg)
        if want in msg.split("\n"):
            return seen
    raise AssertionError(f"no {want} among {seen}")


def test_ready_reloading_stopping(feedd_factory, notify_socket):
    sock, path = notify_socket
    f = feedd_factory(env={"NOTIFY_SOCKET": path})
    next_state(sock, "READY=1")
    assert f.worker_pids(), "READY comes once the workers run"

    old = f.worker_pids()
    f.signal(signal.SIGHUP)
    seen = next_state(sock, "RELOADING=1")
    assert not any("READY=1" in m.split("\n") for m in seen)
    next_state(sock, "READY=1")
    assert set(f.worker_pids()) - set(old), "READY after the new workers started"

    f.signal(signal.SIGTERM)
    next_state(sock, "STOPPING=1")
    assert f.wait_exit(timeout=15) == 0


def test_failed_reload_is_still_followed_by_ready(feedd_factory, notify_socket):
    sock, path = notify_socket
    f = feedd_factory(env={"NOTIFY_SOCKET": path})
    next_state(sock, "READY=1")
    f.reconfigure(workers="several")
    f.signal(signal.SIGHUP)
    next_state(sock, "RELOADING=1")
    next_state(sock, "READY=1")
    assert "reload failed" in f.error_log()
