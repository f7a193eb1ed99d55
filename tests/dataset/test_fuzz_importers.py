"""Bad input for the dataset importer: hypothesis property tests, the checked-in corpus, the fuzz target.

Contract under test: services.dataset.importer.import_archive either imports or raises
kernel.errors.InvalidArgument (with at least one field violation) — never another exception.
Each property runs few examples with no per-example deadline, so the file takes a few seconds.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.errors import InvalidArgument
from tests.fuzz import fuzz_annotations as target

CORPUS = Path(__file__).parent.parent / "fuzz" / "corpus"
# TRAINYARD_FUZZ_EXAMPLES=2000 for a longer, random (not derandomized) run.
_EXAMPLES = int(os.environ.get("TRAINYARD_FUZZ_EXAMPLES", "0"))
FAST = settings(
    max_examples=_EXAMPLES or 25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not _EXAMPLES,
    database=None,
)


def outcome(data: bytes, suffix: str = ".zip", **options) -> str:
    """ "ok" or "invalid" (InvalidArgument with a field violation); any other exception propagates."""
    return "ok" if imported(data, suffix, **options) is not None else "invalid"


def imported(data: bytes, suffix: str = ".zip", **options):
    """The ImportResult, or None when refused with InvalidArgument (with a field violation)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        try:
            return target.import_bytes(data, Path(tmp), suffix, **options)
        except InvalidArgument as exc:
            assert exc.violations
            return None


GOOD_ZIP = target.zip_bytes(
    {"cat/1.png": target.PNG, "cat/2.png": target.PNG, "dog/1.png": target.PNG, "dog/2.png": target.PNG}
)


GOOD = None


def good_result():
    global GOOD
    if GOOD is None:
        GOOD = imported(GOOD_ZIP)
    return GOOD


def signature(result) -> list[tuple]:
    return sorted((c.source_path, c.sha256, result.classes[c.label]) for c in result.cases)


def test_the_good_seed_archive_imports():
    result = good_result()
    assert result is not None and result.classes == ["cat", "dog"] and len(result.cases) == 4


@FAST
@given(st.binary(max_size=2048), st.sampled_from([".zip", ".tar", ".tar.gz", ".bin"]))
def test_random_bytes_are_rejected_as_invalid_argument(data, suffix):
    assert outcome(data, suffix) == "invalid"  # 2 KB of noise is never an archive of two classes of images


@FAST
@given(st.lists(st.tuples(st.integers(0, len(GOOD_ZIP) - 1), st.integers(1, 255)), min_size=1, max_size=8))
def test_corrupted_zip_bytes_import_the_same_cases_or_are_invalid(flips):
    data = bytearray(GOOD_ZIP)
    for pos, xor in flips:
        data[pos] ^= xor
    result = imported(bytes(data))
    if result is not None:
        # only bytes nothing reads were hit (times, attributes): the same cases; or a name in the central
        # directory became a non-image's (never opened, so never checked against its local header): that
        # image is left out and the warnings say a file was ignored
        assert set(signature(result)) <= set(signature(good_result()))
        if len(result.cases) < len(good_result().cases):
            assert any("ignored" in w for w in result.warnings), result.warnings


@FAST
@given(st.integers(0, len(GOOD_ZIP)))
def test_truncated_zips_are_invalid(cut):
    assert outcome(GOOD_ZIP[:cut]) == ("ok" if cut == len(GOOD_ZIP) else "invalid")


NAMES = st.text(alphabet=st.sampled_from("ab/._- \\~:é"), min_size=1, max_size=20)


@FAST
@given(st.dictionaries(NAMES, st.sampled_from([target.PNG, b"", b"\x89PNG", b"text"]), min_size=1, max_size=6))
def test_arbitrary_member_names_and_contents(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    result = imported(buf.getvalue())
    if result is not None:  # every case is a decodable image of the archive, in one of 2+ classes
        contents = {
            "/".join(p for p in n.replace("\\", "/").split("/") if p not in ("", ".")): d for n, d in members.items()
        }
        assert len(result.classes) >= 2
        assert all(contents.get(c.source_path) == target.PNG for c in result.cases), result.cases


# -- annotation text, through the fuzz target ---------------------------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
COCO_KEYS = st.fixed_dictionaries(
    {},
    optional={
        "images": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": JSONISH,
                    "file_name": st.sampled_from(["a.png", "images/a.png", "", "nope.png"]) | JSONISH,
                    "width": JSONISH,
                    "height": JSONISH,
                },
            ),
            max_size=3,
        ),
        "annotations": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": JSONISH,
                    "image_id": st.sampled_from([1, 2]) | JSONISH,
                    "category_id": st.sampled_from([1, 7]) | JSONISH,
                    "bbox": st.lists(st.floats() | st.integers(-100, 100), max_size=5) | JSONISH,
                    "segmentation": JSONISH,
                    "iscrowd": JSONISH,
                },
            ),
            max_size=4,
        ),
        "categories": st.lists(
            st.fixed_dictionaries({}, optional={"id": st.sampled_from([1, 7]) | JSONISH, "name": JSONISH}),
            max_size=3,
        ),
    },
)


@FAST
@given(COCO_KEYS)
def test_random_coco_documents(doc):
    text = json.dumps(doc, allow_nan=True).encode()
    target.check_annotations("coco", text)  # refused, or sound (check_sound)


VOC_TAGS = st.sampled_from(
    ["annotation", "object", "name", "bndbox", "xmin", "ymin", "xmax", "ymax", "size", "filename"]
)


@st.composite
def voc_xml(draw, depth: int = 0) -> str:
    tag = draw(VOC_TAGS)
    if depth >= 3 or draw(st.booleans()):
        body = draw(
            st.sampled_from(["cat", "dog", "1", "-5", "1e400", "nan", "", "a.png", "3.5"]) | st.text(max_size=6)
        )
        body = body.replace("<", "").replace("&", "")
    else:
        body = "".join(draw(st.lists(voc_xml(depth + 1), max_size=3)))
    return f"<{tag}>{body}</{tag}>"


@FAST
@given(voc_xml(), st.booleans())
def test_random_voc_xml(xml, truncate):
    text = f"<annotation><filename>a.png</filename>{xml}</annotation>".encode()
    if truncate:
        text = text[: len(text) // 2]
    target.check_annotations("voc", text)  # refused, or sound (check_sound)


YOLO_TOKEN = st.sampled_from(["0", "1", "5", "-1", "0.5", "0.1", "1.5", "nan", "inf", "x", "1e9", ""])


@FAST
@given(st.lists(st.lists(YOLO_TOKEN, max_size=9).map(" ".join), max_size=6).map("\n".join))
def test_random_yolo_labels(text):
    target.check_annotations("yolo", text.encode())  # refused, or sound (check_sound)


CSV_CELL = st.sampled_from(["img/a.png", "img/b.png", "a.png", "../x.png", "cat", "dog", "", "train", "val", '"', ","])


@FAST
@given(
    st.lists(st.sampled_from(["file", "label", "split", "class", "path", "x", ""]), min_size=1, max_size=4),
    st.lists(st.lists(CSV_CELL, max_size=5), max_size=6),
)
def test_random_csv(header, rows):
    text = "\n".join([",".join(header), *(",".join(r) for r in rows)]).encode()
    target.check_annotations("csv", text)  # refused, or sound (check_sound)


@FAST
@given(st.binary(max_size=512))
def test_fuzz_target_on_random_bytes(data):
    target.fuzz_one(data)  # raises on anything but success / InvalidArgument


# -- the checked-in corpus ----------------------------------------------------------------------------

EXPECTED_ARCHIVES = {
    "empty.zip": "invalid",
    "truncated.zip": "invalid",
    "not_an_archive.zip": "invalid",
    "bad_crc.zip": "invalid",
    "zip_only_text.zip": "invalid",
    "zip_corrupt_images.zip": "invalid",
    "zip_traversal.zip": "invalid",  # refused naming the entry that points outside; nothing escapes workdir
    "zip_one_class.zip": "invalid",  # classification needs two classes
    "zip_bomb_png.zip": "invalid",
    "tar_symlink.tar.gz": "invalid",  # the link is skipped (never followed): one class is left, refused
    "truncated.tar.gz": "invalid",
    "gzip_not_tar.tar.gz": "invalid",
}


def test_corpus_lists_every_file():
    assert sorted(p.name for p in (CORPUS / "archives").iterdir()) == sorted(EXPECTED_ARCHIVES)
    assert len(list((CORPUS / "annotations").iterdir())) >= 8


@pytest.mark.parametrize("name", sorted(EXPECTED_ARCHIVES))
def test_corpus_archive(name, tmp_path):
    path = CORPUS / "archives" / name
    suffix = ".tar.gz" if name.endswith(".tar.gz") else ".zip"
    result = outcome(path.read_bytes(), suffix)
    assert result == EXPECTED_ARCHIVES[name]
    # nothing written outside the work dir: the import only writes under its own temp dir
    assert not (Path(tempfile.gettempdir()) / "evil").exists()


@pytest.mark.parametrize("path", sorted((CORPUS / "annotations").iterdir()), ids=lambda p: p.name)
def test_corpus_annotation_through_the_fuzz_target(path):
    target.fuzz_one(path.read_bytes())
