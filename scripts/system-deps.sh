#!/bin/sh
# Install the system packages CertDesk needs that pip cannot give, from the package manager.
#
#   scripts/system-deps.sh run    what `make run` needs: Python's venv module
#   scripts/system-deps.sh test   that, plus Chromium (browser tests), pdftoppm (PDF preview tests) and
#                                 redis-server when no Redis answers (scripts/with_redis.py starts one)
#
# When something is missing and we are root on Debian/Ubuntu, the packages are installed
# non-interactively; otherwise the script stops with one line saying which command to run.
# Chromium comes from the distribution (never `playwright install`): the tests drive it through
# Playwright at $CHROMIUM_PATH (default /usr/bin/chromium).
set -eu

what="${1:-test}"
python="${PYTHON:-python3}"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
packages=""

if [ ! -x .venv/bin/python ] && ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
  packages="$packages python3-venv"
fi
redis_answers() {
  [ -n "${REDIS_URL:-}" ] && return 0  # configured by the user: theirs to run
  "$python" -c "import socket; s = socket.create_connection(('127.0.0.1', 6379), 1); s.sendall(b'PING\r\n');
assert s.recv(5).startswith(b'+PONG')" >/dev/null 2>&1
}
if [ "$what" = "test" ]; then
  [ -x "$chromium" ] || packages="$packages chromium"
  command -v pdftoppm >/dev/null 2>&1 || packages="$packages poppler-utils"
  # the tests need Redis: scripts/with_redis.py starts a private redis-server when none answers
  command -v redis-server >/dev/null 2>&1 || redis_answers || packages="$packages redis-server"
fi

[ -z "$packages" ] && exit 0
packages="${packages# }"

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: $packages"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  echo "Missing system packages; run: sudo apt-get update && sudo apt-get install -y $packages" >&2
else
  echo "Missing system packages; install them with your package manager: $packages" >&2
fi
exit 1
