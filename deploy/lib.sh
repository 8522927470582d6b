# Shell helpers shared by the deploy scripts (sourced, not run).

# Set key=value in a properties file, replacing an existing line or appending.
set_conf() {
  local file="$1" key="$2" value="$3"
  if grep -q "^${key}=" "$file"; then
    sed -i "s|^${key}=.*|${key}=${value}|" "$file"
  else
    [[ -z "$(tail -c 1 "$file")" ]] || echo >>"$file"  # the distribution's files end without a newline
    echo "${key}=${value}" >>"$file"
  fi
}

# Whether something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid in FILE (empty when there is none), and whether that process is alive.
pid_in() { [[ -f "$1" ]] && cat "$1" || true; }
alive_in() { local pid; pid="$(pid_in "$1")"; [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }

# The JDK 17 of this machine kind, unless JAVA_HOME says otherwise.
default_java_home() {
  if [[ -z "${JAVA_HOME:-}" && -d /usr/lib/jvm/java-17-openjdk-amd64 ]]; then
    export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
  fi
}

# Bind a Python function instance's gRPC and metrics servers to 127.0.0.1 in DIR (a copy
# of instances/python-instance): they listen on every interface otherwise, and take no
# setting. Idempotent; fails when those files changed.
confine_python_instance_in() {
  local dir="$1"
  [[ -d "$dir" ]] || return 0
  sed -i "s|add_insecure_port('\[::\]:%d' % port)|add_insecure_port('127.0.0.1:%d' % port)|" "$dir/server.py"
  sed -i "s|^def start_http_server(port, addr=''|def start_http_server(port, addr='127.0.0.1'|" \
    "$dir/prometheus_client_fix.py"
  grep -q "add_insecure_port('127.0.0.1:%d' % port)" "$dir/server.py" \
    || die "cannot bind the function instances' gRPC port to 127.0.0.1: $dir/server.py changed"
  grep -q "^def start_http_server(port, addr='127.0.0.1'" "$dir/prometheus_client_fix.py" \
    || die "cannot bind the function instances' metrics port to 127.0.0.1: $dir/prometheus_client_fix.py changed"
}
