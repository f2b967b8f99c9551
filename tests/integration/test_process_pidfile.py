"""Process model: the pid file and the shared-memory segment of an instance."""

import os
import signal
import subprocess

from conftest import free_port
from helpers import shm_path


def test_pid_file_written_and_removed(feedd):
    pid_file = feedd.dir / "feedd.pid"
    assert pid_file.read_text() == f"{feedd.pid}\n"
    feedd.signal(signal.SIGTERM)
    assert feedd.wait_exit(timeout=15) == 0, feedd.logs()
    assert not pid_file.exists()


def test_second_instance_refuses_the_same_pid_file(feedd_factory):
    first = feedd_factory()
    pid_file = first.dir / "feedd.pid"
    second = feedd_factory(wait=False, pid_file=str(pid_file), listen=f"127.0.0.1:{free_port()}")
    assert second.wait_exit(timeout=15) == 1
    assert "already running" in second.error_log(), second.logs()
    assert str(first.pid) in second.error_log()
    # The first one is untouched, pid file included.
    assert pid_file.read_text() == f"{first.pid}\n"
    assert first.get("/healthz")[0] == 200


def test_stale_pid_file_is_replaced(feedd_factory, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file = tmp_path / "stale.pid"
    pid_file.write_text(f"{dead.pid}\n")
    f = feedd_factory(pid_file=str(pid_file))
    assert pid_file.read_text() == f"{f.pid}\n"
    assert "stale pid file" in f.error_log()


def test_pid_file_of_another_program_is_stale(feedd_factory, tmp_path):
    # A pid reused by an unrelated live process (after a reboot) must not
    # keep feedd from starting.
    pid_file = tmp_path / "other.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    f = feedd_factory(pid_file=str(pid_file))
    assert pid_file.read_text() == f"{f.pid}\n"


def test_cache_segment_lives_with_the_instance(feedd):
    pid_file = feedd.dir / "feedd.pid"
    seg = shm_path(pid_file)
    assert seg.exists(), f"{seg} missing; /dev/shm holds {sorted(os.listdir('/dev/shm'))}"
    feedd.signal(signal.SIGTERM)
    assert feedd.wait_exit(timeout=15) == 0
    assert not seg.exists()


def test_cache_segment_left_by_a_crash_is_reused(feedd_factory):
    f = feedd_factory()
    seg = shm_path(f.dir / "feedd.pid")
    f.proc.send_signal(signal.SIGKILL)
    f.proc.wait(timeout=10)
    assert seg.exists(), "a killed master cannot clean up"
    again = feedd_factory(pid_file=str(f.dir / "feedd.pid"))
    assert again.get("/healthz")[0] == 200
    assert seg.exists()
    again.signal(signal.SIGTERM)
    assert again.wait_exit(timeout=15) == 0
    assert not seg.exists()
