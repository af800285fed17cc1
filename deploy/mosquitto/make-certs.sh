#!/bin/sh
# A private CA and a server certificate for the broker, for a plant without its own PKI.
# Usage: deploy/mosquitto/make-certs.sh [HOST...]   (default: mqtt localhost, the compose names)
# Writes deploy/mosquitto/certs/{ca.crt,ca.key,server.crt,server.key}. Keep ca.key off the broker.
set -eu
cd "$(dirname "$0")"
mkdir -p certs
cd certs
[ "$#" -gt 0 ] || set -- mqtt localhost
san=""
for host in "$@"; do
  case "$host" in
    *[!0-9.]*) san="${san:+$san,}DNS:$host" ;;
    *) san="${san:+$san,}IP:$host" ;;
  esac
done
[ -f ca.key ] || openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=mfgos plant MQTT CA" \
  -keyout ca.key -out ca.crt
openssl req -newkey rsa:3072 -nodes -subj "/CN=$1" -keyout server.key -out server.csr
printf 'subjectAltName=%s\n' "$san" > san.cnf
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile san.cnf \
  -out server.crt
rm -f server.csr san.cnf
chmod 644 ca.crt server.crt server.key
echo "certificates for $* in $(pwd); give mfgos ca.crt as MFGOS_MQTT_CA_FILE"
