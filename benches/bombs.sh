#!/usr/bin/env bash
# Decompression and pickle bombs: wall time and peak RSS of `mlsec scan` on each.
# Usage: bash benches/bombs.sh target/release/mlsec
# Goal (issue 3): under 256 MB RSS and 1 s per file.
set -euo pipefail
MLSEC="$(realpath "${1:-target/release/mlsec}")"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
python3 - "$DIR" <<'PY'
import gzip, os, sys, zipfile
d = sys.argv[1]
n = 10_000_000
open(f"{d}/stack.pkl", "wb").write(b"\x80\x04" + b"N" * n + b".")
open(f"{d}/memo.pkl", "wb").write(b"\x80\x04" + b"N\x94" * (n // 2) + b".")
open(f"{d}/marks.pkl", "wb").write(b"\x80\x04" + b"(" * n + b"N.")
open(f"{d}/appends.pkl", "wb").write(b"\x80\x04]\x94" + b"h\x00a" * (n // 3) + b".")
p = b"\x80\x04]\x94"
for lvl in range(1, 30):  # "billion laughs": 29 levels of 10 references each
    p += b"](" + (b"h" + bytes([lvl - 1])) * 10 + b"e\x94"
open(f"{d}/laughs.pkl", "wb").write(p + b".")
import struct
# 1,000 module and 1,000 name strings of 1 KB, memoised, paired into a million distinct globals.
g = bytearray(b"\x80\x04")
for prefix in (b"m", b"n"):
    for i in range(1000):
        s = prefix + str(i).encode() + b"_" + b"a" * 1000
        g += b"\x8d" + struct.pack("<Q", len(s)) + s + b"\x94"
for i in range(1000):
    for j in range(1000):
        g += b"j" + struct.pack("<I", i) + b"j" + struct.pack("<I", 1000 + j) + b"\x930"
open(f"{d}/globals.pkl", "wb").write(bytes(g) + b"N.")
# One global called two million times.
open(f"{d}/calls.pkl", "wb").write(b"\x80\x04\x8c\x05mypkg\x8c\x01f\x93\x94" + b"h\x00)R0" * 2_000_000 + b"N.")
# A global name of 200,000 dotted parts.
name = b"a." * 199_999 + b"a"
open(f"{d}/dotted.pkl", "wb").write(b"\x80\x04\x8c\x05mypkg\x8d" + struct.pack("<Q", len(name)) + name + b"\x93)R.")
# getattr(getattr(getattr(G, 'a'), 'a'), …) 20,000 deep.
c = bytearray(b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x94\x8c\x05mypkg\x8c\x01f\x93\x94")
c += b"h\x00h\x01\x8c\x01a\x86Rq\x010" * 20_000
open(f"{d}/getattr.pkl", "wb").write(bytes(c) + b"N.")
with zipfile.ZipFile(f"{d}/zip-bomb.pt", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    with z.open("archive/data.pkl", "w", force_zip64=True) as w:
        for _ in range(2048):
            w.write(b"\0" * (1 << 20))  # 2 GiB of zeros
open(f"{d}/gzip-bomb.pkl.gz", "wb").write(gzip.compress(b"\0" * (1 << 30), 9))
import bz2, lzma
open(f"{d}/bzip2-bomb.pkl.bz2", "wb").write(bz2.compress(b"\0" * (1 << 30), 9))
open(f"{d}/xz-bomb.pkl.xz", "wb").write(lzma.compress(b"\0" * (1 << 30), preset=9))
open(f"{d}/lzma-bomb.joblib", "wb").write(lzma.compress(b"\0" * (1 << 30), format=lzma.FORMAT_ALONE))
# TorchScript archives whose code/ source is 60 MiB of one token pattern, deflated.
def torchscript(name, code):
    with zipfile.ZipFile(f"{d}/{name}", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("m/data.pkl", b"\x80\x02c__torch__\nM\nq\x00)\x81K\x01b.")
        z.writestr("m/constants.pkl", b"\x80\x02).")
        z.writestr("m/code/__torch__.py", code[: 60 << 20])
torchscript("ts-brackets.pt", b"(" * (60 << 20))
torchscript("ts-getattr.pt", b"getattr(" * (8 << 20))
torchscript("ts-dots.pt", b"a." * (30 << 20))
torchscript("ts-ops.pt", b"def forward(self):\n" + b"".join(b"  ops.ns%d.op(x)\n" % i for i in range(4_000_000)))

# 7z archives, written here (py7zr would hold each member in memory): blocks
# of raw LZMA2 with a plain index. 7z's NUMBER: leading ones of the first
# byte count the little-endian bytes after it.
def num(v):
    for n in range(8):
        if v < 1 << (7 * (n + 1)):
            return bytes([(0xFF << (8 - n)) & 0xFF | (v >> (8 * n))]) + v.to_bytes(8, "little")[:n]
    return b"\xff" + v.to_bytes(8, "little")

def lzma2_zeros(size, dict_size=1 << 24):
    c = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": dict_size}])
    chunk = b"\0" * (1 << 24)
    out = b"".join(c.compress(chunk) for _ in range(size >> 24))
    return out + c.compress(b"\0" * (size & ((1 << 24) - 1))) + c.flush()

def seven_zip(name, blocks, names, dict_prop=24):
    """blocks: (packed LZMA2 bytes, [member sizes]); names: one per member."""
    h = b"\x01\x04\x06" + num(0) + num(len(blocks)) + b"\x09" + b"".join(num(len(p)) for p, _ in blocks)
    h += b"\x00\x07\x0b" + num(len(blocks)) + b"\x00"
    # One coder each: LZMA2 (id 0x21) with its one-byte dictionary property.
    h += (b"\x01\x21\x21\x01" + bytes([dict_prop])) * len(blocks)
    h += b"\x0c" + b"".join(num(sum(sizes)) for _, sizes in blocks)
    h += b"\x00\x08\x0d" + b"".join(num(len(sizes)) for _, sizes in blocks)
    h += b"\x09" + b"".join(num(n) for _, sizes in blocks for n in sizes[:-1]) + b"\x00\x00"
    encoded = b"".join(n.encode("utf-16-le") + b"\0\0" for n in names)
    h += b"\x05" + num(len(names)) + b"\x11" + num(len(encoded) + 1) + b"\x00" + encoded + b"\x00\x00"
    packed = b"".join(p for p, _ in blocks)
    start = struct.pack("<QQI", len(packed), len(h), zlib.crc32(h))
    with open(f"{d}/{name}", "wb") as f:
        f.write(b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + packed + h)

import zlib
# A 64 MiB dictionary, what 7-Zip's -mx9 writes: the largest state a member can make mlsec fill.
seven_zip("7z-member.7z", [(lzma2_zeros(4 << 30, 1 << 26), [4 << 30])], ["archive/data.pkl"], dict_prop=28)
block = lzma2_zeros(1 << 30)
seven_zip("7z-blocks.7z", [(block, [1 << 30])] * 64, [f"archive/data/{i}" for i in range(64)])
seven_zip("7z-dictionary.7z", [(lzma2_zeros(1 << 20), [1 << 20])], ["data.pkl"], dict_prop=40)
tiny = lzma2_zeros(200_000)
seven_zip("7z-members.7z", [(tiny, [1] * 200_000)], [f"m{i}" for i in range(200_000)])
PY
# One row: "FILE:description", then any options for `mlsec scan`.
measure() {
  local f="${1%%:*}"
  /usr/bin/time -f "%e %M" -o "$DIR/t" "$MLSEC" scan "$DIR/$f" -q --fail-on never "${@:2}" >/dev/null
  read -r s kb < "$DIR/t"
  printf '| %s | %s | %s | %s MB |\n' "${1#*:}" "$(du -h "$DIR/$f" | cut -f1)" "$s" "$((kb / 1024))"
}
printf '| input | size | seconds | peak RSS |\n|---|---|---|---|\n'
for f in stack memo marks appends laughs globals calls dotted getattr; do
  measure "$f.pkl:$f pickle"
done
for spec in "zip-bomb.pt:zip member inflating to 2 GiB" "gzip-bomb.pkl.gz:gzip stream inflating to 1 GiB" \
    "bzip2-bomb.pkl.bz2:bzip2 stream inflating to 1 GiB" "xz-bomb.pkl.xz:xz stream inflating to 1 GiB" \
    "lzma-bomb.joblib:.lzma (joblib) stream inflating to 1 GiB" \
    "7z-member.7z:7z member of 4 GiB of zeros, 64 MiB dictionary" "7z-blocks.7z:7z of 64 blocks of 1 GiB of zeros each" \
    "7z-dictionary.7z:7z declaring a 4 GiB LZMA2 dictionary" "7z-members.7z:7z of 200,000 one-byte members in one block"; do
  measure "$spec"
done
for spec in "ts-brackets.pt:TorchScript source of 60 MiB of brackets" "ts-getattr.pt:TorchScript source of 8 M nested getattr(" \
    "ts-dots.pt:TorchScript source of one 30 M-part dotted name" "ts-ops.pt:TorchScript source calling 4 M distinct custom operators"; do
  measure "$spec" --max-member-bytes 67108864
done
