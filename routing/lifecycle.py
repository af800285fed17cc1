"""The exception lifecycle as one table: in which state which action leads where, and who may do it.

Every change of an exception's status goes through `routing.workflow.transition`, which looks
the action up here: a pair (state, action) without a row is refused with a sentence saying the
state ("E-0001 is already approved by Sara Iyer, nothing to reject"), and a person whose
relation to the exception is not in the row's `who` is refused with a sentence saying who may.

Who a person is for an exception (`Relation`, computed once per person and exception):

- `reporter`: reported it (or reported it again);
- `notified`: paged for it by the rules (an `alert`) or as an escalation target (an `escalation`);
- `approver`: holds the rule's approver role (`exc.approver_role`);
- `manager`: holds the role `manager`;
- `member`: anyone of the plant (every person has it);
- `system`: the pipeline itself (ERP outbox, machine signals, timers), never a person.

The table (`TABLE`, the same in docs/routing.md):

| state | action | next state | who may |
|---|---|---|---|
| open | acknowledge | acknowledged | notified, approver, manager |
| open | propose | proposed | notified, approver, manager |
| open, acknowledged, proposed | escalate | (same) | system |
| acknowledged | acknowledge | acknowledged | notified, approver, manager |
| acknowledged | propose | proposed | notified, approver, manager |
| proposed | acknowledge | proposed | notified, approver, manager |
| proposed | propose | proposed (the new proposal replaces the old) | notified, approver, manager |
| proposed | approve | approved | approver |
| proposed | reject | acknowledged | approver |
| approved | erp_retry, erp_abandon (a rejected ERP transaction) | approved | approver |
| approved, posted, closed | mes_retry, mes_abandon (a rejected MES transaction) | (same) | approver |
| approved | erp_posted | posted | system |
| posted | close | closed | system |
| every state but closed | machine_running, machine_stopped | (same) | system |
| every state | comment | (same) | member, system |
| every state | decision_propose, decision_not_needed | (same) | decider |
| every state | decision_approve, decision_reject | (same) | decision_approver |

The decision rows concern one decision part of the exception (routing/decisions.py): `decider`
holds the role that decides its kind, `decision_approver` the plant's `approvals:` role for it
(or is the decider when the plant names none). The part's own states are declared there.

Every other (state, action) pair is refused because of the state. Beyond the table:

- the reporter acknowledges or proposes only if also paged, even when they hold the approver
  role or are a manager (`NOT_BY_REPORTER`): acknowledging one's own report would stop the
  escalation with nobody responding. A reporter's "it runs again" becomes a comment passed on
  to the people paged;
- an acknowledgement needs something to acknowledge: the roles the person answers for must
  not all be acknowledged already ("E-0001 is already acknowledged by Tom Fischer").

Approving and rejecting stay with the rule's approver role alone, managers included: the rule
names who decides (a quality disposition is quality's call), and a plant that wants managers
to decide names `manager` as the approver. So do retrying and abandoning an ERP transaction the
ERP refused (`routing.erp_rejections`): they decide again what the approval sends to the ERP.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models.tables import ExceptionStatus


class Action(StrEnum):
    acknowledge = "acknowledge"
    propose = "propose"
    approve = "approve"
    reject = "reject"
    comment = "comment"
    escalate = "escalate"  # an escalation timer came due, or nobody of a role is on shift
    erp_posted = "erp_posted"  # the last ERP transaction of the approval is posted (or there was none)
    machine_running = "machine_running"
    machine_stopped = "machine_stopped"
    close = "close"
    erp_retry = "erp_retry"  # queue a transaction the ERP refused again (after the fix in the ERP or the plant file)
    erp_abandon = "erp_abandon"  # give a refused transaction up, with a reason; the exception's later ones post
    mes_retry = "mes_retry"  # send a row the MES refused again (after the fix in the MES)
    mes_abandon = "mes_abandon"  # give a row the MES refused up, with a reason
    # On a decision part of the exception (routing/decisions.py); the exception's state stays.
    decision_propose = "decision_propose"
    decision_approve = "decision_approve"
    decision_reject = "decision_reject"
    decision_not_needed = "decision_not_needed"


class Relation(StrEnum):
    reporter = "reporter"
    notified = "notified"
    approver = "approver"
    manager = "manager"
    member = "member"
    system = "system"
    # For one decision part (given by routing.decisions, never computed for the exception alone):
    decider = "decider"  # holds the role that decides this kind of part (planner, materials, customer service)
    decision_approver = "decision_approver"  # holds the plant's `approvals:` role for the kind, or is the
    # decider when the plant names none (the deciding role's own decision stands)


@dataclass(frozen=True)
class Step:
    """One row: in `state`, `action` by someone with a relation in `who` leads to `next`."""

    state: ExceptionStatus
    action: Action
    next: ExceptionStatus
    who: frozenset[Relation]


S, A, R = ExceptionStatus, Action, Relation
RESPONDERS = frozenset({R.notified, R.approver, R.manager})
DECIDERS = frozenset({R.approver})
ANYONE = frozenset({R.member, R.system})
SYSTEM = frozenset({R.system})


def _same(states: tuple[ExceptionStatus, ...], action: Action, who: frozenset[Relation]) -> tuple[Step, ...]:
    return tuple(Step(state, action, state, who) for state in states)


UNFINISHED = (S.open, S.acknowledged, S.proposed, S.approved, S.posted)
AWAITING_DECISION = (S.open, S.acknowledged, S.proposed)

TABLE: tuple[Step, ...] = (
    Step(S.open, A.acknowledge, S.acknowledged, RESPONDERS),
    Step(S.open, A.propose, S.proposed, RESPONDERS),
    Step(S.acknowledged, A.acknowledge, S.acknowledged, RESPONDERS),
    Step(S.acknowledged, A.propose, S.proposed, RESPONDERS),
    Step(S.proposed, A.acknowledge, S.proposed, RESPONDERS),
    Step(S.proposed, A.propose, S.proposed, RESPONDERS),
    Step(S.proposed, A.approve, S.approved, DECIDERS),
    Step(S.proposed, A.reject, S.acknowledged, DECIDERS),
    Step(S.approved, A.erp_retry, S.approved, DECIDERS),
    Step(S.approved, A.erp_abandon, S.approved, DECIDERS),
    Step(S.approved, A.erp_posted, S.posted, SYSTEM),
    # The MES hears of an approved outcome, so its refusals come after the approval, often after the close.
    *_same((S.approved, S.posted, S.closed), A.mes_retry, DECIDERS),
    *_same((S.approved, S.posted, S.closed), A.mes_abandon, DECIDERS),
    Step(S.posted, A.close, S.closed, SYSTEM),
    *_same(AWAITING_DECISION, A.escalate, SYSTEM),
    *_same(UNFINISHED, A.machine_running, SYSTEM),
    *_same(UNFINISHED, A.machine_stopped, SYSTEM),
    *_same(tuple(S), A.comment, ANYONE),
    # Decision parts: in any state of the exception (a customer's new date may follow the closed
    # breakdown); the part's own states are routing.decisions.MOVES.
    *_same(tuple(S), A.decision_propose, frozenset({R.decider})),
    *_same(tuple(S), A.decision_not_needed, frozenset({R.decider})),
    *_same(tuple(S), A.decision_approve, frozenset({R.decision_approver})),
    *_same(tuple(S), A.decision_reject, frozenset({R.decision_approver})),
)

# Actions the reporter may take on their own report only if they were also paged for it.
NOT_BY_REPORTER = frozenset({A.acknowledge, A.propose})

# The timeline event an applied action writes.
EVENT = {
    A.acknowledge: "acknowledged", A.propose: "proposed", A.approve: "approved", A.reject: "rejected",
    A.comment: "comment", A.escalate: "escalated", A.erp_posted: "posted", A.machine_running: "machine_state",
    A.machine_stopped: "machine_state", A.close: "closed", A.erp_retry: "erp_retried", A.erp_abandon: "erp_abandoned",
    A.mes_retry: "mes_retried", A.mes_abandon: "mes_abandoned",
    A.decision_propose: "decision_proposed", A.decision_approve: "decision_approved",
    A.decision_reject: "decision_rejected", A.decision_not_needed: "decision_not_needed",
}

# The action behind each chat button (channels render the labels).
BUTTONS = {"ack": A.acknowledge, "propose": A.propose, "approve": A.approve, "reject": A.reject}
# The buttons of a refused ERP transaction name the row, not the exception: `erp_retry:<public_id>`.
ERP_BUTTONS = {"erp_retry": A.erp_retry, "erp_abandon": A.erp_abandon}


def erp_buttons(public_id: str) -> tuple[str, ...]:
    """The Retry and Abandon buttons of the transaction `public_id` (`ErpTransaction.public_id`)."""
    return tuple(f"{name}:{public_id}" for name in ERP_BUTTONS)


# Notifications that carry buttons a later transition can take away.
WITH_BUTTONS = ("alert", "escalation", "approval_request")

_INDEX: dict[tuple[ExceptionStatus, Action], Step] = {}


def step_for(state: ExceptionStatus | str, action: Action) -> Step | None:
    """The row for `action` in `state`, or None: the state refuses it."""
    if not _INDEX:
        _INDEX.update(((s.state, s.action), s) for s in TABLE)
    return _INDEX.get((ExceptionStatus(state), action))
