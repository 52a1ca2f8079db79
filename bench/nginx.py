"""Debian's nginx serving a ``saksi publish`` directory, as an unprivileged process.

The server block includes the configuration the project ships for operators
(``deploy/nginx/saksi-tiles.conf``), so what the tests and the benchmark
serve is what the README tells operators to serve. nginx runs on 127.0.0.1 as
``nobody`` when started by root, and is stopped (gracefully) at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["SHIPPED", "find_nginx", "nginx_serving"]

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy/nginx/saksi-tiles.conf"

_CONF = """\
daemon off;
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
{http_extra}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        keepalive_requests 1000000;
        include {shipped};
    }}
}}
"""


def find_nginx() -> str | None:
    """The nginx binary, or None when it is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)),
        None,
    )


@contextlib.contextmanager
def nginx_serving(
    binary: str,
    root: Path,
    run: Path,
    shipped: Path = SHIPPED,
    http_extra: str = "",
) -> Iterator[str]:
    """nginx serving ``root`` on a free 127.0.0.1 port; yields its URL.

    ``run`` (created here) holds its configuration, pid and logs; the server
    block includes ``shipped`` (a configuration the project ships), and
    ``http_extra`` goes in the ``http`` block (an ``upstream`` it names).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    run.mkdir(parents=True)
    conf = run / "nginx.conf"
    conf.write_text(
        _CONF.format(
            run=run, port=port, root=root, shipped=shipped, http_extra=http_extra
        )
    )
    user = None
    if os.geteuid() == 0:  # never as root: as nobody, who may only read
        nobody = pwd.getpwnam("nobody")
        os.chown(run, nobody.pw_uid, nobody.pw_gid)
        user = (nobody.pw_uid, nobody.pw_gid)
    process = subprocess.Popen(
        [binary, "-p", str(run), "-c", str(conf), "-e", str(run / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        user=user[0] if user else None,
        group=user[1] if user else None,
        extra_groups=[] if user else None,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/checkpoint", timeout=2):  # noqa: S310
                    break
            except urllib.error.HTTPError:
                break  # answering
            except OSError:
                if process.poll() is not None:
                    assert process.stderr is not None
                    error = process.stderr.read().decode(errors="replace")
                    log = run / "error.log"
                    raise RuntimeError(
                        error + (log.read_text() if log.exists() else "")
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start within 30 s") from None
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
