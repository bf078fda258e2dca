#!/bin/sh
# Entry point of the redis stand-in image (redis.Containerfile), like the official
# image's: flags alone run redis-server with them; redis-server starts as the redis
# user with protected mode off (the official image's compiled-in default: the
# container's network is the boundary), which a later --protected-mode yes overrides.
set -eu
case ${1:-redis-server} in
  -*) set -- redis-server "$@" ;;
esac
[ $# -gt 0 ] || set -- redis-server
[ "$1" = redis-server ] || exec "$@"
shift
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  conf=$1
  shift
  set -- "$conf" --protected-mode no "$@"
else
  set -- --protected-mode no "$@"
fi
if [ "$(id -u)" = 0 ]; then
  chown redis:redis /data 2>/dev/null || true
  exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$@"
fi
exec redis-server "$@"
