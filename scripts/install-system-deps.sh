#!/usr/bin/env bash
# Installs, with apt-get, the system packages `make test` and `make bench` need, when missing.
#
# Required (failure stops the run): PostgreSQL and Redis server binaries (the tests start throwaway
# servers from them), a JDK 17+ and Maven (real Apache Kafka brokers, assembled from Maven Central),
# OpenSSH's server and iproute2 (the `vm` backend's test hosts: network namespaces reached over SSH;
# the tests start an sshd per namespace, never the system's own).
# Optional (failure only warns; the tests needing them say they are skipped and why): Chromium for the
# dashboard's browser tests (and npm, which the Makefile uses to install axe-core for them),
# promtool/Prometheus for the alert rules, shellcheck for the broker image's entrypoint.
set -euo pipefail

java_major() {
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  command -v "$java" >/dev/null 2>&1 || { echo 0; return; }
  "$java" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p'
}

required=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || required+=(postgresql)
command -v redis-server >/dev/null 2>&1 || required+=(redis-server)
[ "$(java_major)" -ge 17 ] 2>/dev/null || required+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || required+=(maven)
[ -x /usr/sbin/sshd ] || required+=(openssh-server)
command -v ip >/dev/null 2>&1 || required+=(iproute2)
optional=()
command -v promtool >/dev/null 2>&1 || optional+=(prometheus)
command -v chromium >/dev/null 2>&1 || optional+=(chromium)
command -v npm >/dev/null 2>&1 || optional+=(npm)
command -v shellcheck >/dev/null 2>&1 || optional+=(shellcheck)
((${#required[@]} + ${#optional[@]})) || exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="none"; fi
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$sudo" = none ]; then
  if ((${#required[@]})); then
    echo "error: ${required[*]} must be installed (no apt-get, or not root and no sudo)" >&2
    exit 2
  fi
  echo "warning: cannot install ${optional[*]}; tests needing them will be skipped" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() { $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
echo "installing ${required[*]} ${optional[*]} ..."
$sudo apt-get update -qq || echo "warning: apt-get update failed; trying the package lists there are" >&2
if ((${#required[@]})) && ! apt_install "${required[@]}"; then
  echo "error: could not install ${required[*]}" >&2
  exit 2
fi
if ((${#optional[@]})) && ! apt_install "${optional[@]}"; then
  echo "warning: could not install ${optional[*]}; tests needing them will be skipped" >&2
fi
