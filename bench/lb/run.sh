#!/usr/bin/env bash
# The load balancer data plane against HAProxy, same backends, same load generator, same run.
#
#   bench/lb/run.sh [seconds per run, default 10] [rounds, default 3]
#
# Three nginx backends on 127.0.0.1 serve a small file (ALB: requests/s and p99 over 64
# keep-alive connections) and a 1 MiB file (NLB: TCP throughput over 64 connections).
# HAProxy (Debian) proxies in `mode http` / `mode tcp` with round robin, doing what the ALB
# does to a request (X-Forwarded-For, -Proto and -Port; keep-alive to the backends); both
# run WORKERS threads (default: one per core): HAProxy's nbthread, Berth's tokio workers.
# Berth's data plane
# runs from crates/lb/examples/serve_plan.rs (an ALB with an HTTP listener, an NLB with a TCP
# listener, one target group each over the same three backends). wrk drives both; each round
# runs HAProxy and Berth back to back, and the medians of the rounds are reported as ratios.
#
# THROUGH=api runs Berth's side through the whole product instead: a release `berth server`
# on a free port, and the ALB, the NLB, their ip target groups over the same backends and
# their listeners made with the aws CLI (target/venv/bin/aws); wrk then drives the load
# balancers at their DNSName (a loopback address of their own). Berth's data plane then
# shares its runtime's WORKERS threads with the control plane (idle here, but health
# checks go through ELBv2's records).
# Needs: apt-get install -y haproxy wrk nginx
set -euo pipefail
shopt -s inherit_errexit
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${1:-10}
ROUNDS=${2:-3}
CONNECTIONS=64
THREADS=2
WORKERS=${WORKERS:-$(nproc)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in haproxy wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y haproxy wrk nginx curl" >&2; exit 1; }
done

THROUGH=${THROUGH:-plan}
if [ "$THROUGH" = api ]; then
  cargo build --release -p berth
  BERTH_BIN=$CARGO_TARGET_DIR/release/berth
else
  cargo build --release -p berth-lb --examples
  BIN=$CARGO_TARGET_DIR/release/examples/serve_plan
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
B1=$(free_port); B2=$(free_port); B3=$(free_port)
HA_HTTP=$(free_port); HA_TCP=$(free_port); LB_HTTP=$(free_port); LB_TCP=$(free_port)

mkdir -p "$WORK/www" "$WORK/logs"
head -c 128 /dev/zero | tr '\0' 'x' >"$WORK/www/small.txt"
echo ok >"$WORK/www/index.html"
head -c 1048576 /dev/urandom >"$WORK/www/big.bin"
# nginx workers run as www-data; mktemp -d is private to its owner.
chmod -R a+rX "$WORK"

cat >"$WORK/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server { listen 127.0.0.1:$B1; root $WORK/www; }
  server { listen 127.0.0.1:$B2; root $WORK/www; }
  server { listen 127.0.0.1:$B3; root $WORK/www; }
}
NGINX
nginx -p "$WORK" -c "$WORK/nginx.conf" & PIDS+=($!)

cat >"$WORK/haproxy.cfg" <<HAPROXY
global
  maxconn 4000
  nbthread $WORKERS
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend alb
  mode http
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Port %[dst_port]
  bind 127.0.0.1:$HA_HTTP
  default_backend web
backend web
  mode http
  balance roundrobin
  http-reuse always
  option httpchk GET /small.txt
  server b1 127.0.0.1:$B1 check inter 5s
  server b2 127.0.0.1:$B2 check inter 5s
  server b3 127.0.0.1:$B3 check inter 5s
frontend nlb
  mode tcp
  bind 127.0.0.1:$HA_TCP
  default_backend tcpweb
backend tcpweb
  mode tcp
  balance roundrobin
  server b1 127.0.0.1:$B1 check inter 5s
  server b2 127.0.0.1:$B2 check inter 5s
  server b3 127.0.0.1:$B3 check inter 5s
HAPROXY
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/logs/haproxy.log" 2>&1 & PIDS+=($!)

if [ "$THROUGH" = api ]; then
  API=$(free_port)
  export BERTH_ROOT_ACCESS_KEY_ID=AKIDBERTHBENCHLBAPI1 BERTH_ROOT_SECRET_ACCESS_KEY=benchLbApiSecret0123456789abcdefghijklm
  export AWS_ACCESS_KEY_ID=$BERTH_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$BERTH_ROOT_SECRET_ACCESS_KEY
  export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
  unset AWS_PROFILE AWS_CA_BUNDLE
  AWS=${AWS:-$ROOT/target/venv/bin/aws}
  aws() { "$AWS" --endpoint-url "http://127.0.0.1:$API" --output text "$@"; }
  TOKIO_WORKER_THREADS=$WORKERS "$BERTH_BIN" server --data-dir "$WORK/berth" --listen "127.0.0.1:$API" \
    >"$WORK/logs/berth.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$API/health" >/dev/null && break; sleep 0.2; done
  SUBNETS=$(aws ec2 describe-subnets --filters Name=default-for-az,Values=true --query 'Subnets[].SubnetId')
  VPC=$(aws ec2 describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId')
  balancer() { # name type protocol health-protocol port -> the listener's URL host:port
    local arn dns tg
    read -r arn dns < <(aws elbv2 create-load-balancer --name "$1" --type "$2" --subnets $SUBNETS \
      --query 'LoadBalancers[0].[LoadBalancerArn,DNSName]')
    tg=$(aws elbv2 create-target-group --name "$1" --protocol "$3" --port 80 --vpc-id "$VPC" \
      --target-type ip --health-check-protocol "$4" --health-check-interval-seconds 5 \
      --health-check-timeout-seconds 2 \
      $( [ "$4" = HTTP ] && echo --health-check-path /small.txt ) \
      --query 'TargetGroups[0].TargetGroupArn')
    aws elbv2 register-targets --target-group-arn "$tg" \
      --targets Id=127.0.0.1,Port=$B1 Id=127.0.0.1,Port=$B2 Id=127.0.0.1,Port=$B3 >/dev/null
    aws elbv2 create-listener --load-balancer-arn "$arn" --protocol "$3" --port "$5" \
      --default-actions "Type=forward,TargetGroupArn=$tg" >/dev/null
    for _ in $(seq 60); do
      [ "$(aws elbv2 describe-target-health --target-group-arn "$tg" \
        --query "length(TargetHealthDescriptions[?TargetHealth.State=='healthy'])")" = 3 ] && break
      sleep 1
    done
    echo "$dns:$5"
  }
  ALB_AT=$(balancer bench-alb application HTTP HTTP "$LB_HTTP")
  NLB_AT=$(balancer bench-nlb network TCP TCP "$LB_TCP")
  echo "Berth through its API: ALB at $ALB_AT, NLB at $NLB_AT"
else
  LB_THREADS=$WORKERS "$BIN" --workers "$WORKERS" --alb "$LB_HTTP" --nlb "$LB_TCP" \
    --target "127.0.0.1:$B1" --target "127.0.0.1:$B2" --target "127.0.0.1:$B3" \
    >"$WORK/logs/berth.log" 2>&1 & PIDS+=($!)
  ALB_AT=127.0.0.1:$LB_HTTP
  NLB_AT=127.0.0.1:$LB_TCP
fi

for at in 127.0.0.1:$B1 127.0.0.1:$B2 127.0.0.1:$B3 127.0.0.1:$HA_HTTP 127.0.0.1:$HA_TCP $ALB_AT $NLB_AT; do
  for _ in $(seq 100); do curl -sf -o /dev/null "http://$at/small.txt" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://$at/small.txt" || { echo "$at does not answer" >&2; cat "$WORK"/logs/*; exit 1; }
done

# wrk's latency in ms whatever unit it prints; transfer in MB/s.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f\n", v}'; }
to_mbs() { awk '{v=$1; if (v ~ /GB$/) {sub(/GB$/,"",v); v*=1024} else if (v ~ /MB$/) {sub(/MB$/,"",v)} else if (v ~ /KB$/) {sub(/KB$/,"",v); v/=1024}; printf "%.1f\n", v}'; }
run_wrk() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$WORK/results"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm both up (pools, health checks settled).
wrk -t2 -c64 -d2s "http://127.0.0.1:$HA_HTTP/small.txt" >/dev/null
wrk -t2 -c64 -d2s "http://$ALB_AT/small.txt" >/dev/null
for round in $(seq "$ROUNDS"); do
  for who in haproxy berth; do
    if [ $who = haproxy ]; then http=127.0.0.1:$HA_HTTP; tcp=127.0.0.1:$HA_TCP; else http=$ALB_AT; tcp=$NLB_AT; fi
    out=$(run_wrk "http://$http/small.txt")
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
    out=$(run_wrk "http://$tcp/big.bin")
    mbs=$(echo "$out" | awk '/^Transfer\/sec/ {print $2}' | to_mbs)
    echo "round $round $who: ALB ${rps} req/s p99 ${p99} ms; NLB ${mbs} MB/s ${errors}"
    echo "$who $rps $p99 $mbs" >>"$WORK/results"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

m() { awk -v w="$1" -v c="$2" '$1==w {print $c}' "$WORK/results" | median; }
ha_rps=$(m haproxy 2); lb_rps=$(m berth 2)
ha_p99=$(m haproxy 3); lb_p99=$(m berth 3)
ha_mbs=$(m haproxy 4); lb_mbs=$(m berth 4)
echo
echo "Berth through: $THROUGH; medians of $ROUNDS rounds, ${DURATION}s each, $CONNECTIONS connections, wrk -t$THREADS, $WORKERS proxy threads, $(nproc) cores:"
printf "%-28s %12s %12s %8s\n" "" HAProxy Berth ratio
printf "%-28s %12s %12s %8.2f\n" "ALB requests/s" "$ha_rps" "$lb_rps" "$(echo "$lb_rps $ha_rps" | awk '{print $1/$2}')"
printf "%-28s %12s %12s %8.2f\n" "ALB p99 latency (ms)" "$ha_p99" "$lb_p99" "$(echo "$lb_p99 $ha_p99" | awk '{print $1/$2}')"
printf "%-28s %12s %12s %8.2f\n" "NLB throughput (MB/s)" "$ha_mbs" "$lb_mbs" "$(echo "$lb_mbs $ha_mbs" | awk '{print $1/$2}')"
