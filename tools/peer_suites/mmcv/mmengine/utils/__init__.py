import re


def digit_version(version_str):
    """A comparable tuple of the leading numeric parts ("2.13.0+cpu" -> (2, 13, 0))."""
    return tuple(int(p) for p in re.findall(r"\d+", version_str.split("+")[0])[:3])
