#!/usr/bin/env bash
# Installs what dbops-console needs on a Debian/Ubuntu machine; safe to rerun.
#  - MariaDB server, client and backup tools (apt), when missing
#  - a virtualenv in .venv with dbops-console and its dev extras
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# MariaDB server, client tools and mariadb-backup (real servers in the tests),
# zstd (backup segments): installed from Debian's packages when missing.
if ! dpkg -s mariadb-server mariadb-client mariadb-backup zstd >/dev/null 2>&1; then
  echo "bootstrap: installing MariaDB and zstd with apt-get" >&2
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y mariadb-server mariadb-client mariadb-backup zstd
fi
# Test peers for the service (issue 14): a real Prometheus server that scrapes
# /metrics, and Chromium + ChromeDriver for the browser console's test;
# HAProxy (issue 15): traffic follows the primary through its runtime API;
# etcd (issue 17): the coordinator of engines that share a fleet.
if ! dpkg -s prometheus chromium chromium-driver haproxy etcd-server >/dev/null 2>&1; then
  echo "bootstrap: installing prometheus, chromium, chromium-driver, haproxy and etcd-server with apt-get" >&2
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
    prometheus chromium chromium-driver haproxy etcd-server
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-venv
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import console, pytest, textual, pymysql, pymysqlreplication' >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: installing dbops-console into .venv" >&2
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  touch .venv/.installed
fi
# byte-compile our own modules as a regular (non-editable) install would:
# with PYTHONDONTWRITEBYTECODE set, every start would otherwise compile them
# again (~0.15 s of each command's start-up)
.venv/bin/python -m compileall -q console >/dev/null
