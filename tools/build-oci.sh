#!/usr/bin/env bash
# Build the gateway-agent container images (IoT Edge module) without a Docker daemon.
#
#   tools/build-oci.sh [amd64|armhf|arm64|all]      (default: all arches whose toolchain exists)
#
# Each image is built FROM scratch with umoci: the stripped agent, exactly the shared libraries it
# needs (found by walking DT_NEEDED against the arch's own libraries), /etc/passwd + /etc/group
# with the non-root user gateway-agent (uid/gid 1000), the module conf and the state dir owned
# by that user. All images go into one OCI layout, build/oci/gateway-agent, tagged
# <version>-amd64, <version>-arm32v7, <version>-arm64v8 (the platform names IoT Edge modules
# use), plus <version>: an image index over the arch images that exist (written here, since
# umoci cannot make one). Push with tools/push-oci.sh.
#
# Binaries: amd64 is a native Release build in build/h-oci-amd64; armhf and arm64 are cross
# builds with toolchains/<arch>.cmake in build/h-oci-<arch>. OCI_BUILD_DIR_<arch>=DIR takes the
# agent from an existing build dir instead (DIR/src/gateway-agent; its CMakeCache names the
# sysroot), e.g. OCI_BUILD_DIR_amd64=build/native OCI_BUILD_DIR_armhf=build/armhf.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
layout=${GA_OCI_LAYOUT:-$src/build/oci/gateway-agent}
work=$src/build/oci/work
jobs=${JOBS:-2}
uid=1000
user=gateway-agent

version=$(sed -n 's/^project(gateway-agent VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[[ -n $version ]] || { echo "build-oci: no version in CMakeLists.txt" >&2; exit 1; }
# One fixed time for file mtimes, history and config: the last commit's, so a rebuild of the same
# tree gives the same layer.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

for tool in umoci jq python3 cmake; do
  command -v "$tool" >/dev/null || { echo "build-oci: $tool is missing (tools/install-deps.sh oci)" >&2; exit 1; }
done

# Per arch: Debian triplet, OCI architecture/variant, tag suffix, toolchain file, expected ELF
# machine (as readelf -h prints it).
arch_vars() {
  case $1 in
    amd64) triplet=x86_64-linux-gnu; oci_arch=amd64; oci_variant=; suffix=amd64
           toolchain=; elf_machine='Advanced Micro Devices X86-64' ;;
    armhf) triplet=arm-linux-gnueabihf; oci_arch=arm; oci_variant=v7; suffix=arm32v7
           toolchain=toolchains/armhf.cmake; elf_machine=ARM ;;
    arm64) triplet=aarch64-linux-gnu; oci_arch=arm64; oci_variant=v8; suffix=arm64v8
           toolchain=toolchains/arm64.cmake; elf_machine=AArch64 ;;
    *) echo "build-oci: unknown arch '$1' (amd64, armhf, arm64 or all)" >&2; exit 2 ;;
  esac
}

# binutils for the arch: the prefixed one if installed, else the host's (readelf reads any ELF).
bintool() {
  if command -v "$triplet-$1" >/dev/null; then echo "$triplet-$1"; else echo "$1"; fi
}

build_agent() { # -> sets $agent and $bdir
  # OCI_BUILD_DIR_<arch>: take the agent from a build that is already there (e.g. test-all.sh's
  # build/native and build/armhf) instead of building it again.
  local given_var=OCI_BUILD_DIR_$1
  if [[ -n ${!given_var:-} ]]; then
    bdir=$(realpath "${!given_var}")
    agent=$bdir/src/gateway-agent
    [[ -x $agent ]] || { echo "build-oci: $given_var: no $agent" >&2; return 1; }
    echo "build-oci: $1: the agent from ${bdir#"$src"/} ($given_var)"
    return 0
  fi
  bdir=$src/build/h-oci-$1
  local args=(-S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DGA_TESTS=OFF
              # -O2, not CMake's -O3: GCC 12 at -O3 reports a false -Wrestrict inside
              # std::string operator+ (transport_linux.cpp), which -Werror turns into a failure.
              "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG")
  if [[ -n $toolchain ]]; then
    [[ -f $src/$toolchain ]] || { echo "build-oci: $1 needs $toolchain (not there yet)" >&2; return 1; }
    args+=(--toolchain "$src/$toolchain")
  fi
  echo "build-oci: $1: building the agent in ${bdir#"$src"/}"
  cmake "${args[@]}" >"$work/cmake-$1.log" 2>&1 || { cat "$work/cmake-$1.log" >&2; return 1; }
  cmake --build "$bdir" --target gateway-agent -j "$jobs" >"$work/build-$1.log" 2>&1 ||
    { tail -40 "$work/build-$1.log" >&2; return 1; }
  agent=$bdir/src/gateway-agent
}

# Where the arch's shared libraries are: the host's for amd64; for a cross arch the sysroot the
# toolchain file filled (read from the CMake cache) and the cross libc/libstdc++ packages.
lib_dirs() {
  if [[ $1 == amd64 ]]; then
    echo "/lib/$triplet /usr/lib/$triplet"
    return
  fi
  local sysroot
  sysroot=$(sed -n 's/^GA_[A-Z0-9_]*SYSROOT:PATH=//p' "$bdir/CMakeCache.txt" | head -1)
  echo "${sysroot:+$sysroot/usr/lib/$triplet $sysroot/lib/$triplet} /usr/$triplet/lib /usr/lib/$triplet /lib/$triplet"
}

needed() { "$(bintool readelf)" -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }

# The agent's transitive DT_NEEDED closure, as "soname<TAB>path" lines; the ELF interpreter is
# left out (it is copied to its own PT_INTERP path).
lib_closure() {
  local bin=$1 interp_name=$2; shift 2
  local -a queue dirs=("$@")
  local -A seen=()
  mapfile -t queue < <(needed "$bin")
  while ((${#queue[@]})); do
    local name=${queue[0]} found='' d
    queue=("${queue[@]:1}")
    [[ -n ${seen[$name]:-} || $name == "$interp_name" ]] && continue
    for d in "${dirs[@]}"; do
      if [[ -e $d/$name ]]; then found=$(readlink -f "$d/$name"); break; fi
    done
    [[ -n $found ]] || { echo "build-oci: $name not found in ${dirs[*]}" >&2; return 1; }
    seen[$name]=$found
    printf '%s\t%s\n' "$name" "$found"
    mapfile -t -O "${#queue[@]}" queue < <(needed "$found")
  done
}

fill_rootfs() { # arch rootfs
  local arch=$1 root=$2 interp strip_cmd
  strip_cmd=$(bintool strip)
  interp=$("$(bintool readelf)" -l "$agent" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
  [[ -n $interp ]] || { echo "build-oci: $agent has no ELF interpreter (static?)" >&2; return 1; }
  local -a dirs
  read -r -a dirs <<<"$(lib_dirs "$arch")"

  install -d -m 0755 "$root/usr/bin" "$root/lib/$triplet" "$root/etc/gateway-agent" "$root/var/lib"
  install -m 0755 "$agent" "$root/usr/bin/gateway-agent"
  "$strip_cmd" --strip-all "$root/usr/bin/gateway-agent"

  local interp_src=
  for d in "${dirs[@]}" "/usr/$triplet$(dirname "$interp")" "$(dirname "$interp")"; do
    if [[ -e $d/$(basename "$interp") ]]; then interp_src=$(readlink -f "$d/$(basename "$interp")"); break; fi
  done
  [[ -n $interp_src ]] || { echo "build-oci: interpreter $interp not found" >&2; return 1; }
  install -d -m 0755 "$root$(dirname "$interp")"
  install -m 0755 "$interp_src" "$root$interp"
  "$strip_cmd" --strip-unneeded "$root$interp"

  local name path
  while IFS=$'\t' read -r name path; do
    # ld.so finds them in /lib/<triplet>, one of its built-in directories (no ld.so.cache here).
    install -m 0644 "$path" "$root/lib/$triplet/$name"
    "$strip_cmd" --strip-unneeded "$root/lib/$triplet/$name"
  done < <(lib_closure "$agent" "$(basename "$interp")" "${dirs[@]}")

  printf 'root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/var/lib/%s:/sbin/nologin\n' \
    "$user" "$uid" "$uid" "$user" "$user" >"$root/etc/passwd"
  printf 'root:x:0:\n%s:x:%d:\n' "$user" "$uid" >"$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  install -m 0644 "$src/config/edge-module.conf" "$root/etc/gateway-agent/gateway-agent.conf"
  install -d -m 0750 -o "$uid" -g "$uid" "$root/var/lib/gateway-agent"
  find "$root" -exec touch -h -d "@$epoch" {} +
}

# Set fields umoci cannot (config "variant"), rewriting config, manifest and the index entry.
set_variant() { # tag variant
  python3 - "$layout" "$1" "$2" <<'EOF'
import hashlib, json, os, sys
layout, tag, variant = sys.argv[1:]
def blob(d): return os.path.join(layout, "blobs", *d.split(":"))
def put(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob(d), "wb") as f: f.write(data)
    return d, len(data)
with open(os.path.join(layout, "index.json")) as f: index = json.load(f)
entry = next(m for m in index["manifests"]
             if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
with open(blob(entry["digest"]), "rb") as f: manifest = json.load(f)
with open(blob(manifest["config"]["digest"]), "rb") as f: config = json.load(f)
config["variant"] = variant
manifest["config"]["digest"], manifest["config"]["size"] = put(json.dumps(config, separators=(",", ":")).encode())
entry["digest"], entry["size"] = put(json.dumps(manifest, separators=(",", ":")).encode())
with open(os.path.join(layout, "index.json"), "w") as f: json.dump(index, f, separators=(",", ":"))
EOF
}

# The multi-arch tag <version>: an OCI image index over the arch tags present in the layout.
write_index() {
  python3 - "$layout" "$version" <<'EOF'
import hashlib, json, os, sys
layout, version = sys.argv[1:]
REF = "org.opencontainers.image.ref.name"
def blob(d): return os.path.join(layout, "blobs", *d.split(":"))
with open(os.path.join(layout, "index.json")) as f: index = json.load(f)
index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF) != version]
entries = []
for suffix in ("amd64", "arm32v7", "arm64v8"):
    m = next((m for m in index["manifests"] if m.get("annotations", {}).get(REF) == f"{version}-{suffix}"), None)
    if m is None: continue
    with open(blob(m["digest"]), "rb") as f: manifest = json.load(f)
    with open(blob(manifest["config"]["digest"]), "rb") as f: config = json.load(f)
    platform = {"architecture": config["architecture"], "os": config["os"]}
    if config.get("variant"): platform["variant"] = config["variant"]
    entries.append({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"], "platform": platform})
if entries:
    data = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": entries}, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob(digest), "wb") as f: f.write(data)
    index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest,
                               "size": len(data), "annotations": {REF: version}})
with open(os.path.join(layout, "index.json"), "w") as f: json.dump(index, f, separators=(",", ":"))
print(f"build-oci: {version} -> index of {', '.join(e['platform']['architecture'] + e['platform'].get('variant', '') for e in entries)}")
EOF
}

build_image() {
  local arch=$1
  arch_vars "$arch"
  build_agent "$arch" || return 1
  local tag=$version-$suffix bundle=$work/bundle-$arch
  [[ $("$(bintool readelf)" -h "$agent" | sed -n 's/^ *Machine: *//p') == "$elf_machine" ]] ||
    { echo "build-oci: $agent is not a $elf_machine ELF" >&2; return 1; }

  umoci rm --image "$layout:$tag" 2>/dev/null || true
  umoci new --image "$layout:$tag"
  rm -rf "$bundle"
  umoci unpack --image "$layout:$tag" "$bundle" >/dev/null
  fill_rootfs "$arch" "$bundle/rootfs" || return 1
  umoci repack --image "$layout:$tag" --history.created "$created" \
    --history.created_by "tools/build-oci.sh $arch (FROM scratch)" "$bundle"
  rm -rf "$bundle"
  umoci config --image "$layout:$tag" --no-history --created "$created" --author gateway-agent \
    --os linux --architecture "$oci_arch" --config.user "$uid:$uid" \
    --config.entrypoint /usr/bin/gateway-agent \
    --config.cmd --config --config.cmd /etc/gateway-agent/gateway-agent.conf \
    --config.workingdir /var/lib/gateway-agent \
    --config.label "org.opencontainers.image.title=gateway-agent" \
    --config.label "org.opencontainers.image.version=$version"
  [[ -z $oci_variant ]] || set_variant "$tag" "$oci_variant"
  echo "build-oci: $arch -> ${layout#"$src"/}:$tag, compressed layer $(layer_bytes "$tag") bytes"
}

layer_bytes() { # tag -> sum of compressed layer sizes
  local m
  m=$(jq -r --arg t "$1" '.manifests[] | select(.annotations."org.opencontainers.image.ref.name"==$t) | .digest' \
        "$layout/index.json")
  jq '[.layers[].size] | add' "$layout/blobs/${m/://}"
}

# A failed arch leaves no image of older sources behind in the layout or the index.
drop_failed() {
  arch_vars "$1"
  echo "build-oci: $1 FAILED; $version-$suffix removed from the layout" >&2
  umoci rm --image "$layout:$version-$suffix" 2>/dev/null || true
  status=1
}

want=${1:-all}
mkdir -p "$work"
[[ -f $layout/index.json ]] || umoci init --layout "$layout"
status=0
if [[ $want == all ]]; then
  for a in amd64 armhf arm64; do
    arch_vars "$a"
    if [[ -n $toolchain && ! -f $toolchain ]]; then
      # Not left in the index as an image of older sources.
      echo "build-oci: skipping $a: $toolchain does not exist yet" >&2
      umoci rm --image "$layout:$version-$suffix" 2>/dev/null || true
      continue
    fi
    build_image "$a" || drop_failed "$a"
  done
else
  build_image "$want" || drop_failed "$want"
fi
write_index
umoci gc --layout "$layout"
umoci ls --layout "$layout"
exit $status
