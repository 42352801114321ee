"""Remote roots: datasets read from S3 (and S3-compatible stores), GCS, Azure, plain HTTP(S)
servers that honour ``Range`` requests, and the Hugging Face Hub, without downloading them.

A root is a local folder or a URL: ``s3://bucket/prefix``, ``gs://bucket/prefix``,
``az://container/prefix``, ``https://host/path/to/dataset``,
``hf://datasets/org/name[@revision]`` (the revision is resolved to a commit once, through
``HF_ENDPOINT`` and ``HF_TOKEN`` as ``huggingface_hub`` does). Every surface that takes a root
takes a URL: :class:`roboframes.Dataset`, its loader, the torch drop-in, the MLX dataset and the
tools. All reading is the core's (``roboframes_core::store``): metadata once, parquet footers and
the columns needed, videos through FFmpeg over a block cache, nothing listed.

``storage_options`` are the store's settings (``object_store``'s keys: ``aws_endpoint``,
``aws_access_key_id``, ``aws_secret_access_key``, ``aws_region``, ``aws_allow_http``,
``timeout``, ``connect_timeout``, ...; S3 also reads the standard ``AWS_*`` environment) plus
``max_retries``, ``retry_timeout`` and ``token`` (a bearer token for HTTP servers and the Hub).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import _native

#: A dataset root as the API accepts it: a local folder or a URL.
RootLike = str | os.PathLike[str]
#: Options of a remote store, ``{key: value}``; values are turned into strings.
StorageOptions = Mapping[str, Any]


def is_url(root: object) -> bool:
    """True when ``root`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(root, str) and _native.is_url(root)


def root_of(root: RootLike) -> str | Path:
    """``root`` as the readers keep it: a URL string (no trailing ``/``) or a ``Path`` (``~``
    expanded)."""
    if is_url(root):
        return str(root).rstrip("/")
    return Path(root).expanduser()


def join(root: str | Path, *parts: str) -> str | Path:
    """The location of ``parts`` below ``root`` (a URL or a folder)."""
    if isinstance(root, Path):
        return root.joinpath(*parts)
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def storage_pairs(options: StorageOptions | None) -> list[tuple[str, str]] | None:
    """``storage_options`` as the core takes them (``True`` -> ``"true"``)."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise TypeError(f"storage_options must be a mapping of option names to values, not {type(options).__name__}")
    out = []
    for k, v in options.items():
        if not isinstance(k, str):
            raise TypeError(f"storage_options keys must be strings, not {type(k).__name__}")
        out.append((k, str(v).lower() if isinstance(v, bool) else str(v)))
    return out


def open_root(
    root: RootLike,
    storage_options: StorageOptions | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    block_cache_bytes: int | None = None,
) -> str | Path:
    """Registers a remote root in this process and returns its location (a Hub revision
    resolved to its commit); a local root comes back as a ``Path``."""
    r = root_of(root)
    if isinstance(r, Path):
        return r
    return str(
        _native.open_root(
            r, storage_pairs(storage_options), None if cache_dir is None else str(cache_dir), block_cache_bytes
        )
    )


def read_bytes(location: str | Path) -> bytes:
    """The bytes of one file of a dataset (below a local or an opened remote root)."""
    return _native.read_bytes(str(location))


def file_exists(location: str | Path) -> bool:
    """True when the file exists (below a local or an opened remote root)."""
    return _native.file_exists(str(location))


def stats(location: str | Path) -> dict[str, int] | None:
    """``requests``, ``bytes`` received and ``disk_hits`` (blocks served by ``cache_dir``) of
    the remote root at ``location`` in this process so far; ``None`` for a local root."""
    return _native.remote_stats(str(location))


def clear_memory_cache() -> None:
    """Empties this process's in-memory block cache (cold-read measurements)."""
    _native.clear_remote_memory_cache()
