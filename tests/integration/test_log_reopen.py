"""Log rotation: after the error and access logs are renamed, SIGUSR1 to the
master makes the master and every worker write to new files by the old
names, and the renamed files stop growing.  Twice, as logrotate would."""

import re
import signal

from helpers import connections_on_every_worker, keepalive_get, poll


def read(path):
    return path.read_text() if path.exists() else ""


def test_usr1_reopens_both_logs_in_every_process(feedd_factory):
    f = feedd_factory(workers=2, log_level="info")
    error, access = f.dir / "error.log", f.dir / "access.log"

    for rotation in (1, 2):
        by_worker = connections_on_every_worker(f, each=1)
        socks = [group[0] for group in by_worker.values()]
        assert len(socks) == 2
        try:
            for i, s in enumerate(socks):
                assert keepalive_get(s, f"/healthz?before-{rotation}-{i}") == 200
            # A line is written just after its response is sent.
            poll("the lines before the rotation", lambda: all(
                f"before-{rotation}-{i}" in read(access) for i in range(2)))
            old_error = f.dir / f"error.log.{rotation}"
            old_access = f.dir / f"access.log.{rotation}"
            error.rename(old_error)
            access.rename(old_access)

            f.signal(signal.SIGUSR1)
            poll("the master's notice", lambda: "reopening logs" in read(old_error))
            # Each worker switches when it reads its signal: ask each one
            # until its line lands in the new file.
            for i, s in enumerate(socks):
                n = iter(range(10**6))
                poll(f"worker {i} writing the new access log",
                     lambda: keepalive_get(s, f"/healthz?probe-{rotation}-{i}-{next(n)}") == 200
                     and f"probe-{rotation}-{i}-" in read(access))
            # The master writes its own next line to the new error log.
            f.signal(signal.SIGUSR2)
            poll("the master writing the new error log",
                 lambda: "flushing the feed cache" in read(error))

            sizes = old_error.stat().st_size, old_access.stat().st_size
            for i, s in enumerate(socks):
                assert keepalive_get(s, f"/healthz?after-{rotation}-{i}") == 200
                # A malformed request makes the worker log a line (and
                # close the connection).
                s.sendall(b"BLAH\r\n\r\n")
                while s.recv(65536):
                    pass
        finally:
            for s in socks:
                s.close()

        poll("both workers' request lines in the new access log",
             lambda: all(f"after-{rotation}-{i}" in read(access) for i in range(2)))
        poll("both workers' 400s in the new error log", lambda: len(set(
            re.findall(r"\[(worker \d+)\] info: 127\.0\.0\.1: 400:", read(error)))) == 2)
        assert (old_error.stat().st_size, old_access.stat().st_size) == sizes, \
            "the renamed files grew after the reopen"
        assert f"after-{rotation}-" not in read(old_access)
