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
    # --- conversation (routing/conversation.py): questions, confirmations, limits ------------
    "ask_which": {
        "en": "Which one do you mean? {options}. Reply with the number, the code or the machine.",
        "es": "¿A cuál te refieres? {options}. Responde con el número, el código o la máquina.",
        "de": "Welche meinst du? {options}. Antworte mit der Nummer, dem Code oder der Maschine.",
        "hi": "Aap kaunsa keh rahe hain? {options}. Number, code ya machine ka naam likhein.",
    },
    "which_dropped": {
        "en": "I could not tell which one you meant, so nothing was recorded. Reply in its thread or start with its code.",
        "es": "No supe a cuál te referías, así que no se registró nada. Responde en su hilo o empieza con su código.",
        "de": "Ich konnte nicht erkennen, welche du meinst; nichts wurde vermerkt. Antworte im Thread oder beginne mit dem Code.",
        "hi": "Samajh nahi aaya aap kaunsa keh rahe the, isliye kuch record nahi hua. Uske thread mein ya code se shuru karke likhein.",
    },
    "confirm_ack": {
        "en": "Recorded on {code}: you acknowledged.",
        "es": "Registrado en {code}: confirmaste.",
        "de": "Vermerkt bei {code}: du hast bestätigt.",
        "hi": "{code} par record hua: aapne acknowledge kiya.",
    },
    "confirm_ack_told": {
        "en": "Recorded on {code}: you acknowledged. {name} has been told.",
        "es": "Registrado en {code}: confirmaste. {name} ya está avisado.",
        "de": "Vermerkt bei {code}: du hast bestätigt. {name} wurde informiert.",
        "hi": "{code} par record hua: aapne acknowledge kiya. {name} ko bata diya gaya.",
    },
    "confirm_proposal": {
        "en": "Your fix for {code} is waiting for approval by {role}.",
        "es": "Tu solución para {code} espera la aprobación de {role}.",
        "de": "Deine Lösung für {code} wartet auf die Freigabe durch {role}.",
        "hi": "{code} ke liye aapka fix {role} ke approval ka intezaar kar raha hai.",
    },
    "confirm_comment": {
        "en": "Comment added to {code}.",
        "es": "Comentario añadido a {code}.",
        "de": "Kommentar zu {code} hinzugefügt.",
        "hi": "{code} mein comment jod diya.",
    },
    "confirm_approved": {
        "en": "Recorded on {code}: you approved the fix. It goes to the ERP now.",
        "es": "Registrado en {code}: aprobaste la solución. Ahora pasa al ERP.",
        "de": "Vermerkt bei {code}: du hast die Lösung freigegeben. Sie geht jetzt ins ERP.",
        "hi": "{code} par record hua: aapne fix approve kiya. Ab yeh ERP mein jayega.",
    },
    "confirm_rejected": {
        "en": "Recorded on {code}: you rejected the fix. The proposer has been told.",
        "es": "Registrado en {code}: rechazaste la solución. Quien la propuso ya está avisado.",
        "de": "Vermerkt bei {code}: du hast die Lösung abgelehnt. Der Vorschlagende wurde informiert.",
        "hi": "{code} par record hua: aapne fix reject kiya. Prastav dene wale ko bata diya gaya.",
    },
    "too_long": {
        "en": "Your message is too long ({length} characters, at most {limit}). Please shorten it and send it again.",
        "es": "Tu mensaje es demasiado largo ({length} caracteres, máximo {limit}). Acórtalo y envíalo de nuevo.",
        "de": "Deine Nachricht ist zu lang ({length} Zeichen, höchstens {limit}). Bitte kürzen und noch einmal senden.",
        "hi": "Aapka message bahut lamba hai ({length} akshar, zyada se zyada {limit}). Chhota karke dobara bhejein.",
    },
    "option": {
        "en": "{number}) {code} {type} on {machine}",
        "es": "{number}) {code} {type} en {machine}",
        "de": "{number}) {code} {type} an {machine}",
        "hi": "{number}) {code} {machine} par {type}",
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
