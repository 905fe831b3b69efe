#!/usr/bin/env bash
# Errors during a rolling deployment behind a Berth ALB (issue 20: "errors during a rolling
# deployment: 0"), through the whole stack with the real aws CLI and wrk:
#
#   bench/lb/rolling.sh [deployments, default 3]
#
# With 0 deployments the same load runs for STEADY seconds (default 60) with no deployment:
# what the backends and the load balancer do under this load alone (timeouts seen then are
# not the deployments').
#
# `berth up --with-instance` on a free port; a busybox httpd image built FROM scratch and
# pushed to Berth's ECR; an ALB (HTTP :80) forwarding to an instance target group (health
# checks every 5 s, deregistration delay 5 s); a bridge service of 3 tasks on dynamic host
# ports behind it. Then, while wrk drives 64 keep-alive connections at the load balancer,
# each round registers a new revision, updates the service and waits until the deployment
# has COMPLETED and only the new revision answers; wrk's requests, non-2xx answers and
# socket errors of the whole run are reported. Exit status 1 when any request failed.
#
#   env BERTH_BIN  berth binary (default target/release/berth; BUILD=1 builds it first)
#   env AWS        aws CLI (default target/venv/bin/aws)
# Needs: docker, wrk, busybox-static, curl (apt-get install -y wrk busybox-static curl).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-3}
BERTH_BIN=${BERTH_BIN:-$ROOT/target/release/berth}
AWS=${AWS:-$ROOT/target/venv/bin/aws}
[ "${BUILD:-0}" = 1 ] && (cd "$ROOT" && cargo build --release -p berth)
for tool in wrk docker curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -x "$BERTH_BIN" ] || { echo "no berth binary at $BERTH_BIN (BUILD=1 builds it)" >&2; exit 1; }

WORK=$(mktemp -d)
TAG="berth-bench-rolling-$$"
BERTH_PID=""
cleanup() {
  [ -n "$BERTH_PID" ] && kill "$BERTH_PID" 2>/dev/null && wait "$BERTH_PID" 2>/dev/null
  "$BERTH_BIN" down --data-dir "$WORK/data" >/dev/null 2>&1 || true
  docker rmi -f "$TAG" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BERTH_ROOT_ACCESS_KEY_ID=AKIDBERTHBENCHROLL01 BERTH_ROOT_SECRET_ACCESS_KEY=benchRollingSecret0123456789abcdefghijk
export AWS_ACCESS_KEY_ID=$BERTH_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$BERTH_ROOT_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
unset AWS_PROFILE AWS_CA_BUNDLE
aws() { "$AWS" --endpoint-url "http://127.0.0.1:$PORT" --output json "$@"; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print(eval('v'+sys.argv[1]))" "$1"; }

"$BERTH_BIN" up --with-instance --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/berth.log" 2>&1 &
BERTH_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
for _ in $(seq 100); do
  [ "$(aws ecs list-container-instances --cluster default | field '["containerInstanceArns"].__len__()')" -ge 1 ] && break
  sleep 0.5
done

log "building and pushing the httpd image"
mkdir -p "$WORK/image/bin"
cp /bin/busybox "$WORK/image/bin/busybox"
for cmd in sh httpd hostname mkdir echo; do ln -sf busybox "$WORK/image/bin/$cmd"; done
printf 'FROM scratch\nCOPY bin/ /bin/\n' >"$WORK/image/Dockerfile"
docker build -q -t "$TAG" "$WORK/image" >/dev/null
REPO=$(aws ecr create-repository --repository-name "bench-rolling-$$" | field '["repository"]["repositoryUri"]')
aws ecr get-login-password | docker login -u AWS --password-stdin "127.0.0.1:$PORT" >/dev/null 2>&1
docker tag "$TAG" "$REPO:v1" && docker push -q "$REPO:v1" >/dev/null && docker rmi "$REPO:v1" >/dev/null

register() {
  aws ecs register-task-definition --family bench-rolling --network-mode bridge --container-definitions "[{
    \"name\": \"web\", \"image\": \"$REPO:v1\", \"memory\": 32, \"essential\": true, \"stopTimeout\": 2,
    \"entryPoint\": [\"sh\", \"-c\"],
    \"command\": [\"mkdir -p /www && echo $1 > /www/index.html && echo ok > /www/health && exec httpd -f -p 8080 -h /www\"],
    \"portMappings\": [{\"containerPort\": 8080, \"hostPort\": 0}]}]" | field '["taskDefinition"]["taskDefinitionArn"]'
}

log "load balancer, target group, service (in the default VPC)"
SUBNETS=$(aws ec2 describe-subnets --filters Name=default-for-az,Values=true | python3 -c '
import json,sys; s=sorted(json.load(sys.stdin)["Subnets"], key=lambda s: s["AvailabilityZone"])
print(" ".join(x["SubnetId"] for x in s[:2]))')
VPC=$(aws ec2 describe-vpcs --filters Name=is-default,Values=true | field '["Vpcs"][0]["VpcId"]')
LB=$(aws elbv2 create-load-balancer --name bench-rolling --subnets $SUBNETS)
LB_ARN=$(echo "$LB" | field '["LoadBalancers"][0]["LoadBalancerArn"]')
DNS=$(echo "$LB" | field '["LoadBalancers"][0]["DNSName"]')
TG=$(aws elbv2 create-target-group --name bench-rolling --protocol HTTP --port 8080 --vpc-id "$VPC" \
  --target-type instance --health-check-path /health --health-check-interval-seconds 5 \
  --health-check-timeout-seconds 2 --healthy-threshold-count 2 | field '["TargetGroups"][0]["TargetGroupArn"]')
aws elbv2 modify-target-group-attributes --target-group-arn "$TG" \
  --attributes Key=deregistration_delay.timeout_seconds,Value=5 >/dev/null
aws elbv2 create-listener --load-balancer-arn "$LB_ARN" --protocol HTTP --port 80 \
  --default-actions "Type=forward,TargetGroupArn=$TG" >/dev/null
TD=$(register v0)
aws ecs create-service --cluster default --service-name bench-rolling --task-definition "$TD" \
  --desired-count 3 --deployment-configuration minimumHealthyPercent=100,maximumPercent=200 \
  --load-balancers "targetGroupArn=$TG,containerName=web,containerPort=8080" >/dev/null
healthy() { aws elbv2 describe-target-health --target-group-arn "$TG" | python3 -c 'import json,sys; print(sum(d["TargetHealth"]["State"]=="healthy" for d in json.load(sys.stdin)["TargetHealthDescriptions"]))'; }
for _ in $(seq 120); do [ "$(healthy)" = 3 ] && break; sleep 1; done
[ "$(healthy)" = 3 ] || { echo "the service's targets never turned healthy" >&2; exit 1; }

log "wrk: 64 connections at http://$DNS/ through $ROUNDS rolling deployments"
wrk -t2 -c64 -d3600s --latency "http://$DNS/" >"$WORK/wrk.txt" 2>&1 &
WRK=$!
START=$(date +%s)
for round in $(seq "$ROUNDS"); do
  TD=$(register "v$round")
  aws ecs update-service --cluster default --service bench-rolling --task-definition "$TD" >/dev/null
  for _ in $(seq 240); do
    done_=$(aws ecs describe-services --cluster default --services bench-rolling | python3 -c '
import json,sys; s=json.load(sys.stdin)["services"][0]; d=s["deployments"]
print(int(len(d)==1 and d[0]["rolloutState"]=="COMPLETED" and d[0]["taskDefinition"]==sys.argv[1]))' "$TD")
    if [ "$done_" = 1 ] && [ "$(curl -fs "http://$DNS/")" = "v$round" ]; then break; fi
    sleep 1
  done
  log "deployment $round done after $(( $(date +%s) - START )) s"
done
if [ "$ROUNDS" = 0 ]; then sleep "${STEADY:-60}"; fi
kill -INT "$WRK"; wait "$WRK" || true
cat "$WORK/wrk.txt"
python3 - "$WORK/wrk.txt" "$ROUNDS" "$(( $(date +%s) - START ))" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
requests = int(re.search(r"(\d+) requests in", text).group(1))
non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
timeouts = int(sock.group(4)) if sock else 0
print(f"\nrolling deployments: {sys.argv[2]} in {sys.argv[3]} s; requests: {requests}; "
      f"non-2xx: {non2xx}; connect/read/write errors: {socket_errors - timeouts}; "
      f"over wrk's 2 s timeout: {timeouts}")
sys.exit(1 if non2xx or socket_errors - timeouts else 0)
PY
