"""`json_keys`: every key of any JSON text is found at its own place, under its object's path."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from exprc.frontend.json_keys import index_keys

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_KEYS = st.text(alphabet=st.sampled_from('ab"\\/:,{}[] \n\té€\x01'), max_size=4)
_DOCS = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
                     max_leaves=20)


def _objects(doc, path=()):
    """(path, dict) for every object in `doc`."""
    if isinstance(doc, dict):
        yield path, doc
        for k, v in doc.items():
            yield from _objects(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _objects(v, (*path, i))


@settings(max_examples=150, deadline=None)
@given(doc=_DOCS, indent=st.sampled_from([None, 0, 2]), ascii_only=st.booleans())
def test_every_key_is_found_where_it_is_written(doc, indent, ascii_only):
    text = json.dumps(doc, indent=indent, ensure_ascii=ascii_only)
    index = index_keys(text)
    lines = text.split("\n")
    assert index.repeated is None
    for path, obj in _objects(doc):
        for key in obj:
            span = index.span(path, key)
            written = lines[span.line - 1][span.start:span.end]
            assert json.loads(written) == key, (path, key, written)
            assert text.split("\n")[span.line - 1][span.end:].lstrip().startswith(":")
