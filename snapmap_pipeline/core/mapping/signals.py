"""Lexical and value signals: each scores (header, field) pairs in [0, 1] and names its method.

Lexical: exact (normalised name), alias (schema aliases), glossary (after abbreviation / jargon /
language rewrites), fuzzy (weighted token overlap with rapidfuzz token similarity). Value: evidence
from column profiles (emails, dates, ids, numbers). Shape factors lower fields a header's words argue
against: its head kind, unexplained words, subject qualifiers (config/glossary/qualifiers.yaml), yes/no
and "... by" shapes. Matrices are numpy; no per-row data loops.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from snapmap_pipeline.core.mapping.normalize import (
    SELF,
    Glossary,
    canonical,
    cjk_words,
    expanded_text,
    load_glossary,
    segment_vocab,
    segments,
    self_table,
    stem,
    variants,
    words,
)
from snapmap_pipeline.core.schema import EntitySchema, FieldSpec

EXACT, ALIAS, GLOSSARY, FUZZY = "exact", "alias", "glossary", "fuzzy"
SCORE = {EXACT: 1.0, ALIAS: 0.96, GLOSSARY: 0.92}
TRAILING_FACTOR = 0.98  # a match on a path's trailing segment(s) only
SELF_WEIGHT = 0.3  # "employee" in "Employee First Name" says little inside an employee file
GENERIC_WEIGHT = 0.35  # "code", "id", "date": the kind of value, not the subject
UNKNOWN_WEIGHT = 0.6  # a header word no field of the schema uses
FUZZY_CAP = 0.9
HEAD_KIND_PENALTY = 0.6  # "Phone Type" names a type: a field with no type word scores lower
# ... and lower still for a classification (type, category, status): "emailType" holds "work" or
# "home", never an address, where "Hire Day" still names a date field's value
CLASS_KINDS = {"type": 0.45, "status": 0.45}
# A header word the field does not explain, when another word of the header does match the field:
# "Photo URL" is not URL, "Middle Name" is not LAST_NAME, "Tax ID" is not EMPLOYEE_ID. A header sharing
# no word with a field (a synonym: "Pitch" for SUMMARY) is left to the semantic signal.
UNEXPLAINED_FACTOR = 0.7
# ... and stronger when that word names another entity's record ("Req. Title" in a candidate file is
# the requisition's title, "User ID" is not the candidate id).
FOREIGN_FACTOR = 0.5
HEAD_FACTOR = 0.6  # the header's last word is what it is about: "Home Address" is no email field
EXPLAINED_SIM = 0.8
# A concept phrase (concepts.yaml: "work site" for LOCATION) is looser than an alias: equal to the
# header it stays under the 0.9 a header needs to skip the model, and its fuzzy matches count less.
CONCEPT_SCORE = 0.85
CONCEPT_FACTOR = 0.85
NEUTRAL_WEIGHT = 0.15  # "current", "remote", "html": a modifier that does not change the subject


@dataclass(frozen=True)
class FieldText:
    field: str
    kind: str  # name | alias
    plain: str
    canon: tuple[str, ...]


@dataclass
class LexicalIndex:
    """Everything about one schema's field texts that lexical scoring needs, computed once."""

    entity: str
    fields: list[str]
    texts: list[FieldText]
    vocab: list[str]
    weights: dict[str, float]
    text_field: np.ndarray  # text → field index
    t_w: np.ndarray  # texts × vocab weights
    t_bin: np.ndarray  # texts × vocab membership
    plain_exact: dict[str, int]
    plain_alias: dict[str, set[int]]
    canon_eq: dict[tuple[str, ...], set[int]]
    self_words: dict[tuple[str, ...], tuple[str, ...]]
    glossary: Glossary
    field_kinds: list[frozenset[str]]  # per field, the head kinds its words cover
    prefixes: dict[str, list[int]]  # 3-4 letter prefix → vocab indices (addr → address)
    f_bin: np.ndarray  # fields × vocab: the words each field's name and aliases use
    foreign: frozenset[str]  # stemmed one-word names of other entities' records (requisition, user)
    seg_vocab: frozenset[str] = frozenset()  # words run-together headers may be split into
    record_kinds: dict[str, list[int]] = field(default_factory=dict)  # head kind → fields a bare header means
    text_heads: dict[str, frozenset[int]] = field(default_factory=dict)  # last word of a text → fields
    others: frozenset[str] = frozenset()  # people and things other than the record (manager, photo)
    person_name: tuple[bool, ...] = ()  # per field: holds a person's name (FULL_NAME, MANAGER_FULLNAME)
    field_words: frozenset[str] = frozenset()  # plain words of the field names and aliases (nickname)
    fields_key: str = ""  # identifies this index (schema fingerprint + glossary)
    concept_eq: dict[tuple[str, ...], set[int]] = field(default_factory=dict)  # canon → fields, concepts
    texts_named: dict[tuple[str, ...], int] = field(default_factory=dict)  # canon of a field's name → it
    text_factor: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))  # per text
    t_tok: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.int64))  # texts × words (pad V)
    _canon_cache: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)

    def canon(self, ws: list[str]) -> tuple[str, ...]:
        key = tuple(ws)
        hit = self._canon_cache.get(key)
        if hit is None:
            hit = tuple(canonical(ws, self.glossary, self.self_words))
            if len(self._canon_cache) < 100_000:
                self._canon_cache[key] = hit
        return hit


def field_words(name: str) -> list[str]:
    return words(name.lower().replace("_", " "))


def _texts(spec: FieldSpec, glossary: Glossary | None = None) -> list[tuple[str, list[str]]]:
    out = [("name", field_words(spec.name))]
    out += [("alias", words(a)) for a in spec.aliases]
    if spec.refers_to and glossary is not None:
        # the other entity's words for its records ("team", "org unit") name what this field holds
        out += [("alias", list(hint)) for hint in glossary.entity_words(spec.refers_to)]
    if glossary is not None and glossary.concepts:
        # what vendors call the field's concept (concepts.yaml): a weaker lexical text than an alias
        keys = dict.fromkeys([" ".join(field_words(spec.name)), *(" ".join(words(a)) for a in spec.aliases)])
        plain = {" ".join(ws) for _, ws in out}
        extra = dict.fromkeys(p for k in keys for p in glossary.concepts.get(k, ()) if p not in plain)
        out += [("concept", p.split()) for p in extra]
    return out


def self_extra(schema: EntitySchema) -> list[str]:
    """The schema's own words for its records: entity, title, csv_file (minus MAIN)."""
    extra = [schema.entity.replace("_", " "), schema.title]
    extra.append(" ".join(w for w in schema.csv_file.replace("-", " ").split() if w.upper() != "MAIN"))
    return extra


@lru_cache(maxsize=64)
def _build(schema_json: str, fingerprint: str, glossary_path: str) -> LexicalIndex:
    schema = EntitySchema.model_validate_json(schema_json)
    glossary = load_glossary(Path(glossary_path))
    selfw = self_table(glossary, schema.entity, self_extra(schema))
    texts: list[FieldText] = []
    for spec in schema.fields:
        for kind, ws in _texts(spec, glossary):
            if ws:
                texts.append(FieldText(spec.name, kind, " ".join(ws), tuple(canonical(ws, glossary, selfw))))
    fields = [f.name for f in schema.fields]
    fidx = {n: i for i, n in enumerate(fields)}
    vocab = sorted({t for x in texts for t in x.canon})
    own_words = frozenset(vocab)  # every canonical word of the schema's field texts
    vidx = {t: i for i, t in enumerate(vocab)}
    # token weight: rarer across this schema's fields → more telling (1/sqrt of field frequency)
    df: dict[str, set[str]] = {}
    for x in texts:
        for t in x.canon:
            df.setdefault(t, set()).add(x.field)
    weights = {
        t: (SELF_WEIGHT if t == SELF else min(1.0 / math.sqrt(len(df[t])), _generic(t, glossary)))
        for t in vocab
    }
    t_w = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for i, x in enumerate(texts):
        for t in set(x.canon):
            t_w[i, vidx[t]] = weights[t]
    plain_exact: dict[str, int] = {}
    texts_named: dict[tuple[str, ...], int] = {}
    plain_alias: dict[str, set[int]] = {}
    canon_eq: dict[tuple[str, ...], set[int]] = {}
    concept_eq: dict[tuple[str, ...], set[int]] = {}
    for x in texts:
        fi = fidx[x.field]
        if x.kind == "concept":
            concept_eq.setdefault(tuple(sorted(set(x.canon))), set()).add(fi)
            continue
        if x.kind == "name":
            plain_exact.setdefault(x.plain, fi)
            texts_named.setdefault(tuple(sorted(set(x.canon))), fi)
        plain_alias.setdefault(x.plain, set()).add(fi)
        canon_eq.setdefault(tuple(sorted(set(x.canon))), set()).add(fi)
    field_kinds: list[set[str]] = [set() for _ in fields]
    for x in texts:
        for t in x.canon:
            if t in glossary.head_kinds:
                field_kinds[fidx[x.field]].add(glossary.head_kinds[t])
    f_bin = np.zeros((len(fields), len(vocab)), dtype=np.float32)
    for x in texts:
        for t in x.canon:
            f_bin[fidx[x.field], vidx[t]] = 1.0
    return LexicalIndex(
        entity=schema.entity,
        fields=fields,
        texts=texts,
        vocab=vocab,
        weights=weights,
        text_field=np.array([fidx[x.field] for x in texts], dtype=np.int64),
        t_w=t_w,
        t_bin=(t_w > 0).astype(np.float32),
        plain_exact=plain_exact,
        plain_alias=plain_alias,
        canon_eq=canon_eq,
        self_words=selfw,
        glossary=glossary,
        field_kinds=[frozenset(k) for k in field_kinds],
        prefixes=_prefixes(vocab),
        f_bin=f_bin,
        foreign=frozenset(
            stem(hint[0])
            for entity, hints in glossary.entities.items()
            if entity != schema.entity
            for hint in hints
            if len(hint) == 1
        )
        | glossary.other_people
        | (glossary.other_objects - own_words),
        others=glossary.other_people | (glossary.other_objects - own_words),
        seg_vocab=segment_vocab(
            glossary,
            [t for f in schema.fields for t in (f.name.replace("_", " "), f.description, *f.aliases)],
        ),
        record_kinds=_record_kinds(schema, texts, glossary),
        text_heads=_text_heads(texts, fidx),
        person_name=tuple(_person_name(x.canon, glossary) for x in texts if x.kind == "name"),
        field_words=frozenset(w for x in texts for w in x.plain.split()),
        fields_key=f"{fingerprint}|{glossary_path}",
        concept_eq=concept_eq,
        texts_named=texts_named,
        t_tok=_text_tokens(texts, vidx),
        text_factor=np.array([CONCEPT_FACTOR if x.kind == "concept" else 1.0 for x in texts], np.float32),
    )


def _text_tokens(texts: list[FieldText], vidx: dict[str, int]) -> np.ndarray:
    """texts × longest text: each text's vocab indices, padded with len(vocab) (a zero column)."""
    width = max((len(set(x.canon)) for x in texts), default=1) or 1
    out = np.full((len(texts), width), len(vidx), dtype=np.int64)
    for i, x in enumerate(texts):
        toks = sorted({vidx[t] for t in x.canon})
        out[i, : len(toks)] = toks
    return out


def _person_name(canon: tuple[str, ...], glossary: Glossary) -> bool:
    """A field whose name says it holds a person's name: its head is a name word and another word
    names a person (the record itself, a manager, a recruiter) or a part of a name (first, full)."""
    if len(canon) < 2 or glossary.head_kinds.get(canon[-1]) != "name" or canon[-1] != stem("name"):
        return False
    return any(w == SELF or w in glossary.other_people or w in glossary.person_name_words for w in canon[:-1])


def _text_heads(texts: list[FieldText], fidx: dict[str, int]) -> dict[str, frozenset[int]]:
    out: dict[str, set[int]] = {}
    for x in texts:
        if x.canon:
            out.setdefault(x.canon[-1], set()).add(fidx[x.field])
    return {k: frozenset(v) for k, v in out.items()}


def _record_kinds(schema: EntitySchema, texts: list[FieldText], glossary: Glossary) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, spec in enumerate(schema.fields):
        if spec.record_kind:
            out.setdefault(spec.record_kind, []).append(i)
    # a field named only by a kind word (STATUS, or the entity's own "Demand Status") is the record's
    fidx = {f.name: i for i, f in enumerate(schema.fields)}
    for x in texts:
        content = [t for t in x.canon if t != SELF]
        kind = glossary.head_kinds.get(content[0]) if len(content) == 1 else None
        if x.kind == "name" and kind == "status" and kind not in out:
            out[kind] = [fidx[x.field]]
    return out


def _variants_of(header: str, index: LexicalIndex) -> list[list[str]]:
    """The header's word lists (see `normalize.variants`), each read the way a person would:

    - object-first pairs reordered: `name.given`, `address.city` (the reversed pair is a phrase the
      glossary or a field knows, the written order is not) → "given name";
    - run-apart compounds joined: `nick_name`, `userName` → "nickname", "username" (an extra variant);
    - a vendor's prefix dropped: `seekAnzJobTitle`, `zohoCandidateEmail`: leading words no field and
      no glossary entry knows, on a one-piece camelCase header of three words or more (extra variant)."""
    return [list(v) for v in _read_variants(header, index.entity, index.fields_key)]


_VARIANT_INDEX: dict[tuple[str, str], LexicalIndex] = {}


@lru_cache(maxsize=65_536)
def _read_variants(header: str, entity: str, key: str) -> tuple[tuple[str, ...], ...]:
    index = _VARIANT_INDEX[(entity, key)]
    g = index.glossary
    header = cjk_words(header, g.cjk, g.cjk_alone)
    out: list[tuple[str, ...]] = []
    for ws in variants(header, g.path_noise, index.seg_vocab, g.attributes):
        out.append(tuple(_reorder(ws, index)))
    extra: list[tuple[str, ...]] = []
    for ws in out:
        joined = _join_compounds(ws, index)
        if joined != ws:
            extra.append(joined)
    segs = [s for s in segments(header) if tuple(s) not in g.path_noise]
    role = dict(g.attributes).get(tuple(segs[-1])) if len(segs) >= 2 else None
    if role is not None and all(w in g.neutral for w in index.canon(list(segs[-2]))):
        # `localizedMetadata.description`: an object of neutral words only is the record itself, so its
        # description is the record's description, not the name of something else
        out = [ws for ws in out if ws != (*segs[-2], *role) or role == tuple(segs[-1])]
        extra.append(tuple(segs[-1]))
    if len(segs) >= 2 and tuple(segs[-1]) in LABELS and g.head_kinds.get(stem(segs[-2][-1])) in CLASS_KINDS:
        # `employeeType.title`, `status.label`: the label of a classification is that classification,
        # not the record's title or name
        out = [ws for ws in out if ws != tuple(segs[-1])]
        extra.append(tuple(segs[-2]))
    if (
        len(segs) >= 2
        and tuple(segs[-1]) in g.login_attributes
        and any(stem(w) in g.other_people for w in segs[-2])
    ):
        # `primaryRecruiter.userName`: another person's login, which ATSs and HR systems keep as their
        # email; a schema names that person by email (RECRUITER_EMAIL), never by a login of theirs
        extra.append((*segs[-2], "email"))
    if out and _one_piece(header):
        trimmed = _drop_vendor_prefix(out[0], index)
        if trimmed != out[0]:
            extra.append(trimmed)
            joined = _join_compounds(trimmed, index)
            if joined != trimmed:
                extra.append(joined)
    if out:
        extra.extend(_noise_reads(out[0], header, entity, key))  # header: its CJK words already read
    return tuple(dict.fromkeys([*out, *extra]))


@lru_cache(maxsize=65_536)
def _noise_reads(first: tuple[str, ...], header: str, entity: str, key: str) -> tuple[tuple[str, ...], ...]:
    """The header's first reading, and its reading without a vendor prefix, with noise parts set aside
    (see `_without_noise`), each also with run-apart compounds joined."""
    index = _VARIANT_INDEX[(entity, key)]
    codes = _code_letters(header)
    bases = [first]
    if _one_piece(header):
        bases.append(_drop_vendor_prefix(first, index))
    out: list[tuple[str, ...]] = []
    for base in dict.fromkeys(bases):
        plain = _without_noise(base, index, codes)
        if plain is None:
            continue
        out.append(plain)
        out.append(_join_compounds(plain, index))
        # a header carrying a system code is a technical field name: an unknown leading word is the
        # system's prefix too ("duevo_vorname#psd"), when the rest still names a subject
        if (
            codes
            and len(plain) >= 2
            and _unknown_word(plain[0], index)
            and _names_subject(plain[1:], index, False)
        ):
            out.append(plain[1:])
    return tuple(dict.fromkeys(out))


# A header read with its noise parts set aside ("PW4-EMAIL-ADDRESS" → email address, "status_label" →
# status, "Org level 1 code" → org level code) is a guess about which parts are noise: its matches count
# this much less than the header as written, so such a decision stays below "sure" (0.9).
NOISE_FACTOR = 0.88
MAX_NOISE_LETTERS = 3  # the longest system code set aside (PW4-, #psd): longer ones may name a subject


# letters a header writes as a code: fused with a number (PW4-, W2, 401k) or tagged by "#" (pnr#psd)
_CODE_LETTERS = re.compile(
    r"(?<![A-Za-z])[A-Za-z]{1,3}(?=\d)|(?<=\d)[A-Za-z]{1,3}(?![A-Za-z])|(?<=#)[A-Za-z]{1,3}(?![A-Za-z])"
)


def _code_letters(header: str) -> frozenset[str]:
    return frozenset(m.group(0).lower() for m in _CODE_LETTERS.finditer(str(header)))


def _noise_word(w: str, index: LexicalIndex, codes: frozenset[str]) -> bool:
    """A part of a header that decorates it without naming its subject: a number (a level, a version),
    a decoration word (label, obj, node) or a system code the header writes as one (letters fused with
    a number, or after "#") that no field and no glossary entry knows. A short unknown word written as
    a word ("hod_email_id", "band_max_ote") may be an abbreviation of a subject: it stays."""
    if w.isdigit() or w in index.glossary.decorations:
        return True
    return w in codes and len(w) <= MAX_NOISE_LETTERS and w.isalpha() and not _known_word(w, index)


def _without_noise(ws: tuple[str, ...], index: LexicalIndex, codes: frozenset[str]) -> tuple[str, ...] | None:
    """The words left once noise parts are set aside, when some were and what is left still names a
    subject: a known word that is not only a kind of value ("W4 Status" is no status), unless only
    decoration words were dropped ("status_label" is the status); else None."""
    noise = [_noise_word(w, index, codes) for w in ws]
    # "#" before a code ("pnr#psd") marks a system tag, not a number
    kept = tuple(
        w
        for i, w in enumerate(ws)
        if not noise[i] and not (w == "#" and i + 1 < len(ws) and noise[i + 1] and not ws[i + 1].isdigit())
    )
    if not kept or len(kept) == len(ws):
        return None
    only_decorated = all(w in index.glossary.decorations for w in ws if w not in kept)
    return kept if _names_subject(kept, index, only_decorated) else None


def _names_subject(kept: tuple[str, ...], index: LexicalIndex, kind_alone: bool) -> bool:
    """Whether words left of a header still name a subject: a known word that is not only a kind of
    value, or the record's own word; a kind word alone ("status") only when `kind_alone`."""
    g = index.glossary
    every = index.canon(list(kept))
    canon = [t for t in every if t != SELF and t in index.weights]
    if not canon:
        return False
    subject = [t for t in canon if t not in g.generic and t not in g.neutral]
    # "pnr#psd": the record's own number; "status_label": a decoration dropped from a kind word
    return bool(subject) or SELF in every or kind_alone


def noise_reads(header: str, index: LexicalIndex) -> tuple[tuple[str, ...], ...]:
    """The header's readings with its noise parts set aside (see `_without_noise`); empty when none."""
    g = index.glossary
    text = cjk_words(header, g.cjk, g.cjk_alone)
    first = variants(text, g.path_noise, index.seg_vocab, g.attributes)
    if not first:
        return ()
    return _noise_reads(tuple(_reorder(first[0], index)), text, index.entity, index.fields_key)


LABELS = frozenset({("title",), ("name",), ("label",), ("description",), ("display", "name")})


def _known_pair(pair: tuple[str, ...], index: LexicalIndex) -> bool:
    g = index.glossary
    return " ".join(pair) in index.plain_alias or pair in g.phrases


def _reorder(ws: list[str], index: LexicalIndex) -> list[str]:
    if len(ws) < 2:
        return ws
    fwd, rev = (ws[-2], ws[-1]), (ws[-1], ws[-2])
    if not _known_pair(fwd, index) and _known_pair(rev, index):
        return [*ws[:-2], *rev]
    return ws


def _join_compounds(ws: tuple[str, ...] | list[str], index: LexicalIndex) -> tuple[str, ...]:
    # a left-to-right pass over a handful of words (not a data loop)
    out: list[str] = []
    i = 0
    while i < len(ws):
        if i + 1 < len(ws) and ws[i].isalpha() and ws[i + 1].isalpha():
            both = ws[i] + ws[i + 1]
            if both in index.field_words:
                out.append(both)
                i += 2
                continue
        out.append(ws[i])
        i += 1
    return tuple(out)


_ONE_PIECE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _one_piece(header: str) -> bool:
    """camelCase / PascalCase with no separator: the shape of API field names vendors prefix."""
    h = str(header).strip()
    return bool(_ONE_PIECE.match(h)) and h != h.lower() and h != h.upper()


def _drop_vendor_prefix(ws: tuple[str, ...], index: LexicalIndex) -> tuple[str, ...]:
    i = 0
    while len(ws) - i > 2 and _unknown_word(ws[i], index):
        i += 1
    return ws[i:] if i else ws


def _known_word(w: str, index: LexicalIndex) -> bool:
    """Whether a field, an alias or the glossary knows the word (as written or by its stem)."""
    g = index.glossary
    return (
        w in index.seg_vocab
        or w in g.tokens
        or w in g.stopwords
        or stem(w) in index.weights
        or stem(w) in index.foreign
    )


def _unknown_word(w: str, index: LexicalIndex) -> bool:
    return len(w) >= 2 and w.isalpha() and not _known_word(w, index)


def _prefixes(vocab: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for j, v in enumerate(vocab):
        for n in (3, 4):
            if len(v) > n:
                out.setdefault(v[:n], []).append(j)
    return out


def _generic(token: str, glossary: Glossary) -> float:
    return GENERIC_WEIGHT if token in glossary.generic else 1.0


def lexical_index(schema: EntitySchema, config_dir: Path) -> LexicalIndex:
    """The cached index for this schema version and glossary folder."""
    index = _build(schema.model_dump_json(), schema.fingerprint, str(Path(config_dir) / "glossary"))
    _VARIANT_INDEX[(index.entity, index.fields_key)] = index
    return index


def semantic_text(header: str, index: LexicalIndex) -> str:
    """The header as the embedding model should read it: its first reading (path noise dropped, pairs
    reordered), or without a vendor prefix when one was found; abbreviations and languages rewritten."""
    vs = _variants_of(header, index)
    if not vs:
        return expanded_text(header, index.glossary, index.seg_vocab)
    first = vs[0]
    if _one_piece(header):
        trimmed = _drop_vendor_prefix(tuple(first), index)
        first = list(trimmed)
    plain = noise_reads(header, index)
    if plain:
        first = list(plain[0])  # "PW4-EMAIL-ADDRESS": embed what it names, not its system code
    return expanded_text(" ".join(first), index.glossary, index.seg_vocab)


PLURAL_KEY_FACTOR = 0.5  # applicationIds lists other records; the record has one key


def plural_key_factors(headers: list[str], index: LexicalIndex, key: int | None) -> np.ndarray:
    """headers × fields: PLURAL_KEY_FACTOR on the schema's key for a header whose last word is a plural
    id (`applicationIds`, `skill_ids`): several ids are references, never the record's own id."""
    out = np.ones((len(headers), len(index.fields)), dtype=np.float32)
    if key is None:
        return out
    for hi, header in enumerate(headers):  # one look at the last word per header
        ws = words(header)
        if ws and ws[-1] in index.glossary.tokens and index.glossary.tokens[ws[-1]][-1:] == ("list",):
            out[hi, key] = PLURAL_KEY_FACTOR
    return out


ID_FOR_NAME_FACTOR = 0.6  # "Recruiter ID", "Recruitment Requisition ID": an identifier, not a person's name


def id_name_factors(headers: list[str], index: LexicalIndex) -> np.ndarray:
    """headers × fields: ID_FOR_NAME_FACTOR on fields holding a person's name (RECRUITER_NAME,
    MANAGER_FULLNAME) for a header whose last word is an identifier; 1 elsewhere."""
    out = np.ones((len(headers), len(index.fields)), dtype=np.float32)
    named = np.array(index.person_name, dtype=bool)
    if not named.any():
        return out
    for hi, header in enumerate(headers):  # one look at the last word of each header
        vs = _variants_of(header, index)
        if vs and index.canon(vs[0])[-1:] == ("id",):
            out[hi, named] = ID_FOR_NAME_FACTOR
    return out


BOOLEAN_DATE_FACTOR = 0.4  # is_published is a yes/no, not the publication date
# ... nor a name, an email, a number or a link: is_manager is no manager's name, email_is_personal no
# personal email. Fields that hold a state (status, type, option) or a yes/no keep their score.
BOOLEAN_OTHER_FACTOR = 0.45
_YES_NO_KINDS = frozenset({"boolean", "enum"})
_STATE_KINDS = frozenset({"status", "type"})
_NOT_YES_NO_KINDS = frozenset({"email", "integer", "float"})


def yes_no_header(header: str, index: LexicalIndex) -> bool:
    """A header shaped like a yes/no column: is_published, hasDegree, rehire_flag, email_is_personal
    (a statement about the record), ismanager (run together)."""
    vs = _variants_of(header, index)
    ws = list(vs[0]) if vs else words(header)
    g = index.glossary
    if len(ws) < 2:
        return False
    if ws[0] in g.boolean_prefixes or ws[-1] in g.boolean_suffixes:
        return True
    return any(w in ("is", "has") for w in ws[1:-1])


def boolean_factors(headers: list[str], index: LexicalIndex, kinds: list[str]) -> np.ndarray:
    """headers × fields: for a header shaped like a yes/no column, BOOLEAN_DATE_FACTOR on date and
    timestamp fields and BOOLEAN_OTHER_FACTOR on fields holding names, emails, numbers or links; 1
    elsewhere. `kinds` is each field's value kind."""
    out = np.ones((len(headers), len(kinds)), dtype=np.float32)
    dated = np.array([k in ("date", "datetime") for k in kinds])
    other = _not_yes_no(index, tuple(kinds))
    yes_no = np.array([k == "boolean" for k in kinds])
    for hi, header in enumerate(headers):  # one look at the words of each header
        if yes_no_header(header, index):
            out[hi, dated] = BOOLEAN_DATE_FACTOR
            out[hi, other] = BOOLEAN_OTHER_FACTOR
        elif _agent_header(header, index):
            out[hi, dated] = BOOLEAN_DATE_FACTOR  # created_by is who created it, not when
        elif _dated_header(header, index):
            out[hi, yes_no] = BOOLEAN_DATE_FACTOR  # and dateLastPublished is no is_posted flag
    return out


def _agent_header(header: str, index: LexicalIndex) -> bool:
    """A header naming who did something: created_by, approvedBy, "Last Modified By" (a person)."""
    vs = _variants_of(header, index)
    ws = vs[0] if vs else ()
    return len(ws) >= 2 and ws[-1] in index.glossary.agent_suffixes


def _dated_header(header: str, index: LexicalIndex) -> bool:
    """A header naming a moment: its first or last word is a date word (date_published, hiredOn)."""
    vs = _variants_of(header, index)
    canon = index.canon(vs[0]) if vs else ()
    kinds = index.glossary.head_kinds
    return bool(canon) and (kinds.get(canon[-1]) == "date" or kinds.get(canon[0]) == "date")


_NOT_YES_NO: dict[tuple[str, str, tuple[str, ...]], np.ndarray] = {}


def _not_yes_no(index: LexicalIndex, kinds: tuple[str, ...]) -> np.ndarray:
    """Per field, whether it holds something a yes/no never is: an email, a number, a name, a link, an
    id (MANAGER_ID); fields holding a state (STATUS, EMPLOYEE_TYPE) or a yes/no are not. Once per index."""
    key = (index.entity, index.fields_key, kinds)
    hit = _NOT_YES_NO.get(key)
    if hit is None:
        keyed = {x.field for x in index.texts if x.kind == "name" and x.canon[-1:] == ("id",)}
        hit = np.array(
            [
                k not in ("date", "datetime")
                and k not in _YES_NO_KINDS
                and not (index.field_kinds[i] & _STATE_KINDS)
                and (k in _NOT_YES_NO_KINDS or bool(index.field_kinds[i]) or index.fields[i] in keyed)
                for i, k in enumerate(kinds)
            ]
        )
        _NOT_YES_NO[key] = hit
    return hit


def _token_sim(header_tokens: list[str], vocab: list[str], prefixes: dict[str, list[int]]) -> np.ndarray:
    """Similarity of each header token to each vocab token: 1 if equal, a typo-tolerant ratio for long
    tokens, 0.8 for a clear prefix (addr → address)."""
    if not header_tokens or not vocab:
        return np.zeros((len(header_tokens), len(vocab)), dtype=np.float32)
    ratio = process.cdist(
        header_tokens, vocab, scorer=fuzz.ratio, processor=default_process, dtype=np.float32
    )
    ratio /= 100.0
    h_len = np.array([len(t) for t in header_tokens])[:, None]
    v_len = np.array([len(t) for t in vocab])[None, :]
    long_enough = (h_len >= 5) & (v_len >= 5)
    sim = np.where(long_enough & (ratio >= 0.85), ratio**2, 0.0)
    for i, h in enumerate(header_tokens):  # a few header tokens; a dict lookup each
        if 3 <= len(h) <= 4:
            for j in prefixes.get(h, ()):
                sim[i, j] = max(sim[i, j], 0.8)
        stems = _counter_stems(h)
        if stems:
            positions = _positions(tuple(vocab))
            for j in (positions[v] for v in stems if v in positions):
                sim[i, j] = 0.0
    sim[ratio >= 0.999] = 1.0
    return sim.astype(np.float32)


@lru_cache(maxsize=64)
def _positions(vocab: tuple[str, ...]) -> dict[str, int]:
    return {v: j for j, v in enumerate(vocab)}


@lru_cache(maxsize=4096)
def _counter_stems(token: str) -> frozenset[str]:
    """The token's agent / patient counterparts, which a typo-tolerant ratio would take for a spelling of
    it: employer / employe(e), trainer / traine(e), referrer / refere(e)."""
    if token.endswith("er") and len(token) >= 6:
        base = token[:-2]
        return frozenset({base + "e", base + "ee"})
    for tail in ("ee", "e"):
        if token.endswith(tail) and len(token) >= 5:
            return frozenset({token[: -len(tail)] + "er"})
    return frozenset()


def lexical_scores(headers: list[str], index: LexicalIndex) -> tuple[np.ndarray, np.ndarray]:
    """(scores, methods): headers × fields, the best lexical signal per pair.

    Methods are codes into METHODS (0 = none)."""
    n_h, n_f = len(headers), len(index.fields)
    scores = np.zeros((n_h, n_f), dtype=np.float32)
    methods = np.zeros((n_h, n_f), dtype=np.int8)
    all_canon: list[list[tuple[tuple[str, ...], float]]] = []
    uniq: dict[str, int] = {}
    for hi, header in enumerate(headers):
        vs = _variants_of(header, index)
        cands: list[tuple[tuple[str, ...], float]] = []
        full = set(index.canon(vs[0])) if vs else set()
        plain_reads = set(noise_reads(header, index)) if vs else set()
        for vi, ws in enumerate(vs):
            factor = 1.0 if vi == 0 else TRAILING_FACTOR
            if vi and tuple(ws) in plain_reads:
                factor = NOISE_FACTOR
            if vi and any(t in index.others for t in full - set(index.canon(ws))):
                # the path's trailing part belongs to the person or thing it starts with:
                # "Supervisor: Employee ID" is no employee id, "emergencyContact.phone" no phone
                factor *= FOREIGN_FACTOR
            if vi:
                shadow = _shadowing_fields(full, index.canon(ws), index)
                for fi in shadow:
                    _bump(scores, methods, hi, fi, SCORE[GLOSSARY] * factor, 3)
                if shadow:
                    factor *= SHADOW_FACTOR
            plain = " ".join(ws)
            fi = index.plain_exact.get(plain)
            if fi is not None:
                _bump(scores, methods, hi, fi, SCORE[EXACT] * factor, 1)
            for fi in index.plain_alias.get(plain, ()):
                _bump(scores, methods, hi, fi, SCORE[ALIAS] * factor, 2)
            canon = index.canon(ws)
            hits = index.canon_eq.get(tuple(sorted(set(canon))), ())
            if not hits and vi == 0 and len(canon) == 1 and (canon[-1:] in KEY_CODES or canon == ("id",)):
                # a header that is only "code", "key" or "ref": the record's own one, as "Employee Code"
                hits = _bare_key(canon[0], index)
            if not hits and len(canon) >= 2 and canon[-1:] in KEY_CODES:
                # "Employee Code", "Manager Ref": a person's or the record's code is their id when no
                # field is named so (a position's "Job Code" is a field of its own)
                hits = index.canon_eq.get(tuple(sorted({*canon[:-1], "id"})), ())
            if not hits and len(canon) >= 2 and SELF in canon:
                # "Staff First Name", "Candidate Email": the record's own word before a field's words
                # names the record's own field, when no field is named with it
                rest = tuple(sorted({t for t in canon if t != SELF}))
                hits = index.canon_eq.get(rest, ()) if rest else ()
            named = _self_named(ws, index)
            for fi in named:
                _bump(scores, methods, hi, fi, SCORE[GLOSSARY] * factor, 3)
            for fi in hits:
                _bump(
                    scores,
                    methods,
                    hi,
                    fi,
                    SCORE[GLOSSARY] * factor * (SELF_NAMED_FACTOR if named else 1.0),
                    3,
                )
            for fi in index.concept_eq.get(tuple(sorted(set(canon))), ()):
                _bump(scores, methods, hi, fi, CONCEPT_SCORE * factor, 3)
            for fi, value in _bare_kind(canon, index):
                _bump(scores, methods, hi, fi, value * factor * (SELF_NAMED_FACTOR if named else 1.0), 3)
            cands.append((tuple(dict.fromkeys(canon)), factor))
            for t in canon:
                uniq.setdefault(t, len(uniq))
        all_canon.append(cands)
    if not uniq or not index.vocab:
        return scores, methods
    utoks = list(uniq)
    sim = _token_sim(utoks, index.vocab, index.prefixes)  # U × V
    # per unique token, its best similarity inside each text: U × texts
    padded = np.concatenate([sim, np.zeros((sim.shape[0], 1), dtype=sim.dtype)], axis=1)
    best_in_text = padded[:, index.t_tok].max(axis=2)
    text_w = index.t_w.sum(axis=1)
    for hi, cands in enumerate(all_canon):
        for canon, factor in cands:
            if not canon:
                continue
            rows = [uniq[t] for t in canon]
            hw = np.array([_header_weight(t, index) for t in canon], dtype=np.float32)
            recall = (index.t_w * sim[rows].max(axis=0)[None, :]).sum(axis=1) / np.maximum(text_w, 1e-6)
            precision = (hw[:, None] * best_in_text[rows]).sum(axis=0) / hw.sum()
            f1 = np.where(recall + precision > 0, 2 * recall * precision / (recall + precision + 1e-9), 0.0)
            per_text = FUZZY_CAP * np.power(f1, 1.3) * factor * index.text_factor
            per_field = np.zeros(n_f, dtype=np.float32)
            np.maximum.at(per_field, index.text_field, per_text.astype(np.float32))
            better = per_field > scores[hi]
            scores[hi] = np.where(better, per_field, scores[hi])
            methods[hi] = np.where(better, 4, methods[hi])
    return scores, methods


# A path's trailing part read alone loses the words before it; when one of them, with that part, names
# another field ("person.preferredName.givenName": preferred + given name is PREFERRED_FIRST_NAME), the
# fuller reading is that field, and the bare part's own match (FIRST_NAME) counts this much less.
SHADOW_FACTOR = 0.9


def _shadowing_fields(full: set[str], canon: tuple[str, ...], index: LexicalIndex) -> set[int]:
    """Fields named by a trailing reading's words plus one content word the reading dropped."""
    g = index.glossary
    own = set(canon)
    if not own:
        return set()
    matched = set(index.canon_eq.get(tuple(sorted(own)), ()))
    out: set[int] = set()
    for d in full - own:  # the few words a path's trailing reading dropped
        if d == SELF or d in g.neutral or d in g.generic or d not in index.weights:
            continue
        out |= set(index.canon_eq.get(tuple(sorted(own | {d})), ())) - matched
    return out


# A synonym of the record that the schema also names fields with ("posting" in a position's
# POSTING_TITLE, POSTING_URL; not "job", the word of its key JOB_ID) is a part of the record there:
# "Posting Name" is the posting's title, so the record's own title (TITLE) counts this much less.
SELF_NAMED_FACTOR = 0.95
_SELF_NAMED: dict[tuple[str, str], dict[str, list[tuple[int, str]]]] = {}


def _self_named_table(index: LexicalIndex) -> dict[str, list[tuple[int, str]]]:
    """Record synonym → (field, the head kind of the one word after it) for field names "<synonym>
    <word>" whose synonym is not the first word of the key's name. Once per index."""
    cache_key = (index.entity, index.fields_key)
    table = _SELF_NAMED.get(cache_key)
    if table is None:
        g = index.glossary
        synonyms = {h[0] for h in g.entity_words(index.entity) if len(h) == 1}
        names = [x for x in index.texts if x.kind == "name"]
        key_first = {x.plain.split()[0] for x in names if x.canon[-1:] == ("id",) and x.canon[:1] == (SELF,)}
        table = {}
        for x in names:  # the schema's field names, once
            parts = x.plain.split()
            if len(parts) == 2 and parts[0] in synonyms - key_first:
                kind = g.head_kinds.get(stem(parts[1]))
                if kind:
                    table.setdefault(parts[0], []).append((index.fields.index(x.field), kind))
        _SELF_NAMED[cache_key] = table
    return table


def _self_named(ws: list[str] | tuple[str, ...], index: LexicalIndex) -> set[int]:
    """Fields named "<synonym> <word>" (see SELF_NAMED_FACTOR) for a header that writes the synonym
    and, besides the record's own words, one word of the same head kind ("Job Posting Title")."""
    table = _self_named_table(index)
    out: set[int] = set()
    for w in (w for w in ws if w in table):  # a handful of header words
        rest = [t for t in index.canon([v for v in ws if v != w]) if t != SELF]
        kind = index.glossary.head_kinds.get(rest[0]) if len(rest) == 1 else None
        out |= {fi for fi, k in table[w] if kind is not None and k == kind}
    return out


KEY_CODES = frozenset({(stem("code"),), ("ref",), ("key",)})


def _bare_key(word: str, index: LexicalIndex) -> set[int]:
    """The fields a bare "code" / "key" / "id" header means: the record's own code (a field named so,
    before one merely aliased so: a position's JOB_CODE), else the record's key."""
    own = tuple(sorted({SELF, word}))
    hits = set(index.canon_eq.get(own, ()))
    named = {fi for fi in hits if index.texts_named.get(own) == fi}
    return named or hits or set(index.canon_eq.get(tuple(sorted({SELF, "id"})), ()))


BARE_QUALIFIED = 0.9  # "hostedUrl" in a position file: an unknown qualifier on the record's own url
# kinds an unknown word may qualify and still mean the record's own field, and the score then
QUALIFIABLE_KINDS = {"url": BARE_QUALIFIED, "status": 0.7}


def _bare_kind(canon: tuple[str, ...], index: LexicalIndex) -> list[tuple[int, float]]:
    """A header that names only a kind of value ("name", "type", "Job Name") means the field the
    schema flags with that `record_kind` (a position's name is its title). Neutral words may qualify it;
    for urls, so may words no field knows ("hostedUrl", "take_url"): a url qualified by a known subject
    ("image url", "manager url") is that subject's. A lifecycle state is the record's status (see
    `_record_state`)."""
    content = [t for t in canon if t != SELF]
    if not content or not index.record_kinds:
        return []
    g = index.glossary
    state = _record_state(content, index)
    if state:
        return state
    head = content[-1]
    kind = g.head_kinds.get(head)
    fields = index.record_kinds.get(kind or "")
    # a head word another field is about ("category", "title") is that field's, not a bare kind
    if not fields or (head not in g.generic and index.text_heads.get(head, frozenset()) - set(fields)):
        return []
    others = [t for t in content[:-1] if t not in g.neutral]
    if not others:
        return [(fi, SCORE[GLOSSARY]) for fi in fields]
    if kind not in QUALIFIABLE_KINDS:
        return []
    # where a url lives ("external", "source") or an unknown word ("hosted") qualifies the record's url;
    # so for its status ("Object Status", "Lifecycle Status"), more loosely
    for t in (t for t in others if t not in g.key_qualifiers):
        if t in index.weights or t in index.foreign or t in g.generic or len(t) < 3:
            return []
        sim = _token_sim([t], index.vocab, index.prefixes)
        if sim.size and float(sim.max()) >= EXPLAINED_SIM:
            return []
    return [(fi, QUALIFIABLE_KINDS[kind]) for fi in fields]


# A lifecycle state read as the record's status ("archived", "PublishedState"): a guess about what the
# column holds (a status, or a yes/no for one state), so under the 0.9 of a sure match, like a status
# qualified by an unknown word.
STATE_SCORE = QUALIFIABLE_KINDS["status"]


def _record_state(content: list[str], index: LexicalIndex) -> list[tuple[int, float]]:
    """The record's status field(s) for a header whose words, besides the record's own and neutral
    ones, are lifecycle states (glossary `state_words`: archived, obsolete), alone ("Is Archived") or
    before a status head ("Published State"), or the processes that set them (`state_processes`) before
    a status head ("Workflow State"); nothing in a schema with no status of the record's own (an
    employee file), or when any other word qualifies them ("Home State" is an address's)."""
    g = index.glossary
    fields = index.record_kinds.get("status")
    words_ = [t for t in content if t not in g.neutral]
    if not fields or not g.state_words or not words_:
        return []
    head = words_[-1]
    if g.head_kinds.get(head) == "status" or head in g.status_heads:
        rest, allowed = words_[:-1], g.state_words | g.state_processes
    else:
        rest, allowed = words_, g.state_words
    if rest and all(t in allowed for t in rest):
        return [(fi, STATE_SCORE) for fi in fields]
    return []


def _state_explained(canon: list[str], index: LexicalIndex) -> np.ndarray:
    """T × F: a lifecycle state word is explained by the record's status field(s) (see `_record_state`)."""
    out = np.zeros((len(canon), len(index.fields)), dtype=bool)
    fields = index.record_kinds.get("status")
    if fields:
        for ti, t in enumerate(canon):  # a handful of header words
            if t in index.glossary.state_words or t in index.glossary.state_processes:
                out[ti, fields] = True
    return out


def _header_weight(token: str, index: LexicalIndex) -> float:
    if token in index.weights:
        return index.weights[token]
    if token == SELF:
        return SELF_WEIGHT
    if token in index.glossary.neutral:
        return NEUTRAL_WEIGHT
    return min(UNKNOWN_WEIGHT, _generic(token, index.glossary))


def head_factors(headers: list[str], index: LexicalIndex) -> np.ndarray:
    """headers × fields: HEAD_KIND_PENALTY where the header's last word names a kind of value (type,
    date, id, name, ...) that the field's words do not; 1 elsewhere. The best of the header's path
    variants is kept (`manager.url` is also read as "manager id")."""
    out = np.ones((len(headers), len(index.fields)), dtype=np.float32)
    for hi, header in enumerate(headers):
        best = np.zeros(len(index.fields), dtype=np.float32)
        for ws in _variants_of(header, index) or [[]]:
            canon = index.canon(ws) if ws else ()
            kind = index.glossary.head_kinds.get(canon[-1]) if canon else None
            if kind is None and len(canon) >= 2 and (canon[-1:] in KEY_CODES or canon[-1] == "id"):
                # "statusCode", "Type ID": the code of a classification is that classification
                kind = index.glossary.head_kinds.get(canon[-2])
                kind = kind if kind in CLASS_KINDS else None
            if kind is None and len(ws) >= 3 and ws[1] == "of" and canon:
                # "dateOfSeniority", "Date of Leaving": a date of something is a date, whatever the thing
                kind = index.glossary.head_kinds.get(canon[0])
                kind = kind if kind == "date" else None
            if kind is None:
                best[:] = 1.0
                break
            penalty = CLASS_KINDS.get(kind, HEAD_KIND_PENALTY)
            row = np.array([1.0 if kind in kinds else penalty for kinds in index.field_kinds])
            best = np.maximum(best, row.astype(np.float32))
        out[hi] = best
    return out


def coverage_factors(headers: list[str], index: LexicalIndex) -> np.ndarray:
    """headers × fields: UNEXPLAINED_FACTOR for each content word of the header that the field's words
    do not explain, once some other word of the header does ("Photo URL" vs URL: "url" matches,
    "photo" is unexplained). Neutral modifiers (current, original, ...) and the entity's own word never
    count against a field. The best of the header's path variants is kept."""
    out = np.ones((len(headers), len(index.fields)), dtype=np.float32)
    if not index.vocab:
        return out
    self_col = index.vocab.index(SELF) if SELF in index.vocab else None
    for hi, header in enumerate(headers):  # a handful of words per header, vectorised over fields
        best = np.zeros(len(index.fields), dtype=np.float32)
        vs = _variants_of(header, index)
        full = set(index.canon(vs[0])) if vs else set()
        for ws in vs:
            canon = [t for t in dict.fromkeys(index.canon(ws)) if t != SELF]
            # a trailing part of a path still belongs to the other record or thing the path starts
            # with: `attachments.data_url` is the attachment's url, not the candidate's
            dropped = [t for t in full - set(canon) if t in index.others]
            if not canon:
                best[:] = 1.0
                break
            gloss = index.glossary
            counts = np.array(
                [
                    len(t) > 1 and not t.isdigit() and t not in gloss.neutral and t not in gloss.generic
                    for t in canon
                ]
            )
            sim = _token_sim(canon, index.vocab, index.prefixes)  # T × V
            explained = (sim[:, None, :] * index.f_bin[None, :, :]).max(axis=2) >= EXPLAINED_SIM  # T × F
            explained |= _state_explained(canon, index)
            hits = explained.sum(axis=0).astype(np.float32)
            if self_col is not None and SELF in index.canon(ws):
                hits += index.f_bin[:, self_col]
            cost = np.array([FOREIGN_FACTOR if t in index.foreign else UNEXPLAINED_FACTOR for t in canon])
            if counts[-1]:
                cost[-1] = min(cost[-1], HEAD_FACTOR)
            missing = ~explained & counts[:, None]  # T × F
            factor = np.where(hits > 0, np.where(missing, cost[:, None], 1.0).prod(axis=0), 1.0)
            if dropped:
                d_sim = _token_sim(dropped, index.vocab, index.prefixes)
                d_explained = (d_sim[:, None, :] * index.f_bin[None, :, :]).max(axis=2) >= EXPLAINED_SIM
                factor = factor * np.where(d_explained, 1.0, FOREIGN_FACTOR).prod(axis=0)
            best = np.maximum(best, factor.astype(np.float32))
        out[hi] = best
    return out


METHODS = ("none", EXACT, ALIAS, GLOSSARY, FUZZY)


def _bump(scores: np.ndarray, methods: np.ndarray, hi: int, fi: int, value: float, code: int) -> None:
    if value > scores[hi, fi]:
        scores[hi, fi] = value
        methods[hi, fi] = code


# A qualifier that changes what the header is about (qualifiers.yaml: probation, previous, tax), when the
# field does not name it: "probationPeriodEndDate" is no TERMINATION_DATE however well "end date" fits.
# Strong enough to take an alias match (0.96) under the null threshold.
QUALIFIER_FACTOR = 0.4


def qualifier_factors(headers: list[str], index: LexicalIndex) -> np.ndarray:
    """headers × fields: QUALIFIER_FACTOR per subject qualifier of the whole header (every path segment,
    vendor prefix included) that the field's own words do not contain; 1 elsewhere."""
    out = np.ones((len(headers), len(index.fields)), dtype=np.float32)
    qualifiers = index.glossary.subject_qualifiers
    if not qualifiers:
        return out
    vidx = {t: i for i, t in enumerate(index.vocab)}
    for hi, header in enumerate(headers):  # a handful of words per header, vectorised over fields
        vs = _variants_of(header, index)
        found = {t for t in index.canon(vs[0]) if t in qualifiers} if vs else set()
        for t in found:
            named = index.f_bin[:, vidx[t]] > 0 if t in vidx else np.zeros(len(index.fields), dtype=bool)
            out[hi] = np.where(named, out[hi], out[hi] * QUALIFIER_FACTOR)
    return out


# A field about another person than the record (RESOURCE_MANAGER_ATS_ROLES_LIST, RECRUITER_EMAIL) when
# the header names no such person: "Resource Role" is likelier the role requested, however near the
# embedding puts it to the manager's field (round 7: the model reads the shared words and ignores the
# missing person). A confidence factor only: as a score factor it also took "sender.email" off the
# recruiter's email, which it is.
ABSENT_PERSON_FACTOR = 0.6


def person_factors(headers: list[str], index: LexicalIndex) -> np.ndarray:
    """headers × fields: ABSENT_PERSON_FACTOR where every text of the field (name, aliases) names another
    person (manager, recruiter) and the header names none of them; 1 elsewhere."""
    out = np.ones((len(headers), len(index.fields)), dtype=np.float32)
    people = index.glossary.other_people
    needs: dict[int, set[str]] = {}
    free: set[int] = set()
    for x, fi in zip(index.texts, index.text_field, strict=True):  # the schema's texts, once per call
        found = {t for t in x.canon if t in people}
        if found:
            needs.setdefault(int(fi), set()).update(found)
        else:
            free.add(int(fi))
    needs = {fi: ws for fi, ws in needs.items() if fi not in free}
    if not needs:
        return out
    for hi, header in enumerate(headers):  # a handful of words per header
        said = {t for ws in _variants_of(header, index) for t in index.canon(ws)}
        for fi, ws in needs.items():
            if not ws & said:
                out[hi, fi] = ABSENT_PERSON_FACTOR
    return out
