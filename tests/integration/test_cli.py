"""The command line: -v, -h, -t, -s and bad usage."""

import os
import re
import signal
import subprocess

from conftest import FEEDD_BIN, SANITIZER_ENV
from helpers import wait_until


def run(*args, cwd=None):
    env = dict(os.environ)
    for k, v in SANITIZER_ENV.items():
        env.setdefault(k, v)
    return subprocess.run([str(FEEDD_BIN)] + [str(a) for a in args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=30, stdin=subprocess.DEVNULL)


def package_version(repo_root):
    text = (repo_root / "configure.ac").read_text()
    m = re.search(r"AC_INIT\(\[feedd\],\s*\[([^\]]+)\]", text)
    assert m, "AC_INIT in configure.ac names the version"
    return m.group(1)


# --- no configuration needed ----------------------------------------------


def test_version(repo_root):
    r = run("-v")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"feedd {package_version(repo_root)}"


def test_help_lists_every_option():
    r = run("-h")
    assert r.returncode == 0, r.stderr
    for opt in ("-c", "-t", "-s", "-v", "-h"):
        assert opt in r.stdout, f"{opt} missing from -h:\n{r.stdout}"


def test_unknown_option_is_an_error():
    r = run("-x")
    assert r.returncode == 1
    assert "usage" in r.stderr


def test_stray_argument_is_an_error(tmp_path):
    r = run("-c", tmp_path / "feedd.conf", "extra")
    assert r.returncode == 1
    assert "extra" in r.stderr


def test_bad_signal_name_is_an_error(tmp_path):
    r = run("-s", "explode")
    assert r.returncode == 1
    assert "explode" in r.stderr and "reload" in r.stderr


# --- -t ---------------------------------------------------------------------


def test_t_good_config(tmp_path):
    conf = tmp_path / "feedd.conf"
    conf.write_text("# a comment\nlisten = 127.0.0.1:22010\nworkers = 2\n")
    r = run("-t", "-c", conf)
    assert r.returncode == 0, r.stderr
    assert f"configuration file {conf} test is successful" in r.stdout


def test_t_bad_value_names_file_and_line(tmp_path):
    conf = tmp_path / "feedd.conf"
    conf.write_text("# line 1\nlisten = 127.0.0.1:22011\nworkers = many\n")
    r = run("-t", "-c", conf)
    assert r.returncode == 1
    assert f"{conf}:3" in r.stderr, r.stderr
    assert "successful" not in r.stdout


def test_t_unknown_key_names_file_and_line(tmp_path):
    conf = tmp_path / "feedd.conf"
    conf.write_text("listen = 127.0.0.1:22012\n\n\nno_such_setting = 1\n")
    r = run("-t", "-c", conf)
    assert r.returncode == 1
    assert f"{conf}:4" in r.stderr, r.stderr


def test_t_missing_file(tmp_path):
    conf = tmp_path / "missing.conf"
    r = run("-t", "-c", conf)
    assert r.returncode == 1
    assert str(conf) in r.stderr


def test_t_does_not_start_anything(tmp_path):
    conf = tmp_path / "feedd.conf"
    pid_file = tmp_path / "feedd.pid"
    conf.write_text(f'listen = 127.0.0.1:22013\npid_file = "{pid_file}"\n')
    r = run("-t", "-c", conf)
    assert r.returncode == 0, r.stderr
    assert not pid_file.exists()


# --- -s without a running master --------------------------------------------


def test_s_without_pid_file(tmp_path):
    conf = tmp_path / "feedd.conf"
    conf.write_text(f'pid_file = "{tmp_path / "none.pid"}"\n')
    r = run("-s", "reload", "-c", conf)
    assert r.returncode == 1
    assert "none.pid" in r.stderr


def test_s_with_stale_pid_file(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file = tmp_path / "feedd.pid"
    pid_file.write_text(f"{dead.pid}\n")
    conf = tmp_path / "feedd.conf"
    conf.write_text(f'pid_file = "{pid_file}"\n')
    r = run("-s", "stop", "-c", conf)
    assert r.returncode == 1
    assert str(dead.pid) in r.stderr and "feedd.pid" in r.stderr


def test_s_with_garbage_pid_file(tmp_path):
    pid_file = tmp_path / "feedd.pid"
    pid_file.write_text("not a pid\n")
    conf = tmp_path / "feedd.conf"
    conf.write_text(f'pid_file = "{pid_file}"\n')
    r = run("-s", "quit", "-c", conf)
    assert r.returncode == 1


# --- -s against a running master --------------------------------------------


def test_s_reload_replaces_workers(feedd):
    before = feedd.worker_pids()
    r = feedd.cli("-s", "reload")
    assert r.returncode == 0, r.stderr
    after = wait_until(lambda: (p := feedd.worker_pids()) and not set(p) & set(before) and p)
    assert after and not set(after) & set(before), f"workers before {before}, after {after}"
    assert feedd.get("/healthz")[0] == 200


def test_s_stop_exits_and_removes_pid_file(feedd):
    pid_file = feedd.dir / "feedd.pid"
    assert pid_file.exists()
    r = feedd.cli("-s", "stop")
    assert r.returncode == 0, r.stderr
    assert feedd.wait_exit(timeout=15) == 0, feedd.logs()
    assert not pid_file.exists()


def test_s_quit_exits(feedd):
    r = feedd.cli("-s", "quit")
    assert r.returncode == 0, r.stderr
    assert feedd.wait_exit(timeout=15) == 0, feedd.logs()


def test_s_flush_reaches_the_master(feedd):
    r = feedd.cli("-s", "flush")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: "flushing the feed cache" in feedd.error_log()), feedd.logs()
    assert feedd.alive()


def test_s_goes_to_the_pid_in_the_pid_file(feedd):
    """-s signals exactly the master named by the pid file (a pid that is
    not feedd's gets the signal, proving where it went)."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        real = (feedd.dir / "feedd.pid").read_text()
        (feedd.dir / "feedd.pid").write_text(f"{sleeper.pid}\n")
        r = feedd.cli("-s", "stop")
        assert r.returncode == 0, r.stderr
        assert sleeper.wait(timeout=10) == -signal.SIGTERM
        assert feedd.alive()
        (feedd.dir / "feedd.pid").write_text(real)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
