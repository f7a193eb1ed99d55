"""Zip bombs and large entries: imports bound what they expand, refuse at once naming the entry, and stream
large entries to disk (issue 18, item 1).

The bombs are built by hand from one deflate block repeated (a 2 GiB entry costs ~0.5 s to build, its CRC
included), so they are the real thing: on the code before these checks, the 2 GiB zip took the importer to
4.1 GB of memory and 15 s.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from kernel.errors import InvalidArgument, field_violations
from services.dataset import importer
from services.dataset.importer import ImportLimits, ImportOptions, import_archive
from services.dataset.samples import upload_chunks
from services.dataset.settings import DatasetSettings

MIB = 1024**2


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


SMALL = {f"{c}/{i}.png": _png(n * 10 + i) for n, c in enumerate(("cat", "dog")) for i in range(3)}


def _zero_deflate(prefix: bytes, mib: int, suffix: bytes = b"") -> tuple[bytes, int, int]:
    """Raw deflate of prefix + mib MiB of zeros + suffix, without compressing the zeros mib times: after a
    full flush the compressor starts afresh, so every 1 MiB block of zeros compresses to the same bytes."""
    zeros = b"\0" * MIB
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    again = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    tail = co.compress(suffix) + co.flush()
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(suffix, crc)
    return head + block * mib + tail, crc, len(prefix) + mib * MIB + len(suffix)


def zip_bomb(path: Path, name: str, mib: int) -> Path:
    """A zip of SMALL (a valid two-class folder) plus `name`: `mib` MiB of zeros, deflated (~1 KiB per MiB)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, data in SMALL.items():
            zf.writestr(n, data)
    small = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(small)) as zf:
        infos = zf.infolist()
    cd_offset = struct.unpack("<I", small[-6:-2])[0]
    body, central = small[:cd_offset], small[cd_offset:-22]
    data, crc, size = _zero_deflate(b"", mib)
    raw = name.encode()
    offset = len(body)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(raw), 0) + raw
    entry = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            8,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(raw),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        + raw
    )
    cd = central + entry
    count = len(infos) + 1
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(cd), offset + len(local) + len(data), 0)
    path.write_bytes(body + local + data + cd + eocd)
    return path


def tar_gz_bomb(path: Path, name: str, mib: int) -> Path:
    """A tar.gz of SMALL plus `name`: `mib` MiB of zeros."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for n, data in SMALL.items():
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        head = tarfile.TarInfo(name)
        head.size = mib * MIB
        prefix = buf.getvalue()
    prefix = prefix[: prefix.rindex(SMALL["dog/2.png"]) + len(SMALL["dog/2.png"])]
    prefix += b"\0" * (-len(prefix) % 512) + head.tobuf(format=tarfile.GNU_FORMAT)
    data, crc, size = _zero_deflate(prefix, mib, b"\0" * 1024)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    path.write_bytes(header + data + struct.pack("<II", crc, size & 0xFFFFFFFF))
    return path


def refused(path: Path, tmp_path: Path, limits: ImportLimits = ImportLimits()) -> tuple[str, int]:
    """The refusal's text and the peak of Python memory while importing (bytes)."""
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgument) as exc:
            import_archive(path, tmp_path / "work", ImportOptions(), limits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return str(exc.value.message), peak


def test_the_default_limits_are_the_service_settings():
    settings = DatasetSettings()
    defaults = ImportLimits()
    assert defaults.max_entry_bytes == settings.dataset_max_entry_bytes
    assert defaults.max_compression_ratio == settings.dataset_max_compression_ratio
    assert defaults.max_uncompressed_bytes == settings.dataset_max_uncompressed_bytes


def test_a_2_gib_entry_in_a_2_mib_zip_is_refused_before_anything_is_expanded(tmp_path):
    path = zip_bomb(tmp_path / "bomb.zip", "cat/bomb.png", 2048)
    assert path.stat().st_size < 3 * MIB
    message, peak = refused(path, tmp_path)
    assert "'cat/bomb.png'" in message and "2147483648 bytes" in message and "dataset_max_entry_bytes" in message
    assert peak < 8 * MIB  # nothing of the entry was read (the code before read it whole: 4 GB)


def test_an_entry_under_the_size_limit_is_refused_by_its_compression_ratio(tmp_path):
    path = zip_bomb(tmp_path / "bomb.zip", "dog/zeros.bmp", 512)
    message, peak = refused(path, tmp_path)
    assert "'dog/zeros.bmp'" in message and "dataset_max_compression_ratio" in message and ":1" in message
    assert peak < 8 * MIB


def test_a_tar_gz_bomb_is_refused_at_its_member_header(tmp_path):
    path = tar_gz_bomb(tmp_path / "bomb.tar.gz", "cat/bomb.png", 2048)
    assert path.stat().st_size < 3 * MIB
    message, peak = refused(path, tmp_path)
    assert "'cat/bomb.png'" in message and "dataset_max_entry_bytes" in message
    # under the entry limit, the archive as a whole is judged by its ratio (a tar does not say per member)
    path = tar_gz_bomb(tmp_path / "bomb2.tar.gz", "cat/bomb.png", 256)
    message, peak = refused(path, tmp_path)
    assert "the archive (up to entry 'cat/bomb.png')" in message and "dataset_max_compression_ratio" in message
    assert peak < 8 * MIB


def test_a_large_entry_is_streamed_to_disk_not_held_in_memory(tmp_path):
    big = io.BytesIO()  # a 12 MiB BMP of noise: incompressible, over importer.SPOOL_ENTRY_BYTES
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (2048, 2048, 3), dtype=np.uint8)).save(big, "BMP")
    assert big.tell() > importer.SPOOL_ENTRY_BYTES
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w") as zf:  # stored: the entry is as large in the archive as expanded
        for n, data in SMALL.items():
            zf.writestr(n, data)
        zf.writestr("cat/big.bmp", big.getvalue())
    tracemalloc.start()
    try:
        result = import_archive(path, tmp_path / "work", ImportOptions(), ImportLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    case = next(c for c in result.cases if c.source_path == "cat/big.bmp")
    stored = result.images[case.sha256]
    assert stored.data is None and stored.path.stat().st_size == big.tell()
    assert (case.width, case.height) == (2048, 2048)
    assert peak < 4 * MIB  # read in 1 MiB chunks (the code before read the 12 MiB entry into one bytes object)


def test_total_and_entry_limits_are_checked_while_reading_too(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in SMALL.items():
            zf.writestr(n, data)
    with pytest.raises(InvalidArgument) as exc:
        import_archive(path, tmp_path / "w", ImportOptions(), ImportLimits(max_entry_bytes=100))
    assert "over the limit of 100 bytes per entry" in exc.value.message


@pytest.mark.integration
async def test_the_dataset_service_refuses_a_zip_bomb_naming_the_entry_and_creates_nothing(settings, tmp_path):
    from services.dataset.app import start
    from trainyard.dataset.v1 import dataset_service_pb2 as pb
    from trainyard.dataset.v1 import dataset_service_pb2_grpc

    data = zip_bomb(tmp_path / "bomb.zip", "cat/bomb.png", 2048).read_bytes()
    running = await start(settings)
    channel = grpc.aio.insecure_channel(running.address)
    stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    try:
        tracemalloc.start()
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.CreateDataset(upload_chunks(pb.CreateDatasetMetadata(name="bomb"), data))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "'cat/bomb.png'" in exc.value.details() and "dataset_max_entry_bytes" in exc.value.details()
        assert "archive" in field_violations(exc.value)
        assert peak < 16 * MIB
        assert not (await stub.ListDatasets(pb.ListDatasetsRequest())).datasets
    finally:
        await channel.close()
        await running.stop()


def test_gzip_helper_builds_a_readable_archive(tmp_path):
    """The hand-made tar.gz is a real one: gzip and tarfile read it (a small size, checked end to end)."""
    path = tar_gz_bomb(tmp_path / "small.tar.gz", "cat/zeros.bin", 2)
    with gzip.open(path) as fh, tarfile.open(fileobj=fh) as tf:
        member = tf.getmember("cat/zeros.bin")
        assert member.size == 2 * MIB and tf.extractfile(member).read() == b"\0" * 2 * MIB
    path = zip_bomb(tmp_path / "small.zip", "cat/zeros.bin", 2)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None and zf.read("cat/zeros.bin") == b"\0" * 2 * MIB
