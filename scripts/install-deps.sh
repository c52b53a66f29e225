#!/usr/bin/env bash
# Installs what Tessera runs and is tested with, from Debian's packages:
# MariaDB (server, client, backup), etcd, protoc (etcd-client's build),
# sysbench and HAProxy (benchmarks), PyMySQL (driver tests), and — optional,
# it only makes linking the test binaries faster — the mold linker.
# Installs only what is missing, so a second run costs nothing.
set -euo pipefail

packages=(mariadb-server mariadb-client mariadb-backup etcd-server etcd-client
          protobuf-compiler sysbench haproxy python3-pymysql procps iproute2)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done
optional_missing=()
installed mold || optional_missing+=(mold)
if [ ${#missing[@]} -eq 0 ] && [ ${#optional_missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing: ${missing[*]} ${optional_missing[*]}" >&2
# The packages' own services are not wanted: Tessera starts its own mariadbd
# and etcd on other ports. policy-rc.d keeps apt from starting them.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -q
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ${#optional_missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "${optional_missing[@]}" || echo "optional ${optional_missing[*]} not installed" >&2
fi
