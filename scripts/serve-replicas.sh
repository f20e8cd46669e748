#!/usr/bin/env bash
# N qa-serve replicas behind nginx, all on 127.0.0.1, for a machine without containers:
#   bash scripts/serve-replicas.sh 2
# Replicas listen on QA_PORT+1 ... QA_PORT+N and nginx on QA_PORT (default 8000); they serve
# QA_INDEX_DIR (default data/index) and QA_ARTICLES_DIR (default data/articles), and each
# hot-swaps on its own when CURRENT moves. nginx sends a request that fails to connect (a
# replica down or restarting) to the next replica; a replica that exits is restarted here.
# SIGTERM or Ctrl-C stops them all. QA_REPLICA_CPUS="0 1 ..." pins replica i to the i-th CPU
# listed (taskset), one core each. nginx passes the reader's address in X-Forwarded-For, and
# the replicas believe that header from nginx's address, 127.0.0.1, only (QA_TRUSTED_PROXIES):
# a client on another address is taken at its word. (nginx cannot connect from an address of
# its own here: with `proxy_bind 127.0.0.2` it stopped failing over when a replica was
# killed.) Needs nginx (Debian: apt-get install nginx-light) and `bash scripts/setup.sh` run
# once.
set -euo pipefail
cd "$(dirname "$0")/.."

replicas="${1:-2}"
if ! [[ "$replicas" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 N   (N replicas, at least 1)" >&2
  exit 2
fi
command -v nginx >/dev/null || { echo "serve-replicas: nginx is not installed (Debian: apt-get install nginx-light)" >&2; exit 1; }
[ -x .venv/bin/qa-serve ] || { echo "serve-replicas: run bash scripts/setup.sh first" >&2; exit 1; }

port="${QA_PORT:-8000}"
index_dir="${QA_INDEX_DIR:-data/index}"
articles_dir="${QA_ARTICLES_DIR:-data/articles}"
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/qa-replicas.XXXXXX")"
read -r -a cpus <<< "${QA_REPLICA_CPUS:-}"
proxy_address=127.0.0.1  # where nginx connects to the replicas from

upstream=""
for i in $(seq 1 "$replicas"); do
  # max_fails=0: no replica is ever marked down. A replica that is restarting refuses the
  # connection at once (same machine), and the request goes on to the next; marking it down
  # for a while gained nothing, and when the other was marked down too (one failed attempt in
  # the same 2 s) nginx answered 502 "no live upstreams" although that one was answering.
  upstream+="    server 127.0.0.1:$((port + i)) max_fails=0;"$'\n'
done
cat > "$run_dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $run_dir/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $run_dir/body;
  proxy_temp_path $run_dir/proxy;
  fastcgi_temp_path $run_dir/fastcgi;
  uwsgi_temp_path $run_dir/uwsgi;
  scgi_temp_path $run_dir/scgi;
  client_max_body_size 25m;
  # Slow clients wait here, not in a replica (as deploy/nginx-replicas.conf).
  client_header_timeout 10s;
  client_body_timeout 10s;
  send_timeout 30s;
  keepalive_timeout 15s;
  upstream qa_replicas {
$upstream  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://qa_replicas;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      # A refused or reset connection, or a replica still loading its index (503), is retried
      # on the next one. POST too: /ask only reads, and an article upload writes the same file.
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries $replicas;
      proxy_connect_timeout 2s;
      proxy_read_timeout 300s;
      proxy_buffering off;  # /ask/stream sends Server-Sent Events as they are written
    }
  }
}
EOF

supervise() {  # run one replica, restarting it when it exits, until we are stopping
  local replica_port="$1" pin=()
  [ -n "${2:-}" ] && pin=(taskset -c "$2")
  # Caught, not ignored: the replica itself still gets the default (it stops on Ctrl-C), and
  # only the main shell decides to stop (below), so nothing is restarted then.
  trap ':' TERM INT
  while [ ! -e "$run_dir/stopping" ]; do
    QA_TRUSTED_PROXIES="$proxy_address" "${pin[@]}" .venv/bin/qa-serve --index "$index_dir" --articles "$articles_dir" --host 127.0.0.1 --port "$replica_port" &
    local pid=$!
    echo "$pid" > "$run_dir/replica-$replica_port.pid"
    while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done  # a trapped signal ends `wait` early
    sleep 1  # a signal to the whole group stops the replica and us at once: let `stop` mark it
    [ -e "$run_dir/stopping" ] && break
    echo "serve-replicas: replica on port $replica_port exited; restarting it" >&2
  done
}

stop() {  # stop everything, and return once every replica and nginx has exited
  touch "$run_dir/stopping"
  for pid_file in "$run_dir"/*.pid; do
    [ -e "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
  wait || true
  rm -rf "$run_dir"
  exit 0
}
trap stop TERM INT

for i in $(seq 1 "$replicas"); do
  supervise "$((port + i))" "${cpus[$((i - 1))]:-}" &
done
nginx -c "$run_dir/nginx.conf" -p "$run_dir" &
echo "serve-replicas: $replicas replicas on ports $((port + 1))-$((port + replicas)), nginx on http://127.0.0.1:$port (run files in $run_dir)" >&2
wait
