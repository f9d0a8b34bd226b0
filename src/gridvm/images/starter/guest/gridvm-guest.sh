#!/bin/sh
# gridvm-guest: this VM's line to the gridvm server, with no network needed.
#
# Requests go over the virtio-serial port org.gridvm.guest.0; the host's agent
# passes them to the server's guest API with this VM's token (/run/gridvm/token),
# which allows reports about this VM and reading its group context, nothing else.
#
#   gridvm-guest ready [IP]                 the VM is up (init does this at boot)
#   gridvm-guest progress PERCENT [MESSAGE] shown by `gridvm vm show`
#   gridvm-guest publish KEY [VALUE]        data for the peers (VALUE, else stdin)
#   gridvm-guest unpublish KEY
#   gridvm-guest publish-keys [FILE]        OpenSSH public keys, one per line
#   gridvm-guest get PEER KEY [WAIT]        what PEER published (waits up to WAIT s)
#   gridvm-guest peers [required|all|none] [TIMEOUT]
#                                           "NAME ROLE HOSTNAME IP ready|waiting" lines;
#                                           exit 2 if still incomplete after TIMEOUT s
#   gridvm-guest context [WAIT] [TIMEOUT]   the same as JSON
#   gridvm-guest self                       this VM as JSON
# Exit status: 0 done, 1 error (message on stderr), 2 group context incomplete.
set -u
TOKEN_FILE=/run/gridvm/token
LOCK=/run/gridvm/channel.lock.d
PORT_NAME=org.gridvm.guest.0
TRIES=5

die() {
    echo "gridvm-guest: $*" >&2
    exit 1
}

# One request at a time on the channel (busybox has no flock: mkdir is atomic).
HOLDING=""
lock() {
    mkdir -p /run/gridvm
    until mkdir "$LOCK" 2>/dev/null; do
        owner=$(cat "$LOCK/pid" 2>/dev/null)
        if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
            rm -rf "$LOCK" # its holder died
        fi
        usleep 100000
    done
    echo $$ >"$LOCK/pid"
    HOLDING=1
}

unlock() {
    [ -z "$HOLDING" ] || rm -rf "$LOCK"
    HOLDING=""
}

find_port() {
    for p in /sys/class/virtio-ports/*; do
        [ "$(cat "$p/name" 2>/dev/null)" = "$PORT_NAME" ] && { echo "/dev/${p##*/}"; return 0; }
    done
    return 1
}

# send METHOD PATH TYPE BODY-FILE SECONDS: the answer's body on stdout; returns 0 for
# a 2xx answer, 1 for another (the server's message goes to stderr).
send() {
    port=$(find_port) || die "no guest channel: this VM was not started by gridvm"
    [ -r "$TOKEN_FILE" ] || die "no VM token in $TOKEN_FILE"
    token=$(cat "$TOKEN_FILE")
    length=$(wc -c <"$4")
    answer=/tmp/.gridvm-guest.$$
    lock
    try=1
    while [ "$try" -le "$TRIES" ]; do
        id="$$x$try"
        # Writes wait while the agent is away; reads see end-of-file then: try again.
        exec 3<>"$port"
        printf '%s %s %s %s %s %s\n' "$id" "$1" "$2" "$length" "$3" "$token" >&3
        cat "$4" >&3
        while read -r -t "$5" rid status size <&3; do
            : >"$answer"
            [ "$size" -gt 0 ] 2>/dev/null && head -c "$size" <&3 >"$answer"
            [ "$rid" = "$id" ] && break 2 # an earlier, abandoned request's answer is dropped
        done
        exec 3<&-
        try=$((try + 1))
        sleep 1
    done
    exec 3<&-
    unlock
    [ "$try" -le "$TRIES" ] || { rm -f "$answer"; die "no answer from the server"; }
    case "$status" in
        2??)
            cat "$answer"
            rm -f "$answer"
            return 0
            ;;
    esac
    message=$(sed -n 's/.*"message": *"\([^"]*\)".*/\1/p' "$answer")
    echo "gridvm-guest: $status: ${message:-$(head -c 300 "$answer")}" >&2
    rm -f "$answer"
    return 1
}

body=/tmp/.gridvm-guest-body.$$
trap 'rm -f "$body"; unlock' EXIT
: >"$body"

json_string() { # escape a value for a JSON string (no control characters expected)
    printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\000-\037'
}

first_address() {
    ip -4 -o addr show scope global 2>/dev/null | sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p' | head -n 1
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    ready)
        address=${1:-$(first_address)}
        if [ -n "$address" ]; then printf '{"ip": "%s"}' "$address" >"$body"; else echo '{}' >"$body"; fi
        send POST /guest/ready json "$body" 30 >/dev/null
        ;;
    progress)
        [ $# -ge 1 ] || die "usage: gridvm-guest progress PERCENT [MESSAGE]"
        percent=$1
        shift
        printf '{"percent": %s, "message": "%s"}' "$percent" "$(json_string "$*")" >"$body"
        send POST /guest/progress json "$body" 30
        ;;
    publish)
        [ $# -ge 1 ] || die "usage: gridvm-guest publish KEY [VALUE]"
        if [ $# -ge 2 ]; then printf '%s' "$2" >"$body"; else cat >"$body"; fi
        send PUT "/guest/data/$1" text "$body" 30
        ;;
    unpublish)
        [ $# -eq 1 ] || die "usage: gridvm-guest unpublish KEY"
        send DELETE "/guest/data/$1" text "$body" 30
        ;;
    publish-keys)
        cat "${1:--}" >"$body"
        send PUT /guest/public-keys text "$body" 30 >/dev/null
        ;;
    get)
        [ $# -ge 2 ] || die "usage: gridvm-guest get PEER KEY [WAIT]"
        wait=${3:-0}
        send GET "/guest/peers/$1/data/$2?wait=$wait" text "$body" $((wait + 30))
        ;;
    peers)
        wait=${1:-none}
        timeout=${2:-0}
        send GET "/guest/context?wait=$wait&timeout=$timeout&format=text" text "$body" \
            $((timeout + 30)) >"$body.out" || { rm -f "$body.out"; exit 1; }
        read -r first <"$body.out"
        tail -n +2 "$body.out"
        rm -f "$body.out"
        [ "$first" = complete ] || exit 2
        ;;
    context)
        wait=${1:-none}
        timeout=${2:-0}
        send GET "/guest/context?wait=$wait&timeout=$timeout" text "$body" $((timeout + 30))
        ;;
    self)
        send GET /guest/self text "$body" 30
        ;;
    *)
        sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
        [ -z "$command" ] || exit 1
        ;;
esac
