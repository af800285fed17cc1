"""Reads one chat message into an `Extraction`, matched against one plant's master data.

Build one `Extractor` per plant load (indexes are built in `__init__`), then call
`extract` per message; it never raises on odd text and takes well under a millisecond.
`match_machine` resolves the short answer to an ask-back ("la 2", "mill 2"). When master
data changes, `refresh` rebuilds the indexes and keeps the spaCy pipelines.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nlp.classify import Cues, best_type, decide_intent, find_phrases, is_question, top_type
from nlp.extraction import Extraction, MachineRef, MasterData, MaterialRef, Quantity, Resolution, WorkOrderRef
from nlp.langid import LANGUAGES, detect_language
from nlp.lexicon import Lexicon, load_lexicon
from nlp.matching import MachineMatch, MasterIndex
from nlp.model import MACHINE, MATERIAL, ORDER, Models, load_models, message_features
from nlp.pipeline import Reading, bind, build_pipeline
from nlp.resolution import PlacedQuantity, parse_resolution
from nlp.text import is_number, split

if TYPE_CHECKING:
    from spacy.language import Language

MAX_CHARS = 2000  # a chat line longer than this is a paste; its head says what matters
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LOT = re.compile(r"\b(?:lot|lote|charge|batch|los)\s*(?:no\.?|nr\.?)?\s*[:#]?\s*([A-Za-z]*[-/]?\d[\w/-]*)", re.I)
_ORDINALS: dict[str, int] = {
    "first": 0, "1st": 0, "primera": 0, "primero": 0, "erste": 0, "ersten": 0, "erstere": 0, "pehla": 0,
    "pehli": 0, "pehle": 0, "second": 1, "2nd": 1, "segunda": 1, "segundo": 1, "zweite": 1, "zweiten": 1,
    "dusra": 1, "dusri": 1, "doosra": 1, "doosri": 1, "third": 2, "3rd": 2, "tercera": 2, "tercero": 2,
    "dritte": 2, "dritten": 2, "teesra": 2, "teesri": 2, "last": -1, "ultima": -1, "ultimo": -1,
    "letzte": -1, "letzten": -1, "aakhri": -1, "akhri": -1,
}
MODEL_WEIGHT = 2.0  # cue points per unit of the type model's log-odds
MODEL_ALONE = 0.6  # with no cue at all, the type model decides when it is at least this sure
# A report the intent model reads as small talk at least this often is asked about ("Is this a
# problem to report?") before anyone is paged. Set from real reports only: the smallest value at
# which at most 1 % of the held-out probes' reports (body shop, snack plant) are asked, 2 of 211;
# set again each time the intent model is retrained on more small talk (0.03 before the small-talk
# writers of nlp/data/training/smalltalk_*.jsonl, whose model gives reports more of `other`).
UNSURE_OTHER = 0.15
SMALL_TALK = 0.5  # the intent model's reading of small talk that keeps a named machine from making a report
_MACHINE_TYPES = frozenset({"breakdown", "tooling"})
_SPARE_PART_TYPES = frozenset({"breakdown", "safety", "utility", "tooling"})


class Extractor:
    """Message -> Extraction for one plant. `refresh` may run from another thread; `extract` calls
    share spaCy pipelines, so run them from one thread at a time (or keep one Extractor per thread)."""

    def __init__(self, master: MasterData, lexicon: Lexicon | None = None,
                 models: Models | None | bool = True) -> None:
        """`models`: the trained classifiers blended with the lexicon (default: the shipped ones;
        False: the lexicon alone, as the evaluation's `--lexicon-only` compares)."""
        self.lexicon = lexicon or load_lexicon()
        self.models = load_models() if models is True else (models or None)
        self.index = MasterIndex(master, self.lexicon)
        self._pipelines: dict[str, Language] = {}
        self._lock = threading.Lock()

    @property
    def master(self) -> MasterData:
        return self.index.master

    def refresh(self, master: MasterData) -> None:
        """New master data (a plant reload, an ERP sync): rebuild the indexes, keep the pipelines.

        Master data equal to the indexed one rebuilds nothing: the announcement that asks for a
        refresh (mfgos/workers.py) reaches every process listening on the database, whichever
        plant or schema changed, and a rebuild costs about a second of CPU.
        """
        if master == self.index.master:
            return
        index = MasterIndex(master, self.lexicon)
        with self._lock:
            self.index = index
            for nlp in self._pipelines.values():
                bind(nlp, index)

    def pipeline(self, language: str) -> Language:
        """The spaCy pipeline for one language, built on first use."""
        language = language if language in LANGUAGES else "en"
        nlp = self._pipelines.get(language)
        if nlp is None:
            with self._lock:
                nlp = self._pipelines.get(language) or build_pipeline(language, self.index)
                self._pipelines[language] = nlp
        return nlp

    def warm_up(self, languages: Sequence[str] = LANGUAGES) -> None:
        """Import spaCy and build the pipelines now (about a second) instead of on the first message."""
        for language in languages:
            self.pipeline(language)

    # --- public API ----------------------------------------------------------------------

    def extract(self, text: str, language: str | None = None) -> Extraction:
        """Read one message; `language` is the sender's language, used when the text is unclear."""
        if not isinstance(text, str):
            raise TypeError(f"extract() needs the message text as str, got {type(text).__name__}")
        text = _CONTROL.sub(" ", text[:MAX_CHARS])
        lex = self.lexicon
        reading = self._read(text, language)
        index = self.index
        words, taken, tokens = reading.words, reading.taken, reading.tokens
        machines, material, quantities = reading.machines, reading.material, reading.quantities
        cues = reading.cues
        if (any(action for _, _, action in find_phrases(words, lex.dispositions))
                and (quantities or find_phrases(words, lex.rest_words))):
            cues.intent["update"] = cues.intent.get("update", 0.0) + 2.0  # "30 Stück sperren, Rest freigeben"
        if material and cues.intent.get("update", 0.0) >= 2:
            cues.intent["update"] += 1.0  # "resin drums received": material news on an open shortage

        free = [w for w, t in zip(words, taken, strict=True) if not t]
        first_free = bool(taken) and not taken[0]
        models = self.models
        features = self._features(text, reading, free, first_free) if models else []
        type_probabilities = models.exception_type.probabilities(features) if models else None
        type_scores = self._type_scores(cues, machines, material, quantities, words)
        exception_type, type_score = _blend_types(type_scores, type_probabilities)
        intent, intent_confidence = decide_intent(text, free, first_free, cues, type_score,
                                                  machines.machine is not None or bool(quantities))
        intent_probabilities = models.intent.probabilities(features) if models else {}
        intent, intent_confidence = _second_opinion(intent_probabilities, intent, intent_confidence)
        covered = {k for t, used in zip(tokens, taken, strict=True) if used for k in range(t.start, t.end)}
        detected, _ = detect_language(text, [w for k, w in enumerate(reading.raw) if k not in covered], lex,
                                      language)
        mentions = reading.material_mentions
        weak_material = bool(mentions) and all(index.is_weak_material(m, words) for m in mentions)

        result = Extraction(text=text, language=detected, intent=intent)
        result.machine = machines.machine
        result.machine_candidates = list(machines.candidates) if machines.machine is None else []
        result.work_order = reading.work_order
        result.customer_order = reading.customer_order
        result.quantities = [Quantity(q.value, q.unit) for q in quantities]

        if (intent == "other" and not cues.intent and (machines.machine or material)
                and intent_probabilities.get("other", 0.0) < SMALL_TALK):
            # A message that names a machine or material and nothing we know how to read is
            # most likely a problem ("Förderband gerissen"); say so with low confidence, unless
            # the model reads it as small talk ("lathe 11 looks great after the paint job").
            intent, intent_confidence = "report", 0.35
            result.intent = intent
            exception_type = self._type_from_entities(machines, material, Resolution())
        if intent == "report":
            result.exception_type = exception_type or "other"
            if weak_material and result.exception_type in _SPARE_PART_TYPES:
                material = None  # "oil on the floor", "spindle bearing noisy": not the plant's stock
        elif intent == "update":
            material_at = {m.start: m.ids[0] for m in mentions}
            lots = _LOT.findall(text)
            resolution = parse_resolution(words, reading.clause_of, quantities, material, material_at,
                                          lots[0].upper() if lots else None, lex)
            if weak_material and not cues.exception_type.get("material"):
                without = _blend_types(self._type_scores(cues, machines, None, quantities, words),
                                       type_probabilities)[0]
                if resolution.machine_running is not None or without in _SPARE_PART_TYPES:
                    # "bearing badal diya", "bearing on the way": a spare part for a repair
                    material, exception_type = None, without
            result.resolution = resolution
            if (resolution.machine_running and machines.machine
                    and exception_type not in ("tooling", "material", "quality")):
                exception_type = None  # "if2 up and running, breaker replaced": the machine was down
            result.exception_type = exception_type or self._type_from_entities(machines, material, resolution)
        if intent == "other" and weak_material:
            material = None  # "oil change next tuesday": an everyday word in small talk is not the plant's stock
        result.material = material
        result.severity = self._severity(intent, result.exception_type, cues)
        result.clarify = self._clarify(result, reading.unknown_machine, type_score)
        result.unsure_problem = intent == "report" and intent_probabilities.get("other", 0.0) >= UNSURE_OTHER
        result.confidence = _confidence(intent, intent_confidence, type_score, result)
        return result

    def features(self, text: str, language: str | None = None) -> list[str]:
        """The trained classifiers' features of one message, as `extract` computes them."""
        text = _CONTROL.sub(" ", text[:MAX_CHARS])
        reading = self._read(text, language)
        free = [w for w, t in zip(reading.words, reading.taken, strict=True) if not t]
        return self._features(text, reading, free, bool(reading.taken) and not reading.taken[0])

    def _features(self, text: str, reading: Reading, free: list[str], first_free: bool) -> list[str]:
        slots: list[str | None] = [ORDER if t else None for t in reading.taken]
        kinds: set[str] = set()
        for mention in reading.machines.mentions:
            slots[mention.start : mention.end] = [MACHINE] * (mention.end - mention.start)
            for ident in mention.ids:
                kinds.update(" ".join(kind) for kind in self.index.machine_kinds.get(ident, ()))
                if self._is_utility(ident):
                    kinds.add("utility")
        for mention in reading.material_mentions:
            slots[mention.start : mention.end] = [MATERIAL] * (mention.end - mention.start)
        cues = reading.cues
        fired = [*(f"i{label}" for label, score in cues.intent.items() if score > 0),
                 *(f"t{label}" for label, score in cues.exception_type.items() if score > 0)]
        return message_features(reading.words, slots, is_question(text, free, first_free), kinds, fired)

    def _read(self, text: str, language: str | None) -> Reading:
        guess, _ = detect_language(text, split(text), self.lexicon, language)
        return self.pipeline(guess)(text)._.mfgos

    def match_machine(self, text: str, candidates: Sequence[str] | None = None) -> str | None:
        """Resolve a short answer ("la 2", "mill 2", "HOB-01", "the second one") to a machine id."""
        if not isinstance(text, str):
            raise TypeError(f"match_machine() needs str, got {type(text).__name__}")
        index = self.index
        pool = [c for c in (candidates or []) if c in index.machines] or list(index.machines)
        text = _CONTROL.sub(" ", text[:MAX_CHARS])
        nlp = self.pipeline(detect_language(text, split(text), self.lexicon)[0])
        reading: Reading = nlp.get_pipe("mfgos_normalizer")(nlp.make_doc(text))._.mfgos
        words = reading.words
        found = index.find_machines(reading.tokens, [False] * len(words), allowed=pool)
        if found.machine:
            return found.machine
        narrowed = found.candidates or pool
        numbers = [w for w in words if is_number(w)]
        for number in numbers:
            owners = [m for m in narrowed if number in index.machine_numbers.get(m, ())]
            if len(owners) == 1:
                return owners[0]
        if candidates:
            for word in reading.raw:
                if word in _ORDINALS and len(pool) > abs(_ORDINALS[word]) - (_ORDINALS[word] < 0):
                    return pool[_ORDINALS[word]]
            if len(numbers) == 1 and numbers[0].isdigit() and 1 <= int(numbers[0]) <= len(pool):
                return pool[int(numbers[0]) - 1]
        return None

    # --- steps ---------------------------------------------------------------------------

    def _type_scores(self, cues: Cues, machines: MachineMatch, material: str | None,
                     quantities: list[PlacedQuantity], words: list[str]) -> dict[str, float]:
        scores = dict(cues.exception_type)

        def add(kind: str, weight: float) -> None:
            scores[kind] = scores.get(kind, 0.0) + weight

        if material and scores.get("material", 0.0) > 0:
            add("material", 2.0)
        short = bool(find_phrases(words, self.lexicon.shortage))
        if material and short:
            add("material", 3.0)  # "no seals for wo 1078", "blanks nahi aaye", "cores short"
        if short and not material and any(w in self.lexicon.people_words for w in words):
            add("staffing", 3.5)  # "zu wenig Gießer", "no hay montador": a trade named beats a bare "no hay"
        units = {q.unit for q in quantities}
        if "pcs" in units:
            add("quality", 1.5)  # counted pieces are usually bad pieces
        people = max((q.value for q in quantities if q.unit == "person"), default=0)
        if people:
            add("staffing", 4.0 if people >= 2 else 1.0)  # "ek aadmi jal gaya" is about one person hurt
        if (machines.machine and any(w in self.lexicon.negations for w in words)
                and max((v for k, v in scores.items() if k != "breakdown"), default=0.0) < 3):
            add("breakdown", 2.0)  # "Ofen 2 heizt nicht": a machine that does not do its job
        if machines.machine and not self._is_utility(machines.machine) and 0 < scores.get("utility", 0.0) < 3:
            add("utility", -1.0)  # "washer leaking water" is about the washer
        if material and not any(v > 0 for k, v in scores.items() if k != "material"):
            add("material", 2.0)  # "line 1 waiting for seals": a material named and nothing else wrong
        if machines.machine and scores.get("breakdown", 0.0) > 0 and scores["breakdown"] == max(scores.values()):
            add("breakdown", 0.5)  # a tie on a named machine: the machine is the problem
        if machines.machine and scores.get("breakdown", 0.0) > 0 and self._is_utility(machines.machine):
            scores["utility"] = scores.get("utility", 0.0) + scores.pop("breakdown")
        return scores

    def _is_utility(self, machine: str) -> bool:
        return bool(self.index.machine_kinds.get(machine, set()) & self.lexicon.utility_classes)

    def _type_from_entities(self, machines: MachineMatch, material: str | None,
                            resolution: Resolution) -> str | None:
        """An update without problem words: what it settles says what the problem was."""
        if resolution.dispositions:
            return "quality"
        if material:
            return "material"
        if machines.machine:
            return "utility" if self._is_utility(machines.machine) else "breakdown"
        if resolution.machine_running is not None:
            return "breakdown"
        return None

    @staticmethod
    def _severity(intent: str, exception_type: str | None, cues: Cues) -> str:
        if intent != "report":
            return "low" if intent in ("ack", "other", "query") else "medium"
        if "critical" in cues.severity:
            return "critical"
        if "high" in cues.severity or exception_type == "safety":
            return "high"
        if "low" in cues.severity:
            return "low"
        return "medium"

    def _clarify(self, result: Extraction, unknown_machine: str | None, type_score: float) -> str | None:
        if result.intent != "report":
            return None
        questions = self.lexicon.questions
        language = result.language if result.language in questions["which_machine"] else "en"
        if result.machine is None:
            options = self._options(result.machine_candidates, language)
            if unknown_machine:  # "grinder 3" in a plant without one: say so, then ask
                known = questions["unknown_machine"][language].format(name=unknown_machine)
                ask = questions["which_of"][language].format(options=options) if options \
                    else questions["which_machine"][language]
                return f"{known} {ask}"
            if len(result.machine_candidates) > 1:
                return questions["which_of"][language].format(options=options)
            if result.exception_type in _MACHINE_TYPES or (
                    result.exception_type == "quality" and not result.work_order and not result.material):
                return questions["which_machine"][language]
        if type_score < 2:
            return questions["what_problem"][language]
        return None

    def _options(self, ids: list[str], language: str) -> str:
        labels = []
        for ident in ids[:5]:
            machine = self.index.machines.get(ident)
            labels.append(f"{ident} ({machine.name})" if machine and machine.name != ident else ident)
        if len(labels) < 2:
            return "".join(labels)
        word = self.lexicon.questions["or"][language]
        return f"{', '.join(labels[:-1])} {word} {labels[-1]}"


def _blend_types(scores: dict[str, float], probabilities: dict[str, float] | None) -> tuple[str | None, float]:
    """(exception type, how clearly a problem is described). The cues' scores are summed with the
    trained model's log-odds against its favourite, so the model can overturn a cue that fired in
    the wrong company but not invent a problem where no cue and no sure model reading is."""
    exception_type, strength, _ = best_type(scores)
    if probabilities is None:
        return exception_type, strength
    favourite = max(probabilities.values())
    if strength <= 0 and favourite < MODEL_ALONE:
        return None, 0.0
    blended = {t: scores.get(t, 0.0) + MODEL_WEIGHT * math.log(max(p, 1e-4) / favourite)
               for t, p in probabilities.items()}
    return top_type(blended), strength


def _second_opinion(probabilities: dict[str, float], label: str, confidence: float) -> tuple[str, float]:
    """The trained model's intent wins where it is surer than the cues ("ok, sending an electrician"
    has no ack cue; "reject hue" in a count of bad packets is no decision). On blind probes this
    beats both the cues alone and the model alone (docs/nlp.md)."""
    if not probabilities:
        return label, confidence
    best = max(probabilities, key=probabilities.__getitem__)
    if best == "other" and label == "report" and probabilities[best] >= SMALL_TALK:
        return best, round(min(probabilities[best], 0.95), 2)  # "brb smoke break": small talk, a cue borrowed
    if best != label and probabilities[best] > confidence:
        return best, round(min(probabilities[best], 0.95), 2)
    return label, confidence


def _confidence(intent: str, intent_confidence: float, type_score: float, result: Extraction) -> float:
    confidence = intent_confidence
    if intent == "report":
        confidence *= 1.0 if type_score >= 3 else 0.8
        if result.clarify:
            confidence *= 0.6
    return round(max(0.05, min(0.99, confidence)), 2)


def master_data_from_store(session: Any, plant_id: str) -> MasterData:
    """The plant's machines, materials, work orders and customer orders, read from the store."""
    from sqlmodel import select

    from models.tables import CustomerOrder, Machine, Material, WorkOrder

    machines = session.exec(select(Machine).where(Machine.plant_id == plant_id).order_by(Machine.id)).all()
    materials = session.exec(select(Material).where(Material.plant_id == plant_id).order_by(Material.id)).all()
    orders = session.exec(select(WorkOrder).where(WorkOrder.plant_id == plant_id).order_by(WorkOrder.id)).all()
    customers = session.exec(select(CustomerOrder.id).where(CustomerOrder.plant_id == plant_id)
                             .order_by(CustomerOrder.id)).all()
    return MasterData(
        machines=tuple(MachineRef(m.id, m.name, m.area_id, tuple(m.aliases or ())) for m in machines),
        materials=tuple(MaterialRef(m.id, m.name, tuple(m.aliases or ())) for m in materials),
        work_orders=tuple(WorkOrderRef(w.id, w.machine_id, w.material_id, w.customer_order_id) for w in orders),
        customer_orders=tuple(customers),
    )

