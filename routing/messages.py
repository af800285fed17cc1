"""Every sentence the bot writes, in English, Spanish, German and Hindi (Latin script).

Templates are chosen by the recipient's language; a missing translation falls back to
English rather than failing, so a new template can land before its translations.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "es", "de", "hi")

TEMPLATES: dict[str, dict[str, str]] = {
    "alert": {
        "en": "{code} {type} on {machine}: {summary}",
        "es": "{code} {type} en {machine}: {summary}",
        "de": "{code} {type} an {machine}: {summary}",
        "hi": "{code} {type} {machine} par: {summary}",
    },
    "alert_ack": {
        "en": "Please acknowledge within {ack}.",
        "es": "Confirma en menos de {ack}.",
        "de": "Bitte innerhalb von {ack} bestätigen.",
        "hi": "{ack} ke andar acknowledge karein.",
    },
    "alert_work_orders": {
        "en": "Affected work orders: {work_orders}.",
        "es": "Órdenes afectadas: {work_orders}.",
        "de": "Betroffene Aufträge: {work_orders}.",
        "hi": "Prabhavit work orders: {work_orders}.",
    },
    "alert_customers": {
        "en": "Customer orders at risk: {customer_orders}.",
        "es": "Pedidos de cliente en riesgo: {customer_orders}.",
        "de": "Gefährdete Kundenaufträge: {customer_orders}.",
        "hi": "Customer orders khatre mein: {customer_orders}.",
    },
    "alert_staging": {
        "en": "Staging conflict: {work_order} needs {material}.",
        "es": "Conflicto de abastecimiento: {work_order} necesita {material}.",
        "de": "Bereitstellungskonflikt: {work_order} braucht {material}.",
        "hi": "Staging conflict: {work_order} ko {material} chahiye.",
    },
    "reporter_opened": {
        "en": "{code} opened: {type} on {machine}. Notified: {names}.",
        "es": "{code} abierto: {type} en {machine}. Avisados: {names}.",
        "de": "{code} eröffnet: {type} an {machine}. Benachrichtigt: {names}.",
        "hi": "{code} khula: {machine} par {type}. Suchit kiya: {names}.",
    },
    "joined": {
        "en": "Already reported as {code} ({status}); your report was added to it.",
        "es": "Ya reportado como {code} ({status}); tu reporte se añadió.",
        "de": "Schon als {code} gemeldet ({status}); deine Meldung wurde ergänzt.",
        "hi": "Pehle se {code} ({status}) mein report hai; aapki report jod di gayi.",
    },
    "acknowledged": {
        "en": "{code}: {name} acknowledged.",
        "es": "{code}: {name} confirmó.",
        "de": "{code}: {name} hat bestätigt.",
        "hi": "{code}: {name} ne acknowledge kiya.",
    },
    "proposal": {
        "en": "{code}: {name} proposes: {summary}. Approve or reject?",
        "es": "{code}: {name} propone: {summary}. ¿Aprobar o rechazar?",
        "de": "{code}: {name} schlägt vor: {summary}. Freigeben oder ablehnen?",
        "hi": "{code}: {name} ka prastav: {summary}. Approve ya reject?",
    },
    "refused": {
        "en": "Only {role} can approve or reject {code}. Your attempt was recorded.",
        "es": "Solo {role} puede aprobar o rechazar {code}. Tu intento quedó registrado.",
        "de": "Nur {role} darf {code} freigeben oder ablehnen. Dein Versuch wurde vermerkt.",
        "hi": "Sirf {role} {code} ko approve ya reject kar sakte hain. Aapki koshish record ho gayi.",
    },
    "nothing_to_approve": {
        "en": "{code} has no proposed resolution to decide on yet.",
        "es": "{code} aún no tiene una solución propuesta.",
        "de": "Für {code} liegt noch kein Lösungsvorschlag vor.",
        "hi": "{code} mein abhi koi prastav nahi hai.",
    },
    "approved": {
        "en": "{code} approved by {name}.",
        "es": "{code} aprobado por {name}.",
        "de": "{code} freigegeben von {name}.",
        "hi": "{code} ko {name} ne approve kiya.",
    },
    "rejected": {
        "en": "{code}: {name} rejected the proposal. {reason}",
        "es": "{code}: {name} rechazó la propuesta. {reason}",
        "de": "{code}: {name} hat den Vorschlag abgelehnt. {reason}",
        "hi": "{code}: {name} ne prastav reject kiya. {reason}",
    },
    "erp_posted": {
        "en": "{code}: ERP {kind} posted as {reference}.",
        "es": "{code}: ERP {kind} registrado como {reference}.",
        "de": "{code}: ERP {kind} gebucht als {reference}.",
        "hi": "{code}: ERP {kind} post hua, reference {reference}.",
    },
    "erp_rejected": {
        "en": "{code}: the ERP refused {kind}: {reason}. Correct it and retry from the thread or the console.",
        "es": "{code}: el ERP rechazó {kind}: {reason}. Corrige y reintenta.",
        "de": "{code}: das ERP hat {kind} abgelehnt: {reason}. Bitte korrigieren und erneut senden.",
        "hi": "{code}: ERP ne {kind} reject kiya: {reason}. Theek karke dobara bhejein.",
    },
    # --- ERP rejections settled: retried or abandoned (issue 17) ---
    "erp_retried": {
        "en": "{code}: {name} sent {kind} to the ERP again.",
        "es": "{code}: {name} envió {kind} de nuevo al ERP.",
        "de": "{code}: {name} hat {kind} erneut an das ERP geschickt.",
        "hi": "{code}: {name} ne {kind} ERP ko dobara bheja.",
    },
    "erp_abandoned": {
        "en": "{code}: {name} gave up {kind} in the ERP ({reason}). Book it in the ERP by hand if it is still needed.",
        "es": "{code}: {name} abandonó {kind} en el ERP ({reason}). Regístralo a mano en el ERP si aún hace falta.",
        "de": "{code}: {name} hat {kind} im ERP aufgegeben ({reason}). Bei Bedarf bitte im ERP von Hand buchen.",
        "hi": "{code}: {name} ne ERP mein {kind} chhod diya ({reason}). Zaroorat ho to ERP mein haath se darj karein.",
    },
    "erp_auth_failed": {
        "en": "ERP login refused ({reason}); posting is paused until the credentials are fixed.",
        "es": "El ERP rechazó el acceso ({reason}); el envío está en pausa.",
        "de": "ERP-Anmeldung abgelehnt ({reason}); Buchungen pausiert.",
        "hi": "ERP login fail ({reason}); posting ruki hui hai.",
    },
    "closed": {
        "en": "{code} closed.",
        "es": "{code} cerrado.",
        "de": "{code} geschlossen.",
        "hi": "{code} band kiya gaya.",
    },
    "escalation": {
        "en": "{code} not acknowledged by {role} within {ack}; escalated to you. {summary}",
        "es": "{code} sin confirmar por {role} en {ack}; escalado a ti. {summary}",
        "de": "{code} nicht von {role} innerhalb {ack} bestätigt; an dich eskaliert. {summary}",
        "hi": "{code} ko {role} ne {ack} mein acknowledge nahi kiya; aapko escalate kiya. {summary}",
    },
    "nobody_on_shift": {
        "en": "{code}: nobody with role {role} is on shift; escalated to you. {summary}",
        "es": "{code}: nadie con rol {role} está en turno; escalado a ti. {summary}",
        "de": "{code}: niemand mit Rolle {role} ist im Dienst; an dich eskaliert. {summary}",
        "hi": "{code}: {role} role ka koi shift par nahi hai; aapko escalate kiya. {summary}",
    },
    "ask_machine": {
        "en": "Which machine is it?",
        "es": "¿Qué máquina es?",
        "de": "Welche Maschine ist betroffen?",
        "hi": "Kaun si machine hai?",
    },
    "ask_machine_choice": {
        "en": "Which one: {options}?",
        "es": "¿Cuál: {options}?",
        "de": "Welche: {options}?",
        "hi": "Kaun si: {options}?",
    },
    "ask_type": {
        "en": "What kind of problem is it: breakdown, quality, material, safety, tooling, utility or staffing?",
        "es": "¿Qué tipo de problema es: avería, calidad, material, seguridad, herramienta, servicios o personal?",
        "de": "Was für ein Problem: Ausfall, Qualität, Material, Sicherheit, Werkzeug, Versorgung oder Personal?",
        "hi": "Kis tarah ki problem hai: breakdown, quality, material, safety, tooling, utility ya staffing?",
    },
    "not_registered": {
        "en": "You are not registered in this plant. Ask your supervisor to add you.",
        "es": "No estás registrado en esta planta. Pide a tu supervisor que te añada.",
        "de": "Du bist in diesem Werk nicht registriert. Bitte deinen Vorgesetzten, dich einzutragen.",
        "hi": "Aap is plant mein registered nahi hain. Apne supervisor se judwaiye.",
    },
    "which_exception": {
        "en": "Which exception do you mean? Open: {codes}. Reply with the code, e.g. {example}.",
        "es": "¿A qué incidencia te refieres? Abiertas: {codes}. Responde con el código, p. ej. {example}.",
        "de": "Welche Störung meinst du? Offen: {codes}. Antworte mit dem Code, z. B. {example}.",
        "hi": "Kaunsa exception? Khule hue: {codes}. Code likhein, jaise {example}.",
    },
    "no_open_exception": {
        "en": "There is no open exception for you to answer to.",
        "es": "No hay ninguna incidencia abierta para ti.",
        "de": "Es gibt keine offene Störung für dich.",
        "hi": "Aapke liye koi khula exception nahi hai.",
    },
    "noted": {
        "en": "{code}: noted.",
        "es": "{code}: anotado.",
        "de": "{code}: notiert.",
        "hi": "{code}: note kiya.",
    },
    "help": {
        "en": "Tell me what is wrong (machine, work order), or ask: 'what is down?', 'status WO-1042', 'MTTR this week'.",
        "es": "Cuéntame qué pasa (máquina, orden) o pregunta: '¿qué está parado?', 'estado WO-1042'.",
        "de": "Schreib, was los ist (Maschine, Auftrag), oder frag: 'was steht?', 'Status WO-1042'.",
        "hi": "Batayein kya problem hai (machine, work order), ya poochein: 'kya band hai?', 'status WO-1042'.",
    },
    "processing_failed": {
        "en": "Sorry, I could not process that message; it is stored and an admin will look at it.",
        "es": "Perdón, no pude procesar el mensaje; quedó guardado y un administrador lo revisará.",
        "de": "Entschuldigung, die Nachricht konnte nicht verarbeitet werden; sie ist gespeichert.",
        "hi": "Maaf kijiye, message process nahi hua; woh save hai aur admin dekhega.",
    },
    # --- rich chat messages (bot/channels): buttons, status, the context of a thread ----------
    # Button titles stay within WhatsApp's 20 characters.
    "button_ack": {"en": "Acknowledge", "es": "Confirmar", "de": "Bestätigen", "hi": "Acknowledge"},
    "button_propose": {"en": "Propose fix", "es": "Proponer solución", "de": "Lösung vorschlagen",
                       "hi": "Fix batayein"},
    "button_approve": {"en": "Approve", "es": "Aprobar", "de": "Freigeben", "hi": "Approve"},
    "button_reject": {"en": "Reject", "es": "Rechazar", "de": "Ablehnen", "hi": "Reject"},
    "status_open": {"en": "open", "es": "abierta", "de": "offen", "hi": "khula"},
    "status_acknowledged": {"en": "acknowledged", "es": "confirmada", "de": "bestätigt", "hi": "acknowledged"},
    "status_proposed": {"en": "fix proposed", "es": "solución propuesta", "de": "Lösung vorgeschlagen",
                        "hi": "fix prastavit"},
    "status_approved": {"en": "approved", "es": "aprobada", "de": "freigegeben", "hi": "approved"},
    "status_posted": {"en": "posted to ERP", "es": "registrada en ERP", "de": "im ERP gebucht",
                      "hi": "ERP mein post"},
    "status_closed": {"en": "closed", "es": "cerrada", "de": "geschlossen", "hi": "band"},
    "thread_paged": {
        "en": "{code}: {names} notified ({role}).",
        "es": "{code}: avisados {names} ({role}).",
        "de": "{code}: {names} benachrichtigt ({role}).",
        "hi": "{code}: {names} ko suchit kiya ({role}).",
    },
    "thread_escalated": {
        "en": "{code}: not acknowledged by {role} in time; escalated to {names} ({to_role}).",
        "es": "{code}: {role} no confirmó a tiempo; escalado a {names} ({to_role}).",
        "de": "{code}: von {role} nicht rechtzeitig bestätigt; eskaliert an {names} ({to_role}).",
        "hi": "{code}: {role} ne samay par acknowledge nahi kiya; {names} ({to_role}) ko escalate kiya.",
    },
    "thread_not_reached": {
        "en": "{code}: {name} was not reached on {channel}.",
        "es": "{code}: no se pudo avisar a {name} por {channel}.",
        "de": "{code}: {name} über {channel} nicht erreicht.",
        "hi": "{code}: {name} tak {channel} par sandesh nahi pahuncha.",
    },
    "thread_reported_again": {
        "en": "{code}: reported again by {name}: {text}",
        "es": "{code}: {name} lo reportó de nuevo: {text}",
        "de": "{code}: erneut gemeldet von {name}: {text}",
        "hi": "{code}: {name} ne phir report kiya: {text}",
    },
    "card_status": {
        "en": "{code} is now: {status}.",
        "es": "{code} ahora está: {status}.",
        "de": "{code} ist jetzt: {status}.",
        "hi": "{code} ab: {status}.",
    },
    "card_root": {
        "en": "{code} {type} on {machine}: {summary}",
        "es": "{code} {type} en {machine}: {summary}",
        "de": "{code} {type} an {machine}: {summary}",
        "hi": "{code} {type} {machine} par: {summary}",
    },
    "card_machine": {"en": "Machine: {machine}", "es": "Máquina: {machine}", "de": "Maschine: {machine}",
                     "hi": "Machine: {machine}"},
    "card_work_orders": {"en": "Work orders: {work_orders}", "es": "Órdenes: {work_orders}",
                         "de": "Aufträge: {work_orders}", "hi": "Work orders: {work_orders}"},
    "card_customers": {"en": "Customer orders at risk: {customer_orders}",
                       "es": "Pedidos en riesgo: {customer_orders}",
                       "de": "Gefährdete Kundenaufträge: {customer_orders}",
                       "hi": "Khatre mein orders: {customer_orders}"},
    "card_opened": {"en": "Opened {opened}", "es": "Abierta {opened}", "de": "Eröffnet {opened}",
                    "hi": "Khula {opened}"},
    "card_ack_due": {"en": "acknowledge by {due}", "es": "confirmar antes de {due}",
                     "de": "bestätigen bis {due}", "hi": "{due} tak acknowledge"},
    "card_status_line": {"en": "Status: {status}", "es": "Estado: {status}", "de": "Status: {status}",
                         "hi": "Status: {status}"},
}

TYPE_NAMES: dict[str, dict[str, str]] = {
    "es": {
        "breakdown": "avería", "quality": "calidad", "material": "material", "safety": "seguridad",
        "tooling": "herramienta", "utility": "servicios", "staffing": "personal", "other": "otro",
    },
    "de": {
        "breakdown": "Ausfall", "quality": "Qualität", "material": "Material", "safety": "Sicherheit",
        "tooling": "Werkzeug", "utility": "Versorgung", "staffing": "Personal", "other": "Sonstiges",
    },
}


def type_name(exception_type: str, language: str) -> str:
    return TYPE_NAMES.get(language, {}).get(exception_type, exception_type)


def render(key: str, language: str, **values: Any) -> str:
    """The template `key` in `language` (English when missing), filled with `values`."""
    variants = TEMPLATES[key]
    template = variants.get(language) or variants["en"]
    return template.format(**values).strip()
