# Sourced by overhead.sh and ab.sh: the worst-case workload they share, and
# how both read the machine's idle time while it runs.

# The server: nginx answering `return 200 "ok\n"` on 127.0.0.1:$NGINX_PORT,
# one worker, no access log, keep-alive without a request limit, everything
# under $WORK. Sets NGINX_PID and returns once nginx answers; the caller
# stops it.
start_nginx_workload() {
  cat > "$WORK/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
user root;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/proxy;
  fastcgi_temp_path $WORK/fastcgi;
  uwsgi_temp_path $WORK/uwsgi;
  scgi_temp_path $WORK/scgi;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { return 200 "ok\n"; }
  }
}
CONF
  nginx -c "$WORK/nginx.conf" -e "$WORK/error.log" &
  NGINX_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && return 0
    sleep 0.05
  done
  echo "nginx did not answer on 127.0.0.1:$NGINX_PORT:" >&2
  cat "$WORK/error.log" >&2
  return 1
}

# "idle total" clock ticks of the machine so far, all CPUs (idle + iowait;
# every field).
idle_ticks() {
  awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# Per mille of all CPUs' time spent idle since a mark read from idle_ticks:
#   read -r i0 t0 < <(idle_ticks); ...; idle_permille_since "$i0" "$t0"
idle_permille_since() {
  local i1 t1
  read -r i1 t1 < <(idle_ticks)
  echo $(((i1 - $1) * 1000 / (t1 - $2 > 0 ? t1 - $2 : 1)))
}

# CPU time a process's threads have used so far, ns (schedstat: exact, where
# /proc/PID/stat counts clock ticks).
proc_cpu_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'
}
