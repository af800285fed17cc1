"""Indexes over a plant's master data, built once per load, and the matchers that use them.

Machines are found by id, name and alias (exact, level 3), by kind + number ("Drehmaschine
11" -> a lathe numbered 11, level 2), by kind alone when the plant has one of that kind
(level 1) and by a word only one machine's name has ("liebherr", level 0). Typos are
mended against the plant's and the lexicon's words before matching (rapidfuzz distances).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz.distance import OSA

from nlp.extraction import MasterData
from nlp.lexicon import Lexicon, Phrase
from nlp.text import CLOCK_WORDS, Token, canonical_number, fold, is_number, split

EXACT, KIND_NUMBER, KIND, WORD = 3, 2, 1, 0
_HYPHENATED = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")


@dataclass
class Mention:
    """A stretch of the message that names something: which ids, how surely, where."""

    ids: tuple[str, ...]
    level: int
    start: int  # canonical token indexes, end exclusive
    end: int


@dataclass
class MachineMatch:
    machine: str | None = None
    candidates: list[str] = field(default_factory=list)
    unknown: tuple[int, int] | None = None  # tokens [start, end) of "grinder 3" when there is no grinder 3
    mentions: list[Mention] = field(default_factory=list)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


_VOWELS = frozenset("aeiouy")


def skeleton(word: str) -> str:
    """The word as typed without its vowels, first letter kept: "robot" -> "rbt", "press" -> "prss"."""
    return word[:1] + "".join(ch for ch in word[1:] if ch not in _VOWELS)


def _is_subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(ch in letters for ch in short)


class Speller:
    """Mends typos of known words: edit distance 1 (2 for long words), via a deletion index."""

    def __init__(self, targets: dict[str, Phrase], known: set[str], bare: Iterable[str] = ()) -> None:
        """`bare`: the targets that are also found with their vowels left out ("prss", "robt",
        "cmprssr"), the machine words a gloved thumb shortens; a skeleton two of them share finds neither."""
        self._targets = targets
        self._known = known
        self._index: dict[str, set[str]] = defaultdict(set)
        for word in targets:
            self._index[word].add(word)
            for deleted in _deletions(word):
                self._index[deleted].add(word)
        skeletons: dict[str, set[Phrase]] = defaultdict(set)
        self._skeleton_words: dict[str, set[str]] = defaultdict(set)
        for word in bare:
            key = skeleton(word)
            if len(key) >= 3 and key != word and key not in known:
                skeletons[key].add(targets.get(word, (word,)))
                self._skeleton_words[key].add(word)
        self._skeletons = {k: next(iter(v)) for k, v in skeletons.items() if len(v) == 1}
        self._cache: dict[str, Phrase | None] = {}

    def mend(self, token: str) -> Phrase | None:
        if len(token) < 3 or token in self._known or not token.isalpha():
            return None
        if token in self._cache:
            return self._cache[token]
        key = skeleton(token)
        found = self._skeletons.get(key)
        if found is not None and any(_is_subsequence(token, word) for word in self._skeleton_words[key]):
            self._cache[token] = found
            return found
        if len(token) < 5:
            return None
        limit = 2 if len(token) >= 8 else 1
        probes = {token} | _deletions(token)
        if limit == 2:
            probes |= {d2 for d in _deletions(token) for d2 in _deletions(d)}
        best: tuple[int, str] | None = None
        for probe in probes:
            for word in self._index.get(probe, ()):
                # People keep the first letter when they mistype; "flanks" is not "blanks".
                if word[0] != token[0] or abs(len(word) - len(token)) > limit:
                    continue
                distance = OSA.distance(token, word, score_cutoff=limit)
                if distance <= limit and (best is None or (distance, word) < best):
                    best = (distance, word)
        result = self._targets[best[1]] if best else None
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[token] = result
        return result


class PhraseTable:
    """Canonical token tuples -> {id: level}; finds the longest phrase at each position."""

    def __init__(self) -> None:
        self.phrases: dict[Phrase, dict[str, int]] = {}
        self.lengths: dict[str, tuple[int, ...]] = {}  # first word -> phrase lengths, longest first

    def add(self, phrase: Phrase, ident: str, level: int) -> None:
        if not phrase:
            return
        slot = self.phrases.setdefault(phrase, {})
        if slot.get(ident, -1) < level:
            slot[ident] = level
        known = self.lengths.get(phrase[0], ())
        if len(phrase) not in known:
            self.lengths[phrase[0]] = tuple(sorted((*known, len(phrase)), reverse=True))

    def scan(self, words: list[str], taken: list[bool]) -> list[Mention]:
        found: list[Mention] = []
        i, n = 0, len(words)
        while i < n:
            hit = None
            for size in self.lengths.get(words[i], ()):
                if i + size > n or any(taken[i : i + size]):
                    continue
                ids = self.phrases.get(tuple(words[i : i + size]))
                if ids:
                    top = max(ids.values())
                    hit = Mention(tuple(k for k, v in ids.items() if v == top), top, i, i + size)
                    break
            if hit is None:
                i += 1
                continue
            found.append(hit)
            i = hit.end
        return found


class MasterIndex:
    """Everything the extractor looks up for one plant, built once when master data loads."""

    def __init__(self, master: MasterData, lexicon: Lexicon) -> None:
        self.master = master
        self.lexicon = lexicon
        canon = lexicon.canon
        self.machines = {m.id: m for m in master.machines}
        self.materials = {m.id: m for m in master.materials}
        self.machine_table = PhraseTable()
        self.material_table = PhraseTable()
        self.machine_numbers: dict[str, set[str]] = {}
        self.machine_kinds: dict[str, set[Phrase]] = {}
        self.kind_words: set[str] = {w for kind in lexicon.machine_classes for w in kind}
        self.kinds_by_first: dict[str, list[Phrase]] = defaultdict(list)
        for kind in lexicon.machine_classes:
            self.kinds_by_first[kind[0]].append(kind)
        cache: dict[str, Phrase] = {}

        def words_of(form: str) -> Phrase:
            found = cache.get(form)
            if found is None:
                found = cache[form] = canon.words(form)
            return found

        self.material_words = {m.id: {w for f in (m.name, *m.aliases) for w in words_of(f)} for m in master.materials}
        area_words = {w for m in master.machines if m.area for w in words_of(m.area)}
        material_words = set().union(*self.material_words.values())
        generic = lexicon.generic_words | area_words | material_words

        word_owners: dict[str, set[str]] = defaultdict(set)
        for machine in master.machines:
            forms = [machine.id, machine.name, *machine.aliases]
            numbers: set[str] = set()
            kinds: set[Phrase] = set()
            for form in forms:
                words = words_of(form)
                self.machine_table.add(words, machine.id, EXACT)
                numbers.update(w for w in words if is_number(w))
            for form in (machine.name, *machine.aliases):
                words = words_of(_HYPHENATED.sub(" ", fold(form)))
                for i, word in enumerate(words):
                    for kind in self.kinds_by_first.get(word, ()):
                        if words[i : i + len(kind)] == kind:
                            kinds.add(kind)
                for word in words:
                    if (len(word) >= 4 and not is_number(word) and word not in generic and word not in self.kind_words
                            and word not in lexicon.vocabulary and word not in lexicon.common_words):
                        word_owners[word].add(machine.id)
            if ("line",) in kinds and any("line" not in kind for kind in kinds):
                # "Palletiser line 5" is the palletiser of line 5: "line 5" names the line, not it
                kinds.discard(("line",))
            self.machine_numbers[machine.id] = numbers
            self.machine_kinds[machine.id] = kinds
            for kind in kinds:
                self.machine_table.add(kind, machine.id, KIND)
                for number in numbers:
                    self.machine_table.add((*kind, number), machine.id, KIND_NUMBER)
                    self.machine_table.add((*kind, "no", number), machine.id, KIND_NUMBER)
                    self.machine_table.add((*kind, "nr", number), machine.id, KIND_NUMBER)
        for word, owners in word_owners.items():
            if len(owners) == 1:
                (owner,) = owners
                self.machine_table.add((word,), owner, WORD)

        for material in master.materials:
            for form in (material.id, material.name, *material.aliases):
                self.material_table.add(words_of(form), material.id, EXACT)
        material_owners: dict[str, set[str]] = defaultdict(set)
        machine_words = {w for m in master.machines for f in (m.name, *m.aliases) for w in words_of(f)}
        for material in master.materials:
            for word in words_of(material.name):
                if (len(word) >= 4 and not is_number(word) and word not in lexicon.generic_words
                        and word not in machine_words):
                    material_owners[word].add(material.id)
        for word, owners in material_owners.items():
            if len(owners) == 1 and (word,) not in self.material_table.phrases:
                self.material_table.add((word,), next(iter(owners)), KIND)

        self.work_orders = _NumberIndex((w.id for w in master.work_orders), canon)
        self.customer_orders = _NumberIndex(master.customer_orders, canon)
        self.work_order_prefixes = set(lexicon.work_order_prefixes) | self.work_orders.prefixes
        self.customer_order_prefixes = set(lexicon.customer_order_prefixes) | self.customer_orders.prefixes
        self.prefix_first_words = {p[0] for p in self.work_order_prefixes | self.customer_order_prefixes} | {"#"}

        targets: dict[str, Phrase] = {}
        master_words: set[str] = set()
        for table in (self.machine_table, self.material_table):
            for phrase in table.phrases:
                master_words.update(w for w in phrase if w.isalpha())
        for word in master_words:
            if len(word) >= 5:
                targets[word] = (word,)
        for word in lexicon.vocabulary:
            if word.isalpha() and len(word) >= 6:
                targets.setdefault(word, (word,))
        machine_words = {w for phrase in self.machine_table.phrases for w in phrase if w.isalpha()}
        plant_kinds = set().union(*self.machine_kinds.values())
        for word in lexicon.surface_words:  # "freidoa" is "freidora" (a fryer), "hrono" is "horno": kinds the plant has
            if len(word) >= 5 and word.isalpha() and word not in targets:
                phrase = canon.words(word)
                if phrase in plant_kinds:
                    targets[word] = phrase
                    machine_words.add(word)
        known = master_words | set(lexicon.vocabulary) | lexicon.common_words | lexicon.surface_words
        self.speller = Speller(targets, known, bare=[w for w in machine_words if len(w) >= 4])
        self.known_words = known
        self._compounds: dict[str, tuple[str, ...]] = {}
        self.compound_heads = {w for w in lexicon.surface_words | set(lexicon.vocabulary) | master_words
                               if len(w) >= 4 and w.isalpha() and w not in lexicon.common_words}

    def decompound(self, raw: Iterable[str]) -> list[str]:
        """German compounds the lexicon does not list: "montagelinie" -> montage linie."""
        out: list[str] = []
        for word in raw:
            if len(word) >= 8 and word.isalpha() and word not in self.known_words:
                parts = self._compounds.get(word)
                if parts is None:
                    parts = (word,)
                    for k in range(3, len(word) - 3):
                        if word[k:] in self.compound_heads:
                            parts = (word[:k], word[k:])
                            break
                    if len(self._compounds) > 50_000:
                        self._compounds.clear()
                    self._compounds[word] = parts
                out.extend(parts)
            else:
                out.append(word)
        return out

    # --- machines ------------------------------------------------------------------------

    def find_machines(self, tokens: list[Token], taken: list[bool], allowed: Iterable[str] | None = None,
                      glued: list[bool] | None = None) -> MachineMatch:
        """`glued[i]`: token i was written onto the one before ("imm5"), so it is the machine's number."""
        words = [t.text for t in tokens]
        glued = glued or [False] * len(words)
        mentions = self.machine_table.scan(words, taken)
        allow = set(allowed) if allowed is not None else None
        result = MachineMatch()
        kept: list[Mention] = []
        for mention in mentions:
            ids = mention.ids if allow is None else tuple(i for i in mention.ids if i in allow)
            if not ids:
                continue
            nxt = mention.end
            if (tuple(words[mention.start : mention.end]) in self.lexicon.machine_classes
                    and nxt < len(words) and is_number(words[nxt]) and not taken[nxt]
                    and (glued[nxt] or not (nxt + 1 < len(words) and words[nxt + 1] in self.lexicon.units))):
                # "grinder 3" when the plant has no grinder 3: a machine we do not know.
                result.unknown = (mention.start, nxt + 1)
                result.candidates = list(dict.fromkeys([*result.candidates, *ids]))
                for k in range(mention.start, nxt + 1):
                    taken[k] = True
                continue
            kept.append(Mention(ids, mention.level, mention.start, mention.end))
        result.mentions = kept
        if not kept:
            if result.unknown is None:
                result.unknown = self._unknown_kind_number(words, taken, glued)
            return result
        for m in kept:  # a machine named and then corrected away is still not a quantity
            for k in range(m.start, m.end):
                taken[k] = True
        kept = self._apply_corrections(words, kept)
        kept = self._elided_correction(words, taken, kept)
        top = max(m.level for m in kept)
        best = [m for m in kept if m.level == top]
        ids = list(dict.fromkeys(i for m in best for i in m.ids))
        if len(ids) > 1 and top >= KIND_NUMBER and all(len(m.ids) == 1 for m in best):
            ids = ids[:1]  # two machines each named exactly: the first is the subject ("vmc 3 parts failing on cmm")
        if len(ids) == 1:
            result.machine = ids[0]
            result.candidates = []
            result.unknown = None
        else:
            result.candidates = ids
        return result

    def _unknown_kind_number(self, words: list[str], taken: list[bool],
                             glued: list[bool]) -> tuple[int, int] | None:
        """'press 12' in a plant without presses: name it back in the question, not as a quantity."""
        found = None
        for i, word in enumerate(words):
            for kind in self.kinds_by_first.get(word, ()):
                end = i + len(kind)
                if (tuple(words[i:end]) == kind and end < len(words) and is_number(words[end])
                        and not any(taken[i : end + 1])
                        and (glued[end] or not (end + 1 < len(words) and words[end + 1] in self.lexicon.units))):
                    found = (i, end)
        if found is None:
            return None
        start, end = found
        for k in range(start, end + 1):
            taken[k] = True
        return start, end + 1

    def _apply_corrections(self, words: list[str], mentions: list[Mention]) -> list[Mention]:
        """'press 14 is NOT down, it's press 12': keep what follows a correction, drop negated."""
        if len({m.ids for m in mentions}) < 2:
            return mentions
        lex = self.lexicon
        last_correction = -1
        for i in range(len(words)):
            for phrase in lex.corrections:
                if tuple(words[i : i + len(phrase)]) == phrase:
                    last_correction = max(last_correction, i)
        if last_correction >= 0:
            after = [m for m in mentions if m.start > last_correction]
            if after:
                return after[:1]
        negated = [m for m in mentions if any(w in lex.negations for w in words[m.end : m.end + 3])]
        rest = [m for m in mentions if m not in negated]
        return rest if negated and rest else mentions

    def _elided_correction(self, words: list[str], taken: list[bool], mentions: list[Mention]) -> list[Mention]:
        """'no es la freidora 1, es la 2', 'nicht Ofen 1, sondern 2': a correction that gives only
        the number means the same kind of machine with that number."""
        if len(mentions) != 1 or len(mentions[0].ids) != 1:
            return mentions
        (mention,) = mentions
        kinds = self.machine_kinds.get(mention.ids[0], set())
        for i in range(mention.end, len(words)):
            size = max((len(p) for p in self.lexicon.corrections if tuple(words[i : i + len(p)]) == p), default=0)
            if not size:
                continue
            at = i + size
            if at < len(words) and not is_number(words[at]) and words[at] in self.lexicon.generic_words:
                at += 1  # "es la 2", "it's the 2"
            after = words[at + 1] if at + 1 < len(words) else ""
            if (at < len(words) and is_number(words[at]) and not taken[at] and after not in self.lexicon.units
                    and after not in CLOCK_WORDS):
                owners = [m for m, numbers in self.machine_numbers.items()
                          if words[at] in numbers and self.machine_kinds.get(m, set()) & kinds]
                if len(owners) == 1 and owners[0] != mention.ids[0]:
                    taken[at] = True
                    return [Mention((owners[0],), KIND_NUMBER, at, at + 1)]
        return mentions

    # --- materials -----------------------------------------------------------------------

    def is_weak_material(self, mention: Mention, words: list[str]) -> bool:
        """One everyday word ("oil", "bearing"): may be a spare part or a spill, not the plant's material."""
        return mention.end - mention.start == 1 and words[mention.start] in self.lexicon.vocabulary

    def find_material(self, tokens: list[Token], taken: list[bool]) -> tuple[str | None, list[Mention]]:
        words = [t.text for t in tokens]
        found: list[Mention] = []
        for mention in self.material_table.scan(words, taken):
            if mention.end - mention.start == 1 and mention.start > 0:
                before = words[mention.start - 1]
                own = set().union(*(self.material_words[i] for i in mention.ids))
                if before in self.lexicon.material_qualifiers and before not in own:
                    continue
            found.append(mention)
        if not found:
            return None, []
        top = max(m.level for m in found)
        for m in found:
            for k in range(m.start, m.end):
                taken[k] = True
        first = next(m for m in found if m.level == top)
        return first.ids[0], found

    # --- work orders and customer orders --------------------------------------------------

    def find_orders(self, tokens: list[Token], taken: list[bool], bare: bool) -> tuple[str | None, str | None]:
        """(work order, customer order). With `bare`, a known number alone counts ("la 1077");
        without, only numbers after an order word ("wo 1042", "#1042", "Auftrag 1042")."""
        words = [t.text for t in tokens]
        work_order = customer_order = None
        i, n = 0, len(words)
        while i < n:
            if taken[i]:
                i += 1
                continue
            prefix_len, kind = self._prefix_at(words, i)
            if not bare and kind is None:
                i += 1
                continue
            start = i + prefix_len
            if start < n and is_number(words[start]) and not taken[start]:
                if kind == "co":
                    ident, size = self.customer_orders.lookup(words, start)
                    if ident:
                        customer_order = customer_order or ident
                    else:
                        ident, size = self.work_orders.lookup(words, start)
                        work_order = work_order or ident
                else:
                    ident, size = self.work_orders.lookup(words, start)
                    if (ident and kind is None and len(words[start]) < 4 and start + size < n
                            and words[start + size] in self.lexicon.units):
                        ident, size = None, 0  # "200 pcs" is a quantity even when WO-200 exists
                    if ident:
                        work_order = work_order or ident
                    elif kind == "wo":
                        size = 1  # an order number the plant does not know: not a quantity either
                    else:
                        ident, size = self.customer_orders.lookup(words, start)
                        if ident:
                            customer_order = customer_order or ident
                if size and (ident or kind == "wo"):
                    for k in range(i, start + size):
                        taken[k] = True
                    i = start + size
                    continue
            i += 1
        return work_order, customer_order

    def _prefix_at(self, words: list[str], i: int) -> tuple[int, str | None]:
        if words[i] not in self.prefix_first_words:
            return 0, None
        for size in (3, 2, 1):
            phrase = tuple(words[i : i + size])
            if len(phrase) < size:
                continue
            if phrase in self.work_order_prefixes or phrase == ("#",):
                return size, "wo"
            if phrase in self.customer_order_prefixes:
                return size, "co"
        return 0, None


class _NumberIndex:
    """Order ids by their number part: "WO-1042" is found as 1042, wo 1042, WO1042, #1042."""

    def __init__(self, ids: Iterable[str], canon) -> None:  # noqa: ANN001 - Canonicalizer
        self.by_numbers: dict[Phrase, str | None] = {}
        self.prefixes: set[Phrase] = set()
        for ident in ids:
            words = split(ident)
            numbers = tuple(canonical_number(w) for w in words if is_number(w))
            letters = tuple(w for w in words if not is_number(w))
            if not numbers:
                continue
            key = numbers
            self.by_numbers[key] = None if key in self.by_numbers and self.by_numbers[key] != ident else ident
            if letters and len(letters) <= 2:
                self.prefixes.add(letters)
        self.longest = max((len(k) for k in self.by_numbers), default=1)

    def lookup(self, words: list[str], start: int) -> tuple[str | None, int]:
        for size in range(self.longest, 0, -1):
            run = words[start : start + size]
            if len(run) < size or not all(is_number(w) for w in run):
                continue
            ident = self.by_numbers.get(tuple(run))
            if ident:
                return ident, size
        return None, 0


