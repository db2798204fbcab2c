#!/bin/sh
set -e

# `docker run IMAGE --flag`: the flags are the gateway's.
if [ "${1#-}" != "$1" ]; then
    set -- gateway "$@"
fi

if [ "$1" = "gateway" ]; then
    shift
    mkdir -p /var/lib/gateway/spool
    exec python3 -m gateway "$@"
fi

exec "$@"
