"""Streaming safetensors reading and writing: one tensor (or a slice of rows) in memory at a time.

Reading parses the header and reads each tensor's bytes with plain file reads (no mmap, so pages of a
shard do not pile up in the resident set); writing appends tensor data to a side file and puts the
header in front at the end. Together they convert a multi-shard checkpoint whose peak memory is about
one tensor chunk, not one shard or the whole model.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np

# safetensors dtype -> (numpy dtype for the raw bytes, bytes per element)
_DT = {"F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (np.uint16, 2),
       "I64": (np.int64, 8), "I32": (np.int32, 4), "I16": (np.int16, 2), "I8": (np.int8, 1), "U8": (np.uint8, 1),
       "U32": (np.uint32, 4), "BOOL": (np.bool_, 1)}
TORCH_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
               "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "U32": "uint32", "BOOL": "bool"}
ST_NAMES = {v: k for k, v in TORCH_NAMES.items()}
CHUNK_BYTES = 16 << 20


def read_header(path: Path) -> tuple[dict, int]:
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


class Checkpoint:
    """Every tensor of a (possibly sharded) safetensors checkpoint directory, read lazily."""

    def __init__(self, folder: Path):
        self.where: dict[str, tuple[Path, dict, int]] = {}
        self.shards = sorted(Path(folder).glob("*.safetensors"))
        for shard in self.shards:
            header, base = read_header(shard)
            for name, info in header.items():
                self.where[name] = (shard, info, base)

    def __contains__(self, name: str) -> bool:
        return name in self.where

    def info(self, name: str) -> tuple[str, tuple]:
        _, info, _ = self.where[name]
        return TORCH_NAMES[info["dtype"]], tuple(info["shape"])

    def raw_chunks(self, name: str):
        """Yield the tensor's bytes as stored, CHUNK_BYTES at a time."""
        shard, info, base = self.where[name]
        start, end = info["data_offsets"]
        with open(shard, "rb") as f:
            f.seek(base + start)
            for pos in range(start, end, CHUNK_BYTES):
                yield f.read(min(CHUNK_BYTES, end - pos))

    def chunks(self, name: str, rows_per_chunk: int | None = None):
        """Yield the tensor as float32/native numpy arrays of consecutive rows (bf16 -> float32)."""
        shard, info, base = self.where[name]
        shape = tuple(info["shape"])
        npdt, size = _DT[info["dtype"]]
        start, end = info["data_offsets"]
        row_elems = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        rows = shape[0] if shape else 1
        step = rows_per_chunk or max(1, CHUNK_BYTES // max(1, row_elems * size))
        with open(shard, "rb") as f:
            f.seek(base + start)
            for r in range(0, rows, step):
                k = min(step, rows - r)
                raw = np.frombuffer(f.read(k * row_elems * size), dtype=npdt)
                if info["dtype"] == "BF16":
                    raw = (raw.astype(np.uint32) << 16).view(np.float32)
                yield raw.reshape((k,) + shape[1:] if shape else ())

    def read(self, name: str) -> np.ndarray:
        parts = list(self.chunks(name))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


class Writer:
    """Write tensors one after another (each possibly in row chunks) into one safetensors file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data_path = self.path.with_name(self.path.name + ".data")
        self.f = open(self.data_path, "wb")
        self.header: dict = {}
        self.pos = 0
        self.current: tuple | None = None

    def begin(self, name: str, dtype: str, shape: tuple) -> None:
        self.current = (name, dtype, tuple(int(s) for s in shape), self.pos)

    def write(self, array) -> None:
        """Append rows of the current tensor: bytes, a numpy array or an mx.array (bfloat16 included)."""
        self.f.write(array if isinstance(array, bytes) else to_bytes(array))
        self.pos = self.f.tell()

    def end(self) -> None:
        name, dtype, shape, start = self.current
        expect = int(np.prod(shape)) * _DT[ST_NAMES[dtype]][1]
        if self.pos - start != expect:
            raise ValueError(f"{name}: wrote {self.pos - start} bytes, expected {expect} for {dtype}{list(shape)}")
        self.header[name] = {"dtype": ST_NAMES[dtype], "shape": list(shape), "data_offsets": [start, self.pos]}
        self.current = None

    def add(self, name: str, array) -> None:
        self.begin(name, dtype_name(array), array.shape)
        self.write(array)
        self.end()

    def close(self, metadata: dict | None = None) -> None:
        self.f.close()
        header = dict(self.header)
        header["__metadata__"] = {"format": "mlx", **(metadata or {})}
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)
        with open(self.path, "wb") as out, open(self.data_path, "rb") as data:
            out.write(struct.pack("<Q", len(blob)))
            out.write(blob)
            shutil.copyfileobj(data, out, CHUNK_BYTES)
        os.remove(self.data_path)


def dtype_name(array) -> str:
    s = str(array.dtype).replace("mlx.core.", "")
    return {"bool_": "bool"}.get(s, s)


def to_bytes(array) -> bytes:
    if isinstance(array, np.ndarray):
        return np.ascontiguousarray(array).tobytes()
    import mlx.core as mx

    if array.dtype == mx.bfloat16:
        array = array.view(mx.uint16)
    return np.array(array, copy=False).tobytes()
