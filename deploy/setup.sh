#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 or 13 machine for minewatch: system packages, TimescaleDB
# (Apache-2 edition: Debian's binary package where the release has one for PG_MAJOR, else built
# from Debian trixie's source package, fetched from the mirror this machine's apt uses; see
# docs/operations.md), and a virtual environment with the project.
# Every step is skipped when its result is already there, so this is cheap to re-run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The release's own PostgreSQL: Debian 12 (bookworm) ships 15, Debian 13 (trixie) 17 (it has no
# postgresql-15); PG_MAJOR overrides it.
default_pg_major() {
  . /etc/os-release 2>/dev/null || true
  case "${VERSION_CODENAME:-}" in
    bookworm) echo 15 ;;
    trixie) echo 17 ;;
    *) apt-cache depends postgresql 2>/dev/null | grep -o 'postgresql-[0-9]*$' | head -n 1 \
         | cut -d- -f2 | grep . || echo 15 ;;
  esac
}
PG_MAJOR=${PG_MAJOR:-$(default_pg_major)}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
VENV=${MINEWATCH_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

need_packages=()
# chromium and chromium-driver: the console's browser tests (tests/console/, headless);
# fonts-wqy-microhei: Chinese glyphs in its screenshots; mbpoll: a Modbus client that is not
# pymodbus, reading `minewatch simulate --modbus` (tests/simulators/test_modbus_cli.py).
for pkg in postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR cmake mosquitto mosquitto-clients \
           dpkg-dev build-essential xz-utils python3-venv chromium chromium-driver fonts-wqy-microhei \
           mbpoll; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_packages+=("$pkg")
done
if [ ${#need_packages[@]} -gt 0 ]; then
  log "installing system packages: ${need_packages[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_packages[@]}"
fi

# The Debian mirror this machine's apt already uses (a mine's network often reaches only a
# local mirror): the first URI of a main Debian archive in its sources, deb822 or one-line;
# DEBIAN_MIRROR overrides it.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local found
  found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
            2>/dev/null | awk '
    /^[[:space:]]*#/ { next }
    /^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security|updates/) { print $i; exit } }
    /^deb(-src)?[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {
        if ($i !~ /security/ && $(i + 1) !~ /security|updates|backports/) { print $i; exit } } }')
  echo "${found:-http://deb.debian.org/debian}"
}

PKGLIBDIR=$($PG_CONFIG --pkglibdir)
# Debian 13 (trixie) and later package TimescaleDB (Apache-2 edition) for their PostgreSQL:
# install the binary package when apt knows it, else build it from source below.
if ! ls "$PKGLIBDIR"/timescaledb*.so >/dev/null 2>&1 \
   && apt-cache show "postgresql-$PG_MAJOR-timescaledb" >/dev/null 2>&1; then
  log "installing TimescaleDB from the distribution: postgresql-$PG_MAJOR-timescaledb"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "postgresql-$PG_MAJOR-timescaledb" || log "not installable here; building it from source"
fi
if ! ls "$PKGLIBDIR"/timescaledb*.so >/dev/null 2>&1; then
  mirror=$(debian_mirror)
  log "building TimescaleDB (Apache-2 edition) from Debian trixie's source package ($mirror)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/archives/partial"
  # A private apt configuration: the machine's own sources stay untouched.
  echo "deb-src $mirror trixie main" > "$work/sources.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives"
            -o "APT::Sandbox::User=root")
  $SUDO apt-get "${apt_opts[@]}" update -qq
  (cd "$work" && $SUDO apt-get "${apt_opts[@]}" source --download-only -qq timescaledb)
  tarball=$(ls "$work"/timescaledb_*.orig.tar.* | head -n 1)
  mkdir -p "$work/src"
  tar -xf "$tarball" -C "$work/src" --strip-components=1
  (cd "$work/src" && ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
      -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$PG_CONFIG" >"$work/bootstrap.log" 2>&1 \
    || { cat "$work/bootstrap.log"; exit 1; })
  $SUDO make -C "$work/src/build" -j"$(nproc)" install >"$work/build.log" 2>&1 \
    || { tail -n 50 "$work/build.log"; exit 1; }
  log "TimescaleDB installed into $PKGLIBDIR"
fi

stamp="$VENV/.minewatch-installed"
want=$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing minewatch and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
  echo "$want" > "$stamp"
fi
log "ready: $VENV/bin/minewatch"
