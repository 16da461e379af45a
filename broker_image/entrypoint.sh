#!/usr/bin/env bash
# Entrypoint of the Apache Kafka broker image: renders this pod's server.properties from the
# configuration the control plane mounted and the pod's own identity, formats the storage only when it
# was never formatted, and execs Kafka (so the JVM is PID 1 and gets the pod's SIGTERM).
#
# The contract (every variable, every refusal) is written down in broker_image/README.md; keep both in
# step. It refuses to start, before anything touches the disks, when:
#   - KAFKA_CLUSTER_ID is missing or not a Kafka cluster id (a broker must never invent a cluster);
#   - no node id can be found (KAFKA_NODE_ID, or the ordinal at the end of POD_NAME/HOSTNAME);
#   - the mounted configuration names another node id or rack than the pod's;
#   - a placeholder the configuration uses has no value;
#   - a data directory is not writable, or its storage belongs to another cluster;
#   - an unformatted controller of a dynamic quorum has no KAFKA_INITIAL_CONTROLLERS.
set -euo pipefail

log() { printf 'kafka-entrypoint: %s\n' "$*" >&2; }
refuse() {
  log "refusing to start: $*"
  exit 64
}

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
KAFKA_CONFIG_DIR=${KAFKA_CONFIG_DIR:-/etc/kafka/config}
KAFKA_RUNTIME_DIR=${KAFKA_RUNTIME_DIR:-/tmp/kafka}
JMX_EXPORTER_JAR=${JMX_EXPORTER_JAR:-/opt/jmx-exporter/jmx_prometheus_javaagent.jar}
JMX_EXPORTER_CONFIG=${JMX_EXPORTER_CONFIG:-/opt/jmx-exporter/kafka.yml}

# --- the cluster id: required, never generated --------------------------------------------------------
cluster_id=${KAFKA_CLUSTER_ID:-}
[[ -n $cluster_id ]] || refuse "KAFKA_CLUSTER_ID is not set (the cluster's Secret provides it; a broker never makes one up)"
# Kafka's Uuid notation: 16 bytes, unpadded base64url.
[[ $cluster_id =~ ^[A-Za-z0-9_-]{22}$ ]] || refuse "KAFKA_CLUSTER_ID '$cluster_id' is not a Kafka cluster id (22 characters of base64url)"

# --- who this pod is ------------------------------------------------------------------------------------
pod_name=${POD_NAME:-${HOSTNAME:-}}
if [[ -n ${KAFKA_NODE_ID:-} ]]; then
  [[ $KAFKA_NODE_ID =~ ^[0-9]+$ ]] || refuse "KAFKA_NODE_ID '$KAFKA_NODE_ID' is not a non-negative integer"
  node_id=$((10#$KAFKA_NODE_ID))
elif [[ $pod_name =~ -([0-9]+)$ ]]; then
  # A StatefulSet pod: <name>-<ordinal>; the offset separates the ids of several StatefulSets.
  ordinal=${BASH_REMATCH[1]}
  offset=${KAFKA_NODE_ID_OFFSET:-0}
  [[ $offset =~ ^[0-9]+$ ]] || refuse "KAFKA_NODE_ID_OFFSET '$offset' is not a non-negative integer"
  node_id=$((10#$ordinal + 10#$offset))
else
  refuse "no node id: set KAFKA_NODE_ID, or run as a StatefulSet pod whose name ends in -<ordinal> (POD_NAME='$pod_name')"
fi
rack=${KAFKA_RACK:-}

# --- the configuration ----------------------------------------------------------------------------------
if [[ -f $KAFKA_CONFIG_DIR/server-$node_id.properties ]]; then
  source_config=$KAFKA_CONFIG_DIR/server-$node_id.properties
elif [[ -f $KAFKA_CONFIG_DIR/server.properties ]]; then
  source_config=$KAFKA_CONFIG_DIR/server.properties
else
  refuse "no configuration: neither $KAFKA_CONFIG_DIR/server-$node_id.properties nor $KAFKA_CONFIG_DIR/server.properties exists"
fi
mkdir -p "$KAFKA_RUNTIME_DIR"
config=$KAFKA_RUNTIME_DIR/server.properties

# Placeholders the mounted configuration may use for values only the pod knows. Only these names are
# replaced: Kafka's own config-provider references (${provider:path:key}) pass through untouched.
declare -A placeholders=(
  [NODE_ID]=$node_id
  [RACK]=$rack
  [POD_NAME]=$pod_name
  [POD_NAMESPACE]=${POD_NAMESPACE:-}
  [POD_IP]=${POD_IP:-}
)
rendered=$(cat "$source_config")
for name in "${!placeholders[@]}"; do
  placeholder="\${$name}"
  [[ $rendered == *"$placeholder"* ]] || continue
  value=${placeholders[$name]}
  [[ -n $value ]] || refuse "$source_config uses $placeholder but the pod has no value for it"
  rendered=${rendered//"$placeholder"/"$value"}
done

# The value of `key` in the rendered configuration (the last assignment wins, as in Java properties).
property() {
  local key=$1 line value=""
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*([^#!=:[:space:]]+)[[:space:]]*[=:][[:space:]]*(.*)$ ]] \
      && [[ ${BASH_REMATCH[1]} == "$key" ]]; then
      value=${BASH_REMATCH[2]}
    fi
  done <<<"$rendered"
  printf '%s' "$value"
}

configured_id=$(property node.id)
if [[ -z $configured_id ]]; then
  rendered+=$'\n'"node.id=$node_id"
elif [[ $configured_id != "$node_id" ]]; then
  refuse "$source_config is for node $configured_id, but this pod is node $node_id"
fi
if [[ -n $rack ]]; then
  configured_rack=$(property broker.rack)
  if [[ -z $configured_rack ]]; then
    rendered+=$'\n'"broker.rack=$rack"
  elif [[ $configured_rack != "$rack" ]]; then
    refuse "$source_config places node $node_id in rack '$configured_rack', but this pod runs in rack '$rack'"
  fi
fi
printf '%s\n' "$rendered" >"$config"

# --- storage: format only what was never formatted --------------------------------------------------------
log_dirs=$(property log.dirs)
[[ -n $log_dirs ]] || log_dirs=$(property log.dir)
[[ -n $log_dirs ]] || refuse "$source_config sets no log.dirs"
IFS=',' read -r -a directories <<<"$log_dirs"
metadata_dir=$(property metadata.log.dir)
[[ -z $metadata_dir ]] || directories+=("$metadata_dir")

unformatted=()
for directory in "${directories[@]}"; do
  [[ ! -e $directory || -w $directory ]] || refuse "$directory is not writable by uid $(id -u) (give the pod securityContext.fsGroup $(id -g))"
  meta=$directory/meta.properties
  if [[ -f $meta ]]; then
    formatted_id=$(sed -n 's/^cluster\.id=//p' "$meta")
    [[ $formatted_id == "$cluster_id" ]] || refuse "$directory is formatted for cluster '$formatted_id', not '$cluster_id'"
  else
    unformatted+=("$directory")
  fi
done

if ((${#unformatted[@]} == 0)); then
  log "storage already formatted for cluster $cluster_id: ${directories[*]}"
else
  format_args=(format -t "$cluster_id" -c "$config" --ignore-formatted)
  roles=$(property process.roles)
  if [[ $roles == *controller* && -n $(property controller.quorum.bootstrap.servers) ]]; then
    # A dynamic quorum (KIP-853): the first controllers are formatted with the initial voter set; a
    # controller added later joins without one. The control plane says which; guessing could split the
    # quorum, so there is no default.
    case ${KAFKA_INITIAL_CONTROLLERS:-} in
      "") refuse "node $node_id is an unformatted controller of a dynamic quorum: set KAFKA_INITIAL_CONTROLLERS (the initial voters, or 'none' to join an existing quorum)" ;;
      none) format_args+=(--no-initial-controllers) ;;
      *) format_args+=(--initial-controllers "$KAFKA_INITIAL_CONTROLLERS") ;;
    esac
  fi
  # A secured cluster's first metadata carries the control plane's SCRAM credential (never logged).
  [[ -z ${KAFKA_ADD_SCRAM:-} ]] || format_args+=(--add-scram "$KAFKA_ADD_SCRAM")
  log "formatting ${unformatted[*]} for cluster $cluster_id (node $node_id)"
  "$KAFKA_HOME/bin/kafka-storage.sh" "${format_args[@]}"
fi

# --- metrics and start -------------------------------------------------------------------------------------
metrics_port=${KAFKA_METRICS_PORT:-}
if [[ -n $metrics_port && $metrics_port != off ]]; then
  [[ -f $JMX_EXPORTER_JAR ]] || refuse "KAFKA_METRICS_PORT is $metrics_port but the JMX exporter $JMX_EXPORTER_JAR is missing"
  [[ -f $JMX_EXPORTER_CONFIG ]] || refuse "KAFKA_METRICS_PORT is $metrics_port but $JMX_EXPORTER_CONFIG is missing"
  export KAFKA_OPTS="-javaagent:$JMX_EXPORTER_JAR=$metrics_port:$JMX_EXPORTER_CONFIG${KAFKA_OPTS:+ $KAFKA_OPTS}"
fi
export LOG_DIR=${LOG_DIR:-$KAFKA_RUNTIME_DIR/logs}
# Compression codecs (zstd, snappy, lz4) unpack native libraries into java.io.tmpdir: keep it in the
# runtime directory, the one place that stays writable under readOnlyRootFilesystem.
mkdir -p "$KAFKA_RUNTIME_DIR/tmp"
export KAFKA_OPTS="-Djava.io.tmpdir=$KAFKA_RUNTIME_DIR/tmp${KAFKA_OPTS:+ $KAFKA_OPTS}"

log "starting node $node_id${rack:+ in rack $rack} with $config (from $source_config)"
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$config"
