#!/usr/bin/env bash
# Development certificates for TLS and mutual TLS (docs/tls.md). NOT for production.
#
#   npm run certs                 -> ./certs/
#   bash scripts/certs.sh DIR     -> DIR/ (tests use a temp dir)
#
# KME IDs (ETSI GS QKD 014, docs/etsi014.md "Identity"): each module certificate carries its KME ID as a
# subjectAltName URI urn:etsi:qkd:kme:<KME_ID>, so an SAE can confirm the KME ID from the certificate and
# the module refuses to start when etsi014.kme_id contradicts it. Defaults: alice KME-A, bob KME-B (the IDs
# the shipped configs suggest and the tests use). Override:
#   CERT_KME_ID_ALICE=KME-1 CERT_KME_ID_BOB=KME-2 bash scripts/certs.sh DIR
# An empty value (CERT_KME_ID_BOB=) leaves that certificate without a KME ID.
#
# Creates, with openssl (EC P-256, SHA-256):
#   ca.crt ca.key                 development CA ("QKD dev CA")
#   alice.crt alice.key           module certificates: serverAuth + clientAuth,
#   bob.crt bob.key                 SAN IP:127.0.0.1, DNS:localhost, URI:urn:etsi:qkd:kme:<KME_ID>
#                                   (peer channel and main listener)
#   sae-a.crt sae-a.key           SAE client certificates (clientAuth), CN=sae-a / CN=sae-b
#   sae-b.crt sae-b.key
#   other-ca.crt other-ca.key     a second, unrelated CA ...
#   other.crt other.key           ... and one certificate it signed (server+client, same SANs): negative tests
#   fingerprints.txt              SHA-256 fingerprint and subject of every leaf certificate
# Private keys are written with mode 0600. Existing files in DIR are overwritten.
set -euo pipefail

OUT="${1:-./certs}"
DAYS="${CERT_DAYS:-825}"
# Unset: the default; set but empty: no KME ID in that certificate.
KME_ID_ALICE="${CERT_KME_ID_ALICE-KME-A}"
KME_ID_BOB="${CERT_KME_ID_BOB-KME-B}"
KME_URI_PREFIX="urn:etsi:qkd:kme:"
for var in CERT_KME_ID_ALICE:"$KME_ID_ALICE" CERT_KME_ID_BOB:"$KME_ID_BOB"; do
  # The same characters etsi014.kme_id accepts (src/config/schema.ts); nothing that could break the SAN line.
  if [ -n "${var#*:}" ] && ! [[ "${var#*:}" =~ ^[A-Za-z0-9._~:-]{1,128}$ ]]; then
    echo "certs: ${var%%:*}: expected a KME ID of 1 to 128 characters A-Z a-z 0-9 . _ ~ : -, got '${var#*:}'" >&2
    exit 2
  fi
done
mkdir -p "$OUT"
chmod 700 "$OUT"
umask 077

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() { # name subject
  newkey "$OUT/$1.key"
  openssl req -x509 -new -key "$OUT/$1.key" -sha256 -days "$DAYS" -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$OUT/$1.crt"
}

make_leaf() { # name subject ca usage(server|client) [kme_id]
  local name="$1" subject="$2" ca="$3" usage="$4" kme_id="${5:-}"
  local ext="$WORK/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyAgreement"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
    if [ "$usage" = server ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=IP:127.0.0.1,DNS:localhost${kme_id:+,URI:$KME_URI_PREFIX$kme_id}"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  newkey "$OUT/$name.key"
  openssl req -new -key "$OUT/$name.key" -subj "$subject" -out "$WORK/$name.csr"
  openssl x509 -req -in "$WORK/$name.csr" -CA "$OUT/$ca.crt" -CAkey "$OUT/$ca.key" -CAcreateserial \
    -CAserial "$WORK/$ca.srl" -days "$DAYS" -sha256 -extfile "$ext" -out "$OUT/$name.crt" 2>/dev/null
}

make_ca ca "/O=QKD dev/CN=QKD dev CA"
make_leaf alice "/O=QKD dev/CN=alice" ca server "$KME_ID_ALICE"
make_leaf bob "/O=QKD dev/CN=bob" ca server "$KME_ID_BOB"
make_leaf sae-a "/O=QKD dev/CN=sae-a" ca client
make_leaf sae-b "/O=QKD dev/CN=sae-b" ca client
make_ca other-ca "/O=Elsewhere/CN=Unrelated CA"
make_leaf other "/O=Elsewhere/CN=other" other-ca server

chmod 600 "$OUT"/*.key
chmod 644 "$OUT"/*.crt
{
  for name in alice bob sae-a sae-b other; do
    fp="$(openssl x509 -in "$OUT/$name.crt" -noout -fingerprint -sha256 | sed 's/^.*=//')"
    subject="$(openssl x509 -in "$OUT/$name.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
    kme="$(openssl x509 -in "$OUT/$name.crt" -noout -ext subjectAltName 2>/dev/null | grep -o "URI:$KME_URI_PREFIX[^,]*" | sed "s/^URI:$KME_URI_PREFIX//" || true)"
    echo "$name sha256=$fp subject=$subject${kme:+ kme_id=$kme}"
  done
} >"$OUT/fingerprints.txt"
chmod 644 "$OUT/fingerprints.txt"
echo "certs: wrote CA, alice, bob, sae-a, sae-b, other-ca, other into $OUT (development use only)"
