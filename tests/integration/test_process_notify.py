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


def messages_for(sock, seconds):
    """(monotonic time, sender pid, message) of what arrives within seconds
    (the pid is 0 for messages queued before SO_PASSCRED was set)."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            msg, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            break
        pid = None
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = int.from_bytes(data[:4], "little")
        got.append((time.monotonic(), pid, msg.decode()))
    return got


def test_systemd_watchdog_is_pinged_by_the_master(feedd_factory, notify_socket):
    """WatchdogSec=: systemd sets WATCHDOG_USEC; the master sends WATCHDOG=1
    from its loop every half of it, and only the master."""
    sock, path = notify_socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    f = feedd_factory(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    got = messages_for(sock, 2.0)
    pings = [(t, pid) for t, pid, m in got if "WATCHDOG=1" in m.split("\n")]
    # Every 200 ms: about 10 in 2 s; 4 leaves room for a loaded machine.
    assert len(pings) >= 4, got
    assert {pid for _, pid in pings} == {f.pid}, (pings, f.pid)
    assert "systemd watchdog: WATCHDOG=1 every 200 ms" in f.error_log()


def test_no_watchdog_pings_unless_systemd_asks(feedd_factory, notify_socket):
    sock, path = notify_socket
    f = feedd_factory(env={"NOTIFY_SOCKET": path})
    got = messages_for(sock, 1.5)
    assert any("READY=1" in m.split("\n") for _, _, m in got), got
    assert not any("WATCHDOG=1" in m for _, _, m in got), got
    assert "systemd watchdog" not in f.error_log()


def test_watchdog_for_another_process_is_not_ours(feedd_factory, notify_socket):
    """WATCHDOG_PID names the process systemd watches: not this one."""
    sock, path = notify_socket
    feedd_factory(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"})
    got = messages_for(sock, 1.5)
    assert not any("WATCHDOG=1" in m for _, _, m in got), got
