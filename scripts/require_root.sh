# Sourced (`. scripts/require_root.sh`) by the scripts that need root: they create network
# namespaces, links and files under /var/lib/cni, and install Debian packages. As root it does
# nothing. Otherwise it runs the same script again through sudo when sudo is installed (-H: the
# tools then go to root's ~/.cache, not the caller's), else it stops with a message saying so.
# A fresh machine where we are root may have no sudo at all, so the scripts never call it
# themselves.
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    echo "$(basename "$0"): needs root; running it again with sudo" >&2
    exec sudo -H -- "$0" "$@"
  fi
  echo "$(basename "$0"): must be run as root (it creates network namespaces and links), and sudo is not installed: run it in a root shell" >&2
  exit 1
fi
