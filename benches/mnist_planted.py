"""The image near-duplicate workload shared by the benchmark scripts: the
bundled MNIST sample's first 8,000 digits as training split, its last 2,000
as test split, with every tenth test digit replaced by a training digit
shifted one pixel right, brightened (× 0.7 + 60), or re-encoded as JPEG
(quality 75), in turn."""
import gzip
import io
import os

import numpy as np
from PIL import Image


def planted_split():
    """(train, test, planted): uint8 arrays of 8,000 and 2,000 28×28 digits,
    and {test index: training index} of the planted copies."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
    with gzip.open(os.path.join(root, "mnist-sample-images-idx3-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    train, test = raw[:8000], raw[8000:10000].copy()
    planted = {}
    for j in range(0, 2000, 10):
        i = (j * 37) % 8000
        src = train[i]
        kind = (j // 10) % 3
        if kind == 0:
            img = np.zeros_like(src)
            img[:, 1:] = src[:, :-1]
        elif kind == 1:
            img = np.minimum(src * 0.7 + 60, 255).astype(np.uint8)
        else:
            buf = io.BytesIO()
            Image.fromarray(src).save(buf, format="JPEG", quality=75)
            img = np.array(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
        test[j] = img
        planted[j] = i
    return train, test, planted
