"""`make test`: run a command with Redis at hand.

If Redis answers at REDIS_URL (default redis://127.0.0.1:6379/0), the command runs against it. Otherwise,
when `redis-server` is installed (scripts/system-deps.sh installs Debian's package when root), a private
one is started on a free port for this run only (no persistence, files in a temporary folder) and
REDIS_URL points the command at it; it is stopped afterwards. Without either, one line says what to install.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def answers(url: str) -> bool:
    from redis import Redis

    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: with_redis.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if answers(url):
        return subprocess.call(argv)
    server = shutil.which("redis-server")
    if server is None:
        print(f"Redis does not answer at {url} and redis-server is not installed; run: "
              "sudo apt-get install -y redis-server (or set REDIS_URL)", file=sys.stderr)
        return 1
    port = free_port()
    private = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory(prefix="certdesk-redis-") as folder:
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not answers(private):
                if proc.poll() is not None or time.monotonic() > deadline:
                    print(f"A private redis-server did not start on port {port}.", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            print(f"Redis does not answer at {url}: using a private redis-server at {private} for this run.")
            return subprocess.call(argv, env=dict(os.environ, REDIS_URL=private))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
