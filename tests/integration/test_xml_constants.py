"""Constant values SnapMap writes into companion groups (a role tag's `tag_name`, `is_custom`, …) are
spelled as in Eightfold's own XML samples: the XSD accepts any string there, so only the samples can tell
a name Eightfold recognises from one it would ignore."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from snapmap_pipeline.core.schema import load_all


def _constants() -> list:
    cases = []
    for schema in load_all().values():
        for comp in schema.companions:
            for f in comp.fields:
                if f.value is not None:
                    path = "/".join([comp.xml, f.xml])
                    cases.append(pytest.param(schema, path, f.value, id=f"{schema.entity}:{path}"))
    return cases


@pytest.mark.parametrize(("schema", "path", "value"), _constants())
def test_companion_constant_matches_eightfold_samples(schema, path: str, value: str, reference: Path) -> None:
    texts: set[str] = set()
    for sample in sorted((reference / "xml_samples").glob("*.xml")):
        doc = etree.parse(str(sample))
        if doc.getroot().tag != schema.xml.root:
            continue
        texts |= {(e.text or "").strip() for e in doc.getroot().iterfind(f"{schema.xml.record}/{path}")}
    if not texts:
        pytest.skip(f"no Eightfold sample of {schema.entity} writes {path}")
    assert value in texts, f"{schema.entity} {path}: we write {value!r}, Eightfold's samples {sorted(texts)}"
