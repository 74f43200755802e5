#!/bin/sh
# A stand-in for the `sriov` CNI plugin, for tests on machines without SR-IOV hardware.
#
# Like sriov-cni it requires "deviceID" in its configuration (the VF's PCI address, which
# Multus injects from the kubelet's allocation) and fails with "VF pci addr is required"
# otherwise. Instead of moving a VF it creates a veth pair and moves one end into CNI_NETNS
# as CNI_IFNAME (DEL removes it). Every call is recorded as one JSON line
#   {"command","containerId","netns","ifName","args","path","config":<stdin>}
# appended to the file named by the config key "recordFile" or, failing that, the env var
# SRIOV_STANDIN_RECORD (no record when neither is set).
# Needs: sh, ip (iproute2), nsenter (util-linux), sha1sum, sed, tr.
set -u

conf=$(cat)
cmd=${CNI_COMMAND:-}

# The string value of a top-level key of the (simple) test configuration.
conf_string() {
  printf '%s' "$conf" | tr '\n\r' '  ' |
    sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p"
}

json_escape() {
  printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'
}

link_mac() {
  sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

fail() { # code message
  printf '{"cniVersion":"%s","code":%s,"msg":"%s"}\n' "$version" "$1" "$(json_escape "$2")"
  exit 1
}

version=$(conf_string cniVersion)
case "$version" in
  1.*) ;;
  *) version=1.0.0 ;;
esac

record=$(conf_string recordFile)
[ -n "$record" ] || record=${SRIOV_STANDIN_RECORD:-}
if [ -n "$record" ] && [ "$cmd" != VERSION ]; then
  printf '{"command":"%s","containerId":"%s","netns":"%s","ifName":"%s","args":"%s","path":"%s","config":%s}\n' \
    "$(json_escape "$cmd")" "$(json_escape "${CNI_CONTAINERID:-}")" \
    "$(json_escape "${CNI_NETNS:-}")" "$(json_escape "${CNI_IFNAME:-}")" \
    "$(json_escape "${CNI_ARGS:-}")" "$(json_escape "${CNI_PATH:-}")" \
    "$(printf '%s' "${conf:-null}" | tr '\n\r' '  ')" >>"$record"
fi

id=$(printf '%s/%s' "${CNI_CONTAINERID:-}" "${CNI_IFNAME:-}" | sha1sum | cut -c1-11)
host="sv$id"
peer="st$id"

case "$cmd" in
  VERSION)
    printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n'
    ;;
  ADD)
    device=$(conf_string deviceID)
    [ -n "$device" ] || fail 7 "VF pci addr is required"
    [ -n "${CNI_NETNS:-}" ] || fail 4 "CNI_NETNS is required"
    if nsenter --net="$CNI_NETNS" ip link show "$CNI_IFNAME" >/dev/null 2>&1; then
      fail 999 "interface $CNI_IFNAME already exists in $CNI_NETNS"
    fi
    err=$(ip link add "$host" type veth peer name "$peer" 2>&1) || fail 999 "ip link add: $err"
    if ! err=$(ip link set "$peer" netns "$CNI_NETNS" 2>&1); then
      ip link del "$host" 2>/dev/null
      fail 999 "ip link set netns: $err"
    fi
    if ! err=$(nsenter --net="$CNI_NETNS" ip link set "$peer" name "$CNI_IFNAME" 2>&1); then
      ip link del "$host" 2>/dev/null
      fail 999 "rename to $CNI_IFNAME: $err"
    fi
    nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up
    ip link set "$host" up
    mac=$(nsenter --net="$CNI_NETNS" ip -o link show dev "$CNI_IFNAME" | link_mac)
    host_mac=$(ip -o link show dev "$host" | link_mac)
    printf '{"cniVersion":"%s","interfaces":[{"name":"%s","mac":"%s"},{"name":"%s","mac":"%s","sandbox":"%s"}],"ips":[],"dns":{}}\n' \
      "$version" "$host" "$host_mac" "$CNI_IFNAME" "$mac" "$(json_escape "$CNI_NETNS")"
    ;;
  DEL)
    # Deleting the host end removes both; else remove our (veth) end in the netns, if any.
    if ! ip link del "$host" 2>/dev/null && [ -n "${CNI_NETNS:-}" ] && [ -e "$CNI_NETNS" ]; then
      if nsenter --net="$CNI_NETNS" ip -d link show "$CNI_IFNAME" 2>/dev/null | grep -q veth; then
        nsenter --net="$CNI_NETNS" ip link del "$CNI_IFNAME" 2>/dev/null
      fi
    fi
    exit 0
    ;;
  CHECK)
    nsenter --net="$CNI_NETNS" ip link show "$CNI_IFNAME" >/dev/null 2>&1 ||
      fail 999 "interface $CNI_IFNAME not found in $CNI_NETNS"
    ;;
  STATUS | GC)
    exit 0
    ;;
  *)
    fail 4 "unknown CNI_COMMAND \"$cmd\""
    ;;
esac
