"""``omniconv demo``: every layer checked, rows printed as they finish, the exit status,
the compile notice, and the demo's own float64 deformable-conv reference."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from reference import ref_deform_conv2d

from omniconv import backends, demo
from omniconv.cli import main


def test_demo_exits_0_when_every_layer_matches(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.endswith(("  ok", "  MISMATCH"))]
    assert len(rows) == len(demo.EXAMPLES) == 7
    assert all(line.endswith("  ok") for line in rows)
    assert "MegEngine M.Conv2d" in out and "M.Conv2d(in_channels=3, out_channels=1" in out
    assert f"all {len(rows)} layers match their float64 references" in out


def test_each_check_says_what_ran_and_its_tolerance():
    checks = list(demo.checks())
    assert [c.layer for c in checks][:2] == ["Conv2d (relu)", "Conv2d NHWC 'same'"]
    conv = checks[0]
    assert conv.call == (
        "nn.Conv2d(3, 8, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), "
        "activation='relu')(image)"
    )
    assert conv.input_shape == (1, 3, 32, 32) and conv.output_shape == (1, 8, 15, 31)
    for c in checks:
        assert c.ok and 0 <= c.max_error <= c.tolerance and c.tolerance >= demo.RTOL
        assert c.layer in demo.format_check(c) and c.call in demo.format_check(c)
    mge = checks[-1]  # outputs well above 1: the tolerance scales with them
    assert mge.output_shape == (2, 1, 2, 2) and mge.tolerance > demo.RTOL


def _wrong(img: torch.Tensor) -> demo.Example:
    return demo.Example("wrong layer", "x + 1", img, img + 1e-3, img.double())


def _nan(img: torch.Tensor) -> demo.Example:
    return demo.Example("nan layer", "x * nan", img, img * float("nan"), img.double())


def test_demo_exits_1_and_names_the_layers_that_do_not_match(monkeypatch):
    monkeypatch.setattr(demo, "EXAMPLES", [demo.EXAMPLES[0], _wrong, _nan])
    out = io.StringIO()
    assert demo.main(out=out) == 1
    text = out.getvalue()
    assert "MISMATCH" in text and "FAILED: wrong layer, nan layer outside tolerance" in text


def test_rows_are_printed_as_they_finish(monkeypatch):
    out = io.StringIO()
    seen = []

    def probe(img: torch.Tensor) -> demo.Example:
        seen.append(out.getvalue())  # what was printed before this example ran
        return demo.EXAMPLES[0](img)

    monkeypatch.setattr(demo, "EXAMPLES", [demo.EXAMPLES[0], probe])
    assert demo.main(out=out) == 0
    assert "Conv2d (relu)" in seen[0]


@pytest.mark.skipif(not backends.numba_available(), reason="numba does not load here")
def test_compile_notice_speaks_only_when_numba_compiles():
    import numba

    out = io.StringIO()
    with demo.CompileNotice(out) as notice:
        torch.ones(3).sum()  # nothing to compile
    assert out.getvalue() == "" and notice.seconds == 0

    with demo.CompileNotice(out) as notice:
        numba.njit(lambda a: a + 1)(1)  # a new function: compiled now
        numba.njit(lambda a: a + 2)(1)
    assert out.getvalue().count("compiling") == 1 and notice.seconds > 0


@pytest.mark.parametrize(("groups", "dg", "mask"), [(1, 1, True), (2, 2, False), (1, 2, True)])
def test_demo_reference_agrees_with_the_test_reference(groups, dg, mask):
    g = torch.Generator().manual_seed(groups * 10 + dg)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64, generator=g)
    w = torch.randn(6, 4 // groups, 3, 3, dtype=torch.float64, generator=g)
    b = torch.randn(6, dtype=torch.float64, generator=g)
    off = 1.5 * torch.randn(2, 2 * dg * 9, 5, 6, dtype=torch.float64, generator=g)
    m = torch.rand(2, dg * 9, 5, 6, dtype=torch.float64, generator=g) if mask else None
    got = demo.reference_deform_conv2d(
        x.numpy(), off.numpy(), None if m is None else m.numpy(), w.numpy(), b.numpy(), 1
    )
    want = ref_deform_conv2d(x, off, w, b, 1, 1, 1, m)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)
