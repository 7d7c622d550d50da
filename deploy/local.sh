#!/usr/bin/env bash
# Two Toponimo workers behind nginx, all on loopback: http://127.0.0.1:8080 (Ctrl-C stops all).
#
#   .venv/bin/uv run --locked --no-dev bash deploy/local.sh
#
# Workers: `python -m app` on 127.0.0.1:8001 and :8002; nginx (Debian's: apt-get install nginx)
# with deploy/nginx/toponimo.conf in front, run without root from a scratch folder. Settings:
#   TOPONIMO_PROXY_PORT (8080), TOPONIMO_WORKER_PORTS ("8001 8002"), TOPONIMO_RUN_DIR (a new
#   temporary folder: the rendered nginx.conf, logs, and worker-PORT.pid), PYTHON (python3),
#   NGINX (nginx on PATH, else /usr/sbin/nginx); TOPONIMO_MODELS_DIR reaches the workers.
set -euo pipefail
cd "$(dirname "$0")/.."

proxy_port=${TOPONIMO_PROXY_PORT:-8080}
read -r -a worker_ports <<< "${TOPONIMO_WORKER_PORTS:-8001 8002}"
[ "${#worker_ports[@]}" -eq 2 ] || { echo "TOPONIMO_WORKER_PORTS: two ports, got '${worker_ports[*]}'" >&2; exit 2; }
python=${PYTHON:-python3}
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "nginx not found (apt-get install nginx)" >&2; exit 2; }
run_dir=${TOPONIMO_RUN_DIR:-$(mktemp -d -t toponimo-local.XXXXXX)}
mkdir -p "$run_dir/temp"

# the committed file with these ports (it is written for 8001, 8002 and 8080)
sed -e "s/127\.0\.0\.1:8001 /127.0.0.1:${worker_ports[0]} /" \
    -e "s/127\.0\.0\.1:8002 /127.0.0.1:${worker_ports[1]} /" \
    -e "s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:${proxy_port};/" \
    deploy/nginx/toponimo.conf > "$run_dir/nginx.conf"
nginx_args=(-p "$run_dir" -c "$run_dir/nginx.conf" -e "$run_dir/error.log")
"$nginx" -t -q "${nginx_args[@]}"

pids=()
stop() {
  trap - EXIT INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true   # workers drain, nginx stops
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in "${worker_ports[@]}"; do
  "$python" -m app --host 127.0.0.1 --port "$port" > "$run_dir/worker-$port.log" 2>&1 &
  pids+=($!)
  echo $! > "$run_dir/worker-$port.pid"
done

# nginx only once both workers answer /readyz (start-up loads the models: a few seconds)
"$python" - "${worker_ports[@]}" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 120
for port in sys.argv[1:]:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"worker on port {port} not ready after 120 s")
            time.sleep(0.2)
PY

"$nginx" "${nginx_args[@]}" &
pids+=($!)
echo "Toponimo: http://127.0.0.1:$proxy_port (workers on ${worker_ports[*]}; logs in $run_dir)"
wait "${pids[-1]}"
