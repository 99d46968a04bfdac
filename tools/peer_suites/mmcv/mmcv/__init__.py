"""Stub of mmcv for running mmcv's DCN tests against omniconv: only the device flags the
tests import (no accelerator on this machine)."""
