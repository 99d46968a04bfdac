"""Stub of mmengine for mmcv's DCN tests: digit_version and TORCH_VERSION only."""
