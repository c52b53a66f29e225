#!/usr/bin/env bash
# Installs what Tessera runs and is tested with, from Debian's packages:
# MariaDB (server, client, backup), etcd, protoc (etcd-client's build),
# sysbench and HAProxy (benchmarks), PyMySQL (driver tests).
# Installs only what is missing, so a second run costs nothing.
set -euo pipefail

packages=(mariadb-server mariadb-client mariadb-backup etcd-server etcd-client
          protobuf-compiler sysbench haproxy python3-pymysql procps iproute2)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing: ${missing[*]}" >&2
# The packages' own services are not wanted: Tessera starts its own mariadbd
# and etcd on other ports. policy-rc.d keeps apt from starting them.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
