#!/usr/bin/env python3
"""Checks the gateway-agent OCI images in build/oci/gateway-agent and the IoT Edge deployment
manifest. Prints one PASS/FAIL/SKIP line per check and exits non-zero on any FAIL.

What an image must be (written out here, independently of tools/build-oci.sh): one layer FROM
scratch holding exactly the agent, its ELF interpreter, the eight shared libraries, passwd/group,
the module conf and the state dir owned by uid 1000; config for the right os/arch(/variant),
non-root user, the agent as entrypoint; every ELF of the arch's machine, stripped, and every
DT_NEEDED found inside the layer; under 5 MB compressed. Then the multi-arch index, a skopeo
copy of it (the push path, to a local directory), and, where runc works without a daemon, the
amd64 image run for real (armhf/arm64: the agent under qemu-user with the image as its root).
"""
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

SRC = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAYOUT = os.environ.get("GA_OCI_LAYOUT", os.path.join(SRC, "build", "oci", "gateway-agent"))
REF = "org.opencontainers.image.ref.name"
MAX_COMPRESSED = 5_000_000  # bytes, per arch: layer + config + manifest
UID = 1000
LIBS = ["libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libmbedtls.so.14",
        "libmbedx509.so.1", "libmbedcrypto.so.7", "libcjson.so.1"]
# suffix -> (OCI arch, variant, Debian triplet, ELF interpreter, e_machine, qemu-user)
ARCHES = {
    "amd64": ("amd64", None, "x86_64-linux-gnu", "lib64/ld-linux-x86-64.so.2", 62, None),
    "arm32v7": ("arm", "v7", "arm-linux-gnueabihf", "lib/ld-linux-armhf.so.3", 40, "qemu-arm-static"),
    "arm64v8": ("arm64", "v8", "aarch64-linux-gnu", "lib/ld-linux-aarch64.so.1", 183, "qemu-aarch64-static"),
}
REQUIRED = ["amd64", "arm32v7"]  # arm64v8 is checked when it was built

counts = {"passed": 0, "failed": 0, "skipped": 0}


def report(ok, name, detail=""):
    """One check; the detail (what was found) is printed when it failed."""
    counts["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'}: {name}{' -- ' + detail if detail and not ok else ''}", flush=True)
    return ok


def skip(name, why):
    counts["skipped"] += 1
    print(f"SKIP: {name} -- {why}", flush=True)


def blob_path(digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(LAYOUT, "blobs", algo, hexd)


def read_blob(desc):
    with open(blob_path(desc["digest"]), "rb") as f:
        data = f.read()
    ok = ("sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"] and len(data) == desc["size"])
    return data, ok


def version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        return re.search(r"project\(gateway-agent VERSION ([0-9.]+)", f.read()).group(1)


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def expected_entries(suffix):
    """Every path the layer must hold (dirs end in '/'), and nothing else."""
    _, _, triplet, interp, _, _ = ARCHES[suffix]
    files = {"usr/bin/gateway-agent", interp, "etc/passwd", "etc/group",
             "etc/gateway-agent/gateway-agent.conf"} | {f"lib/{triplet}/{lib}" for lib in LIBS}
    dirs = {"var/lib/gateway-agent/"}
    for p in list(files) + list(dirs):
        parts = p.rstrip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]) + "/")
    return files | dirs


def check_arch(suffix, entry, ver, tmp):
    arch, variant, triplet, interp, e_machine, qemu = ARCHES[suffix]
    tag = entry["annotations"][REF]
    mdata, ok = read_blob(entry)
    report(ok, f"{tag}: manifest digest and size match the index")
    manifest = json.loads(mdata)
    cdata, ok = read_blob(manifest["config"])
    report(ok, f"{tag}: config digest and size match")
    config = json.loads(cdata)
    report(config.get("os") == "linux", f"{tag}: os linux", str(config.get("os")))
    report(config.get("architecture") == arch, f"{tag}: architecture {arch}", str(config.get("architecture")))
    if variant:
        report(config.get("variant") == variant, f"{tag}: variant {variant}", str(config.get("variant")))
    cc = config.get("config", {})
    user = cc.get("User", "")
    uid = user.split(":")[0]
    report(uid.isdigit() and int(uid) == UID and user == f"{UID}:{UID}", f"{tag}: User {UID}:{UID} (not root)", user)
    report(cc.get("Entrypoint") == ["/usr/bin/gateway-agent"], f"{tag}: entrypoint /usr/bin/gateway-agent",
           json.dumps(cc.get("Entrypoint")))
    report(cc.get("Cmd") == ["--config", "/etc/gateway-agent/gateway-agent.conf"],
           f"{tag}: cmd --config /etc/gateway-agent/gateway-agent.conf", json.dumps(cc.get("Cmd")))
    layers = manifest.get("layers", [])
    if not report(len(layers) == 1 and layers[0]["mediaType"].endswith("tar+gzip"),
                  f"{tag}: one gzip layer", str(len(layers))):
        return None
    ldata, ok = read_blob(layers[0])
    report(ok, f"{tag}: layer digest and size match")
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(ldata)).hexdigest()
    report(config.get("rootfs", {}).get("diff_ids") == [diff_id], f"{tag}: config diff_id is the layer's")
    compressed = len(ldata) + len(cdata) + len(mdata)
    report(compressed < MAX_COMPRESSED, f"{tag}: {compressed} bytes compressed < {MAX_COMPRESSED}")

    root = os.path.join(tmp, suffix)
    os.makedirs(root)
    members = {}
    with tarfile.open(fileobj=io.BytesIO(ldata), mode="r:gz") as tar:
        for m in tar.getmembers():
            name = m.name[2:] if m.name.startswith("./") else m.name
            if name in (".", "", "/"):
                continue
            members[name + ("/" if m.isdir() else "")] = m
        tar.extractall(root, filter="fully_trusted") if hasattr(tarfile, "data_filter") else tar.extractall(root)
    want = expected_entries(suffix)
    have = set(members)
    report(have == want, f"{tag}: layer holds exactly the expected {len(want)} entries",
           f"missing {sorted(want - have)}, unexpected {sorted(have - want)}" if have != want else "")
    sd = members.get("var/lib/gateway-agent/")
    report(sd is not None and sd.uid == UID and sd.gid == UID and sd.mode & 0o700 == 0o700,
           f"{tag}: /var/lib/gateway-agent owned by {UID}:{UID}, writable by it",
           f"{sd.uid}:{sd.gid} {oct(sd.mode)}" if sd else "absent")
    others = [n for n, m in members.items() if n != "var/lib/gateway-agent/" and (m.uid, m.gid) != (0, 0)]
    report(not others, f"{tag}: everything else owned by root", str(others))
    writable = [n for n, m in members.items() if n != "var/lib/gateway-agent/" and m.mode & 0o022]
    report(not writable, f"{tag}: nothing else group/other-writable", str(writable))
    with open(os.path.join(root, "etc/passwd")) as f:
        pw = [line.split(":") for line in f.read().splitlines()]
    report(any(p[0] == "gateway-agent" and p[2] == str(UID) and p[3] == str(UID) for p in pw),
           f"{tag}: /etc/passwd has gateway-agent as {UID}:{UID}")
    with open(os.path.join(root, "etc/group")) as f:
        report(f"gateway-agent:x:{UID}:" in f.read().splitlines(), f"{tag}: /etc/group has gateway-agent {UID}")
    with open(os.path.join(root, "etc/gateway-agent/gateway-agent.conf")) as f:
        conf = f.read()
    with open(os.path.join(SRC, "config", "edge-module.conf")) as f:
        report(conf == f.read(), f"{tag}: conf is config/edge-module.conf")
    report(re.search(r"^type = module-input$", conf, re.M) is not None and
           re.search(r"^mode = disabled$", conf, re.M) is not None and
           re.search(r"^connection_string", conf, re.M) is None,
           f"{tag}: conf: module-input source, reboot disabled, no identity")

    elfs = [n for n in have if not n.endswith("/") and (n.startswith("lib") or n.startswith("usr/bin"))]
    machines = {}
    for n in elfs:
        with open(os.path.join(root, n), "rb") as f:
            head = f.read(20)
        machines[n] = int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else None
    bad = {n: m for n, m in machines.items() if m != e_machine}
    report(not bad, f"{tag}: agent and libraries are ELF e_machine {e_machine}", str(bad))
    unstripped = [n for n in elfs if ".symtab" in run(["readelf", "-SW", os.path.join(root, n)]).stdout]
    report(not unstripped, f"{tag}: agent and libraries stripped (no .symtab)", str(unstripped))
    agent = os.path.join(root, "usr/bin/gateway-agent")
    pinterp = re.search(r"Requesting program interpreter: (\S+)\]", run(["readelf", "-lW", agent]).stdout)
    report(pinterp is not None and pinterp.group(1) == "/" + interp, f"{tag}: agent's interpreter is /{interp}",
           pinterp.group(1) if pinterp else "none")
    sonames = {os.path.basename(n) for n in elfs}
    unresolved = {}
    for n in elfs:
        need = re.findall(r"\(NEEDED\).*\[(.+)\]", run(["readelf", "-dW", os.path.join(root, n)]).stdout)
        miss = [x for x in need if x not in sonames]
        if miss:
            unresolved[n] = miss
    report(not unresolved, f"{tag}: every DT_NEEDED is in the layer", str(unresolved))

    out = run(["skopeo", "inspect", f"oci:{LAYOUT}:{tag}"])
    info = json.loads(out.stdout) if out.returncode == 0 else {}
    report(info.get("Architecture") == arch and info.get("Os") == "linux",
           f"{tag}: skopeo inspect reads it ({arch}/linux)", out.stderr.strip()[:200])

    if qemu:
        if shutil.which(qemu):
            # The image's own root as qemu's prefix: the interpreter and every library come
            # from the layer (the host has no /lib/<triplet> of this arch to fall back on).
            r = run([qemu, "-L", root, agent, "--version"], timeout=60)
            report(r.returncode == 0 and r.stdout.strip() == f"gateway-agent {ver}",
                   f"{tag}: agent --version under {qemu} with the image as root",
                   (r.stdout + r.stderr).strip()[:300])
        else:
            skip(f"{tag}: agent under qemu-user", f"{qemu} not installed")
    return {"digest": entry["digest"], "size": entry["size"], "mediaType": entry["mediaType"],
            "platform": {k: v for k, v in (("architecture", arch), ("os", "linux"), ("variant", variant)) if v},
            "root": root, "compressed": compressed}


def check_index(ver, index, images, tmp):
    entry = next((m for m in index["manifests"] if m.get("annotations", {}).get(REF) == ver), None)
    if not report(entry is not None and entry["mediaType"] == "application/vnd.oci.image.index.v1+json",
                  f"{ver}: multi-arch image index tag"):
        return
    data, ok = read_blob(entry)
    report(ok, f"{ver}: index digest and size match")
    got = sorted((json.dumps(m, sort_keys=True) for m in json.loads(data)["manifests"]))
    want = sorted(json.dumps({k: img[k] for k in ("digest", "size", "mediaType", "platform")}, sort_keys=True)
                  for img in images.values())
    report(got == want, f"{ver}: index lists exactly the arch images with their platforms",
           f"got {got}" if got != want else "")
    # The push path: skopeo copy --all of the index, here to a local layout instead of a registry.
    dest = os.path.join(tmp, "copy")
    r = run(["skopeo", "copy", "--quiet", "--all", f"oci:{LAYOUT}:{ver}", f"oci:{dest}:{ver}"], timeout=300)
    if report(r.returncode == 0, f"{ver}: skopeo copy --all of the index works", r.stderr.strip()[:300]):
        with open(os.path.join(dest, "index.json")) as f:
            copied = json.load(f)["manifests"][0]
        report(copied["digest"] == entry["digest"], f"{ver}: the copy keeps the index digest")


PLACEHOLDERS = ["GATEWAY_AGENT_IMAGE", "REGISTRY_ADDRESS", "REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
ENVSUBST_VARS = " ".join("${%s}" % v for v in PLACEHOLDERS)  # the docs' envsubst argument


def check_template_substitution(name, text):
    found = sorted(set(re.findall(r"\$\{([A-Z_]+)\}", text)))
    report(found == sorted(PLACEHOLDERS), f"{name}: placeholders are {', '.join(PLACEHOLDERS)}", str(found))
    if not shutil.which("envsubst"):
        skip(f"{name}: envsubst as in docs/iot-edge-deploy.md", "envsubst not installed (gettext-base)")
        return
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GATEWAY_AGENT_IMAGE": "myacr.azurecr.io/gateway-agent:9.9.9",
           "REGISTRY_ADDRESS": "myacr.azurecr.io", "REGISTRY_USERNAME": "u", "REGISTRY_PASSWORD": "a+b/c="}
    r = subprocess.run(["envsubst", ENVSUBST_VARS], input=text, capture_output=True, text=True, env=env, timeout=30)
    try:
        doc = json.loads(r.stdout)
    except ValueError as e:
        report(False, f"{name}: envsubst output is valid JSON", str(e))
        return
    mc = doc["modulesContent"]
    mods = mc["$edgeAgent"]["properties.desired"]["modules"]
    routes = mc["$edgeHub"]["properties.desired"]["routes"]
    report("myacr.azurecr.io/gateway-agent:9.9.9" in [m["settings"]["image"] for m in mods.values()] and
           routes.get("filterToIoTHub", "").endswith("INTO $upstream") and "$edgeHub" in mc,
           f"{name}: envsubst sets the image and keeps $upstream/$edgeAgent", json.dumps(routes)[:200])


def check_manifest():
    paths = sorted(p for p in os.listdir(os.path.join(SRC, "config")) if re.fullmatch(r"deployment.*\.json", p))
    if not report(bool(paths), "config/deployment*.json exists"):
        return
    for p in paths:
        name = f"config/{p}"
        try:
            with open(os.path.join(SRC, "config", p)) as f:
                doc = json.load(f)
        except ValueError as e:
            report(False, f"{name}: valid JSON", str(e))
            continue
        report(True, f"{name}: valid JSON")
        with open(os.path.join(SRC, "config", p)) as f:
            text = f.read()
        if "${" in text:
            check_template_substitution(name, text)
        mc = doc.get("modulesContent", {})
        agent = mc.get("$edgeAgent", {}).get("properties.desired", {})
        hub = mc.get("$edgeHub", {}).get("properties.desired", {})
        report(agent.get("schemaVersion") == "1.1" and hub.get("schemaVersion") == "1.1",
               f"{name}: $edgeAgent and $edgeHub schemaVersion 1.1")
        sysm = agent.get("systemModules", {})
        images = {m: sysm.get(m, {}).get("settings", {}).get("image") for m in ("edgeAgent", "edgeHub")}
        report(images == {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.4",
                          "edgeHub": "mcr.microsoft.com/azureiotedge-hub:1.4"} and
               sysm["edgeHub"].get("status") == "running", f"{name}: system modules edgeAgent/edgeHub 1.4",
               str(images))
        mods = agent.get("modules", {})
        sensor = mods.get("SimulatedTemperatureSensor", {})
        report(sensor.get("settings", {}).get("image") ==
               "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0",
               f"{name}: SimulatedTemperatureSensor module image")
        ours = [n for n, m in mods.items()
                if m.get("settings", {}).get("image") == "${GATEWAY_AGENT_IMAGE}" or
                re.search(r"/gateway-agent:[^/]+$", m.get("settings", {}).get("image", ""))]
        if not report(len(ours) == 1, f"{name}: one gateway-agent module", str(ours)):
            continue
        mod = ours[0]
        s = mods[mod]
        report(s.get("type") == "docker" and s.get("status") == "running" and
               s.get("restartPolicy") == "always", f"{name}: {mod}: docker, running, restart always")
        report(json.loads(s["settings"].get("createOptions", "null")) == {}, f"{name}: {mod}: createOptions {{}}")
        routes = {k: (v["route"] if isinstance(v, dict) else v) for k, v in hub.get("routes", {}).items()}
        norm = {k: " ".join(v.split()) for k, v in routes.items()}
        report(norm.get("sensorToFilter") ==
               "FROM /messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput "
               f"INTO BrokeredEndpoint(\"/modules/{mod}/inputs/input1\")", f"{name}: route sensorToFilter",
               routes.get("sensorToFilter", "absent"))
        report(norm.get("filterToIoTHub") == f"FROM /messages/modules/{mod}/outputs/output1 INTO $upstream",
               f"{name}: route filterToIoTHub", routes.get("filterToIoTHub", "absent"))
        desired = mc.get(mod, {}).get("properties.desired", {})
        report(desired.get("TemperatureThreshold") == 25, f"{name}: {mod} desired TemperatureThreshold 25")


# What the IoT Edge runtime sets for a module (values made up; nothing listens on the socket).
EDGE_ENV = {"IOTEDGE_WORKLOADURI": "unix:///var/run/iotedge/workload.sock", "IOTEDGE_AUTHSCHEME": "sasToken",
            "IOTEDGE_MODULEGENERATIONID": "638000000000000000", "IOTEDGE_IOTHUBHOSTNAME": "myhub.azure-devices.net",
            "IOTEDGE_GATEWAYHOSTNAME": "edgedevice", "IOTEDGE_DEVICEID": "edgedevice",
            "IOTEDGE_MODULEID": "GatewayAgent", "IOTEDGE_APIVERSION": "2019-01-30"}


def runc_run(bundle, cid, state, args, timeout, env=None):
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/usr/bin/gateway-agent"] + args
    base_env = [e for e in spec["process"].get("env", []) if not e.startswith("IOTEDGE_")]
    spec["process"]["env"] = base_env + [f"{k}={v}" for k, v in (env or {}).items()]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    try:
        return subprocess.run(["timeout", "--preserve-status", "-s", "TERM", str(timeout),
                               "runc", "--root", state, "run", cid], cwd=bundle, capture_output=True,
                              text=True, timeout=timeout + 30)
    finally:
        subprocess.run(["runc", "--root", state, "delete", "--force", cid], capture_output=True, timeout=30)


def check_run_amd64(ver, tmp):
    tag = f"{ver}-amd64"
    if os.geteuid() != 0 or not shutil.which("runc"):
        skip(f"{tag}: run with runc", "needs root and runc")
        return
    bundle = os.path.join(tmp, "bundle")
    state = os.path.join(tmp, "runc-state")
    r = run(["umoci", "unpack", "--image", f"{LAYOUT}:{tag}", bundle], timeout=120)
    if not report(r.returncode == 0, f"{tag}: umoci unpack to a runtime bundle", r.stderr.strip()[:300]):
        return
    cid = f"ga-oci-test-{os.getpid()}"
    r = runc_run(bundle, cid, state, ["--version"], 30)
    if r.returncode != 0 and "cgroup" in r.stderr:
        skip(f"{tag}: run with runc", f"runc cannot start containers here: {r.stderr.strip()[:200]}")
        return
    report(r.returncode == 0 and r.stdout.strip() == f"gateway-agent {ver}",
           f"{tag}: runc run: --version as uid {UID}", (r.stdout + r.stderr).strip()[:300])

    check = ["--config", "/etc/gateway-agent/gateway-agent.conf", "--check-config"]
    # Without any identity (no IOTEDGE_* variables, none in the conf) the image's conf is refused.
    r = runc_run(bundle, cid, state, check, 30)
    out = (r.stdout + r.stderr).strip()
    print(f"info: {tag}: --check-config without edge environment: exit {r.returncode}: {out[:200]}")
    report(r.returncode == 78 and re.search(r"connection string|identity|IOTEDGE", out, re.I) is not None,
           f"{tag}: runc run: --check-config without an identity exits 78 naming it", f"exit {r.returncode}: {out}")
    # With the variables the edge runtime sets, the image's conf must be complete.
    r = runc_run(bundle, cid, state, check, 30, env=EDGE_ENV)
    out = (r.stdout + r.stderr).strip()
    print(f"info: {tag}: --check-config with IOTEDGE_* set: exit {r.returncode}: {out[:200]}")
    if r.returncode == 0:
        report("edgedevice/GatewayAgent" in out, f"{tag}: runc run: --check-config with IOTEDGE_* set", out[:300])
    elif r.returncode == 78 and re.search(r"connection string", out):
        # The agent does not read the edge environment yet: a known gap, not a pass.
        skip(f"{tag}: runc run: --check-config with IOTEDGE_* set",
             f"exit 78, needs the edge identity work: {out[:200]}")
    else:
        report(False, f"{tag}: runc run: --check-config with IOTEDGE_* set", f"exit {r.returncode}: {out[:300]}")

    # A real start as uid 1000 with an operator conf (a made-up identity, a closed local port):
    # it must start, write its store id into the image's state dir, and stop cleanly on SIGTERM.
    rootfs = os.path.join(bundle, "rootfs")
    key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    conf = os.path.join(rootfs, "etc/gateway-agent/test.conf")
    with open(conf, "w") as f:
        f.write("[hub]\nconnection_string = HostName=127.0.0.1;DeviceId=edge1;ModuleId=filter;"
                f"SharedAccessKey={key}\ntransport = tcp\nport = 1\n[source]\ntype = module-input\n"
                "[reboot]\nmode = disabled\n")
    os.chown(conf, UID, UID)
    os.chmod(conf, 0o600)
    r = runc_run(bundle, cid, state, ["--config", "/etc/gateway-agent/test.conf"], 4)
    out = (r.stdout + r.stderr).strip()
    report(r.returncode == 0 and "started" in out and "stopping" in out,
           f"{tag}: runc run: agent starts as uid {UID} and stops cleanly on SIGTERM",
           f"exit {r.returncode}: {out[:400]}")
    sid = os.path.join(rootfs, "var/lib/gateway-agent/store-id")
    st = os.stat(sid) if os.path.exists(sid) else None
    report(st is not None and st.st_uid == UID, f"{tag}: runc run: store-id written to the state dir by uid {UID}")


def free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def check_push(ver, index, tmp):
    """tools/push-oci.sh against a local registry (Debian's docker-registry on loopback, with a
    password): every tag arrives with the layout's digest and the password is never printed."""
    if not shutil.which("docker-registry"):
        skip("push-oci.sh to a local registry", "docker-registry not installed")
        return
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # bcrypt for the registry's htpasswd, from libcrypt
    except ImportError:
        skip("push-oci.sh to a local registry", "no crypt module for a bcrypt htpasswd")
        return
    password = "pw-" + os.urandom(9).hex()
    reg = os.path.join(tmp, "registry")
    os.makedirs(reg)
    with open(os.path.join(reg, "htpasswd"), "w") as f:
        f.write("pusher:" + crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH)) + "\n")
    port = free_port()
    with open(os.path.join(reg, "config.yml"), "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {reg}/data\n"
                f"http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test\n    path: {reg}/htpasswd\n")
    server = subprocess.Popen(["docker-registry", "serve", os.path.join(reg, "config.yml")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # up to 10 s for the listener
            with socket.socket() as sk:
                if sk.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        dest = f"127.0.0.1:{port}/gateway-agent"
        base = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        base.update(PUSH_TLS_VERIFY="false", REGISTRY_AUTH_FILE=os.path.join(reg, "none.json"))
        r = subprocess.run(["bash", os.path.join(SRC, "tools/push-oci.sh"), dest], capture_output=True, text=True,
                           env=base, timeout=300)
        report(r.returncode != 0, "push-oci.sh without credentials is refused by the registry")
        env = dict(base, REGISTRY_USERNAME="pusher", REGISTRY_PASSWORD=password)
        r = subprocess.run(["bash", os.path.join(SRC, "tools/push-oci.sh"), f"{dest}:{ver}"], capture_output=True,
                           text=True, env=env, timeout=600)
        out = r.stdout + r.stderr
        if not report(r.returncode == 0, "push-oci.sh with REGISTRY_USERNAME/PASSWORD", out[-400:]):
            return
        report(password not in out, "push-oci.sh never prints the password")
        auth = os.path.join(reg, "auth.json")
        subprocess.run(["skopeo", "login", "--authfile", auth, "--tls-verify=false", "-u", "pusher",
                        "--password-stdin", dest.split("/")[0]], input=password, capture_output=True, text=True,
                       timeout=60, check=True)
        tags = {m["annotations"][REF]: m["digest"] for m in index["manifests"] if REF in m.get("annotations", {})}
        for tag, digest in sorted(tags.items()):
            r = run(["skopeo", "inspect", "--raw", "--authfile", auth, "--tls-verify=false", f"docker://{dest}:{tag}"])
            got = "sha256:" + hashlib.sha256(r.stdout.encode()).hexdigest() if r.returncode == 0 else r.stderr
            report(got == digest, f"registry {tag}: pushed with the layout's digest", got[:200])
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def hubctl(hub_dir, *args, timeout=40):
    return run([os.path.join(SRC, "tools/hub-emulator/hubctl"), "--dir", hub_dir, *args], timeout=timeout)


def check_e2e_amd64(ver, tmp, mode):
    """The amd64 image in runc against the hub emulator (mosquitto + plugin, TLS, SAS, edgeHub
    routes) on this machine's loopback: a routed reading above the threshold arrives upstream as
    an alert, one below does not, a twin patch is acknowledged, rebootDevice is refused (403).
    mode "edge": as IoT Edge runs a module: the image's conf unchanged, the IOTEDGE_* variables
    and the workload API socket (the emulator's) mounted at /var/run/iotedge/workload.sock.
    mode "connstr": an operator's conf with a module connection string and the hub's CA."""
    tag = f"{ver}-amd64 ({mode})"
    plugin = os.environ.get("GA_HUB_EMULATOR_PLUGIN",
                            os.path.join(SRC, "build/native/tools/hub-emulator/hub_emulator_plugin.so"))
    if os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("mosquitto") or not os.path.exists(plugin):
        skip(f"{tag}: end to end against the hub emulator", "needs root, runc, mosquitto and the native emulator plugin")
        return
    hub_dir = os.path.join(tmp, f"hub-{mode}")
    emu = [os.path.join(SRC, "tools/hub-emulator/hubemu"), "start", "--dir", hub_dir, "--plugin", plugin]
    # The image's conf says port 8883 (edgeHub's); the emulator takes it when it is free here.
    with socket.socket() as sk:
        port_free = sk.connect_ex(("127.0.0.1", 8883)) != 0
    r = run(emu + (["--port", "8883"] if mode == "edge" and port_free else []))
    if not report(r.returncode == 0, f"{tag}: hub emulator started", (r.stdout + r.stderr)[-300:]):
        return
    bundle = os.path.join(tmp, f"bundle-{mode}")
    state = os.path.join(tmp, f"runc-state-{mode}")
    cid = f"ga-oci-e2e-{mode}-{os.getpid()}"
    agent = None
    workload = None
    failed_before = counts["failed"]
    wl_sock = f"/tmp/ga-oci-wl-{os.getpid()}.sock"  # sun_path is short: not under tmp
    try:
        r = run(["umoci", "unpack", "--image", f"{LAYOUT}:{ver}-amd64", bundle], timeout=120)
        if not report(r.returncode == 0, f"{tag}: umoci unpack for the end-to-end run", r.stderr[-300:]):
            return
        rootfs = os.path.join(bundle, "rootfs")
        with open(os.path.join(hub_dir, "port")) as f:
            port = int(f.read().strip())
        conf_path = os.path.join(rootfs, "etc/gateway-agent/gateway-agent.conf")
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        # The host's loopback (the emulator) and /etc/hosts, as Docker bind-mounts one.
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
        spec["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts",
                               "options": ["rbind", "ro"]})
        if mode == "edge":
            if port != 8883:  # 8883 was taken on this machine: the one key changed
                with open(conf_path) as f:
                    conf = f.read().replace("[hub]\n", f"[hub]\nport = {port}\n", 1)
                with open(conf_path, "w") as f:
                    f.write(conf)
                print(f"info: {tag}: port 8883 busy here, the conf says port = {port}")
            with open(os.path.join(hub_dir, "emulator.conf")) as f:
                hub_host = next(line.split()[1] for line in f if line.startswith("hub "))
            workload = subprocess.Popen([sys.executable, os.path.join(SRC, "tools/hub-emulator/workload_api.py"),
                                         "--dir", hub_dir, "--socket", wl_sock],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):
                if os.path.exists(wl_sock):
                    break
                time.sleep(0.1)
            os.chmod(wl_sock, 0o666)  # the module's user (uid 1000) connects to it
            spec["mounts"].append({"destination": "/var/run/iotedge/workload.sock", "type": "bind",
                                   "source": wl_sock, "options": ["bind"]})
            edge = dict(EDGE_ENV, IOTEDGE_IOTHUBHOSTNAME=hub_host, IOTEDGE_GATEWAYHOSTNAME="localhost",
                        IOTEDGE_DEVICEID="edgedev", IOTEDGE_MODULEID="filter")
            spec["process"]["env"] = [e for e in spec["process"].get("env", []) if not e.startswith("IOTEDGE_")] + \
                [f"{k}={v}" for k, v in edge.items()]
        else:
            connstr = run([os.path.join(SRC, "tools/hub-emulator/hubemu"), "connstr", "--dir", hub_dir,
                           "edgedev/filter", "--gateway", "localhost"]).stdout.strip()
            shutil.copy(os.path.join(hub_dir, "ca.pem"), os.path.join(rootfs, "etc/gateway-agent/hub-ca.pem"))
            os.chmod(os.path.join(rootfs, "etc/gateway-agent/hub-ca.pem"), 0o644)
            # The image's conf with an identity and the emulator's CA and port added, as an
            # operator's bind-mounted conf would be (the secret rule: owned by the user, 0600).
            with open(conf_path) as f:
                conf = f.read().replace("[hub]\n", f"[hub]\nconnection_string = {connstr}\nport = {port}\n"
                                        "ca_file = /etc/gateway-agent/hub-ca.pem\n", 1)
            with open(conf_path, "w") as f:
                f.write(conf)
            os.chown(conf_path, UID, UID)
            os.chmod(conf_path, 0o600)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        log_path = os.path.join(tmp, f"agent-e2e-{mode}.log")
        log = open(log_path, "w")
        agent = subprocess.Popen(["runc", "--root", state, "run", cid], cwd=bundle, stdout=log,
                                 stderr=subprocess.STDOUT)
        connected = False
        for _ in range(60):  # up to 30 s for the agent's connection
            r = hubctl(hub_dir, "connections")
            ids = json.loads(r.stdout).get("identities", []) if r.returncode == 0 else []
            if any(i.get("id") == "edgedev/filter" and i.get("connected") for i in ids):
                connected = True
                break
            if agent.poll() is not None:
                break
            time.sleep(0.5)
        if not report(connected, f"{tag}: e2e: the containerised agent connects over TLS with SAS"):
            return  # the agent's log is printed below
        if mode == "edge":
            reqs = []
            if os.path.exists(os.path.join(hub_dir, "workload.log")):
                with open(os.path.join(hub_dir, "workload.log")) as f:
                    reqs = [json.loads(line) for line in f if line.strip()]
            report(any(q["path"] == "/trust-bundle" and q["status"] == 200 for q in reqs) and
                   any(q["path"].endswith("/sign") and q["status"] == 200 for q in reqs),
                   f"{tag}: e2e: trust bundle and SAS signature came from the mounted workload API", str(reqs)[:300])
        time.sleep(1)  # its subscriptions follow the CONNACK
        r = run([os.path.join(SRC, "tools/hub-emulator/tempsensor"), "--dir", hub_dir, "--values", "24.5,31.25",
                 "--count", "2", "--interval", "0.2"], timeout=60)
        report(r.returncode == 0, f"{tag}: e2e: simulated sensor sent two readings", r.stderr[-300:])
        r = hubctl(hub_dir, "messages", "--wait-count", "1", "--timeout", "20")
        time.sleep(1)  # a wrongly forwarded 24.5 (sent first) would be there by now
        r = hubctl(hub_dir, "messages")
        msgs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()] if r.returncode == 0 else []
        msgs = [m for m in msgs if "filter" in json.dumps(m)]
        report(len(msgs) == 1 and "31.25" in json.dumps(msgs[0]) and "Alert" in json.dumps(msgs[0]),
               f"{tag}: e2e: only the reading above 25 arrives upstream, as an Alert", json.dumps(msgs)[:500])
        r = hubctl(hub_dir, "twin", "set-desired", "edgedev/filter", '{"TemperatureThreshold":40}')
        acked = False
        for _ in range(40):  # up to 20 s for the reported acknowledgement
            t = hubctl(hub_dir, "twin", "show", "edgedev/filter")
            rep = json.loads(t.stdout).get("reported", {}) if t.returncode == 0 else {}
            thr = rep.get("TemperatureThreshold", {})
            if isinstance(thr, dict) and thr.get("value") == 40 and thr.get("ac") == 200:
                acked = True
                break
            time.sleep(0.5)
        report(acked, f"{tag}: e2e: twin patch TemperatureThreshold=40 acknowledged (ac 200)")
        r = hubctl(hub_dir, "method", "edgedev/filter", "rebootDevice", "{}")
        res = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}
        report(res.get("status") == 403, f"{tag}: e2e: rebootDevice answered 403 (reboot disabled in a container)",
               (r.stdout + r.stderr)[:300])
    finally:
        if agent is not None:
            early = agent.poll()
            if early is not None:
                report(False, f"{tag}: e2e: agent runs until stopped", f"it exited early with {early}")
            agent.terminate()  # runc passes SIGTERM on to the agent
            try:
                rc = agent.wait(timeout=20)
            except subprocess.TimeoutExpired:
                subprocess.run(["runc", "--root", state, "kill", cid, "KILL"], capture_output=True, timeout=30)
                rc = agent.wait(timeout=20)
            if early is None:
                report(rc == 0, f"{tag}: e2e: agent stops cleanly on SIGTERM", f"exit {rc}")
            log.close()
            if counts["failed"] > failed_before:
                with open(log_path) as f:
                    print(f"info: {tag}: the agent's log (last 2000 characters):\n" + f.read()[-2000:])
        subprocess.run(["runc", "--root", state, "delete", "--force", cid], capture_output=True, timeout=30)
        if workload is not None:
            workload.terminate()
            try:
                workload.wait(timeout=10)
            except subprocess.TimeoutExpired:
                workload.kill()
                workload.wait(timeout=10)
        if os.path.exists(wl_sock):
            os.unlink(wl_sock)
        run([os.path.join(SRC, "tools/hub-emulator/hubemu"), "stop", "--dir", hub_dir], timeout=60)


def main():
    ver = version()
    idx_path = os.path.join(LAYOUT, "index.json")
    if not report(os.path.exists(idx_path), f"OCI layout at {LAYOUT}", "run tools/build-oci.sh"):
        return 1
    with open(idx_path) as f:
        index = json.load(f)
    tags = {m.get("annotations", {}).get(REF): m for m in index["manifests"]}
    with tempfile.TemporaryDirectory(prefix="ga-oci-test-") as tmp:
        images = {}
        for suffix in ARCHES:
            tag = f"{ver}-{suffix}"
            if tag not in tags:
                if suffix in REQUIRED:
                    report(False, f"{tag}: image present")
                else:
                    skip(f"{tag}: image", "not built (no toolchain?)")
                continue
            img = check_arch(suffix, tags[tag], ver, tmp)
            if img:
                images[suffix] = img
        check_index(ver, index, images, tmp)
        check_run_amd64(ver, tmp)
        check_e2e_amd64(ver, tmp, "edge")
        check_e2e_amd64(ver, tmp, "connstr")
        check_push(ver, index, tmp)
    check_manifest()
    for suffix, img in images.items():
        print(f"size: {ver}-{suffix}: {img['compressed']} bytes compressed")
    print(f"oci: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
