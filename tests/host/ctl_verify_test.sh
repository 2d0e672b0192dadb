#!/bin/bash
# bpfwardenctl keygen/sign/verify/allow-downgrade against the build's real
# signed images: the shipped set verifies; each tampered variant fails with
# exit 1 and a message naming the problem; signatures made with the stock
# openssl CLI (Ed25519, RSA, ECDSA P-256) verify too.
#   ctl_verify_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/ctl-out"
. "$BW_SRC/selftests/guest/lib.sh"
CTL="$BW_BUILD/ctl/bpfwardenctl"
work=$(mktemp -d /tmp/bpfwarden-ctltest.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT"

fresh_copy() {  # a pristine copy of the signed images in $work/images
  rm -rf "$work/images" "$work/state"
  cp -r "$BW_IMAGES" "$work/images"
  mkdir "$work/state"
}
# expect_verify NAME EXIT PATTERN [verify args...]
expect_verify() {
  local name=$1 want=$2 pattern=$3
  shift 3
  local out rc
  out=$("$CTL" verify --images "$work/images" --state-dir "$work/state" "$@" 2>&1)
  rc=$?
  echo "$out" >"$BW_OUT/$name.log"
  if [ "$rc" != "$want" ]; then
    fail "$name" "exit $rc (wanted $want): $out"
  elif ! grep -qE -- "$pattern" <<<"$out"; then
    fail "$name" "no /$pattern/ in: $out"
  else
    pass "$name"
  fi
}
flip_byte() { printf '\x5a' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

fresh_copy
image_count=$(ls "$BW_IMAGES"/*.bpf.o | wc -l)
expect_verify shipped_images_verify 0 "OK: $image_count images verified" --keys "$BW_KEYS"
expect_verify shipped_images_verify_json 0 '^\{"ok":true,"version":[0-9]+,' --keys "$BW_KEYS" --json

flip_byte "$work/images/exec_guard.bpf.o" 300
expect_verify flipped_image_byte 1 "image 'exec_guard' .*does not match the SHA-256 in the signed manifest" --keys "$BW_KEYS"
expect_verify flipped_image_byte_json 1 '^\{"ok":false,"error":".*exec_guard' --keys "$BW_KEYS" --json

fresh_copy
truncate -s 100 "$work/images/bpf_audit.bpf.o"
expect_verify truncated_image 1 "image 'bpf_audit' .* is 100 bytes but the signed manifest says [0-9]+: truncated" --keys "$BW_KEYS"

fresh_copy
echo extra >>"$work/images/file_guard.bpf.o"
expect_verify image_larger_than_signed 1 "larger than signed" --keys "$BW_KEYS"

fresh_copy
cp "$work/images/file_guard.bpf.o" "$work/images/rogue.bpf.o"
expect_verify extra_image 1 "image 'rogue.bpf.o' in .* is not in the signed manifest" --keys "$BW_KEYS"

fresh_copy
rm "$work/images/exec_audit.bpf.o"
expect_verify missing_image 1 "exec_audit.bpf.o.*No such file or directory" --keys "$BW_KEYS"

fresh_copy
mv "$work/images/exec_audit.bpf.o" "$work/exec_audit.real"
ln -s "$work/exec_audit.real" "$work/images/exec_audit.bpf.o"
expect_verify symlinked_image 1 "exec_audit.bpf.o' is a symlink, refusing it" --keys "$BW_KEYS"

fresh_copy
flip_byte "$work/images/manifest" 40
expect_verify flipped_manifest_byte 1 "signature does not verify with the trusted key \(dev-signing.pem\)" --keys "$BW_KEYS"

fresh_copy
rm "$work/images/manifest.sig"
expect_verify unsigned_manifest 1 "is not signed" --keys "$BW_KEYS"

fresh_copy
: >"$work/images/manifest.sig"
expect_verify empty_signature 1 "manifest signature .* is empty" --keys "$BW_KEYS"

# A key we do not trust.
mkdir -p "$work/other-keys" "$work/private"
"$CTL" keygen --private "$work/private/other.key" --public "$work/other-keys/other.pem" >/dev/null
fresh_copy
expect_verify untrusted_signer 1 "signature does not verify with the trusted key \(other.pem\)" --keys "$work/other-keys"

# keygen: private key 0600, never overwritten.
mode=$(stat -c %a "$work/private/other.key")
[ "$mode" = 600 ] && pass keygen_private_key_0600 || fail keygen_private_key_0600 "mode $mode"
"$CTL" keygen --private "$work/private/other.key" --public "$work/other-keys/x.pem" >"$BW_OUT/keygen-again.log" 2>&1
[ $? = 1 ] && grep -q "other.key" "$BW_OUT/keygen-again.log" && pass keygen_refuses_overwrite \
  || fail keygen_refuses_overwrite "$(cat "$BW_OUT/keygen-again.log")"

# Rotation: both keys trusted; a set signed by the new key verifies.
mkdir -p "$work/rotation"
cp "$BW_KEYS"/*.pem "$work/other-keys/other.pem" "$work/rotation/"
fresh_copy
"$CTL" sign --key "$work/private/other.key" --images "$work/images" --version 3 >/dev/null
expect_verify rotation_new_key_verifies 0 "signed by: other.pem" --keys "$work/rotation"

# Anti-rollback: version 3 accepted, version 2 refused, allowed after allow-downgrade.
"$BW_BUILD/ctl/bpfwardenctl" allow-downgrade 3 --state-dir "$work/state" >/dev/null
"$CTL" sign --key "$work/private/other.key" --images "$work/images" --version 2 >/dev/null
expect_verify rollback_refused 1 "manifest version 2 is older than the highest accepted version 3" --keys "$work/rotation"
out=$("$CTL" allow-downgrade 2 --state-dir "$work/state" 2>&1) && pass allow_downgrade_runs || fail allow_downgrade_runs "$out"
expect_verify rollback_allowed_after_downgrade 0 "OK: $image_count images verified" --keys "$work/rotation"

# Key directory hygiene.
chmod 0777 "$work/rotation"
expect_verify world_writable_key_dir 1 "world-writable" --keys "$work/rotation"
chmod 0755 "$work/rotation"
echo "not a key" >"$work/rotation/junk.pem"
expect_verify key_file_not_a_key 1 "junk.pem" --keys "$work/rotation"
rm "$work/rotation/junk.pem"

# Signatures from the stock openssl CLI.
fresh_copy
openssl genpkey -algorithm ed25519 -out "$work/private/ossl-ed.key" 2>/dev/null
openssl pkey -in "$work/private/ossl-ed.key" -pubout -out "$work/private/ossl-ed.pem" 2>/dev/null
openssl pkeyutl -sign -rawin -inkey "$work/private/ossl-ed.key" -in "$work/images/manifest" -out "$work/images/manifest.sig"
expect_verify openssl_ed25519_signature 0 "signed by: ossl-ed.pem \(ed25519" --key "$work/private/ossl-ed.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$work/private/ossl-rsa.key" 2>/dev/null
openssl pkey -in "$work/private/ossl-rsa.key" -pubout -out "$work/private/ossl-rsa.pem" 2>/dev/null
openssl dgst -sha256 -sign "$work/private/ossl-rsa.key" -out "$work/images/manifest.sig" "$work/images/manifest"
expect_verify openssl_rsa_signature 0 "signed by: ossl-rsa.pem \(rsa" --key "$work/private/ossl-rsa.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/private/ossl-ec.key" 2>/dev/null
openssl pkey -in "$work/private/ossl-ec.key" -pubout -out "$work/private/ossl-ec.pem" 2>/dev/null
openssl dgst -sha256 -sign "$work/private/ossl-ec.key" -out "$work/images/manifest.sig" "$work/images/manifest"
expect_verify openssl_ecdsa_p256_signature 0 "signed by: ossl-ec.pem \(ecdsa" --key "$work/private/ossl-ec.pem"
flip_byte "$work/images/manifest" 40
expect_verify openssl_signature_flipped_manifest 1 "does not verify" --key "$work/private/ossl-ec.pem"

# Bad command line.
"$CTL" verify --bogus >"$BW_OUT/bad-arg.log" 2>&1
[ $? = 2 ] && grep -q -- "--bogus: unknown option" "$BW_OUT/bad-arg.log" && pass bad_option_exit_2 \
  || fail bad_option_exit_2 "$(cat "$BW_OUT/bad-arg.log")"
"$CTL" sign --key x --version zero >"$BW_OUT/bad-version.log" 2>&1
[ $? = 2 ] && grep -q -- "--version: 'zero' is not a whole number" "$BW_OUT/bad-version.log" && pass bad_version_exit_2 \
  || fail bad_version_exit_2 "$(cat "$BW_OUT/bad-version.log")"

finish
