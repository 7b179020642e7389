# What the shell scripts share (source it): the tools the checks and tests need, installed or
# started where they are missing, so that the scripts run on a fresh machine (CI: root, no stdin),
# and small helpers.

setup_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# sudo only where not root: CI runs as root, with no terminal for a password.
setup_sudo=$([ "$(id -u)" = 0 ] || echo sudo)
setup_dockerd_pid=
setup_dockerd_log=

# The Python tools of requirements-dev.txt, installed when any of them is missing or is not the
# pinned version (moto-server needs moto's pinned version, for one).
ensure_python_tools() {
  local tool missing=()
  for tool in moto_server cfn-lint sam schemathesis; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ "${#missing[@]}" -eq 0 ] && python3 - "$setup_root/requirements-dev.txt" <<'PYTHON'
import re, sys
from importlib.metadata import PackageNotFoundError, version
for line in open(sys.argv[1]):
    pin = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^]]*\])?==(\S+)", line)
    try:
        if pin and version(pin[1]) != pin[3]:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYTHON
  then
    return 0
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== python tools: ${missing[*]} missing, pip install -r requirements-dev.txt"
  else
    echo "== python tools: not the pinned versions, pip install -r requirements-dev.txt"
  fi
  python3 -m pip install --quiet --disable-pip-version-check -r "$setup_root/requirements-dev.txt"
  # pyenv makes the shims of newly installed commands only on a rehash.
  if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash
  fi
  hash -r
  for tool in "${missing[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$tool is still missing after pip install -r requirements-dev.txt" >&2
      return 1
    fi
  done
}

# The policy checkers of scripts/sam/policy-check, as policy/requirements.txt and
# policy/package-lock.json pin them: checkov in a virtual environment of its own (it pins a boto3
# the SAM CLI cannot share), and cfn-guard with Control Tower's rules as the npm package
# @cdklabs/cdk-validator-cfnguard ships them (installed with its integrity checked, no install
# scripts run, its peer aws-cdk-lib left out: only the binary and the rules are used). Kept in the
# user's cache, one folder per pinned set; sets policy_checkov, policy_guard and policy_rules.
policy_checkov=
policy_guard=
policy_rules=
ensure_policy_tools() {
  local pins dir arch
  pins=$(cat "$setup_root/policy/requirements.txt" "$setup_root/policy/package-lock.json" | sha256sum | cut -c1-16)
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/connector-registry/policy-tools-$pins"
  case "$(uname -m)" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) echo "cfn-guard ships no binary for $(uname -m)" >&2; return 1 ;;
  esac
  policy_checkov="$dir/venv/bin/checkov"
  policy_guard="$dir/node_modules/@cdklabs/cdk-validator-cfnguard/bin/ubuntu/$arch/cfn-guard"
  policy_rules="$dir/node_modules/@cdklabs/cdk-validator-cfnguard/rules/control-tower/cfn-guard"
  if [ -f "$dir/installed" ]; then
    return 0
  fi
  echo "== policy tools: installing checkov and cfn-guard (policy/) into $dir"
  if ! command -v npm >/dev/null 2>&1; then
    $setup_sudo apt-get update -qq
    $setup_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$setup_root/policy/requirements.txt"
  cp "$setup_root/policy/package.json" "$setup_root/policy/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --legacy-peer-deps --ignore-scripts --no-audit --no-fund --no-update-notifier --loglevel=error)
  "$policy_checkov" --version >/dev/null
  "$policy_guard" --version >/dev/null
  touch "$dir/installed"
}

docker_answers() { $setup_sudo docker info >/dev/null 2>&1; }

# A docker daemon for the `sam local` tests, and debootstrap for scripts/sam/base-image. Where no
# daemon answers, dockerd is started (installed first when missing) and stop_started_dockerd
# stops it again.
ensure_docker() {
  local packages=()
  command -v debootstrap >/dev/null 2>&1 || packages+=(debootstrap)
  if ! docker_answers && ! { command -v dockerd && command -v docker; } >/dev/null 2>&1; then
    packages+=(docker.io)
  fi
  if [ "${#packages[@]}" -gt 0 ]; then
    echo "== installing ${packages[*]}"
    $setup_sudo apt-get update -qq
    $setup_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
  if docker_answers; then
    return 0
  fi
  echo "== starting dockerd"
  setup_dockerd_log=$(mktemp)
  # No iptables rules, forwarding or masquerading: containers reach the host's bridge address and
  # nothing else (the tests' S3/DynamoDB stand-in listens there).
  $setup_sudo dockerd --storage-driver overlay2 --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --exec-opt native.cgroupdriver=cgroupfs >"$setup_dockerd_log" 2>&1 &
  setup_dockerd_pid=$!
  for _ in $(seq 1 60); do
    if docker_answers; then
      return 0
    fi
    # (/proc, not kill -0: a dockerd started through sudo is not ours to signal.)
    [ -e "/proc/$setup_dockerd_pid" ] || break
    sleep 1
  done
  cat "$setup_dockerd_log" >&2
  echo "dockerd did not start" >&2
  return 1
}

# Stops the dockerd that ensure_docker started, if it started one (for an EXIT trap).
stop_started_dockerd() {
  if [ -z "$setup_dockerd_pid" ]; then
    return 0
  fi
  $setup_sudo kill "$setup_dockerd_pid" 2>/dev/null || true
  # dockerd stops its containers and its containerd before it exits.
  for _ in $(seq 1 30); do
    [ -e "/proc/$setup_dockerd_pid" ] || break
    sleep 1
  done
  rm -f "$setup_dockerd_log"
  setup_dockerd_pid=
}

# COUNT (default 1) distinct free loopback ports, all held while they are picked: one after
# another, the system may hand out the same port twice.
free_ports() {
  python3 -c 'import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))' "${1:-1}"
}

free_port() { free_ports 1; }

# Waits up to 10 s for URL to answer with a success.
wait_for() {
  for _ in $(seq 1 100); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1])' "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$1 did not answer" >&2
  return 1
}

# A private PostgreSQL cluster for the Obsrv mirror's tests: Debian's server (installed when
# missing), initdb as the postgres user into a temporary folder, listening on 127.0.0.1:PORT only
# (no Unix socket outside the folder), trust authentication for the postgres role.
# stop_started_postgres stops it and removes the folder.
setup_postgres_dir=
setup_postgres_bin=
ensure_postgres() {
  local port=$1 bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "== installing postgresql"
    $setup_sudo apt-get update -qq
    $setup_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  setup_postgres_bin=$bin
  setup_postgres_dir=$(mktemp -d)
  chown postgres "$setup_postgres_dir"
  # As the postgres user (initdb refuses root), with no password prompt.
  as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
  as_postgres "$bin/initdb" --pgdata="$setup_postgres_dir/data" --auth=trust --username=postgres \
    --encoding=UTF8 --locale=C.UTF-8 >"$setup_postgres_dir/initdb.log" 2>&1 ||
    { cat "$setup_postgres_dir/initdb.log" >&2; return 1; }
  as_postgres "$bin/pg_ctl" --pgdata="$setup_postgres_dir/data" --log="$setup_postgres_dir/server.log" --wait \
    --options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$setup_postgres_dir -c fsync=off" \
    start >/dev/null || { cat "$setup_postgres_dir/server.log" >&2; return 1; }
}

stop_started_postgres() {
  if [ -z "$setup_postgres_dir" ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$setup_postgres_bin/pg_ctl" --pgdata="$setup_postgres_dir/data" --mode=fast --wait stop >/dev/null 2>&1 || true
  else
    sudo -u postgres "$setup_postgres_bin/pg_ctl" --pgdata="$setup_postgres_dir/data" --mode=fast --wait stop >/dev/null 2>&1 || true
  fi
  rm -rf "$setup_postgres_dir"
  setup_postgres_dir=
}
