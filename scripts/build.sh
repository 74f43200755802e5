#!/usr/bin/env bash
# Builds the release binaries with `deno compile`:
#   dist/multus-x86_64-linux   (x86_64-unknown-linux-gnu, also linked as dist/multus-amd64)
#   dist/multus-aarch64-linux  (aarch64-unknown-linux-gnu, also linked as dist/multus-arm64)
#   dist/SHA256SUMS
# with the permissions the development launcher (scripts/dev-multus) uses, baked in.
#
# Usage: scripts/build.sh [x86_64] [aarch64]      (default: both)
# Env:   DENO=<deno binary>   (default: the one scripts/setup installs, else deno on PATH)
#        MULTUS_BUILD_BUNDLE=0  embed the sources and the npm packages they reach instead of
#                               one esbuild bundle (larger binary, slower start, no esbuild)
#
# deno compile appends the program to a runtime binary, denort, that it takes from
# $DENO_DIR/dl/release/v<version>/denort-<target>.zip and otherwise downloads from
# dl.deno.land. On a build host that cannot reach it, put the zips there by hand; this script
# says exactly which file, from where, and how to verify it. Not run in CI.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=${MULTUS_TOOLS_DIR:-${HOME:-/root}/.cache/multus-tools}
deno=${DENO:-}
if [ -z "$deno" ]; then
  if [ -x "$tools/deno-2.9.6/node_modules/deno/deno" ]; then
    deno="$tools/deno-2.9.6/node_modules/deno/deno"
  elif command -v deno >/dev/null; then
    deno=$(command -v deno)
  else
    echo "build.sh: no deno found: run scripts/setup or set DENO=/path/to/deno" >&2
    exit 1
  fi
fi
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1

version=$("$deno" --version | sed -n 's/^deno \([0-9][0-9.]*\).*/\1/p')
deno_dir=$("$deno" info --json | sed -n 's/^ *"denoDir": *"\(.*\)",\{0,1\}$/\1/p')
[ -n "$version" ] && [ -n "$deno_dir" ] || { echo "build.sh: cannot ask $deno for its version and DENO_DIR" >&2; exit 1; }
read -r -a permissions <"$root/scripts/permission_flags"

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 aarch64)

"$deno" install --frozen --quiet
mkdir -p dist

compile_mode=(--bundle)
if [ "${MULTUS_BUILD_BUNDLE:-1}" = 0 ]; then
  # Embed only the npm packages src/main.ts reaches: node_modules also holds test-only
  # packages (kubernetes-models and its dependencies), which deno compile would embed whole.
  compile_mode=()
  while IFS= read -r path; do compile_mode+=(--exclude "$path"); done < <(
    "$deno" info --json src/main.ts | "$deno" eval --quiet '
      const info = JSON.parse(await new Response(Deno.stdin.readable).text());
      const pkgs = info.npmPackages ?? {};
      const keep = new Set();
      const visit = (id) => { if (keep.has(id) || !pkgs[id]) return; keep.add(id); pkgs[id].dependencies.forEach(visit); };
      for (const m of info.modules) if (m.kind === "npm") visit(m.npmPackage);
      const names = new Set([...keep].map((id) => pkgs[id].name));
      for (const [id, p] of Object.entries(pkgs)) {
        if (keep.has(id)) continue;
        // The package folder as deno reports it, whatever its layout of node_modules.
        if (p.localPath?.startsWith(`${Deno.cwd()}/`)) console.log(p.localPath.slice(Deno.cwd().length + 1));
        if (!names.has(p.name)) {
          try { Deno.lstatSync(`node_modules/${p.name}`); console.log(`node_modules/${p.name}`); } catch { /* not linked */ }
        }
      }')
fi

built=()
for arch in "${arches[@]}"; do
  case $arch in
    x86_64) target=x86_64-unknown-linux-gnu; docker_arch=amd64 ;;
    aarch64) target=aarch64-unknown-linux-gnu; docker_arch=arm64 ;;
    *) echo "build.sh: unknown architecture \"$arch\": use x86_64 or aarch64" >&2; exit 2 ;;
  esac
  out="dist/multus-$arch-linux"
  zip_name="denort-$target.zip"
  zip="$deno_dir/dl/release/v$version/$zip_name"
  url="https://dl.deno.land/release/v$version/$zip_name"
  sum_url="https://github.com/denoland/deno/releases/download/v$version/$zip_name.sha256sum"

  if [ -f "$zip" ]; then
    if [ -f "$zip.sha256sum" ]; then
      want=$(grep -oE '[0-9a-fA-F]{64}' "$zip.sha256sum" | head -n 1 | tr 'A-F' 'a-f')
      have=$(sha256sum "$zip" | cut -d' ' -f1)
      if [ "$want" != "$have" ]; then
        echo "build.sh: $zip does not match $zip.sha256sum (sha256 $have, expected $want): replace it" >&2
        exit 1
      fi
      echo "build.sh: using $zip (sha256 verified)" >&2
    else
      echo "build.sh: using $zip (not verified: put $zip_name.sha256sum from $sum_url beside it)" >&2
    fi
  else
    echo "build.sh: $zip is not cached; deno compile will try to download $url" >&2
  fi

  rm -f "$out"
  if ! "$deno" compile --quiet --config deno.json "${permissions[@]}" "${compile_mode[@]}" \
    --target "$target" --output "$out" src/main.ts; then
    rm -f "$out"
    if [ -f "$zip" ]; then
      echo "build.sh: deno compile failed for $out (see above); $zip was present" >&2
      exit 1
    fi
    cat >&2 <<EOF

build.sh: cannot build $out: deno compile needs the Deno $version runtime for $target,
$zip_name, and it is neither cached nor downloadable from this host.
  missing file:   $zip
  download from:  $url
             or:  https://github.com/denoland/deno/releases/download/v$version/$zip_name
  verify against: $sum_url
                  (sha256sum "$zip_name" must print the hash in that file; deno does not check it)
On an air-gapped build host, copy $zip_name (and, to have this script verify it,
$zip_name.sha256sum) into $deno_dir/dl/release/v$version/ and run scripts/build.sh again.
EOF
    exit 1
  fi
  # A compiled binary that cannot run on this machine is only smoke-tested when it can.
  if [ "$(uname -m)" = "$arch" ]; then
    if ! smoke=$("$out" --version 2>&1) || [[ $smoke != multus:* ]]; then
      rm -f "$out"
      echo "build.sh: the compiled $out does not run (\"${smoke:0:200}\"): is $zip a genuine denort?" >&2
      exit 1
    fi
    echo "build.sh: $out: $smoke" >&2
  fi
  ln -f "$out" "dist/multus-$docker_arch" # the name deploy/Containerfile copies (TARGETARCH)
  built+=("multus-$arch-linux")
done

# Sums of every architecture's binary present (also those built by an earlier run).
(cd dist && sha256sum multus-*-linux >SHA256SUMS)
echo "build.sh: built ${built[*]/#/dist/}; dist/SHA256SUMS:" >&2
cat dist/SHA256SUMS >&2
