"""Writing and reading the safetensors format by hand (torch 1.13 has no safetensors package).

Layout: 8-byte little-endian header length N, N bytes of JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the raw
little-endian tensor bytes; offsets are relative to the end of the header.
"""

import json
import struct

import numpy as np

_DTYPES = {np.dtype("float16"): "F16", np.dtype("float32"): "F32"}
_NP = {v: k for k, v in _DTYPES.items()}


def save(path, tensors, metadata=None):
    """tensors: {name: numpy array (little-endian, C order)}; written in sorted name order."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    """{name: numpy array}; used to check the written file round-trips."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(raw[base + a : base + b], dtype=_NP[e["dtype"]]).reshape(e["shape"])
    return out


def save_fp16_state(model, path):
    """Write model's parameters (rope_* buffers excluded) as fp16 safetensors, read them back,
    check the round trip, and return them as fp32 tensors: what the exported file really holds."""
    import torch

    sd = {k: v.detach().to(torch.float16).numpy() for k, v in model.state_dict().items() if not k.startswith("rope_")}
    save(path, sd, metadata={"format": "pt"})
    back = load(path)
    assert set(back) == set(sd) and all(np.array_equal(back[k], sd[k]) for k in sd), "safetensors round trip failed"
    return {k: torch.from_numpy(v.astype(np.float32)) for k, v in back.items()}
