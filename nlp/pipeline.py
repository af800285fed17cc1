"""The spaCy side of the NLP layer: `spacy.blank` per language plus our own components.

No trained spaCy model is loaded (nothing to download). Each pipeline is a blank language
(its tokenizer's punctuation rules) with the tokenizer taught to split "WO1042",
"HOB-01" and "#1042", followed by our components, in this order:

    mfgos_normalizer  folded, canonical, typo-mended tokens and clauses (`doc._.mfgos`)
    mfgos_orders      work / customer orders written with an order word ("wo 1042", "Auftrag 1042")
    mfgos_machines    machines by id, name, alias, kind + number, typo; negation and correction
    mfgos_materials   materials by id, name, alias ("sellos" -> seals)
    mfgos_numbers     lots, bare known order numbers ("la 1077"), quantities with units
    mfgos_cues        intent and exception-type cue scores from the lexicon

Matches are also written to `doc.spans["mfgos"]` (label MACHINE, MATERIAL, WORK_ORDER,
CUSTOMER_ORDER, QUANTITY; `kb_id_` is the plant's id, empty when ambiguous or unknown) so they can be inspected or
rendered. spaCy is imported only when a pipeline is first built, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nlp.classify import Cues, score_cues
from nlp.matching import MachineMatch, MasterIndex, Mention
from nlp.resolution import PlacedQuantity
from nlp.text import CLOCK_WORDS, Token, fold, is_number, number_value, split_word

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

COMPONENTS = ("mfgos_normalizer", "mfgos_orders", "mfgos_machines", "mfgos_materials", "mfgos_numbers",
              "mfgos_cues")
SPACY_LANGUAGES = {"en": "en", "es": "es", "de": "de", "hi": "hi"}
_BOUNDARIES = frozenset({",", ";", ".", "!", "?", "¿", "¡", ":", "\n"})
_CONJUNCTIONS = frozenset({"and", "und", "aur", "then", "dann", "luego", "phir", "y"})
_EXTRA_INFIXES = (r"(?<=[^\W\d_])(?=\d)", r"(?<=\d)(?=[^\W\d_])", r"[-/#+_]")


@dataclass
class Reading:
    """What the components found in one message; lives on `doc._.mfgos`."""

    raw: list[str] = field(default_factory=list)  # folded words
    raw_token: list[int] = field(default_factory=list)  # spaCy token index of each raw word
    raw_clause: list[int] = field(default_factory=list)
    raw_glued: list[bool] = field(default_factory=list)  # no space before it ("imm5")
    tokens: list[Token] = field(default_factory=list)  # canonical
    words: list[str] = field(default_factory=list)
    clause_of: list[int] = field(default_factory=list)
    taken: list[bool] = field(default_factory=list)
    work_order: str | None = None
    customer_order: str | None = None
    machines: MachineMatch = field(default_factory=MachineMatch)
    unknown_machine: str | None = None  # as written: "prensa 12" when the plant has no press 12
    material: str | None = None
    material_mentions: list[Mention] = field(default_factory=list)
    quantities: list[PlacedQuantity] = field(default_factory=list)
    unit_tokens: list[bool] = field(default_factory=list)
    cues: Cues = field(default_factory=Cues)


class _Component:
    """A pipeline component bound to one plant's indexes (swapped on refresh)."""

    def __init__(self, index: MasterIndex | None = None) -> None:
        self.index = index

    def _span(self, doc: Doc, reading: Reading, start: int, end: int, label: str, ident: str = "") -> None:
        """Record canonical tokens [start, end) as a span over the spaCy tokens they came from."""
        if start >= end or not reading.tokens:
            return
        first = reading.raw_token[reading.tokens[start].start]
        last = reading.raw_token[reading.tokens[end - 1].end - 1]
        span = doc[first : last + 1]
        span.label_ = label
        span.kb_id_ = ident
        doc.spans["mfgos"].append(span)


class Normalizer(_Component):
    def __call__(self, doc: Doc) -> Doc:
        assert self.index is not None
        reading = Reading()
        clause = 0
        previous_had_space = True
        for token in doc:
            text = token.text
            if text in _BOUNDARIES or token.is_space:
                clause += 1
                previous_had_space = bool(token.whitespace_)
                continue
            if fold(text) in _CONJUNCTIONS:
                clause += 1  # "scrap 40 and release 160": a new clause, the word stays ("up and running")
            words = self.index.decompound(split_word(text))
            for k, word in enumerate(words):
                reading.raw.append(word)
                reading.raw_token.append(token.i)
                reading.raw_clause.append(clause)
                reading.raw_glued.append(k > 0 or not previous_had_space)
            previous_had_space = bool(token.whitespace_)
        reading.tokens = _mend(self.index, self.index.lexicon.canon.tokens(reading.raw))
        reading.words = [t.text for t in reading.tokens]
        reading.clause_of = [reading.raw_clause[t.start] for t in reading.tokens]
        reading.taken = [False] * len(reading.words)
        doc._.mfgos = reading
        doc.spans["mfgos"] = []
        return doc


class Orders(_Component):
    def __call__(self, doc: Doc) -> Doc:
        assert self.index is not None
        reading: Reading = doc._.mfgos
        before = list(reading.taken)
        reading.work_order, reading.customer_order = self.index.find_orders(reading.tokens, reading.taken, bare=False)
        _order_spans(self, doc, reading, before)
        return doc


class Machines(_Component):
    def __call__(self, doc: Doc) -> Doc:
        assert self.index is not None
        reading: Reading = doc._.mfgos
        reading.machines = self.index.find_machines(reading.tokens, reading.taken, glued=_glued(reading))
        if reading.machines.unknown:
            start, end = reading.machines.unknown
            first = reading.raw_token[reading.tokens[start].start]
            last = reading.raw_token[reading.tokens[end - 1].end - 1]
            reading.unknown_machine = doc[first : last + 1].text
        for mention in reading.machines.mentions:
            ident = mention.ids[0] if len(mention.ids) == 1 else ""
            self._span(doc, reading, mention.start, mention.end, "MACHINE", ident)
        return doc


class Materials(_Component):
    def __call__(self, doc: Doc) -> Doc:
        assert self.index is not None
        reading: Reading = doc._.mfgos
        reading.material, reading.material_mentions = self.index.find_material(reading.tokens, reading.taken)
        for mention in reading.material_mentions:
            self._span(doc, reading, mention.start, mention.end, "MATERIAL", mention.ids[0])
        return doc


class Numbers(_Component):
    def __call__(self, doc: Doc) -> Doc:
        assert self.index is not None
        reading: Reading = doc._.mfgos
        _take_lots(self.index, reading)
        before = list(reading.taken)
        work_order, customer_order = self.index.find_orders(reading.tokens, reading.taken, bare=True)
        reading.work_order = reading.work_order or work_order
        reading.customer_order = reading.customer_order or customer_order
        _order_spans(self, doc, reading, before)
        reading.quantities, reading.unit_tokens = _quantities(self.index, reading)
        for quantity in reading.quantities:
            end = quantity.position + (2 if quantity.unit else 1)
            self._span(doc, reading, quantity.position, min(end, len(reading.words)), "QUANTITY")
        return doc


class CueScorer(_Component):
    def __call__(self, doc: Doc) -> Doc:
        assert self.index is not None
        reading: Reading = doc._.mfgos
        reading.cues = score_cues(reading.words, reading.unit_tokens, self.index.lexicon)
        return doc


_FACTORIES: dict[str, type[_Component]] = {
    "mfgos_normalizer": Normalizer, "mfgos_orders": Orders, "mfgos_machines": Machines,
    "mfgos_materials": Materials, "mfgos_numbers": Numbers, "mfgos_cues": CueScorer,
}
_registered = False


def _register() -> None:
    """Register our factories and the Doc extension with spaCy, once per process."""
    global _registered
    if _registered:
        return
    from spacy.language import Language
    from spacy.tokens import Doc

    for name, cls in _FACTORIES.items():
        if not Language.has_factory(name):
            Language.factory(name, func=_factory(cls))
    if not Doc.has_extension("mfgos"):
        Doc.set_extension("mfgos", default=None)
    _registered = True


def _factory(cls: type[_Component]) -> Any:
    def make(nlp: Language, name: str) -> _Component:
        return cls()

    return make


def build_pipeline(language: str, index: MasterIndex) -> Language:
    """A blank spaCy pipeline for `language` (en, es, de, hi) with our components bound to `index`."""
    import spacy
    from spacy.util import compile_infix_regex

    _register()
    nlp = spacy.blank(SPACY_LANGUAGES.get(language, "en"))
    nlp.tokenizer.rules = {}  # keep "don't" and "z.B." whole; our own folding handles them
    nlp.tokenizer.infix_finditer = compile_infix_regex((*nlp.Defaults.infixes, *_EXTRA_INFIXES)).finditer
    for name in COMPONENTS:
        nlp.add_pipe(name)
    bind(nlp, index)
    return nlp


def bind(nlp: Language, index: MasterIndex) -> None:
    """Point every mfgos component of `nlp` at a (new) plant index."""
    for name in COMPONENTS:
        component = nlp.get_pipe(name)
        assert isinstance(component, _Component)
        component.index = index


# --- helpers shared by the components ------------------------------------------------------


def _mend(index: MasterIndex, tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for token in tokens:
        fixed = index.speller.mend(token.text)
        if fixed:
            out.extend(Token(w, token.start, token.end) for w in fixed)
        else:
            out.append(token)
    return out


def _glued(reading: Reading) -> list[bool]:
    """Per canonical token: written straight after the previous one ("imm5")."""
    return [reading.raw_glued[t.start] for t in reading.tokens]


def _order_spans(component: _Component, doc: Doc, reading: Reading, before: list[bool]) -> None:
    i = 0
    n = len(reading.taken)
    while i < n:
        if reading.taken[i] and not before[i]:
            j = i
            while j < n and reading.taken[j] and not before[j]:
                j += 1
            numbers = tuple(w for w in reading.words[i:j] if is_number(w))
            index = component.index
            if numbers and index is not None:
                work_order = index.work_orders.by_numbers.get(numbers)
                customer_order = index.customer_orders.by_numbers.get(numbers)
                if work_order:
                    component._span(doc, reading, i, j, "WORK_ORDER", work_order)
                elif customer_order:
                    component._span(doc, reading, i, j, "CUSTOMER_ORDER", customer_order)
                else:
                    component._span(doc, reading, i, j, "WORK_ORDER")  # a number the plant does not know
            i = j
        else:
            i += 1


def _take_lots(index: MasterIndex, reading: Reading) -> None:
    """The number after 'lot'/'Charge'/'lote' names a lot, not a quantity or an order."""
    words, taken = reading.words, reading.taken
    for i, word in enumerate(words):
        if (word,) in index.lexicon.lot_words:
            for k in range(i + 1, min(i + 3, len(words))):
                if taken[k]:
                    break
                taken[k] = True
                if is_number(words[k]):
                    break


def _quantities(index: MasterIndex, reading: Reading) -> tuple[list[PlacedQuantity], list[bool]]:
    lexicon = index.lexicon
    units = lexicon.units
    words, taken = reading.words, reading.taken
    found: list[PlacedQuantity] = []
    unit_tokens = [False] * len(words)
    for i, word in enumerate(words):
        if taken[i]:
            continue
        nxt = words[i + 1] if i + 1 < len(words) else None
        free_next = nxt is not None and not taken[i + 1]
        if not is_number(word):
            counted = lexicon.number_words.get(word)
            if counted and free_next and nxt in units:
                unit_tokens[i + 1] = True
                found.append(PlacedQuantity(counted, units[nxt], i))
            continue
        if nxt in CLOCK_WORDS or len(word) > 12:  # a time, or a serial number, not a count
            continue
        unit = units.get(nxt) if free_next and nxt is not None else None
        if unit:
            unit_tokens[i + 1] = True
        elif nxt == "%":
            unit = "%"
        found.append(PlacedQuantity(number_value(word), unit, i))
    return found, unit_tokens
