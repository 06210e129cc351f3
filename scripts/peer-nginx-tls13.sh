#!/usr/bin/env bash
# nginx as a TLS-terminating balancer with TLS 1.3 enabled, for the shared
# referee's --peer (../shared/bench/compare.sh --tls):
#
#   ../shared/bench/compare.sh --tls --new-conn \
#       --peer "nginx-tls13=scripts/peer-nginx-tls13.sh {port} {backends}"
#
# The referee's own nginx row keeps nginx's default ssl_protocols, which on
# Debian 12's nginx 1.22 leave TLS 1.3 out, so wrk negotiates TLS 1.2 with
# it while it negotiates TLS 1.3 with us; this row is nginx on the protocol
# we speak, in the same run. One worker, the same upstream settings as the
# referee's nginx, its own self-signed ECDSA P-256 certificate (wrk does not
# verify). Execs nginx, so the referee measures nginx's own process.
set -euo pipefail
port=$1 backends=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/nginx-tls13.XXXXXX")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
{
  echo "worker_processes 1; master_process off; daemon off; pid $dir/nginx.pid; error_log $dir/nginx.err warn;"
  echo "events { worker_connections 8192; }"
  echo "http { access_log off; keepalive_requests 10000000;"
  echo "  upstream pool {"
  for b in ${backends//,/ }; do echo "    server $b max_fails=1 fail_timeout=2s;"; done
  echo "    keepalive 512; keepalive_requests 10000000; }"
  echo "  server { listen 127.0.0.1:$port backlog=4096 ssl;"
  echo "    ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem; ssl_protocols TLSv1.2 TLSv1.3;"
  echo "    location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection \"\";"
  echo "      proxy_next_upstream error timeout http_500; } } }"
} >"$dir/nginx.conf"
exec nginx -c "$dir/nginx.conf"
