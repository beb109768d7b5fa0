#!/usr/bin/env bash
# Cross-language client checks of gamegate (issue 5): clients in Python, C++, Go and Java, built
# from clean stubs generated from proto/ with each ecosystem's own generator and gRPC library,
# plus a reflection-only client, all against a gamegate wired to its built-in sandbox; and
# clients without gRPC (issue 17): Node with connect-es (Connect and gRPC-Web), PHP with curl
# (Connect JSON).
#
# Installs what it needs (Debian packages, a Python venv under tests/polyglot/.venv, npm packages
# under tests/polyglot/node/node_modules) when it is missing, builds gamegate, starts it, runs
# every client and prints `N passed, M failed` last.
# See tests/polyglot/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$here/build"
venv="$here/.venv"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# Every run starts from clean stubs and builds.
rm -rf "$build"
mkdir -p "$build"

# --------------------------------------------------------------------------------------------
# Installs (idempotent: nothing is fetched when everything is there).
# --------------------------------------------------------------------------------------------
apt_packages=(
  # protoc and C++
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc pkg-config g++
  # Go, built offline in GOPATH mode (golang-google-protobuf-dev is APIv2; golang-goprotobuf-dev,
  # the 1.3 line, conflicts with golang-github-golang-protobuf-1-5-dev that grpc-go needs)
  golang-go golang-google-grpc-dev golang-google-genproto-dev golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc
  # Java
  default-jdk-headless libgrpc-java protobuf-compiler-grpc-java-plugin libprotobuf-java libnetty-java
  libperfmark-java libgoogle-gson-java libguava-java libjsr305-java liberror-prone-java
  libgeronimo-annotation-1.3-spec-java
  # the test PKI of the TLS check
  openssl
  # PHP without gRPC: curl_init/curl_exec of Connect JSON
  php-cli php-curl
)

step "Debian packages"
missing=()
for package in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  # Debian's Docker images delete /var/cache/apt/archives/*.deb after every dpkg run
  # (apt.conf.d/docker-clean); when apt splits an install into several dpkg runs, the later ones
  # then miss their .deb ("cannot stat pathname"). A private archive folder avoids that.
  archives="$(mktemp -d /var/tmp/polyglot-apt.XXXXXX)"
  mkdir -p "$archives/partial"
  apt_install() {
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      -o DPkg::Lock::Timeout=600 -o Dir::Cache::archives="$archives" -o APT::Sandbox::User=root "$@"
  }
  $sudo apt-get update -qq -o DPkg::Lock::Timeout=600 >"$build/apt.log" 2>&1 || { cat "$build/apt.log"; exit 1; }
  if ! apt_install "${missing[@]}" >>"$build/apt.log" 2>&1; then
    echo "apt-get install failed once; finishing what dpkg left and retrying"
    $sudo dpkg --configure -a >>"$build/apt.log" 2>&1 || true
    apt_install "${missing[@]}" >>"$build/apt.log" 2>&1 || { tail -40 "$build/apt.log"; exit 1; }
  fi
  rm -rf "$archives"
else
  echo "all ${#apt_packages[@]} present"
fi
dpkg-query -W -f='  ${Package} ${Version}\n' protobuf-compiler libgrpc++-dev protobuf-compiler-grpc golang-go \
  golang-google-grpc-dev golang-google-genproto-dev golang-google-protobuf-dev protoc-gen-go protoc-gen-go-grpc \
  libgrpc-java protobuf-compiler-grpc-java-plugin libprotobuf-java default-jdk-headless php-cli php-curl

step "Python venv ($venv)"
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] ||
  ! "$venv/bin/python" -c 'import grpc, grpc_tools, grpc_status, grpc_health, grpc_reflection' 2>/dev/null; then
  if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
      # Debian's python3 without ensurepip
      rm -rf "$venv"
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      python3 -m venv "$venv"
    fi
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$wanted" >"$stamp"
else
  echo "requirements satisfied"
fi
"$venv/bin/pip" freeze --disable-pip-version-check 2>/dev/null | grep -Ei '^(grpcio|protobuf|googleapis)' | sed 's/^/  /'
python="$venv/bin/python"

# Node: connect-es v2 and protoc-gen-es v2 (with buf) from npm, pinned by package-lock.json, into
# tests/polyglot/node/node_modules. A failure here fails the node checks only.
node_dir="$here/node"
step "npm packages ($node_dir/node_modules)"
node_ready=0
node_stamp="$node_dir/node_modules/.package-lock.sha256"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm are missing: the node checks will fail"
elif [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "node $(node --version) is too old (connect-node 2.1 needs >= 20): the node checks will fail"
else
  node_wanted="$(cat "$node_dir/package.json" "$node_dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$node_stamp" 2>/dev/null)" = "$node_wanted" ] && [ -x "$node_dir/node_modules/.bin/buf" ] &&
    [ -x "$node_dir/node_modules/.bin/protoc-gen-es" ]; then
    echo "package-lock.json satisfied"
    node_ready=1
  elif (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error); then
    echo "$node_wanted" >"$node_stamp"
    node_ready=1
  else
    echo "npm install failed: the node checks will fail"
  fi
  if [ "$node_ready" -eq 1 ]; then
    echo "  node $(node --version), npm $(npm --version)"
    (cd "$node_dir" && npm ls --depth=0 2>/dev/null | sed -n 's/^[^@]*\(@[a-z][^ ]*\)$/  \1/p')
  fi
fi

# --------------------------------------------------------------------------------------------
# Stub generation helpers.
# --------------------------------------------------------------------------------------------
gamegate_protos=(proto/gamegate/v1/*.proto)
rpc_protos=(google/rpc/status.proto google/rpc/error_details.proto) # from proto/vendor
health_proto=grpc/health/v1/health.proto                            # from tests/polyglot/protos

# The gamegate protos use only options that Debian 12's protoc 3.21 knows (credentials are
# marked with gamegate's own `sensitive` flag, not `debug_redact`, which needs protoc >= 22).
protoc_includes=(-I proto/vendor -I proto -I "$here/protos")
prepare_protoc() {
  if grep -q 'debug_redact *=' proto/gamegate/v1/*.proto; then
    echo "proto/gamegate/v1 uses debug_redact, which protoc < 22 rejects" >&2
    return 1
  fi
}

# --------------------------------------------------------------------------------------------
# The checks. Each runs in its own subshell with `set -e`; its exit status is its verdict.
# --------------------------------------------------------------------------------------------
check_proto_lint() {
  mkdir -p "$build/lint"
  "$python" -m grpc_tools.protoc -I proto/vendor -I proto --descriptor_set_out="$build/lint/gamegate.pb" \
    "${gamegate_protos[@]}"
  "$python" "$here/lint_protos.py" "$build/lint/gamegate.pb"
  # protoc's own C# and Objective-C generators accept the protos (generation only).
  mkdir -p "$build/lint/csharp" "$build/lint/objc"
  protoc "${protoc_includes[@]}" --csharp_out="$build/lint/csharp" --objc_out="$build/lint/objc" \
    "${gamegate_protos[@]}"
  echo "C# and Objective-C generation: ok ($(find "$build/lint/csharp" "$build/lint/objc" -type f | wc -l) files)"
}

check_python() {
  local out="$build/python"
  rm -rf "$out" && mkdir -p "$out"
  # grpcio-tools' protoc; google.rpc comes from googleapis-common-protos (grpcio-status uses it)
  # and grpc.health.v1 from grpcio-health-checking, as a Python team would use them.
  "$python" -m grpc_tools.protoc -I proto/vendor -I proto --python_out="$out" --pyi_out="$out" \
    --grpc_python_out="$out" "${gamegate_protos[@]}"
  echo "generated $(find "$out" -name '*.py' | wc -l) Python files"
  PYTHONPATH="$out" timeout 120 "$python" "$here/python/client.py" "$grpc_addr" "$sandbox_url"
}

# A second gamegate, with TLS and mTLS, wired to the first one's sandbox (OpenAPI only): a CA, a
# server certificate for localhost and 127.0.0.1 and a client certificate with a DNS SAN, made
# with the openssl CLI; then Python's grpc.ssl_channel_credentials with and without the client
# certificate.
check_python_tls() {
  local out="$build/python-tls"
  local pki="$out/pki" log="$out/gamegate.log" pid="" addr=""
  rm -rf "$out" && mkdir -p "$out/gen" "$pki"
  "$python" -m grpc_tools.protoc -I proto/vendor -I proto --python_out="$out/gen" \
    --grpc_python_out="$out/gen" "${gamegate_protos[@]}"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=polyglot test CA" -keyout "$pki/ca.key" \
    -out "$pki/ca.crt" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  leaf() { # name subjectAltName extendedKeyUsage
    openssl req "${ec[@]}" -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$2" "$3" >"$pki/$1.ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
  }
  leaf server "DNS:localhost,IP:127.0.0.1" serverAuth
  leaf lobby "DNS:lobby.game.internal" clientAuth
  echo "test PKI in $pki; client certificate: $(openssl x509 -in "$pki/lobby.crt" -noout -ext subjectAltName | tail -1 | xargs)"
  cat >"$out/gamegate.toml" <<EOF
listen = "127.0.0.1:0"
# Nothing routes here: no drain delay when the check stops it.
drain_delay_ms = 0

[tls]
cert_file = "$pki/server.crt"
key_file = "$pki/server.key"
client_ca_file = "$pki/ca.crt"

[qq_openapi]
base_url = "$sandbox_url"

[qq_openapi.apps.1110766236]
appkey = "demo-openapi-appkey"
EOF
  GAMEGATE_LOG_FORMAT=text NO_COLOR=1 target/debug/gamegate serve --config "$out/gamegate.toml" >"$log" 2>&1 &
  pid=$!
  # This check runs in a subshell: its own EXIT trap stops its own gamegate (the pid expanded now:
  # the function's locals are gone when the trap runs).
  # shellcheck disable=SC2064
  trap "kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true" EXIT
  for _ in $(seq 1 300); do
    addr="$(grep -m1 'gamegate is serving' "$log" | sed -nE 's/.*addr=([0-9.]+:[0-9]+).*/\1/p' || true)"
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "gamegate with TLS did not start:"
    cat "$log"
    return 1
  fi
  echo "gamegate with mTLS (pid $pid) on $addr"
  PYTHONPATH="$out/gen" timeout 60 "$python" "$here/python/tls_client.py" "$addr" "$pki/ca.crt" \
    "$pki/lobby.crt" "$pki/lobby.key"
  if grep -q "PRIVATE KEY" "$log"; then
    echo "the gamegate log holds a private key"
    return 1
  fi
}

check_reflection() {
  # No stub generated from proto/: everything comes from the server's reflection service.
  timeout 120 "$python" "$here/reflection/client.py" "$grpc_addr"
}

check_cpp() {
  local out="$build/cpp"
  rm -rf "$out" && mkdir -p "$out/gen" "$out/obj"
  protoc "${protoc_includes[@]}" --cpp_out="$out/gen" --grpc_out="$out/gen" \
    --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
    "${gamegate_protos[@]}" "${rpc_protos[@]}" "$health_proto"
  local flags
  flags="-std=c++17 -O0 -g0 -w $(pkg-config --cflags grpc++ protobuf) -I$out/gen"
  export flags out
  find "$out/gen" -name '*.cc' | sort | xargs -P "$(nproc)" -I{} sh -c \
    'g++ $flags -c "$1" -o "$out/obj/$(echo "$1" | tr / _).o"' _ {}
  # shellcheck disable=SC2086
  g++ $flags -c "$here/cpp/client.cc" -o "$out/obj/client.o"
  # shellcheck disable=SC2046
  g++ "$out"/obj/*.o -o "$out/client" $(pkg-config --libs grpc++ protobuf)
  echo "built $out/client from $(find "$out/gen" -name '*.cc' | wc -l) generated files"
  timeout 120 "$out/client" "$grpc_addr" "$sandbox_url"
}

check_go() {
  local out="$build/go" go=/usr/bin/go
  rm -rf "$out" && mkdir -p "$out/src/polyglot-client"
  # go_package "gamegate/gen/go/gamegate/v1;gamegatev1": the stubs land in GOPATH's src.
  # google.rpc and grpc.health.v1 are the packaged genproto / grpc-go ones: generating them
  # again would register the same proto files twice in the Go registry.
  protoc "${protoc_includes[@]}" --go_out="$out/src" --go-grpc_out="$out/src" "${gamegate_protos[@]}"
  cp "$here/go/client.go" "$out/src/polyglot-client/"
  (cd "$out/src/polyglot-client" &&
    GO111MODULE=off GOPATH="$out:/usr/share/gocode" GOPROXY=off GOFLAGS= "$go" build -o "$out/client" .)
  echo "built $out/client with $("$go" version | cut -d' ' -f3)"
  timeout 120 "$out/client" "$grpc_addr" "$sandbox_url"
}

check_java() {
  local out="$build/java" jars=/usr/share/java classpath="" jar
  rm -rf "$out" && mkdir -p "$out/gen" "$out/classes"
  protoc "${protoc_includes[@]}" --java_out="$out/gen" --grpc-java_out="$out/gen" \
    --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
    "${gamegate_protos[@]}" "${rpc_protos[@]}" "$health_proto"
  # Debian's jars; no proto-google-common-protos (it lacks ErrorInfo: google.rpc is generated),
  # geronimo-annotation for the @javax.annotation.Generated that the 1.41 plugin emits.
  for jar in grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub protobuf \
    guava perfmark-api gson jsr305 error_prone_annotations geronimo-annotation-1.3-spec netty-buffer \
    netty-codec netty-codec-http netty-codec-http2 netty-codec-socks netty-common netty-handler \
    netty-handler-proxy netty-resolver netty-transport netty-transport-native-unix-common; do
    [ -f "$jars/$jar.jar" ] || { echo "missing $jars/$jar.jar"; return 1; }
    classpath="$classpath:$jars/$jar.jar"
  done
  classpath="${classpath#:}"
  find "$out/gen" -name '*.java' >"$out/sources.txt"
  echo "$here/java/Client.java" >>"$out/sources.txt"
  javac -nowarn -encoding UTF-8 -d "$out/classes" -cp "$classpath" @"$out/sources.txt"
  echo "compiled $(wc -l <"$out/sources.txt") Java sources with $(javac -version 2>&1)"
  timeout 120 java -cp "$out/classes:$classpath" Client "$grpc_addr" "$sandbox_url"
}

# Stubs for the Node client: `buf generate` with protoc-gen-es v2 (node/buf.gen.yaml), messages
# and service descriptors as ESM JavaScript (+ .d.ts) in node/gen. google/rpc/error_details.proto
# is copied out of proto/vendor first: buf refuses a directory input that the repository's module
# (proto/, vendor excluded) contains.
generate_node_stubs() {
  [ "$node_ready" -eq 1 ] || { echo "the npm packages are not installed (see 'npm packages' above)"; return 1; }
  rm -rf "$build/node/protos" && mkdir -p "$build/node/protos/google/rpc"
  cp proto/vendor/google/rpc/error_details.proto "$build/node/protos/google/rpc/"
  (cd "$node_dir" && node_modules/.bin/buf generate)
  echo "generated $(find "$node_dir/gen" -name '*.js' | wc -l) JavaScript files with buf $("$node_dir/node_modules/.bin/buf" --version)"
}

check_node_connect() {
  generate_node_stubs
  timeout 120 node "$node_dir/client.mjs" "$grpc_addr" "$sandbox_url" connect
}

check_node_grpc_web() {
  generate_node_stubs
  timeout 120 node "$node_dir/client.mjs" "$grpc_addr" "$sandbox_url" grpc-web
}

check_php() {
  php -r 'exit(function_exists("curl_init") ? 0 : 1);' || { echo "php-curl is missing"; return 1; }
  timeout 60 php "$here/php/client.php" "$grpc_addr" "$sandbox_url"
}

names=(proto-lint python python-tls reflection cpp go java node-connect node-grpc-web php)
declare -A verdict seconds
passed=0
failed=0
summary() {
  step "summary"
  local name
  for name in "${names[@]}"; do
    printf '  %-13s %-4s %4ss\n' "$name" "${verdict[$name]:-FAIL}" "${seconds[$name]:--}"
  done
  echo "  total wall time $((SECONDS - started))s"
  echo "$passed passed, $failed failed"
}

run_check() {
  local name="$1" function="$2" begin=$SECONDS status
  step "$name"
  set +e
  (set -e; "$function") 2>&1 | tee "$build/$name.log"
  status=${PIPESTATUS[0]}
  set -e
  seconds[$name]=$((SECONDS - begin))
  if [ "$status" -eq 0 ]; then
    verdict[$name]=ok
    passed=$((passed + 1))
  else
    verdict[$name]=FAIL
    failed=$((failed + 1))
    echo "!! $name failed (exit $status); log: $build/$name.log"
  fi
}

prepare_protoc
run_check proto-lint check_proto_lint

# --------------------------------------------------------------------------------------------
# gamegate, wired to its built-in sandbox.
# --------------------------------------------------------------------------------------------
# A debug build: these checks are about behaviour, and CI has just built it for the tests.
step "cargo build --bin gamegate"
begin=$SECONDS
if ! cargo build --bin gamegate; then
  failed=$((failed + ${#names[@]} - passed - failed))
  summary
  exit 1
fi
echo "built in $((SECONDS - begin))s"

step "starting gamegate"
gamegate_pid=""
stop_gamegate() {
  if [ -n "$gamegate_pid" ] && kill -0 "$gamegate_pid" 2>/dev/null; then
    kill "$gamegate_pid" 2>/dev/null || true
    wait "$gamegate_pid" 2>/dev/null || true
  fi
}
trap stop_gamegate EXIT
trap 'exit 130' INT TERM
target/debug/gamegate serve --listen 127.0.0.1:0 >"$build/gamegate.log" 2>&1 &
gamegate_pid=$!
grpc_addr=""
sandbox_url=""
for _ in $(seq 1 300); do
  banner="$(grep -m1 '^gamegate listening on ' "$build/gamegate.log" || true)"
  if [ -n "$banner" ]; then
    grpc_addr="$(sed -E 's/^gamegate listening on ([^ ]+) .*/\1/' <<<"$banner")"
    sandbox_url="$(sed -E 's/.*wired to the built-in sandbox at (http:\/\/[^ ]+).*/\1/' <<<"$banner")"
    break
  fi
  kill -0 "$gamegate_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$grpc_addr" ] || [ -z "$sandbox_url" ]; then
  echo "gamegate did not print its addresses:"
  cat "$build/gamegate.log"
  failed=$((failed + ${#names[@]} - passed - failed))
  summary
  exit 1
fi
echo "gamegate (pid $gamegate_pid) on $grpc_addr, sandbox at $sandbox_url"
if ! "$python" - "$grpc_addr" <<'EOF'; then
import sys, time
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
channel = grpc.insecure_channel(sys.argv[1])
stub = health_pb2_grpc.HealthStub(channel)
deadline = time.monotonic() + 30
while True:
    try:
        if stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
            print("health: SERVING")
            break
    except grpc.RpcError as e:
        if time.monotonic() > deadline:
            sys.exit(f"health never SERVING: {e.code()}")
    time.sleep(0.2)
EOF
  cat "$build/gamegate.log"
  failed=$((failed + ${#names[@]} - passed - failed))
  summary
  exit 1
fi

run_check python check_python
run_check python-tls check_python_tls
run_check reflection check_reflection
run_check cpp check_cpp
run_check go check_go
run_check java check_java
run_check node-connect check_node_connect
run_check node-grpc-web check_node_grpc_web
run_check php check_php

stop_gamegate
summary
[ "$failed" -eq 0 ]
