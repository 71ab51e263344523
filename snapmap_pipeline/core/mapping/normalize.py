"""Header normalisation: split paths and camelCase, fold accents, expand abbreviations and non-English
words from `config/glossary/*.yaml`, stem lightly. Pure functions; no Dagster, no I/O beyond the glossary.

>>> words("workerID.idValue")
['worker', 'id', 'id', 'value']
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from snapmap_pipeline import yamlfile
from snapmap_pipeline.errors import ConfigError

SELF = "self"  # stands for "this entity's own record" (employee in an employee file, ...)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DIGIT = re.compile(r"(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
# path separators: / \ > :: a dot inside a word, a spaced dash (Workday's "Legal_Name_-_First_Name") and a
# colon before a space (iCIMS' "Person: First Name")
_PATH = re.compile(r"\s*(?:/|\\|>|::|(?<=\w)\.(?=\w)|(?<=[\w)])[\s_]+-[\s_]+(?=\w)|(?<=[\w)]):\s+(?=\w))\s*")
_NON_WORD = re.compile(r"[^0-9a-z#]+")
_SUFFIXES = ("ations", "ation", "ated", "ates", "ings", "ing", "ments", "ment", "ies", "ed", "es", "s")


# letters NFKD does not decompose: Nordic ø / æ (Fødselsdato, Ansættelsesdato), Polish ł, Icelandic þ / ð
_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "Þ": "TH",
        "ð": "d",
        "Ð": "D",
    }
)


def fold(text: str) -> str:
    """Drop accents (prénom → prenom) and spell out letters with no accent to drop (ß → ss, ø → o), keeping
    case, so a Nordic or Polish word stays one word."""
    text = text.translate(_LETTERS)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _split_segment(segment: str) -> list[str]:
    segment = _CAMEL.sub(" ", segment)
    segment = _DIGIT.sub(" ", segment)
    segment = segment.lower().replace("#", " # ").replace("&", " and ").replace("%", " percent ")
    return [t for t in _NON_WORD.sub(" ", segment).split() if t]


# Salesforce custom objects: `ns__FieldName__c` (a managed package's namespace, a custom-field suffix) and
# `ns__Object__r.Name` (a relationship path: the related object's Name)
_SF_MARK = re.compile(r"__(?:c|r)\b")
_SF_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9]*__(?=[A-Za-z])")
_SF_SUFFIX = re.compile(r"__(?:c|r)(?=\.|$)")


def salesforce(header: str) -> str:
    """`hr2d__Department__r.Name` → `Department.Name`, `ns__EmailWork__c` → `EmailWork`: the namespace
    and the custom-field / relationship suffixes carry no meaning, the object path does."""
    if not _SF_MARK.search(header):
        return header
    return _SF_SUFFIX.sub("", _SF_NAMESPACE.sub("", header.strip()))


# SAP's TABLE-FIELD notation: an HR infotype table or structure (PA0002, P0001, PS0001, PB0002, HRP1000,
# IT0105) before the field code (`P0002-GBDAT`, `PA0001_PERSK`): the table names no meaning of its own
_SAP_TABLE = re.compile(r"^(?:PA|PB|PS|P|HRP|IT)\d{4}[-_.](?=[A-Za-z])", re.IGNORECASE)


def sap_field(header: str) -> str:
    """`P0002-GBDAT` → `GBDAT`, `PA0001_PERSK` → `PERSK`: the field code, without its SAP table."""
    return _SAP_TABLE.sub("", header, count=1)


def segments(header: str) -> list[list[str]]:
    """Path segments of a header, each as its words: '/person/legalName/givenName' → 3 segments."""
    parts = [p for p in _PATH.split(salesforce(sap_field(fold(str(header)).strip()))) if p and p.strip()]
    out = [_split_segment(p) for p in parts]
    return [s for s in out if s]


def words(header: str) -> list[str]:
    """All words of a header, paths flattened."""
    return [w for seg in segments(header) for w in seg]


def normalize(header: str) -> str:
    """The plain normal form used for exact and alias matches: 'Employee_ID' → 'employee id'."""
    return " ".join(words(header))


def variants(
    header: str,
    noise: frozenset[tuple[str, ...]] = frozenset(),
    vocab: frozenset[str] = frozenset(),
    attributes: frozenset[tuple[tuple[str, ...], tuple[str, ...]]] = frozenset(),
) -> list[list[str]]:
    """Word lists to try for a header: the full path, then its trailing segments (last, last two).
    Segments that only carry structure (`codeValue`, `idValue`) are dropped first; run-together words
    are split with `vocab` (`DateofJoining` → date of joining). A unit or note in parentheses
    ("Duration (hrs)") is a qualifier: the header without it comes first.

    A path ending in an attribute of the object before it (`manager.url`, `department.name`,
    `office.id`) is about that object: its variants keep the object ("manager url", and the
    attribute's role, "manager id"), never the bare attribute ("url"), which would name another field.
    `attributes` pairs each attribute segment with its role ((url,) → (id,))."""
    return [list(v) for v in _variants(str(header), noise, vocab, attributes)]


_PAREN = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


@lru_cache(maxsize=65_536)
def _variants(
    header: str,
    noise: frozenset[tuple[str, ...]],
    vocab: frozenset[str] = frozenset(),
    attributes: frozenset[tuple[tuple[str, ...], tuple[str, ...]]] = frozenset(),
) -> tuple[tuple[str, ...], ...]:
    plain = _PAREN.sub(" ", header)
    if plain.strip() and plain != header and segments(plain):
        main = _variants(plain, noise, vocab, attributes)
        extra = tuple(v for v in _variants(_PAREN_MARKS.sub(" ", header), noise, vocab, attributes) if v)
        return tuple(dict.fromkeys((*main, *extra)))
    segs = segments(header)
    if vocab:
        segs = [split_compounds(s, vocab) for s in segs]
    if len(segs) > 1 and noise:
        kept = [s for s in segs if tuple(s) not in noise]
        segs = kept or segs[-1:]
    if not segs:
        return ()
    out = [tuple(w for s in segs for w in s)]
    role = dict(attributes).get(tuple(segs[-1])) if len(segs) > 1 else None
    if role is not None:
        obj = tuple(segs[-2])
        out.append((*obj, *segs[-1]))
        out.append((*obj, *role))
    else:
        for k in (1, 2):
            if len(segs) > k:
                out.append(tuple(w for s in segs[-k:] for w in s))
    return tuple(dict.fromkeys(out))


_PAREN_MARKS = re.compile(r"[()\[\]]")


MIN_COMPOUND = 5  # shorter unknown words are abbreviations (emp, mgr), not compounds


def split_compounds(ws: list[str], vocab: frozenset[str]) -> list[str]:
    """Split words that run known words together ('dateofjoining' → date of joining, 'idnumber' → id
    number). Only words unknown to `vocab` are split, and only when known words cover them entirely;
    anything else is kept as it is.

    >>> split_compounds(["dateofjoining"], frozenset({"date", "of", "joining"}))
    ['date', 'of', 'joining']
    """
    out: list[str] = []
    for w in ws:
        if len(w) >= MIN_COMPOUND and w.isalpha() and w not in vocab:
            pieces = _segment(w, vocab)
            if pieces is None:
                plain = _UMLAUT.sub(lambda m: m.group(0)[0], w)
                pieces = (plain,) if plain in vocab else _segment(plain, vocab) if plain != w else None
            out.extend(pieces or (w,))
        else:
            out.append(w)
    return out


# German written without umlauts (Geschaeftlich, Taetigkeit, Buero): ä → ae, where the glossary's keys
# are folded (ä → a). Tried only on a word nothing else explains, so "value" and "queue" stay.
_UMLAUT = re.compile(r"(?<=[a-z])(?:ae|oe|ue)")


@lru_cache(maxsize=65_536)
def _segment(word: str, vocab: frozenset[str]) -> tuple[str, ...] | None:
    # dynamic programming over the word's prefixes: fewest known pieces of two letters or more, ties
    # broken by the longest piece (a word of ~20 letters: a few hundred slice look-ups)
    n = len(word)
    best: list[tuple[int, int, tuple[str, ...]] | None] = [None] * (n + 1)
    best[0] = (0, 0, ())
    for i in range(2, n + 1):
        for j in range(0, i - 1):
            prev = best[j]
            piece = word[j:i]
            if prev is None or piece not in vocab:
                continue
            cand = (prev[0] + 1, -max(-prev[1], len(piece)), (*prev[2], piece))
            if best[i] is None or cand[:2] < best[i][:2]:
                best[i] = cand
    done = best[n]
    return done[2] if done is not None and done[0] >= 2 else None


def stem(word: str) -> str:
    """A light suffix stripper so hire/hired/hiring and terminate/termination meet."""
    if len(word) < 4 or word.isdigit():
        return word
    if word.endswith("sses"):
        word = word[:-2]
    elif not word.endswith("ss"):
        for suf in _SUFFIXES:
            # a long suffix leaves a word of four letters or more: comments is no "com", location no
            # "loc" (three letters would read as an abbreviation of anything starting so)
            if word.endswith(suf) and len(word) - len(suf) >= (4 if len(suf) >= 4 else 3):
                word = word[: -len(suf)]
                break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


@dataclass(frozen=True)
class Glossary:
    """Token and phrase rewrites plus stop words, merged from every `config/glossary/*.yaml`."""

    tokens: dict[str, tuple[str, ...]] = field(default_factory=dict)
    phrases: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    stopwords: frozenset[str] = frozenset()
    entities: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    max_phrase: int = 1
    generic: frozenset[str] = frozenset()  # stemmed
    path_noise: frozenset[tuple[str, ...]] = frozenset()
    head_kinds: dict[str, str] = field(default_factory=dict)  # stemmed word → kind
    joiners: frozenset[str] = frozenset()  # short words that glue compounds (date-of-joining)
    stemmed_phrases: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    neutral: frozenset[str] = frozenset()  # stemmed modifiers that never change a header's meaning
    time_suffixes: frozenset[str] = frozenset()  # created_at, hired_on: a trailing word naming a time
    key_qualifiers: frozenset[str] = frozenset()  # external id, remote id: the record's own key
    other_people: frozenset[str] = frozenset()  # stemmed: manager, recruiter, spouse, ...
    # path attributes of an object (manager.url, department.name) → their role: ((url,), (id,)), ...
    attributes: frozenset[tuple[tuple[str, ...], tuple[str, ...]]] = frozenset()
    person_name_words: frozenset[str] = frozenset()  # stemmed: first, last, full, given, ... (of a name)
    other_objects: frozenset[str] = frozenset()  # stemmed: photo, avatar, resume, ... (not the record)
    boolean_prefixes: frozenset[str] = frozenset()  # is_published, has_children: a yes/no column
    boolean_suffixes: frozenset[str] = frozenset()  # rehire_flag, manager_yn: a yes/no column
    phone_words: frozenset[str] = frozenset()  # mobile, cell, work: "number" after them is a phone
    # plain field-name phrase → what vendors call that concept (embedded only; see concepts.yaml)
    concepts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # HR data no field takes (salary, tax, civil status): the semantic "no field" sink
    unmapped: tuple[str, ...] = ()
    # stemmed words that make a date, name or contact belong to another thing (probation end date,
    # previous employer, tax id): a field must name them too (qualifiers.yaml)
    subject_qualifiers: frozenset[str] = frozenset()
    # a person's login as the last path segment (recruiter.userName): how ATSs name a user, by email
    login_attributes: frozenset[tuple[str, ...]] = frozenset()
    agent_suffixes: frozenset[str] = frozenset()  # created_by, approved_by: a person, never a date
    # words that decorate a header without naming its subject (label, obj, node): set aside as noise
    decorations: frozenset[str] = frozenset()
    # CJK HR words → English words (cjk.yaml): a CJK label has no spaces, so it is segmented with them
    cjk: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # a CJK word's reading when it is the whole label (名 alone is the given name, 〜名 a name of ~)
    cjk_alone: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # stemmed: lifecycle states a record's status holds (archived, obsolete, published): alone, or
    # before a status head, they name the record's status
    state_words: frozenset[str] = frozenset()
    # stemmed: the processes that set those states (workflow): before a status head only
    state_processes: frozenset[str] = frozenset()
    # stemmed: head words that name a status when a state word qualifies them ("workflow_state")
    status_heads: frozenset[str] = frozenset()

    def entity_words(self, entity: str) -> tuple[tuple[str, ...], ...]:
        return self.entities.get(entity, ())


def _key(text: str) -> tuple[str, ...]:
    return tuple(_split_segment(fold(str(text))))


@lru_cache(maxsize=8)
def load_glossary(directory: Path) -> Glossary:
    """Read every YAML in the glossary folder. A malformed file is a ConfigError naming it."""
    tokens: dict[str, tuple[str, ...]] = {}
    phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
    stop: set[str] = set()
    entities: dict[str, tuple[tuple[str, ...], ...]] = {}
    generic: set[str] = set()
    noise: set[tuple[str, ...]] = set()
    kinds: dict[str, str] = {}
    joiners: set[str] = set()
    neutral: set[str] = set()
    time_suffixes: set[str] = set()
    qualifiers: set[str] = set()
    people: set[str] = set()
    attributes: dict[tuple[str, ...], tuple[str, ...]] = {}
    name_parts: set[str] = set()
    objects: set[str] = set()
    bool_pre: set[str] = set()
    bool_suf: set[str] = set()
    concepts: dict[str, tuple[str, ...]] = {}
    unmapped: list[str] = []
    phone_words: set[str] = set()
    qualifiers_of_subject: set[str] = set()
    logins: set[tuple[str, ...]] = set()
    agents: set[str] = set()
    decorations: set[str] = set()
    state_words: set[str] = set()
    state_processes: set[str] = set()
    status_heads: set[str] = set()
    cjk: dict[str, tuple[str, ...]] = {}
    cjk_alone: dict[str, tuple[str, ...]] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            raw = yamlfile.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"glossary {path.name}: cannot read: {exc}; fix the YAML", path=str(path)
            ) from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"glossary {path.name}: expected a mapping at the top", path=str(path))
        for src, dst in (raw.get("tokens") or {}).items():
            src_key = "#" if str(src) == "#" else " ".join(_key(src))
            tokens[src_key] = _key(dst)
        for src, dst in (raw.get("phrases") or {}).items():
            phrases[_key(src)] = _key(dst)
        stop.update(" ".join(_key(w)) for w in raw.get("stopwords") or [])
        generic.update(stem(w) for x in raw.get("generic") or [] for w in _key(x))
        noise.update(_key(x) for x in raw.get("path_noise") or [])
        joiners.update(w for x in raw.get("compound_joiners") or [] for w in _key(x))
        neutral.update(stem(w) for x in raw.get("neutral") or [] for w in _key(x))
        time_suffixes.update(w for x in raw.get("time_suffixes") or [] for w in _key(x))
        qualifiers.update(w for x in raw.get("key_qualifiers") or [] for w in _key(x))
        people.update(stem(w) for x in raw.get("other_people") or [] for w in _key(x))
        name_parts.update(stem(w) for x in raw.get("person_name_words") or [] for w in _key(x))
        objects.update(stem(w) for x in raw.get("other_objects") or [] for w in _key(x))
        bool_pre.update(w for x in raw.get("boolean_prefixes") or [] for w in _key(x))
        bool_suf.update(w for x in raw.get("boolean_suffixes") or [] for w in _key(x))
        phone_words.update(w for x in raw.get("phone_words") or [] for w in _key(x))
        qualifiers_of_subject.update(stem(w) for x in raw.get("subject_qualifiers") or [] for w in _key(x))
        logins.update(_key(x) for x in raw.get("login_attributes") or [] if _key(x))
        agents.update(w for x in raw.get("agent_suffixes") or [] for w in _key(x))
        decorations.update(w for x in raw.get("decorations") or [] for w in _key(x))
        state_words.update(stem(w) for x in raw.get("state_words") or [] for w in _key(x))
        state_processes.update(stem(w) for x in raw.get("state_processes") or [] for w in _key(x))
        status_heads.update(stem(w) for x in raw.get("status_heads") or [] for w in _key(x))
        for table, section in ((cjk, "cjk"), (cjk_alone, "cjk_alone")):
            for src, dst in (raw.get(section) or {}).items():
                table[unicodedata.normalize("NFKC", str(src)).strip()] = _key(dst)
        for concept, phrases_of in (raw.get("concepts") or {}).items():
            key = " ".join(_key(concept))
            concepts[key] = (*concepts.get(key, ()), *(" ".join(_key(x)) for x in phrases_of or []))
        unmapped.extend(" ".join(_key(x)) for x in raw.get("unmapped") or [] if _key(x))
        for role, attr_words in (raw.get("path_attributes") or {}).items():
            for w in attr_words or []:
                if _key(w):
                    attributes[_key(w)] = _key(role)
        for kind, kind_words in (raw.get("head_kinds") or {}).items():
            for w in kind_words or []:
                key = _key(w)
                if key:
                    kinds[stem("".join(key)) if len(key) > 1 else stem(key[0])] = str(kind)
        for entity, hint_words in (raw.get("entities") or {}).items():
            entities[str(entity)] = tuple(_key(w) for w in hint_words or [])
    longest = max((len(k) for k in phrases), default=1)
    stemmed = {tuple(stem(w) for w in k): v for k, v in phrases.items()}
    return Glossary(
        tokens,
        phrases,
        frozenset(stop),
        entities,
        max(longest, 1),
        frozenset(generic),
        frozenset(noise),
        kinds,
        frozenset(joiners),
        stemmed_phrases=stemmed,
        neutral=frozenset(neutral),
        time_suffixes=frozenset(time_suffixes),
        key_qualifiers=frozenset(qualifiers),
        other_people=frozenset(people),
        attributes=frozenset(attributes.items()),
        person_name_words=frozenset(name_parts),
        other_objects=frozenset(objects),
        boolean_prefixes=frozenset(bool_pre),
        boolean_suffixes=frozenset(bool_suf),
        concepts=concepts,
        phone_words=frozenset(phone_words),
        unmapped=tuple(dict.fromkeys(unmapped)),
        subject_qualifiers=frozenset(qualifiers_of_subject),
        login_attributes=frozenset(logins),
        agent_suffixes=frozenset(agents),
        decorations=frozenset(decorations),
        state_words=frozenset(state_words),
        state_processes=frozenset(state_processes),
        status_heads=frozenset(status_heads),
        cjk=cjk,
        cjk_alone=cjk_alone,
    )


# a run of Han, kana (with the prolonged sound mark) or Hangul: written without spaces between words
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
# a stretch of a CJK label no glossary word covers: kept as one unknown word, so the label's reading is
# not taken for whole (the coverage and noise rules see that a part was not understood)
CJK_UNKNOWN = "cjkword"


def cjk_words(
    header: str, table: dict[str, tuple[str, ...]], alone: dict[str, tuple[str, ...]] | None = None
) -> str:
    """A CJK label in English words, so the usual signals read it: each CJK run is segmented by greedy
    longest match of glossary words (`入社日` → hire date, `上司ID` → manager ID); a run that is the whole
    label may have a reading of its own (`名` alone is the given name). Other text is kept as written.

    >>> cjk_words("入社日", {"入社": ("hire",), "日": ("date",)})
    ' hire date '
    """
    text = unicodedata.normalize("NFKC", str(header))
    if not table or not _CJK_RUN.search(text):
        return str(header)
    longest = max(len(k) for k in table)
    whole = text.strip()

    def run(match: re.Match[str]) -> str:
        part = match.group(0)
        if alone and part == whole and part in alone:
            return " " + " ".join(alone[part]) + " "
        out: list[str] = []
        i = 0
        while i < len(part):  # greedy longest match over a label's few characters (not a data loop)
            for n in range(min(longest, len(part) - i), 0, -1):
                hit = table.get(part[i : i + n])
                if hit is not None:
                    out.extend(hit)
                    i += n
                    break
            else:
                if not out or out[-1] != CJK_UNKNOWN:
                    out.append(CJK_UNKNOWN)
                i += 1
        return " " + " ".join(out) + " "

    return _CJK_RUN.sub(run, text)


def glossary_dir(config_dir: Path) -> Path:
    return Path(config_dir) / "glossary"


def _rewrite_phrases(
    ws: list[str],
    table: dict[tuple[str, ...], tuple[str, ...]],
    longest: int,
    stemmed: dict[tuple[str, ...], tuple[str, ...]] | None = None,
) -> list[str]:
    """Replace runs of words by their phrase, longest first; with `stemmed`, a run also matches on its
    stems ("reporting to" meets "reports to", "email addresses" meets "email address")."""
    # A left-to-right scan over a handful of header words (not a data loop): longest phrase first.
    out: list[str] = []
    i = 0
    while i < len(ws):
        for n in range(min(longest, len(ws) - i), 0, -1):
            key = tuple(ws[i : i + n])
            repl = table.get(key)
            if repl is None and stemmed:
                repl = stemmed.get(tuple(stem(w) for w in key))
            if repl is not None:
                out.extend(repl)
                i += n
                break
        else:
            out.append(ws[i])
            i += 1
    return out


def _phrases(ws: list[str], glossary: Glossary) -> list[str]:
    return _rewrite_phrases(ws, glossary.phrases, glossary.max_phrase, glossary.stemmed_phrases)


_NUMBER_WORDS = frozenset({"number", "numbers", "no", "nbr", "num", "#"})


def _time_suffix(ws: list[str], glossary: Glossary) -> list[str]:
    """'created_at', 'hired_on': a trailing preposition after a verb names when it happened. Also
    'mobileNumber', 'work_numbers': a number after a phone word is the phone, not an identifier."""
    ws = [
        "phone" if w in _NUMBER_WORDS and i and ws[i - 1] in glossary.phone_words else w
        for i, w in enumerate(ws)
    ]
    if len(ws) >= 2 and ws[-1] in glossary.time_suffixes:
        return [*ws[:-1], "date"]
    return ws


def _join_tokens(ws: list[str], glossary: Glossary) -> list[str]:
    """Two written-apart words that together are one glossary word: `AchterNaam`, `Roep_Naam` (camelCase
    and underscores split compounds the glossary knows whole) → achternaam."""
    # a left-to-right pass over a handful of header words (not a data loop)
    out: list[str] = []
    i = 0
    while i < len(ws):
        if (
            i + 1 < len(ws)
            and ws[i].isalpha()
            and ws[i + 1].isalpha()
            and ws[i] + ws[i + 1] in glossary.tokens
        ):
            out.append(ws[i] + ws[i + 1])
            i += 2
            continue
        out.append(ws[i])
        i += 1
    return out


def _expand_tokens(ws: list[str], glossary: Glossary) -> list[str]:
    out: list[str] = []
    for w in ws:
        out.extend(_token(w, glossary))
    return out


def _token(word: str, glossary: Glossary) -> tuple[str, ...]:
    """A word's glossary rewrite; a plural of a one-word rewrite ('offices', 'depts') rewrites too."""
    hit = glossary.tokens.get(word)
    if hit is None and len(word) > 3 and word.endswith("s"):
        single = glossary.tokens.get(word[:-1])
        if single is not None and len(single) == 1:
            return single
    return hit if hit is not None else (word,)


def canonical(
    ws: list[str], glossary: Glossary, self_words: dict[tuple[str, ...], tuple[str, ...]]
) -> list[str]:
    """Expand abbreviations, rewrite phrases (jargon, other languages), mark the entity's own words as
    `self`, drop stop words, stem. Both headers and field texts go through this."""
    ws = _phrases(_time_suffix(_join_tokens(ws, glossary), glossary), glossary)
    expanded = _expand_tokens(_expand_tokens(ws, glossary), glossary)
    expanded = _phrases(expanded, glossary)
    # second pass: a token expansion can complete a phrase (doh → date of hire → hire date)
    expanded = _phrases(expanded, glossary)
    # "External ID", "Remote ID": an id qualified only by where it lives is the record's own key
    content = [w for w in expanded if w not in glossary.stopwords]
    if len(content) >= 2 and content[-1] == "id" and all(w in glossary.key_qualifiers for w in content[:-1]):
        expanded = [SELF, "id"]
    elif (
        len(content) >= 2
        and content[0] == "id"
        and all(stem(w) in _stems(glossary.key_qualifiers) for w in content[1:])
    ):
        # the head first, as French, Spanish, Portuguese and Italian write it: "ID externe", "ID de
        # corrélation" are the external / correlation id, the record's own key too
        expanded = [SELF, "id"]
    if self_words:
        longest = max(len(k) for k in self_words)
        expanded = _rewrite_phrases(expanded, self_words, longest)
    out = [stem(w) if w != SELF else w for w in expanded if w not in glossary.stopwords]
    # "employee employee id" → one self is enough
    dedup: list[str] = []
    for w in out:
        if not (w == SELF and dedup and dedup[-1] == SELF):
            dedup.append(w)
    # "External Employee ID", "Employee Unique ID": where the record's own id lives, still its key
    if (
        len(dedup) >= 3
        and dedup[-1] == "id"
        and SELF in dedup
        and all(w == SELF or w in _stems(glossary.key_qualifiers) for w in dedup[:-1])
    ):
        return [SELF, "id"]
    return dedup


@lru_cache(maxsize=32)
def _stems(ws: frozenset[str]) -> frozenset[str]:
    return frozenset(stem(w) for w in ws) | ws


def self_table(glossary: Glossary, entity: str, extra: list[str]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Phrases that name the entity's own record (singular and plural) → ('self',)."""
    phrases = set(glossary.entity_words(entity))
    phrases.update(_key(w) for w in extra if w)
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    for p in phrases:
        if not p:
            continue
        table[p] = (SELF,)
        table[(*p[:-1], p[-1] + "s")] = (SELF,)
    return table


def segment_vocab(glossary: Glossary, texts: list[str]) -> frozenset[str]:
    """The words compounds may be split into: the schema's field texts (names, aliases, descriptions),
    every glossary word and the glossary's joiners. Stop words are left out (a run-together 'de' or 'a'
    would split almost anything) unless listed as joiners."""
    known: set[str] = set(glossary.joiners) | set(glossary.neutral) | set(glossary.key_qualifiers)
    for attr, role in glossary.attributes:
        known.update(attr)
        known.update(role)
    for key, value in glossary.tokens.items():
        known.update(_key(key))
        known.update(value)
    for key, value in glossary.phrases.items():
        known.update(key)
        known.update(value)
    for hints in glossary.entities.values():
        for hint in hints:
            known.update(hint)
    for text in texts:
        known.update(words(text))
    return frozenset(
        w
        for w in known
        if len(w) >= 2 and w.isalpha() and (w not in glossary.stopwords or w in glossary.joiners)
    )


def expanded_text(header: str, glossary: Glossary, vocab: frozenset[str] = frozenset()) -> str:
    """The header in plain English words for the embedding model: abbreviations and other languages
    rewritten, run-together words split, no stemming ('emp_no' → 'employee number', 'Vorname' → 'first
    name', 'DateofJoining' → 'hire date')."""
    ws = words(header)
    if vocab:
        ws = split_compounds(ws, vocab)
    ws = _phrases(_time_suffix(_join_tokens(ws, glossary), glossary), glossary)
    out: list[str] = []
    for w in ws:
        out.extend(_token(w, glossary))
    out = _phrases(out, glossary)
    return " ".join(out) or str(header)
