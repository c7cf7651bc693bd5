"""Fuzzed readers and the bad-file corpus: every malformed input gives exit code 2, one ``error:`` line and
no output file (or, when the mutation still decodes, a normal run).

Mutations of small valid files of each format (truncation, flipped bytes, garbage headers, huge declared
sizes) come from hypothesis, derandomised and bounded (``RESTORE_FUZZ_EXAMPLES`` per format, default 8)
so CI stays fast and identical on every machine; bench/fuzz.py runs many more and counts them.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from fuzzing import KINDS, classify

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

BAD = Path(__file__).parent / "data" / "bad"
EXAMPLES = int(os.environ.get("RESTORE_FUZZ_EXAMPLES", "8"))


@st.composite
def mutation(draw, data: bytes) -> bytes:
    """One corruption of ``data``: truncation, flipped bytes, a garbage header or a huge size field."""
    n = len(data)
    kind = draw(st.sampled_from(["truncate", "flip", "header", "huge"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, n - 1))]
    out = bytearray(data)
    if kind == "flip":
        for pos in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
            out[pos] ^= draw(st.integers(1, 255))
    elif kind == "header":
        junk = draw(st.binary(min_size=1, max_size=64))
        out[: len(junk)] = junk
    else:  # a declared size (width, height, dims, lengths) made huge somewhere in the header
        pos = draw(st.integers(0, max(0, min(n, 400) - 4)))
        out[pos: pos + 4] = struct.pack(draw(st.sampled_from(["<I", ">I", "<i", ">i"])),
                                        draw(st.sampled_from([2**31 - 1, 2**32 - 1 - 2**31, 65535, 10**9, -1])))
    return bytes(out)


def _fuzz(kind: str, tmp_path_factory) -> None:
    seed = KINDS[kind][1]()
    work = str(tmp_path_factory.mktemp(f"fuzz-{kind}"))

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutation(seed))
    def check(data: bytes) -> None:
        verdict, detail = classify(kind, data, work)
        assert verdict != "bad", detail

    check()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fuzzed_inputs_give_one_line_errors(kind, tmp_path_factory):
    _fuzz(kind, tmp_path_factory)


CORPUS = sorted(p for p in BAD.iterdir() if p.name != "make_corpus.py")


def test_corpus_is_large_and_covers_every_kind():
    assert len(CORPUS) >= 30
    assert {p.name.split("-")[0] for p in CORPUS} == {"png", "jpeg", "tiff", "bmp", "webp", "nifti", "dicom",
                                                       "fastmri", "latents", "npy", "kernel", "mask"}


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_malformed_file_gives_one_line_error_exit_2_and_no_output(path, tmp_path):
    verdict, detail = classify(path.name.split("-")[0], path.read_bytes(), str(tmp_path))
    assert verdict == "clean", detail
