"""Stub PIL (not installed here): only what torchvision's test helpers name."""
