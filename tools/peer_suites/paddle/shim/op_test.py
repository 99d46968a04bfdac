"""A stand-in for Paddle's OpTest: runs `python_api` (Paddle's wrapper, calling the `paddle`
shim, i.e. omniconv) with the test's inputs and attributes, compares the output with the
test's numpy reference, and the gradients of mean(output) with central finite differences
(delta 0.005, as Paddle's) under Paddle's relative-error rule."""

import random
import unittest

import numpy as np
import torch

# op type -> (input names in the kernel's order, attribute names in the kernel's order)
_SIGNATURES = {
    "conv2d_transpose": (
        ["Input", "Filter"],
        [
            "strides",
            "paddings",
            "output_padding",
            "output_size",
            "padding_algorithm",
            "groups",
            "dilations",
            "data_format",
        ],
    ),
    "deformable_conv": (
        ["Input", "Offset", "Filter", "Mask"],
        ["strides", "paddings", "dilations", "deformable_groups", "groups", "im2col_step"],
    ),
    "deformable_conv_v1": (
        ["Input", "Offset", "Filter", "Mask"],
        ["strides", "paddings", "dilations", "deformable_groups", "groups", "im2col_step"],
    ),
}
_ATTR_DEFAULTS = {"output_padding": [], "output_size": [], "padding_algorithm": "EXPLICIT"}


def convert_float_to_uint16(x):
    raise unittest.SkipTest("bfloat16 cases need CUDA")


def get_numeric_gradient(*args, **kwargs):
    raise unittest.SkipTest("bfloat16 cases need CUDA")


class OpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # as Paddle's OpTest: the test data of a class come from these seeds
        np.random.seed(123)
        random.seed(124)

    @staticmethod
    def np_dtype_to_base_dtype(x):
        return x

    def is_bfloat16_op(self):
        return getattr(self, "dtype", None) == np.uint16

    def _call(self, tensors):
        names, attrs = _SIGNATURES[self.op_type]
        args = [tensors.get(n) for n in names]
        args += [self.attrs.get(a, _ATTR_DEFAULTS.get(a)) for a in attrs]
        return self.python_api(*args)

    def _tensors(self, dtype=None, grad=()):
        out = {}
        for k, v in self.inputs.items():
            t = torch.tensor(np.asarray(v))
            if dtype is not None:
                t = t.to(dtype)
            out[k] = t.requires_grad_(k in grad)
        return out

    def check_output(self, atol=1e-5, rtol=1e-5, **kwargs):
        out = self._call(self._tensors()).detach().numpy()
        expect = self.outputs["Output"]
        np.testing.assert_allclose(out, expect, rtol=rtol, atol=atol)

    def check_output_with_place(self, place, atol=1e-5, **kwargs):
        self.check_output(atol=atol)

    def check_grad(
        self,
        inputs_to_check,
        output_names,
        no_grad_set=None,
        numeric_grad_delta=0.005,
        max_relative_error=0.005,
        **kwargs,
    ):
        names = sorted(inputs_to_check)
        tensors = self._tensors(grad=names)
        out = self._call(tensors)
        analytic = torch.autograd.grad(out.mean(), [tensors[n] for n in names])
        base = self._tensors(dtype=torch.float64)
        for name, a_grad in zip(names, analytic, strict=True):
            x = base[name]
            numeric = torch.zeros_like(x)
            flat, nflat = x.view(-1), numeric.view(-1)
            with torch.no_grad():
                for i in range(flat.numel()):
                    orig = flat[i].item()
                    flat[i] = orig + numeric_grad_delta
                    hi = self._call(base).mean().item()
                    flat[i] = orig - numeric_grad_delta
                    lo = self._call(base).mean().item()
                    flat[i] = orig
                    nflat[i] = (hi - lo) / (2 * numeric_grad_delta)
            self._assert_is_close(
                numeric.numpy(), a_grad.double().numpy(), name, max_relative_error
            )

    def check_grad_with_place(self, place, inputs_to_check, output_names, **kwargs):
        self.check_grad(inputs_to_check, output_names, **kwargs)

    def _assert_is_close(self, a, b, name, max_relative_error):
        abs_a = np.abs(a)
        if self.dtype == np.float64:
            abs_a[abs_a < 1e-10] = 1e-3
            abs_a[np.logical_and(abs_a > 1e-10, abs_a <= 1e-8)] *= 1e4
            abs_a[np.logical_and(abs_a > 1e-8, abs_a <= 1e-6)] *= 1e2
        else:
            abs_a[abs_a < 1e-3] = 1
        diff = np.abs(a - b) / abs_a
        max_diff = float(np.max(diff))
        self.assertLessEqual(
            max_diff,
            max_relative_error,
            f"{self.op_type} gradient of {name}: max relative error {max_diff:.3g} > "
            f"{max_relative_error}",
        )
