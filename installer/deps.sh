#!/usr/bin/env bash
# Installs what sparegrid's tests and demo need on Debian 12, and sets up
# the host for autopkgtest's unshare backend. Idempotent; run as root.
set -euo pipefail

packages=(autopkgtest mmdebstrap uidmap dpkg-dev ca-certificates git gcc libc6-dev sudo shellcheck nftables iproute2 procps gpgv gnupg debian-archive-keyring exim4-daemon-light)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing Debian packages: ${missing[*]}; run 'make deps' as root" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# autopkgtest's unshare backend maps root into a user namespace and needs
# subordinate id ranges for the user that runs it.
if [[ $(id -u) -eq 0 ]]; then
  for f in /etc/subuid /etc/subgid; do
    touch "$f"
    if ! grep -q '^root:' "$f"; then
      echo "deps: adding a subordinate id range for root to $f"
      echo "root:1000000:65536" >>"$f"
    fi
  done
fi
