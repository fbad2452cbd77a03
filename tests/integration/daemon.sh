# Shell helpers for the integration tests written in sh: a real sluiced in a temp directory.
# Source it, then:
#   start_daemon SLUICED DIR [INI lines...]   starts sluiced on a tcp://127.0.0.1:0 ROUTER with
#                                            the built-in pipeline (or the pipeline files of
#                                            $PIPELINES, when set); sets $pid and $endpoint
start_daemon() {
  _sluiced="$1"
  _dir="$2"
  shift 2
  mkdir -p "$_dir/state"
  head -c 32 /dev/urandom > "$_dir/state/master.key"
  chmod 600 "$_dir/state/master.key"
  {
    printf '[service]\nstate_dir = %s\n' "$_dir/state"
    printf '[ingest]\nrouter = tcp://127.0.0.1:0\n'
    printf '[privacy]\nmaster_key_file = master.key\n'
    printf '[pipeline]\ncontracts = builtin:\npipelines = %s\n' "${PIPELINES:-builtin:}"
    for line in "$@"; do printf '%s\n' "$line"; done
  } > "$_dir/sluiced.conf"
  : > "$_dir/log"  # exists before the background shell opens it, so the first sed can read it
  "$_sluiced" --config "$_dir/sluiced.conf" 2>> "$_dir/log" &
  pid=$!
  endpoint=""
  for _ in $(seq 1 300); do
    endpoint=$(sed -n 's/.* ready: .*listening on \(tcp:[^;, ]*\).*/\1/p' "$_dir/log")
    [ -n "$endpoint" ] && return 0
    sleep 0.05
  done
  cat "$_dir/log" >&2
  return 1
}
