#!/usr/bin/env bash
# Installs the system tools tests drive for real, when missing. Needs root (or sudo) and apt-get.
set -euo pipefail

needed=()
command -v promtool >/dev/null 2>&1 || needed+=(prometheus)
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
((${#needed[@]})) || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: cannot install ${needed[*]} (no apt-get); tests needing them will be skipped" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 && sudo="sudo" || {
    echo "warning: cannot install ${needed[*]} (not root); tests needing them will be skipped" >&2
    exit 0
  }
fi
echo "installing ${needed[*]} ..."
export DEBIAN_FRONTEND=noninteractive
# A failed install is not fatal: the tests that need these tools say they are skipped and why.
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null; }; then
  echo "warning: could not install ${needed[*]}; tests needing them will be skipped" >&2
fi
