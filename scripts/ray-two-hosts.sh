#!/usr/bin/env bash
# Ray ingest across two hosts, shown on one machine: two network namespaces joined by a veth
# pair (10.77.0.1 and 10.77.0.2), a Ray head in the first and a worker in the second, one CPU
# each, then `qa-ingest --engine ray` from the head. Ray's own task records (its state API)
# then say which node ran each embedding batch. Run as root, after `bash scripts/setup.sh`:
#   bash scripts/ray-two-hosts.sh [ARTICLES_DIR]     (default data/articles)
# Everything it made (namespaces, Ray processes, the index in a temporary folder) is removed
# on exit. Needs iproute2 (Debian: apt-get install iproute2).
set -euo pipefail
cd "$(dirname "$0")/.."
articles="$(realpath "${1:-data/articles}")"
[ "$(id -u)" -eq 0 ] || { echo "ray-two-hosts: run as root (it creates network namespaces)" >&2; exit 1; }
command -v ip >/dev/null || { echo "ray-two-hosts: needs iproute2 (apt-get install iproute2)" >&2; exit 1; }

work="$(mktemp -d)"
head=qa-ray-head worker=qa-ray-worker
export RAY_AUTH_MODE=disabled HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

cleanup() {
  in_ns "$worker" .venv/bin/ray stop --force >/dev/null 2>&1 || true
  in_ns "$head" .venv/bin/ray stop --force >/dev/null 2>&1 || true
  ip netns delete "$head" 2>/dev/null || true
  ip netns delete "$worker" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$head"
ip netns add "$worker"
ip link add qa-ray-a type veth peer name qa-ray-b
ip link set qa-ray-a netns "$head"
ip link set qa-ray-b netns "$worker"
in_ns "$head" ip addr add 10.77.0.1/24 dev qa-ray-a
in_ns "$worker" ip addr add 10.77.0.2/24 dev qa-ray-b
for ns in "$head" "$worker"; do
  in_ns "$ns" ip link set lo up
done
in_ns "$head" ip link set qa-ray-a up
in_ns "$worker" ip link set qa-ray-b up

echo "== hosts: head 10.77.0.1 ($head), worker 10.77.0.2 ($worker)"
in_ns "$head" .venv/bin/ray start --head --node-ip-address 10.77.0.1 --port 6379 --num-cpus 1 --dashboard-host 127.0.0.1 \
  --include-dashboard true --temp-dir "$work/ray-head" --disable-usage-stats >/dev/null
in_ns "$worker" .venv/bin/ray start --address 10.77.0.1:6379 --node-ip-address 10.77.0.2 --num-cpus 1 \
  --temp-dir "$work/ray-worker" --disable-usage-stats >/dev/null
echo "== cluster"
in_ns "$head" .venv/bin/python - <<'EOF'
import ray
ray.init(address="10.77.0.1:6379", logging_level="ERROR")
for node in ray.nodes():
    print(f"node {node['NodeManagerAddress']}: alive={node['Alive']} CPU={node['Resources'].get('CPU')}")
EOF

echo "== qa-ingest --engine ray from the head"
in_ns "$head" .venv/bin/qa-ingest "$articles" --index "$work/index" --engine ray --ray-address 10.77.0.1:6379 --quiet

echo "== Ray's task records: where the embedding batches ran"
in_ns "$head" .venv/bin/python - <<'EOF'
from collections import Counter

import ray
from ray.util.state import list_nodes, list_tasks

ray.init(address="10.77.0.1:6379", logging_level="ERROR")
ip_of = {node.node_id: node.node_ip for node in list_nodes()}
tasks = Counter()
for task in list_tasks(filters=[("state", "=", "FINISHED")], limit=10000, detail=True):
    if "_Encoder" in task.name:
        tasks[(str(ip_of.get(task.node_id, task.node_id)), str(task.type), str(task.name))] += 1
for (ip, kind, name), count in sorted(tasks.items()):
    print(f"{ip}  {kind:22} {name}: {count}")
worker = sum(n for (ip, kind, name), n in tasks.items() if ip == "10.77.0.2" and name.endswith(".encode"))
print("embedding batches run on the worker host:", worker)
EOF
