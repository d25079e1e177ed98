"""Tests for airflow_provider_mineru.results: safe, streaming extraction of MinerU result zips."""

from __future__ import annotations

import io
import os
import pathlib
import pickle
import stat
import struct
import tracemalloc
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Iterable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airflow_provider_mineru.exceptions import MinerUResultError
from airflow_provider_mineru.utils.safe_zip import (
    DEFAULT_LIMITS,
    ExtractedResult,
    UnsafeResultZipError,
    ZipLimits,
    extract_result_zip,
    find_member,
    safe_member_path,
)

MiB = 1024 * 1024

REALISTIC = [
    ("full.md", b"# Title\n\n![](images/abc.jpg)\n\n$$E=mc^2$$\n"),
    ("images/abc.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8),
    ("0a1b_content_list.json", b'[{"type": "text", "text": "Title", "page_idx": 0}]'),
    ("0a1b_content_list_v2.json", b'[[{"type": "title"}]]'),
    ("layout.json", b'{"pdf_info": []}'),
    ("0a1b_model.json", b'[{"layout_dets": []}]'),
    ("0a1b_origin.pdf", b"%PDF-1.7\n%%EOF\n"),
]


# --------------------------------------------------------------------------------------------
# Helpers that build (hostile) archives
# --------------------------------------------------------------------------------------------


def make_zip(entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" on purpose
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return buf.getvalue()


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def central_records(data: bytes) -> list[int]:
    """Offsets of the central-directory file headers."""
    offsets, pos = [], data.find(b"PK\x01\x02")
    while pos != -1:
        offsets.append(pos)
        pos = data.find(b"PK\x01\x02", pos + 4)
    return offsets


def patch_central(data: bytes, index: int, **fields: int) -> bytes:
    """Overwrite fields of the index-th central-directory header (sizes, CRC, flags, offset)."""
    layout = {"flags": (8, "<H"), "crc": (16, "<I"), "csize": (20, "<I"), "usize": (24, "<I"), "offset": (42, "<I")}
    out = bytearray(data)
    base = central_records(data)[index]
    for field, value in fields.items():
        rel, fmt = layout[field]
        struct.pack_into(fmt, out, base + rel, value)
    return bytes(out)


def files_under(root: pathlib.Path) -> set[pathlib.Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.fixture
def realistic_zip(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "result.zip"
    path.write_bytes(make_zip(REALISTIC))
    return path


# --------------------------------------------------------------------------------------------
# Normal extraction
# --------------------------------------------------------------------------------------------


def test_realistic_zip_extracts_every_member_and_fills_every_field(tmp_path, realistic_zip):
    target = tmp_path / "out"
    result = extract_result_zip(realistic_zip, target)

    assert isinstance(result, ExtractedResult)
    assert result.target == str(target)
    assert result.files == tuple(name for name, _ in REALISTIC)
    assert result.skipped == ()
    assert result.total_bytes == sum(len(data) for _, data in REALISTIC)
    assert result.markdown == "full.md"
    assert result.content_list == "0a1b_content_list.json"
    assert result.content_list_v2 == "0a1b_content_list_v2.json"
    assert result.model_json == "0a1b_model.json"
    assert result.layout_json == "layout.json"
    assert result.origin_pdf == "0a1b_origin.pdf"
    for name, data in REALISTIC:
        assert (target / name).read_bytes() == data


def test_str_target_file_object_source_and_missing_members(tmp_path):
    data = make_zip([("notes.md", b"hello"), ("images/x.png", b"png")])
    result = extract_result_zip(io.BytesIO(data), str(tmp_path / "new" / "dir"))
    assert result.files == ("notes.md", "images/x.png")
    assert result.markdown == "notes.md"  # no full.md: first top-level *.md
    assert result.content_list is None
    assert result.content_list_v2 is None
    assert result.model_json is None
    assert result.layout_json is None
    assert result.origin_pdf is None
    assert (tmp_path / "new" / "dir" / "images" / "x.png").read_bytes() == b"png"


def test_markdown_prefers_full_md_and_ignores_nested_other_md(tmp_path):
    data = make_zip([("sub/a.md", b"a"), ("b.md", b"b"), ("x/full.md", b"full")])
    assert extract_result_zip(io.BytesIO(data), tmp_path).markdown == "x/full.md"
    data = make_zip([("sub/a.md", b"a")])
    assert extract_result_zip(io.BytesIO(data), tmp_path / "2").markdown is None


def test_directory_entries_are_created_and_not_listed(tmp_path):
    data = make_zip([("images/", b""), ("empty/", b""), ("full.md", b"x")])
    result = extract_result_zip(io.BytesIO(data), tmp_path)
    assert result.files == ("full.md",)
    assert result.skipped == ()
    assert (tmp_path / "images").is_dir()
    assert (tmp_path / "empty").is_dir()


def test_existing_files_are_overwritten(tmp_path, realistic_zip):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "full.md").write_text("old")
    extract_result_zip(realistic_zip, tmp_path / "out")
    assert (tmp_path / "out" / "full.md").read_bytes() == REALISTIC[0][1]


def test_stored_members(tmp_path):
    result = extract_result_zip(io.BytesIO(make_zip(REALISTIC, zipfile.ZIP_STORED)), tmp_path)
    assert result.total_bytes == sum(len(d) for _, d in REALISTIC)


# --------------------------------------------------------------------------------------------
# Path safety
# --------------------------------------------------------------------------------------------

ESCAPES = [
    "../x",
    "a/../../x",
    "../../../../x",
    "/etc/x",
    "\\x",
    "//server/share/x",
    "C:\\x",
    "C:/x",
    "C:x",
    "a/C:/x",
    "..\\x",
    "a\\..\\..\\x",
    "a/./../../x",
    ".. /x",
    "a/.../x",
    "./..",
]


@pytest.mark.parametrize("hostile", ESCAPES)
def test_traversal_never_lands_outside_target(tmp_path, monkeypatch, hostile):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    target = tmp_path / "a" / "b" / "c" / "target"
    unique = f"mineru-zip-slip-{uuid.uuid4().hex}"
    escape_to_tmp = "../" * 30 + "tmp/" + unique
    absolute = f"/tmp/{unique}-abs"
    data = make_zip([(hostile, b"owned"), (escape_to_tmp, b"owned"), (absolute, b"owned"), ("full.md", b"ok")])

    result = extract_result_zip(io.BytesIO(data), target)

    assert result.files == ("full.md",)
    assert {name for name, _ in result.skipped} == {hostile, escape_to_tmp, absolute}
    assert all(reason.startswith("unsafe path") for _, reason in result.skipped)
    assert files_under(tmp_path) == {target / "full.md"}
    assert not os.path.lexists(f"/tmp/{unique}")
    assert not os.path.lexists(absolute)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("full.md", "full.md"),
        ("./a", "a"),
        ("a//b/./c", "a/b/c"),
        ("images\\abc.jpg", "images/abc.jpg"),
        ("dir/", "dir"),
        ("a..b/c..", "a..b/c.."),
        ("..a", "..a"),
        ("mixed:colon", "mixed:colon"),
        ("", None),
        (".", None),
        ("./", None),
        ("//", None),
        ("a\x00b", None),
        ("../x", None),
        ("a/..", None),
        ("/abs", None),
        ("\\abs", None),
        ("C:\\x", None),
        ("c:x", None),
        ("x/D:/y", None),
        ("...", None),
        (" .. ", None),
    ],
)
def test_safe_member_path_examples(name, expected):
    assert safe_member_path(name) == expected


@settings(max_examples=500, deadline=None)
@given(
    st.text()
    | st.lists(st.sampled_from(["..", ".", "", "a", "/", "\\", "C:", "c:\\", " ", "...", "\x00", "é"]), max_size=8).map(
        "".join
    )
)
@example("a/../../b")
@example("..\\..\\b")
def test_safe_member_path_never_leaves_the_base(name):
    result = safe_member_path(name)
    if result is None:
        return
    assert result
    assert safe_member_path(result) == result  # idempotent
    assert "\\" not in result
    assert "\x00" not in result
    parts = result.split("/")
    assert all(part not in ("", ".", "..") for part in parts)
    base = "/srv/base"
    resolved = os.path.normpath(os.path.join(base, result))
    assert resolved.startswith(base + "/")
    assert not pathlib.PurePosixPath(result).is_absolute()
    # Also safe when joined on Windows, part by part as the extractor does.
    win_base = pathlib.PureWindowsPath("C:/base")
    joined = win_base
    for part in parts:
        joined = joined / part
    assert joined.drive == "C:"
    assert joined.parts[: len(win_base.parts)] == win_base.parts
    assert ".." not in joined.parts


def test_symlinks_and_special_files_are_skipped_never_created(tmp_path):
    fifo = zipfile.ZipInfo("pipe")
    fifo.create_system = 3
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    device = zipfile.ZipInfo("dev")
    device.create_system = 3
    device.external_attr = (stat.S_IFCHR | 0o644) << 16
    data = make_zip(
        [
            (symlink_info("images"), b"/etc"),
            (symlink_info("link.md"), b"/etc/passwd"),
            (fifo, b""),
            (device, b""),
            ("full.md", b"ok"),
            ("images/a.jpg", b"jpg"),
        ]
    )
    result = extract_result_zip(io.BytesIO(data), tmp_path / "t")
    assert result.files == ("full.md", "images/a.jpg")
    reasons = dict(result.skipped)
    assert reasons["images"] == "symbolic link"
    assert reasons["link.md"] == "symbolic link"
    assert reasons["pipe"].startswith("special file")
    assert reasons["dev"].startswith("special file")
    assert not (tmp_path / "t" / "images").is_symlink()
    assert (tmp_path / "t" / "images").is_dir()
    assert not os.path.lexists(tmp_path / "t" / "link.md")
    assert not os.path.lexists(tmp_path / "t" / "pipe")


def test_symlink_already_in_target_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "images").symlink_to(outside, target_is_directory=True)
    data = make_zip([("full.md", b"ok"), ("images/a.jpg", b"jpg")])
    result = extract_result_zip(io.BytesIO(data), target)
    assert result.files == ("full.md",)
    assert result.skipped[0][0] == "images/a.jpg"
    assert "outside the target" in result.skipped[0][1]
    assert list(outside.iterdir()) == []


def test_duplicates_keep_the_first(tmp_path):
    data = make_zip(
        [
            ("full.md", b"first"),
            ("full.md", b"second"),
            ("./full.md", b"third"),
            ("FULL.MD", b"fourth"),
            ("images\\a.jpg", b"one"),
            ("images/a.jpg", b"two"),
        ]
    )
    result = extract_result_zip(io.BytesIO(data), tmp_path)
    assert result.files == ("full.md", "images/a.jpg")
    assert [name for name, _ in result.skipped] == ["full.md", "./full.md", "FULL.MD", "images/a.jpg"]
    assert all("duplicate" in reason for _, reason in result.skipped)
    assert (tmp_path / "full.md").read_bytes() == b"first"
    assert (tmp_path / "images" / "a.jpg").read_bytes() == b"one"


def test_file_directory_collisions_keep_the_first(tmp_path):
    data = make_zip(
        [
            ("a", b"file a"),
            ("a/b", b"needs dir a"),
            ("a/", b""),
            ("d/x", b"in dir d"),
            ("d", b"file over dir d"),
            ("e/", b""),
            ("e", b"file over dir e"),
        ]
    )
    result = extract_result_zip(io.BytesIO(data), tmp_path)
    assert result.files == ("a", "d/x")
    assert [name for name, _ in result.skipped] == ["a/b", "a/", "d", "e"]
    assert (tmp_path / "a").read_bytes() == b"file a"
    assert (tmp_path / "d" / "x").read_bytes() == b"in dir d"
    assert (tmp_path / "e").is_dir()


def test_overlapping_entries_are_skipped(tmp_path):
    data = make_zip([("a.txt", b"A" * 100), ("b.txt", b"B" * 100)], zipfile.ZIP_STORED)
    data = patch_central(data, 1, offset=0)  # b.txt's entry now points at a.txt's data
    result = extract_result_zip(io.BytesIO(data), tmp_path)
    assert result.files == ("a.txt",)
    assert result.skipped[0][0] == "b.txt"
    assert "overlapping" in result.skipped[0][1]


def test_only_unsafe_members_raises(tmp_path):
    data = make_zip([("../x", b"1"), (symlink_info("l"), b"/etc"), ("/abs", b"2")])
    with pytest.raises(UnsafeResultZipError, match="no member that is safe"):
        extract_result_zip(io.BytesIO(data), tmp_path / "t")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("entries", [[], [("images/", b"")]])
def test_zip_without_files_is_a_result_error_not_unsafe(tmp_path, entries):
    with pytest.raises(MinerUResultError, match="contains no files") as info:
        extract_result_zip(io.BytesIO(make_zip(entries)), tmp_path / "t")
    assert not isinstance(info.value, UnsafeResultZipError)


def test_non_utf8_names_are_kept_as_decoded_and_still_checked(tmp_path):
    data = make_zip([("cafX.md", b"latin-1 name"), ("../Xevil", b"no"), ("full.md", b"ok")])
    assert not zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x800
    data = data.replace(b"cafX.md", b"caf\xe9.md").replace(b"../Xevil", b"../\x81evil")
    result = extract_result_zip(io.BytesIO(data), tmp_path / "t")
    decoded = b"caf\xe9.md".decode("cp437")
    assert result.files == (decoded, "full.md")
    assert result.skipped[0][0] == b"../\x81evil".decode("cp437")
    assert (tmp_path / "t" / decoded).read_bytes() == b"latin-1 name"
    assert files_under(tmp_path) == {tmp_path / "t" / decoded, tmp_path / "t" / "full.md"}


def test_invalid_utf8_name_with_utf8_flag_is_a_result_error(tmp_path):
    data = make_zip([("é.md", b"x")])
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x800
    data = data.replace("é".encode(), b"\xff\xfe")
    with pytest.raises(MinerUResultError, match="UTF-8"):
        extract_result_zip(io.BytesIO(data), tmp_path)


def test_name_too_long_for_the_filesystem_is_skipped(tmp_path):
    data = make_zip([("x" * 300 + ".md", b"long"), ("full.md", b"ok")])
    result = extract_result_zip(io.BytesIO(data), tmp_path)
    assert result.files == ("full.md",)
    assert "not valid on the target filesystem" in result.skipped[0][1]


# --------------------------------------------------------------------------------------------
# Limits (zip bombs)
# --------------------------------------------------------------------------------------------


def zeros_zip(size: int, name: str = "zeros.bin", extra: Iterable[tuple[str, bytes]] = ()) -> bytes:
    """A deflated member of ``size`` zero bytes, written in chunks (never ``size`` bytes in memory)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for extra_name, extra_data in extra:
            zf.writestr(extra_name, extra_data)
        with zf.open(name, "w") as dst:
            chunk = bytes(MiB)
            for _ in range(size // MiB):
                dst.write(chunk)
            dst.write(bytes(size % MiB))
    return buf.getvalue()


def test_ratio_bomb_is_refused_before_writing(tmp_path):
    data = zeros_zip(50 * MiB, extra=[("full.md", b"ok")])
    with pytest.raises(UnsafeResultZipError, match=r"'zeros\.bin'.*max_ratio=100"):
        extract_result_zip(io.BytesIO(data), tmp_path / "t", limits=ZipLimits(max_ratio=100))
    assert files_under(tmp_path) == set()


def test_ratio_is_not_checked_for_small_members(tmp_path):
    data = zeros_zip(MiB)  # ~1000:1, but only 1 MiB
    result = extract_result_zip(io.BytesIO(data), tmp_path, limits=ZipLimits(max_ratio=2))
    assert result.total_bytes == MiB


def test_member_and_total_limits_are_refused_before_writing(tmp_path):
    data = make_zip([("a.bin", bytes(400_000)), ("b.bin", bytes(400_000)), ("c.bin", bytes(400_000))])
    with pytest.raises(UnsafeResultZipError, match=r"'a\.bin'.*max_member_bytes=1000"):
        extract_result_zip(io.BytesIO(data), tmp_path, limits=ZipLimits(max_member_bytes=1000))
    with pytest.raises(UnsafeResultZipError, match=r"max_total_bytes=1000000 .*'c\.bin'"):
        extract_result_zip(io.BytesIO(data), tmp_path, limits=ZipLimits(max_total_bytes=1_000_000))
    assert files_under(tmp_path) == set()
    result = extract_result_zip(io.BytesIO(data), tmp_path, limits=ZipLimits(max_total_bytes=1_200_000))
    assert result.total_bytes == 1_200_000


def test_too_many_entries_is_refused_before_writing(tmp_path):
    data = make_zip([(f"images/{i}.jpg", b"") for i in range(20_001)], zipfile.ZIP_STORED)
    with pytest.raises(UnsafeResultZipError, match="20001 entries, over max_entries=20000"):
        extract_result_zip(io.BytesIO(data), tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_too_many_entries_even_when_the_end_record_lies(tmp_path):
    data = bytearray(make_zip([(f"{i}.md", b"") for i in range(101)], zipfile.ZIP_STORED))
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 1, 1)  # "1 entry"
    with pytest.raises(UnsafeResultZipError, match="101 entries, over max_entries=100"):
        extract_result_zip(io.BytesIO(bytes(data)), tmp_path / "t", limits=ZipLimits(max_entries=100))
    assert not (tmp_path / "t").exists()


def test_declared_size_smaller_than_data_never_writes_more_than_declared(tmp_path):
    payload = b"0123456789" * 100
    data = make_zip([("a.txt", payload)], zipfile.ZIP_STORED)
    # Declared 10 bytes, with the CRC of those 10 bytes: exactly 10 bytes are written.
    lie = patch_central(data, 0, usize=10, crc=zlib.crc32(payload[:10]))
    result = extract_result_zip(io.BytesIO(lie), tmp_path / "t")
    assert (tmp_path / "t" / "a.txt").read_bytes() == payload[:10]
    assert result.total_bytes == 10
    # Declared 10 bytes, CRC of the whole payload: CRC error, nothing left behind.
    with pytest.raises(MinerUResultError, match=r"'a\.txt'"):
        extract_result_zip(io.BytesIO(patch_central(data, 0, usize=10)), tmp_path / "u")
    assert files_under(tmp_path / "u") == set()


def test_deflate_bomb_disguised_as_small_member_is_cut_at_declared_size(tmp_path):
    data = zeros_zip(20 * MiB)
    lie = patch_central(data, 0, usize=1000)  # < 1 MiB, so the ratio pre-check does not apply
    with pytest.raises(MinerUResultError, match=r"'zeros\.bin'"):
        extract_result_zip(io.BytesIO(lie), tmp_path / "t")
    assert files_under(tmp_path / "t") == set()


def test_declared_size_larger_than_data_is_truncation(tmp_path):
    data = make_zip([("full.md", b"ok"), ("a.txt", b"x" * 1000)], zipfile.ZIP_STORED)
    lie = patch_central(data, 1, usize=5000)
    with pytest.raises(MinerUResultError, match=r"'a\.txt'.*truncated: 1000 of 5000"):
        extract_result_zip(io.BytesIO(lie), tmp_path)
    assert not (tmp_path / "a.txt").exists()
    assert (tmp_path / "full.md").exists()


@pytest.mark.parametrize(
    ("limits", "patch", "produced", "message"),
    [
        (DEFAULT_LIMITS, {}, 3 * MiB, r"'big\.bin'.* larger than its declared size 5"),
        (ZipLimits(max_member_bytes=MiB // 2), {}, 3 * MiB, r"'big\.bin'.* exceeds max_member_bytes=524288"),
        (ZipLimits(max_total_bytes=MiB // 2), {}, 3 * MiB, r"'big\.bin'.* over max_total_bytes=524288"),
        # Declared 3 MiB from 1.5 MiB compressed passes max_ratio=2; producing 4 MiB does not.
        (ZipLimits(max_ratio=2), {"usize": 3 * MiB, "csize": 3 * MiB // 2}, 4 * MiB, r"'big\.bin'.* max_ratio=2"),
    ],
)
def test_streaming_counts_actual_bytes_and_removes_the_partial_member(
    tmp_path, monkeypatch, limits, patch, produced, message
):
    """Declared sizes are not trusted: if a member produced more, the streaming counters stop it."""
    data = make_zip([("full.md", b"ok"), ("big.bin", b"small")], zipfile.ZIP_STORED)
    data = patch_central(data, 1, **patch)
    real_open = zipfile.ZipFile.open
    opened = []

    def lying_open(self, member, *args, **kwargs):
        if getattr(member, "filename", member) == "big.bin":
            opened.append(member)
            return io.BytesIO(bytes(produced))
        return real_open(self, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", lying_open)
    with pytest.raises(UnsafeResultZipError, match=message):
        extract_result_zip(io.BytesIO(data), tmp_path, limits=limits)
    assert opened
    assert not (tmp_path / "big.bin").exists()
    assert (tmp_path / "full.md").read_bytes() == b"ok"


def test_bounded_memory_for_a_200_mib_member(tmp_path):
    data = zeros_zip(200 * MiB)  # ~200 KB deflated; ratio ~1030, above the default on purpose
    source = io.BytesIO(data)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        result = extract_result_zip(source, tmp_path, limits=ZipLimits(max_ratio=2000))
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert result.total_bytes == 200 * MiB
    assert (tmp_path / "zeros.bin").stat().st_size == 200 * MiB
    assert peak < 50 * MiB, f"peak Python memory grew by {peak / MiB:.1f} MiB"


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_total_bytes", 0), ("max_member_bytes", -1), ("max_entries", 0), ("max_ratio", 0.0), ("max_ratio", True)],
)
def test_zip_limits_must_be_positive(field, value):
    with pytest.raises(ValueError, match=field):
        ZipLimits(**{field: value})


# --------------------------------------------------------------------------------------------
# Broken archives
# --------------------------------------------------------------------------------------------


def test_not_a_zip_names_the_source(tmp_path):
    text = tmp_path / "page.html"
    text.write_text("<html>Access Denied</html>")
    with pytest.raises(MinerUResultError, match=r"page\.html.*not a readable zip"):
        extract_result_zip(text, tmp_path / "t")
    with pytest.raises(MinerUResultError, match="not a readable zip"):
        extract_result_zip(io.BytesIO(b""), tmp_path / "t")
    with pytest.raises(MinerUResultError, match=r"missing\.zip.*does not exist"):
        extract_result_zip(tmp_path / "missing.zip", tmp_path / "t")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_zip(tmp_path, realistic_zip, keep):
    data = realistic_zip.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(MinerUResultError, match=r"cut\.zip"):
        extract_result_zip(cut, tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_crc_error_removes_the_member_and_names_it(tmp_path):
    data = bytearray(make_zip([("full.md", b"ok"), ("a.txt", b"A" * 1000)], zipfile.ZIP_STORED))
    pos = data.find(b"A" * 1000)
    data[pos + 500] = ord("B")
    with pytest.raises(MinerUResultError, match=r"'a\.txt'.*(?i:crc)"):
        extract_result_zip(io.BytesIO(bytes(data)), tmp_path)
    assert not (tmp_path / "a.txt").exists()


def test_corrupt_deflate_stream(tmp_path):
    payload = os.urandom(50_000)
    data = bytearray(make_zip([("a.bin", payload)]))
    for i in range(100, 2000):
        data[i] ^= 0x5A
    with pytest.raises(MinerUResultError, match=r"'a\.bin'"):
        extract_result_zip(io.BytesIO(bytes(data)), tmp_path)
    assert not (tmp_path / "a.bin").exists()


def test_encrypted_member_is_a_result_error(tmp_path):
    data = make_zip([("full.md", b"ok"), ("secret.json", b"{}")])
    data = patch_central(data, 1, flags=0x1)
    with pytest.raises(MinerUResultError, match=r"'secret\.json'.*encrypted"):
        extract_result_zip(io.BytesIO(data), tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_bzip2_member_is_refused_before_writing(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("full.md", b"ok")
        zf.writestr("bomb.bin", bytes(10_000), compress_type=zipfile.ZIP_BZIP2)
    with pytest.raises(MinerUResultError, match=r"'bomb\.bin'.*bzip2"):
        extract_result_zip(io.BytesIO(buf.getvalue()), tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_target_that_is_a_file_is_a_result_error(tmp_path, realistic_zip):
    (tmp_path / "t").write_text("not a dir")
    with pytest.raises(MinerUResultError, match="not a directory"):
        extract_result_zip(realistic_zip, tmp_path / "t")


def test_target_of_unknown_type_is_a_type_error(realistic_zip):
    with pytest.raises(TypeError, match="target"):
        extract_result_zip(realistic_zip, 42)


def test_zip_bytes_instead_of_a_file_is_a_type_error(tmp_path, realistic_zip):
    with pytest.raises(TypeError, match="BytesIO"):
        extract_result_zip(realistic_zip.read_bytes(), tmp_path)


def test_non_seekable_source_is_a_result_error(tmp_path, realistic_zip):
    class Stream(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self._inner.readinto(buffer)

    with pytest.raises(MinerUResultError, match="not a readable zip"):
        extract_result_zip(Stream(realistic_zip.read_bytes()), tmp_path / "t")


# --------------------------------------------------------------------------------------------
# Object storage targets
# --------------------------------------------------------------------------------------------


def test_file_url_string_target_is_wrapped_in_object_storage_path(tmp_path, realistic_zip):
    url = f"file://{tmp_path}/via-url"
    result = extract_result_zip(realistic_zip, url)
    assert result.files == tuple(name for name, _ in REALISTIC)
    assert "via-url" in result.target
    for name, data in REALISTIC:
        assert (tmp_path / "via-url" / name).read_bytes() == data


def test_object_storage_path_file_target(tmp_path, realistic_zip):
    from airflow_provider_mineru.version_compat import ObjectStoragePath

    target = ObjectStoragePath(f"file://{tmp_path}/osp")
    result = extract_result_zip(realistic_zip, target)
    assert result.target == str(target)
    assert (tmp_path / "osp" / "images" / "abc.jpg").read_bytes() == REALISTIC[1][1]


@pytest.fixture
def memory_fs():
    """fsspec's memory filesystem, attached to Airflow's object storage for ``memory://``."""
    import fsspec

    try:
        from airflow.sdk.io import attach  # Airflow 3
    except ImportError:  # Airflow 2.11
        from airflow.io.store import attach
    fs = fsspec.filesystem("memory")
    attach(protocol="memory", fs=fs)
    return fs


def test_upath_memory_target_is_used_as_is(memory_fs):
    from upath import UPath

    bucket = f"mineru-test-{uuid.uuid4().hex}"
    root = UPath(f"memory://{bucket}/out")
    try:
        result = extract_result_zip(io.BytesIO(make_zip(REALISTIC)), root)
        assert result.files == tuple(name for name, _ in REALISTIC)
        assert memory_fs.cat_file(f"/{bucket}/out/images/abc.jpg") == REALISTIC[1][1]
    finally:
        memory_fs.rm(f"/{bucket}", recursive=True)


def test_object_storage_path_memory_target(memory_fs):
    from airflow_provider_mineru.version_compat import ObjectStoragePath

    bucket = f"mineru-test-{uuid.uuid4().hex}"
    root = ObjectStoragePath(f"memory://{bucket}/results")
    hostile = make_zip([*REALISTIC, ("../../escape.md", b"no"), (symlink_info("link"), b"/etc")])
    try:
        result = extract_result_zip(io.BytesIO(hostile), root / "doc-1")
        assert result.files == tuple(name for name, _ in REALISTIC)
        assert {name for name, _ in result.skipped} == {"../../escape.md", "link"}
        assert result.content_list == "0a1b_content_list.json"
        for name, data in REALISTIC:
            with (root / "doc-1" / name).open("rb") as f:
                assert f.read() == data
        everything = memory_fs.find(f"/{bucket}")
        assert all(path.startswith(f"/{bucket}/results/doc-1/") for path in everything), everything
    finally:
        memory_fs.rm(f"/{bucket}", recursive=True)


def test_object_storage_bad_member_removes_the_partial_object(memory_fs):
    from airflow_provider_mineru.version_compat import ObjectStoragePath

    bucket = f"mineru-test-{uuid.uuid4().hex}"
    root = ObjectStoragePath(f"memory://{bucket}/r")
    data = make_zip([("full.md", b"ok"), ("big.bin", bytes(3 * MiB))])
    data = patch_central(data, 1, usize=5)  # declared 5 bytes; the CRC check fails after 5
    try:
        with pytest.raises(MinerUResultError, match=r"'big\.bin'"):
            extract_result_zip(io.BytesIO(data), root)
        assert not (root / "big.bin").exists()
        assert (root / "full.md").exists()
    finally:
        memory_fs.rm(f"/{bucket}", recursive=True)


# --------------------------------------------------------------------------------------------
# find_member, the error class, import cost
# --------------------------------------------------------------------------------------------


def test_find_member_by_suffix():
    names = [
        "__MACOSX/._0a1b_content_list.json",
        "._x_model.json",
        "images/",
        "0a1b_content_list_v2.json",
        "0A1B_Content_List.JSON",
        "0a1b_model.json",
        "sub/0a1b_origin.pdf",
    ]
    assert find_member(names, "_content_list.json") == "0A1B_Content_List.JSON"
    assert find_member(names, "_content_list_v2.json") == "0a1b_content_list_v2.json"
    assert find_member(names, "_model.json") == "0a1b_model.json"
    assert find_member(names, "_origin.pdf") == "sub/0a1b_origin.pdf"
    assert find_member(names, "layout.json") is None
    assert find_member(iter(names), "_MODEL.json") == "0a1b_model.json"
    assert find_member([], "x") is None


def test_find_member_on_a_zip_namelist(realistic_zip):
    with zipfile.ZipFile(realistic_zip) as zf:
        assert find_member(zf.namelist(), "_content_list.json") == "0a1b_content_list.json"


def test_unsafe_error_class():
    from airflow_provider_mineru.utils import safe_zip as results

    assert issubclass(UnsafeResultZipError, MinerUResultError)
    assert results.UnsafeResultZipError is UnsafeResultZipError
    error = pickle.loads(pickle.dumps(UnsafeResultZipError("boom")))
    assert type(error) is UnsafeResultZipError
    assert error.message == "boom"


# --------------------------------------------------------------------------------------------
# Edge cases from the hardening review: lying central directory, deep members, ß vs ss
# --------------------------------------------------------------------------------------------


def lying_central_directory(copies: int) -> bytes:
    """One stored member whose central record is repeated ``copies`` times; the end record says 1 entry."""
    data = make_zip([("a", b"x")], zipfile.ZIP_STORED)
    cd_start = data.find(b"PK\x01\x02")
    eocd = data.rfind(b"PK\x05\x06")
    record = data[cd_start:eocd]
    directory = record * copies
    end = bytearray(data[eocd:])
    struct.pack_into("<HHLL", end, 8, 1, 1, len(directory), cd_start)
    return data[:cd_start] + directory + bytes(end)


def test_a_central_directory_whose_count_lies_is_refused_in_bounded_memory_and_time(tmp_path):
    import time

    data = lying_central_directory(300_000)  # 300,000 entries (14 MB of directory), "1" declared
    started = time.perf_counter()
    with pytest.raises(UnsafeResultZipError, match="at least 20001 entries, over max_entries=20000"):
        extract_result_zip(io.BytesIO(data), tmp_path / "out")
    assert time.perf_counter() - started < 2
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeResultZipError):
            extract_result_zip(io.BytesIO(data), tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(data)  # the directory read once; zipfile never built 300,000 ZipInfo objects
    assert not (tmp_path / "out").exists()


def test_a_huge_central_directory_is_refused_before_it_is_read(tmp_path):
    data = lying_central_directory(200)
    limits = ZipLimits(max_central_directory_bytes=1024)
    with pytest.raises(UnsafeResultZipError, match="central directory of 9400 bytes, over max_central_directory_bytes"):
        extract_result_zip(io.BytesIO(data), tmp_path / "out", limits=limits)


def test_a_member_1500_folders_deep_raises_our_error_not_recursion_error(tmp_path):
    data = make_zip([("/".join(["d"] * 1500) + "/x.md", b"deep"), ("full.md", b"ok")])
    with pytest.raises(UnsafeResultZipError, match="1500 folders deep, over max_depth=64"):
        extract_result_zip(io.BytesIO(data), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_max_depth_allows_what_mineru_writes(tmp_path):
    result = extract_result_zip(io.BytesIO(make_zip([("a/" * 64 + "x.md", b"ok")])), tmp_path / "out")
    assert result.files == ("a/" * 64 + "x.md",)


def test_strasse_and_strasse_with_eszett_are_two_files(tmp_path):
    result = extract_result_zip(io.BytesIO(make_zip([("Strasse.md", b"ss"), ("Straße.md", b"sz")])), tmp_path)
    assert result.files == ("Strasse.md", "Straße.md")
    assert result.skipped == ()
    assert (tmp_path / "Straße.md").read_bytes() == b"sz"


def test_case_duplicates_are_still_reported_not_dropped_silently(tmp_path, caplog):
    result = extract_result_zip(io.BytesIO(make_zip([("Full.md", b"1"), ("full.md", b"2")])), tmp_path)
    assert result.files == ("Full.md",)
    assert result.skipped == (("full.md", "duplicate of earlier file 'Full.md'"),)
    assert "full.md" in caplog.text
