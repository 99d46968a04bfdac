"""The peers of ``omniconv bench``: other frameworks' deformable convs, each run in an
interpreter of its own (``--peer NAME=PYTHON``), on the bench's data, against the same
framework's dense conv, with outputs checked against omniconv's.

Everything in this package runs in those interpreters, which have neither torch nor
omniconv: it imports only the standard library, numpy and (inside ``build``) the peer's
framework, and its modules import each other relatively. A peer is one module here whose
name is the peer's name and that defines ``build(data) -> Case`` (see ``_protocol``);
modules whose names start with an underscore are not peers.
"""
